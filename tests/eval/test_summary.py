"""The one metric summary: summarize / mean_std, and everything that reports through them."""

import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dgblocks._checks import ValueRangeError
from dgblocks.engine.sweep import format_mean_std, table
from dgblocks.eval import format_table, mean_std, summarize, summarize_splits, worst_domain

values = st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=12)

# R-1 is worst on "a" but mAP is worst on "b": the two definitions of "worst" disagree here
METRICS = {
    "a": {"R1": 40.0, "R5": 60.0, "R10": 70.0, "mAP": 30.0, "R1_std": 1.0, "num_splits": 2},
    "b": {"R1": 50.0, "R5": 55.0, "R10": 75.0, "mAP": 20.0, "R1_std": 2.0, "num_splits": 2},
    "c": {"R1": 60.0, "R5": 70.0, "R10": 80.0, "mAP": 35.0, "R1_std": 0.5, "num_splits": 2},
}


def _row(table_md: str, label: str) -> list[str]:
    for line in table_md.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0].startswith(label):
            return cells
    raise AssertionError(f"no {label!r} row in\n{table_md}")


def test_summarize_reference():
    s = summarize(METRICS)
    assert s["worst"] == {"R1": 40.0, "R5": 55.0, "R10": 70.0, "mAP": 20.0}
    assert s["worst_domain"] == {"R1": "a", "R5": "b", "R10": "a", "mAP": "b"}
    assert s["average"]["mAP"] == pytest.approx(85.0 / 3)
    assert set(s["average"]) == {"R1", "R5", "R10", "mAP"}  # _std / num_splits are not metrics


def test_printed_table_agrees_with_json_summary():
    """The printed "worst" and "average" rows are the results JSON's ``summary``."""
    s = summarize(METRICS)
    md = format_table(METRICS)
    keys = ["R1", "R5", "R10", "mAP"]
    worst = _row(md, "worst")[1:]
    average = _row(md, "average")[1:]
    for k, cell, avg in zip(keys, worst, average):
        assert cell == f"{s['worst'][k]:.1f} ({s['worst_domain'][k]})"
        assert avg == f"{s['average'][k]:.1f}"
    assert worst_domain(METRICS, "mAP") == ("b", s["worst"]["mAP"])


def test_table_labels_the_row_when_one_target_is_worst_everywhere():
    res = {"a": {"R1": 10.0, "mAP": 5.0}, "b": {"R1": 20.0, "mAP": 9.0}}
    assert _row(format_table(res), "worst") == ["worst (a)", "10.0", "5.0"]


def test_mean_std_is_the_sample_std():
    assert mean_std([10.0, 14.0]) == (12.0, pytest.approx(2.0 ** 1.5))
    assert mean_std([3.0]) == (3.0, 0.0)
    with pytest.raises(ValueRangeError, match="values"):
        mean_std([])


@given(xs=values)
def test_mean_std_matches_statistics(xs):
    mean, std = mean_std(xs)
    assert mean == pytest.approx(statistics.fmean(xs), abs=1e-9)
    ref = statistics.stdev(xs) if len(xs) > 1 else 0.0
    assert std == pytest.approx(ref, rel=1e-9, abs=1e-9)


@given(xs=values, c=st.floats(-1e3, 1e3))
def test_mean_std_shift(xs, c):
    m0, s0 = mean_std(xs)
    m1, s1 = mean_std([x + c for x in xs])
    assert m1 == pytest.approx(m0 + c, abs=1e-6) and s1 == pytest.approx(s0, abs=1e-6)
    assert s0 >= 0


def test_every_reporter_uses_the_sample_std():
    rows = [{"R1": 10.0}, {"R1": 14.0}, {"R1": 15.0}]
    _, std = mean_std([10.0, 14.0, 15.0])
    assert summarize_splits(rows)["R1_std"] == pytest.approx(std)
    assert summarize_splits(rows[:1])["R1_std"] == 0.0
    assert format_mean_std([10.0, 14.0, 15.0]) == f"13.0 ± {std:.1f}"
    runs = [{"metrics": {"t": {"R1": v}}, "summary": summarize({"t": {"R1": v}})}
            for v in (10.0, 14.0, 15.0)]
    assert f"13.0 ± {std:.1f}" in table({"x": runs}, ["R1"])


@given(metrics=st.dictionaries(st.sampled_from("abcdef"),
                               st.fixed_dictionaries({"R1": st.floats(0, 100),
                                                      "mAP": st.floats(0, 100)}),
                               min_size=1))
def test_summarize_invariants(metrics):
    s = summarize(metrics)
    for k in ("R1", "mAP"):
        assert s["worst"][k] <= s["average"][k] + 1e-9
        assert metrics[s["worst_domain"][k]][k] == s["worst"][k]


def test_bad_input():
    with pytest.raises(ValueRangeError, match="metrics"):
        summarize({})
    with pytest.raises(ValueRangeError, match="rows"):
        summarize_splits([])
