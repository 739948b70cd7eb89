import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import dgblocks
from dgblocks.memory import IDPool
from tests._helpers import randint, randn, seeds


def make_pool(num_ids=12, dim=5, num_domains=3, central=0, alpha=0.05, k=2):
    return IDPool(num_ids=num_ids, dim=dim, num_domains=num_domains, k=k, alpha=alpha,
                  central=central).double()


def feed(pool, seed, n_batches, b, num_ids, dom_of):
    """Feed random batches; return the per-identity features seen (python lists)."""
    seen = {}
    for t in range(n_batches):
        labels = randint(seed + t, num_ids, b)
        f = randn(seed + 100 + t, b, pool.dim)
        pool.update(f, labels=labels, domains=dom_of[labels])
        for lab, row in zip(labels.tolist(), f):
            seen.setdefault(lab, []).append(row)
    return seen


# --- reference: eq 6 and eq 7 ------------------------------------------------------------------
@given(seed=seeds, n_batches=st.integers(1, 5), b=st.integers(1, 10))
def test_prop_epoch_holds_arithmetic_means_then_blend(seed, n_batches, b):
    pool = make_pool(alpha=0.3)
    dom_of = torch.arange(12) % 3
    seen1 = feed(pool, seed, n_batches, b, 12, dom_of)
    for lab, rows in seen1.items():
        mean1 = torch.stack(rows).mean(0)
        torch.testing.assert_close(pool.running[lab], mean1)
        torch.testing.assert_close(pool.bank[lab], 0.7 * mean1)  # zero-initialised prev
    pool.end_epoch()
    prev = pool.bank.clone()
    seen2 = feed(pool, seed + 7, n_batches, b, 12, dom_of)
    for lab in range(12):
        if lab in seen2:
            mean2 = torch.stack(seen2[lab]).mean(0)
            torch.testing.assert_close(pool.running[lab], mean2)
            torch.testing.assert_close(pool.bank[lab], 0.3 * prev[lab] + 0.7 * mean2)
        else:  # not seen this epoch: keeps the previous epoch's value
            torch.testing.assert_close(pool.bank[lab], prev[lab])
    assert int(pool.epoch) == 1


def naive_topk(pool, f, domains, labels, k):
    out = []
    bank = pool.bank
    for i in range(len(f)):
        cands = []
        for j in range(pool.num_ids):
            if not bool(pool.seen[j]):
                continue
            dj = int(pool.id_domain[j])
            if int(domains[i]) == int(pool.central):
                ok = dj == int(domains[i]) and j != int(labels[i])
            else:
                ok = dj != int(domains[i])
            if ok:
                c = float(f[i] @ bank[j] / (f[i].norm() * bank[j].norm()))
                cands.append((c, j))
        out.append(sorted(cands, reverse=True)[:k])
    return out


@given(seed=seeds, central=st.integers(0, 2), k=st.integers(1, 4))
def test_topk_matches_naive_and_respects_central_rule(seed, central, k):
    pool = make_pool(central=central)
    dom_of = torch.arange(12) % 3
    feed(pool, seed, 3, 8, 12, dom_of)
    labels = randint(seed + 50, 12, 6)
    domains = dom_of[labels]
    f = randn(seed + 51, 6, 5)
    nb = pool.topk(f, domains, k, labels=labels)
    ref = naive_topk(pool, f, domains, labels, k)
    for i in range(6):
        got = [j for j, ok in zip(nb.index[i].tolist(), nb.valid[i].tolist()) if ok]
        assert len(got) == len(ref[i])
        torch.testing.assert_close(nb.similarity[i][: len(got)],
                                   torch.tensor([c for c, _ in ref[i]]).to(nb.similarity))
        # the central/peripheral rule itself
        for j in got:
            if int(domains[i]) == central:
                assert j != int(labels[i]) and int(dom_of[j]) == central
            else:
                assert int(dom_of[j]) != int(domains[i])
        torch.testing.assert_close(nb.values[i][: len(got)], pool.bank[got])


