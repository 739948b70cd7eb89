"""What a trained encoder's feature still says about the domain and the camera: linear probes.

A diagnostic for the methods whose mechanism is to remove a nuisance from the feature (ADIN's
adversary against camera labels, DIR-ReID's domain-invariant branch, DDAN's alignment, the
episodic and CDVM domain terms). For each finished run (its results JSON and the checkpoint
beside it) the recipe's network is rebuilt from the JSON's config, the checkpoint loaded, and
the test-time feature (``method.encode``) of the training images computed. The training
identities are split 70 / 30 (by seed); three multinomial logistic regressions (scikit-learn,
on standardised features) are fitted on the images of the 70% and scored on the images of the
other 30% (people the probe never saw):

- **domain**: which source domain the image comes from (chance: the largest domain's share);
- **camera**: which camera of which domain (all cameras of all sources);
- **camera within domain**: the camera among its own domain's cameras, one probe per domain
  (the accuracy averaged over domains, weighted by images) -- the nuisance ADIN's adversary
  removes, without the domain giving it away;

and, without a probe, **same-domain neighbours**: the share of each held-out image's 10
nearest other people (cosine) that come from its own domain (chance: the domain's share of
the other people's images). A linear probe separates these domains even on untrained
features; retrieval feels a domain gap through the neighbours. For the episodic method
(networks with frozen per-domain extractors ``ext`` and an encoder ``E``) the table adds
**extractor agreement**: the mean cosine between E(F_j(x)) and E(F_k(x)) over pairs of
extractors, the quantity its L_consis pulls together.

The untrained network of the same seed (the recipe's network as built, no checkpoint) is
the reference row: what the architecture and the images say before any training.

    python scripts/probe_features.py RUN/baseline/seed0.json RUN/adin/seed0.json \\
        --untrained --md docs/results/adin_probe.md

Each JSON's checkpoint is ``<json stem>.ckpt.pt`` beside it (``--untrained`` adds, per
recipe and seed, the same network with no checkpoint). Diagnostic only: not a recipe.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dgblocks.engine.checkpoint import load_checkpoint  # noqa: E402
from dgblocks.engine.run import setup  # noqa: E402
from dgblocks.eval.encode import encode_dataset  # noqa: E402
from dgblocks.methods import Method  # noqa: E402

PROBES = ("domain", "camera", "camera within domain", "same-domain neighbours")
EXTRA = ("extractor agreement",)  # method-specific: only the rows that have it


def method_class(recipe: str) -> type:
    """The Method subclass defined in ``recipes/<recipe>.py``."""
    mod = importlib.import_module(f"recipes.{recipe}")
    found = [c for _, c in inspect.getmembers(mod, inspect.isclass)
             if issubclass(c, Method) and c.__module__ == mod.__name__]
    if len(found) != 1:
        raise ValueError(f"recipe: expected one Method subclass in recipes/{recipe}.py, "
                         f"found {[c.__name__ for c in found]}")
    return found[0]


def load_run(path: str | Path, *, trained: bool = True) -> tuple[Any, Any]:
    """``(method, bench)`` of a finished run: the recipe's network rebuilt from the results
    JSON's config and shared flags, its checkpoint loaded when ``trained`` (else the network
    as built from the same seed), in eval mode on the CPU."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"run: {str(path)!r} is not a results JSON")
    res = json.loads(path.read_text())
    cls = method_class(res["recipe"])
    shared = res["shared"]
    with tempfile.TemporaryDirectory() as tmp:
        cfg_file = Path(tmp) / "config.json"
        cfg_file.write_text(json.dumps(res["config"]))
        argv = ["--config", str(cfg_file), "--out", str(Path(tmp) / "probe.json"),
                "--device", "cpu", "--threads", str(torch.get_num_threads()),
                "--seed", str(res["seed"]), "--data", shared["data"], "--no-plots"]
        for flag in ("data_root", "protocol"):
            if shared.get(flag):
                argv += [f"--{flag.replace('_', '-')}", str(shared[flag])]
        if shared.get("smoke"):
            argv.append("--smoke")
        cfg, run = setup(cls.Config, argv, name=res["recipe"])
        bench = cls.prepare_benchmark(cfg, run.benchmark(cfg), run.args)
        method = cls(cfg, bench, seed=res["seed"])
    if trained:
        ckpt = path.with_suffix(".ckpt.pt")
        state = load_checkpoint(ckpt)["objects"]["method"]
        method.load_state_dict(state)
    return method.eval(), bench


