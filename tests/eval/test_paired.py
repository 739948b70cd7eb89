import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from dgblocks.engine.sweep import paired_table
from dgblocks.eval import PairedDifference, paired_difference

values = st.lists(st.floats(-100, 100, allow_nan=False), min_size=2, max_size=8)


def test_matches_scipys_paired_t_interval():
    a, b = [31.0, 28.0, 30.0, 27.5], [25.0, 24.0, 26.0, 26.5]
    d = paired_difference(a, b)
    ci = stats.ttest_rel(a, b).confidence_interval(0.95)
    assert d.low == pytest.approx(ci.low) and d.high == pytest.approx(ci.high)
    assert d.mean == pytest.approx(sum(a) / 4 - sum(b) / 4) and d.n == 4 and d.significant


def test_pairs_mappings_by_seed_and_overlapping_interval_is_not_significant():
    d = paired_difference({0: 10.0, 1: 12.0, 7: 99.0}, {1: 11.0, 0: 10.5, 2: 0.0})
    assert d.n == 2 and d.mean == pytest.approx(0.25) and not d.significant
    assert paired_difference([5.0], [3.0]) == PairedDifference(2.0, 2.0, 2.0, 1, False)


@given(values, st.floats(-50, 50, allow_nan=False), st.integers(0, 2**16))
def test_properties(a, shift, seed):
    b = [x * 0.5 + (seed % 7) for x in a]
    d, r = paired_difference(a, b), paired_difference(b, a)
    assert d.mean == pytest.approx(-r.mean, abs=1e-9)
    assert d.low == pytest.approx(-r.high, abs=1e-9) and d.high == pytest.approx(-r.low, abs=1e-9)
    s = paired_difference([x + shift for x in a], [y + shift for y in b])
    assert s.mean == pytest.approx(d.mean, abs=1e-6)
    assert d.low <= d.mean + 1e-9 and d.mean <= d.high + 1e-9


@pytest.mark.parametrize("kwargs, match", [
    (dict(a=[1.0], b=[1.0, 2.0]), "b"), (dict(a=[], b=[]), "a"),
    (dict(a=[1.0, float("nan")], b=[1.0, 2.0]), "a"), (dict(a={0: 1.0}, b=[1.0]), "b"),
    (dict(a=[1.0, 2.0], b=[1.0, 2.0], confidence=1.0), "confidence"),
])
def test_bad_input_names_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        paired_difference(**kwargs)


def test_paired_table_rows_and_reference():
    res = {n: [{"seed": s, "summary": {"average": {"R1": r, "mAP": r}}} for s, r in zip(
        (0, 1, 2), rs)] for n, rs in (("AGG", (25, 24, 26)), ("X", (31, 28, 30)))}
    text = paired_table(res, "AGG", label="method")
    assert "| AGG | 3 | 25.0 ± 1.0 | 25.0 ± 1.0 | - | - |" in text
    assert "+4.7 [+1.8, +7.5]*" in text
    with pytest.raises(ValueError, match="reference"):
        paired_table(res, "nope")