@given(seed=seeds)
def test_prop_topk_never_own_domain_for_peripheral_never_own_id_for_central(seed):
    pool = make_pool(num_ids=20, central=1, k=5)
    dom_of = randint(seed, 3, 20)
    feed(pool, seed, 4, 16, 20, dom_of)
    labels = randint(seed + 9, 20, 10)
    domains = dom_of[labels]
    nb = pool.topk(randn(seed + 3, 10, 5), domains, labels=labels)
    chosen_dom = pool.id_domain[nb.index]
    periph = domains != 1
    assert not ((chosen_dom == domains[:, None]) & nb.valid & periph[:, None]).any()
    assert not ((nb.index == labels[:, None]) & nb.valid & ~periph[:, None]).any()


def test_no_gradient_into_the_pool_and_forward_updates_in_training():
    pool = make_pool()
    f = randn(0, 4, 5).requires_grad_()
    labels, domains = torch.tensor([0, 1, 2, 3]), torch.tensor([0, 1, 2, 0])
    nb = pool(f, labels=labels, domains=domains)
    assert not nb.values.requires_grad and not pool.bank.requires_grad
    assert pool.seen[:4].all() and not nb.valid.any()  # queried before the update
    pool.eval()
    pool(f * 2, labels=labels, domains=domains)
    assert int(pool.counts.sum()) == 4


def test_state_dict_round_trip_is_complete():
    a = make_pool()
    feed(a, 0, 2, 6, 12, torch.arange(12) % 3)
    a.end_epoch()
    feed(a, 1, 1, 6, 12, torch.arange(12) % 3)
    b = make_pool(central=2)
    b.load_state_dict(a.state_dict())
    for name, buf in a.named_buffers():
        assert torch.equal(buf, getattr(b, name)), name
    f, lab = randn(3, 5, 5), torch.tensor([0, 1, 2, 3, 4])
    assert torch.equal(a.topk(f, lab % 3, labels=lab).index, b.topk(f, lab % 3, labels=lab).index)
    assert "num_ids=12" in repr(a)


def test_fewer_candidates_than_k_are_marked_invalid():
    pool = make_pool(central=0)
    pool.update(randn(0, 2, 5), labels=torch.tensor([1, 2]), domains=torch.tensor([1, 2]))
    nb = pool.topk(randn(1, 1, 5), torch.tensor([1]), 3, labels=torch.tensor([4]))
    assert nb.valid.tolist() == [[True, False, False]] and nb.index[0, 0] == 2


# --- bad input -------------------------------------------------------------------------------
def test_bad_input_names_the_argument():
    pool = make_pool()
    f, lab, dom = torch.zeros(3, 5, dtype=torch.float64), torch.tensor([0, 1, 2]), torch.tensor([0, 1, 2])
    with pytest.raises(ValueError, match="domains: expected values in \\[0, 3\\)"):
        pool.update(f, labels=lab, domains=torch.tensor([0, 1, 3]))
    with pytest.raises(ValueError, match="labels: expected values in \\[0, 12\\)"):
        pool.update(f, labels=torch.tensor([0, 1, 12]), domains=dom)
    with pytest.raises(ValueError, match="labels: expected shape \\(N,\\) with N=3"):
        pool.update(f, labels=lab[:2], domains=dom)
    with pytest.raises(ValueError, match="domains: expected shape \\(N,\\) with N=3"):
        pool.topk(f, dom[:2], labels=lab)
    with pytest.raises(ValueError, match="features: expected shape \\(B, D\\) with D=5"):
        pool.update(torch.zeros(3, 4), labels=lab, domains=dom)
    with pytest.raises(ValueError, match="k: expected an int <= 11"):
        pool.topk(f, dom, 12, labels=lab)
    with pytest.raises(ValueError, match="k: expected an int <= 11"):
        IDPool(num_ids=12, dim=5, num_domains=3, k=12)
    with pytest.raises(ValueError, match="alpha"):
        IDPool(num_ids=12, dim=5, num_domains=3, alpha=1.5)
    with pytest.raises(ValueError, match="central: expected an int <= 2"):
        pool.set_central(3)
    with pytest.raises(ValueError, match="central: expected the central domain to be set"):
        IDPool(num_ids=12, dim=5, num_domains=3).topk(torch.zeros(1, 5), torch.tensor([0]),
                                                      labels=torch.tensor([0]))