def _fit_score(xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray, yte: np.ndarray) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if np.unique(ytr).size < 2:
        return 1.0
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0))
    clf.fit(xtr, ytr)
    return float((clf.predict(xte) == yte).mean())


def _neighbours(f: np.ndarray, dom: np.ndarray, pid: np.ndarray, k: int) -> tuple[float, float]:
    """Share of each image's ``k`` nearest other-identity neighbours (cosine) from its own
    domain, and that share when the neighbours are drawn at random."""
    x = torch.nn.functional.normalize(torch.as_tensor(f), dim=1)
    sim = x @ x.T
    p = torch.as_tensor(pid)
    sim[p[:, None] == p[None, :]] = -float("inf")          # other people only
    nn_idx = sim.topk(k, dim=1).indices
    d = torch.as_tensor(dom)
    same = (d[nn_idx] == d[:, None]).float().mean()
    other = (p[:, None] != p[None, :])
    rand = ((d[:, None] == d[None, :]) & other).sum(1) / other.sum(1)
    return float(same), float(rand.float().mean())


def probe(method: Any, bench: Any, *, max_train: int = 4000, seed: int = 0, k: int = 10
          ) -> dict[str, float]:
    """Held-out accuracy (%) of each linear probe in :data:`PROBES` on ``method.encode``,
    with each probe's chance level (``"<probe> chance"``: the majority class's share), and
    the share of each held-out image's ``k`` nearest neighbours among other people that come
    from its own domain (chance: drawn at random)."""
    train = bench.train
    g = torch.Generator().manual_seed(seed)
    ids = train.pids.unique()
    held = ids[torch.randperm(ids.numel(), generator=g)[: max(1, ids.numel() * 3 // 10)]]
    is_held = torch.isin(train.pids, held)
    fit_idx = torch.nonzero(~is_held).flatten()
    fit_idx = fit_idx[torch.randperm(fit_idx.numel(), generator=g)[:max_train]]
    val = train.subset(torch.nonzero(is_held).flatten())
    with torch.no_grad():
        ftr = encode_dataset(method.encode, train, index=fit_idx).numpy()
        fte = encode_dataset(method.encode, val).numpy()
    dtr, dte = train.domains[fit_idx].numpy(), val.domains.numpy()
    ctr, cte = train.camids[fit_idx].numpy(), val.camids.numpy()
    cams = 1000
    out = {"domain": _fit_score(ftr, dtr, fte, dte),
           "camera": _fit_score(ftr, dtr * cams + ctr, fte, dte * cams + cte)}
    hits, n = 0.0, 0
    for d in np.unique(dte):
        a, b = dtr == d, dte == d
        hits += _fit_score(ftr[a], ctr[a], fte[b], cte[b]) * b.sum()
        n += int(b.sum())
    out["camera within domain"] = hits / n
    out["same-domain neighbours"], out["same-domain neighbours chance"] = _neighbours(
        fte, dte, val.pids.numpy(), k)
    chance = {"domain": dte, "camera": dte * cams + cte}
    for name, y in chance.items():
        out[f"{name} chance"] = np.unique(y, return_counts=True)[1].max() / y.size
    out["camera within domain chance"] = sum(
        np.unique(cte[dte == d], return_counts=True)[1].max() for d in np.unique(dte)) / cte.size
    if len(getattr(method, "ext", ())) >= 2 and hasattr(method, "E"):
        out["extractor agreement"] = _agreement(method, val)
    return {k: 100.0 * float(v) for k, v in out.items()}


def _agreement(method: Any, val: Any, n: int = 512) -> float:
    """Episodic (Lin et al., 2020, eq 1): mean cosine between E(F_j(x)) and E(F_k(x)) over
    the pairs of frozen per-domain extractors j != k, on up to ``n`` held-out images: what
    L_consis makes agree."""
    from dgblocks.data import normalize_input

    x = torch.stack([val[i][0] for i in range(min(n, len(val)))]).float() / 255.0
    with torch.no_grad():
        v = [torch.nn.functional.normalize(method.E(e(normalize_input(x))), dim=1)
             for e in method.ext]
    cos = [(v[j] * v[k]).sum(1).mean() for j in range(len(v)) for k in range(j + 1, len(v))]
    return float(torch.stack(cos).mean())


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", help="results JSONs (checkpoint beside each)")
    ap.add_argument("--untrained", action="store_true",
                    help="add each recipe and seed's network with no checkpoint")
    ap.add_argument("--label", action="append", default=[],
                    help="FOLDER=NAME: the name rows from runs under FOLDER get")
    ap.add_argument("--max-train", type=int, default=4000, help="training images per probe")
    ap.add_argument("--md", default="", help="markdown file to write the table into")
    ap.add_argument("--json", default="", help="JSON file to write the per-run rows into")
    args = ap.parse_args(argv)
    labels = dict(x.split("=", 1) for x in args.label)
    rows: list[dict[str, Any]] = []
    todo = [(p, True) for p in args.runs]
    if args.untrained:
        seen = {}
        for p in args.runs:
            r = json.loads(Path(p).read_text())
            seen.setdefault((r["recipe"], r["config"].get("backbone"), r["seed"]), p)
        todo += [(p, False) for p in seen.values()]
    for p, trained in todo:
        method, bench = load_run(p, trained=trained)
        name = next((n for f, n in labels.items() if str(Path(p).parent).endswith(f)),
                    Path(p).parent.name)
        seed = json.loads(Path(p).read_text())["seed"]
        row = {"run": name if trained else f"untrained ({name})", "seed": seed,
               "json": str(p)} | probe(method, bench, max_train=args.max_train)
        print(" ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}"
                       for k, v in row.items()), flush=True)
        rows.append(row)
    table = summary_table(rows)
    print(table)
    if args.md:
        cmd = "python scripts/probe_features.py " + " ".join(argv if argv is not None
                                                             else sys.argv[1:])
        Path(args.md).write_text(f"```bash\n{cmd}\n```\n\n{table}\n")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return rows


def _ms(v: np.ndarray) -> str:
    return f"{v.mean():.1f} ± {v.std(ddof=1) if v.size > 1 else 0:.1f}"


def summary_table(rows: list[dict[str, Any]]) -> str:
    """Markdown: per run name, mean ± std over seeds of each probe's accuracy, and chance."""
    names = list(dict.fromkeys(r["run"] for r in rows))
    extra = [k for k in EXTRA if any(k in r for r in rows)]
    head = "| features of | seeds | " + " | ".join(f"{p} (%)" for p in (*PROBES, *extra)) + " |"
    lines = [head, "| --- | --- | " + " | ".join("---" for _ in (*PROBES, *extra)) + " |"]
    for n in names + ["chance"]:
        rs = [r for r in rows if r["run"] == n] if n != "chance" else rows
        cells = []
        for p in (*PROBES, *extra):
            if p in extra:
                got = np.array([r[p] for r in rs if p in r])
                cells.append(_ms(got) if got.size and n != "chance" else "-")
                continue
            v = np.array([r[p if n != "chance" else f"{p} chance"] for r in rs])
            cells.append(_ms(v) if n != "chance" else f"{v.mean():.1f}")
        seeds = ", ".join(str(r["seed"]) for r in rs) if n != "chance" else "-"
        lines.append(f"| {n} | {seeds} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