def test_degenerate_empty_batch_is_a_no_op():
    pool = make_pool()
    pool.update(torch.zeros(0, 5, dtype=torch.float64), labels=torch.zeros(0, dtype=torch.long),
                domains=torch.zeros(0, dtype=torch.long))
    assert not pool.seen.any()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_features_and_storage(dtype):
    pool = IDPool(num_ids=6, dim=4, num_domains=2, k=2, central=0, dtype=dtype)
    f = (randn(0, 6, 4) * 100).to(dtype)
    lab = torch.arange(6)
    pool.update(f, labels=lab, domains=lab % 2)
    nb = pool.topk(f, lab % 2, labels=lab)
    assert nb.values.dtype == dtype and torch.isfinite(nb.values).all()
    assert torch.isfinite(nb.similarity[nb.valid]).all()


def _state(pool):
    return {k: v.clone() for k, v in pool.state_dict().items()}


@pytest.mark.parametrize(("first", "second"), [([0], [1]), ([0, 0], [0, 1])])
def test_an_identity_seen_in_another_domain_is_refused_and_the_pool_unchanged(first, second):
    # the update used to overwrite id_domain silently, moving the identity in topk's search
    pool = make_pool(num_ids=4, dim=3, num_domains=2, k=1)
    pool.update(torch.ones(len(first), 3, dtype=torch.float64),
                labels=torch.zeros(len(first), dtype=torch.long), domains=torch.tensor(first))
    before = _state(pool)
    with pytest.raises(ValueError, match="^domains: expected each identity in one domain"):
        pool.update(torch.ones(len(second), 3, dtype=torch.float64),
                    labels=torch.zeros(len(second), dtype=torch.long),
                    domains=torch.tensor(second))
    for k, v in pool.state_dict().items():
        assert torch.equal(v, before[k]), k
    with dgblocks.checks(values=False):  # a value check: switched off with the others
        pool.update(torch.ones(1, 3, dtype=torch.float64), labels=torch.tensor([0]),
                    domains=torch.tensor([1]))


def test_int32_labels_and_domains_update_like_int64():
    a, b = make_pool(), make_pool()
    f, lab = randn(0, 6, 5), torch.arange(6)
    a.update(f, labels=lab, domains=lab % 3)
    b.update(f, labels=lab.int(), domains=(lab % 3).int())
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k


@pytest.mark.parametrize(("key", "value", "match"), [
    ("central", torch.tensor(7), "central'\\]: expected values in \\[-1, 2\\]"),
    ("id_domain", torch.full((12,), 5), "id_domain"), ("counts", -torch.ones(12).long(), "counts"),
    ("seen", torch.ones(12).long(), "seen"), ("bank", [0.0], "bank"),
    ("bank", torch.full((12, 5), float("nan")), "bank'\\]: expected finite"),
    ("epoch", torch.tensor(1.5), "epoch")])
def test_load_state_dict_refuses_a_wrong_entry_by_name(key, value, match):
    pool = make_pool()
    with pytest.raises(ValueError, match=match):
        pool.load_state_dict({**pool.state_dict(), key: value})
    src = make_pool()
    src.update(randn(1, 4, 5), labels=torch.arange(4), domains=torch.arange(4) % 3)
    pool.load_state_dict(src.state_dict())  # a good state still loads
    assert torch.equal(pool.bank, src.bank)


def test_dtype_must_be_floating():
    with pytest.raises(ValueError, match="^dtype: expected a floating torch.dtype"):
        IDPool(num_ids=4, dim=2, num_domains=2, k=1, dtype=torch.long)
