"""AlternatingSchedule: hysteresis switching, min_steps, log, state_dict round trip, plot."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from dgblocks import ValueRangeError
from dgblocks.layers.alternation import AlternatingSchedule
from dgblocks.viz import plot_alternation

errors = st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=40)


def _reference(errs, lo, hi):
    """Naive replay of the switching rule (docs/decisions.md): adversarial -> identity above hi, back below lo."""
    phase, out = "adversarial", []
    for e in errs:
        if phase == "adversarial" and e > hi:
            phase = "identity"
        elif phase == "identity" and e < lo:
            phase = "adversarial"
        out.append(phase)
    return out


@given(errs=errors, lo=st.floats(0.0, 0.5), gap=st.floats(0.01, 0.5))
def test_matches_reference_rule(errs, lo, gap):
    s = AlternatingSchedule(i_target=lo, i_trigger=lo + gap)
    got = [s.update(e, step=10 * (i + 1)) for i, e in enumerate(errs)]
    assert got == _reference(errs, lo, lo + gap)
    # every switch crosses its threshold in the right direction, phases alternate
    for ev in s.switches:
        assert (ev["error"] > ev["threshold"]) == (ev["to"] == "identity")
    assert all(a["to"] != b["to"] for a, b in zip(s.switches, s.switches[1:]))
    assert len(s.checks) == len(errs)


@given(errs=errors)
def test_between_thresholds_never_switches(errs):
    s = AlternatingSchedule(i_target=-1.0, i_trigger=2.0)
    for i, e in enumerate(errs):
        assert s.update(e, step=i) == "adversarial"
    assert s.switches == []


def test_min_steps_delays_switch():
    s = AlternatingSchedule(i_target=0.1, i_trigger=0.2, min_steps=20)
    assert s.update(0.9, step=10) == "adversarial"
    assert s.update(0.9, step=20) == "identity"
    assert s.update(0.0, step=30) == "identity"        # only 10 steps in the identity phase
    assert s.update(0.0, step=40) == "adversarial"


def test_tick_counts_steps_per_phase_and_segments():
    s = AlternatingSchedule(i_target=0.1, i_trigger=0.2)
    s.tick(5)
    s.update(0.5, step=5)
    s.tick(3)
    assert s.steps == {"adversarial": 5, "identity": 3}
    assert s.segments(8) == [(0, 5, "adversarial"), (5, 8, "identity")]


def test_state_dict_round_trip_restores_phase():
    s = AlternatingSchedule(i_target=0.1, i_trigger=0.2)
    s.tick(4)
    s.update(0.5, step=4)
    state = s.state_dict()
    t = AlternatingSchedule(i_target=0.3, i_trigger=0.4)
    t.load_state_dict(state)
    assert t.phase == "identity" and t.state_dict() == state
    # torch.save / load (what the engine's checkpoint does)
    import io
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    u = AlternatingSchedule(i_target=0.0, i_trigger=1.0)
    u.load_state_dict(torch.load(buf, weights_only=True))
    assert u.state_dict() == state
    state["phase"] = "identity"  # the copy is independent of the schedule
    s.update(0.0, step=8)
    assert t.phase == "identity" and s.phase == "adversarial"


@pytest.mark.parametrize("kw, match", [
    ({"i_target": 0.3, "i_trigger": 0.2}, "i_trigger"),
    ({"i_target": 0.2, "i_trigger": 0.2}, "i_trigger"),
    ({"i_target": float("nan"), "i_trigger": 0.2}, "i_target"),
    ({"i_target": 0.1, "i_trigger": 0.2, "start": "warmup"}, "start"),
    ({"i_target": 0.1, "i_trigger": 0.2, "min_steps": -1}, "min_steps"),
])
def test_bad_construction(kw, match):
    with pytest.raises(ValueRangeError, match=match):
        AlternatingSchedule(**kw)


def test_bad_update_and_state():
    s = AlternatingSchedule(i_target=0.1, i_trigger=0.2)
    with pytest.raises(ValueRangeError, match="error"):
        s.update(float("inf"), step=1)
    with pytest.raises(ValueRangeError, match="step"):
        s.update(0.1, step=-1)
    with pytest.raises(ValueRangeError, match="missing"):
        s.load_state_dict({"phase": "identity"})
    with pytest.raises(ValueRangeError, match="phase"):
        s.load_state_dict({**s.state_dict(), "phase": "x"})


def test_plot(tmp_path):
    s = AlternatingSchedule(i_target=0.1, i_trigger=0.2)
    for i, e in enumerate([0.15, 0.25, 0.12, 0.05, 0.3]):
        s.tick(10)
        s.update(e, step=10 * (i + 1))
    path = plot_alternation(s, tmp_path / "a.png", end=50)
    assert path.exists() and path.stat().st_size > 0


def _reference_relative(errs, lo, hi):
    phase, best, out = "adversarial", float("inf"), []
    for e in errs:
        if best < float("inf"):
            if phase == "adversarial" and e > best + hi:
                phase = "identity"
            elif phase == "identity" and e < best + lo:
                phase = "adversarial"
        best = min(best, e)
        out.append(phase)
    return out


@given(errs=errors, lo=st.floats(0.0, 0.2), gap=st.floats(0.01, 0.2))
def test_relative_thresholds_follow_the_best_error(errs, lo, gap):
    s = AlternatingSchedule(i_target=lo, i_trigger=lo + gap, relative=True)
    got = [s.update(e, step=i) for i, e in enumerate(errs)]
    assert got == _reference_relative(errs, lo, lo + gap)
    assert s.best == min(errs) and s.checks[0]["i_target"] == float("inf")
    t = AlternatingSchedule(i_target=0.0, i_trigger=1.0)
    t.load_state_dict(s.state_dict())
    assert t.relative and t.best == s.best and t.thresholds() == s.thresholds()


@pytest.mark.parametrize(("entry", "match"), [
    ({"steps": [1]}, "steps"), ({"since": "x"}, "since"), ({"since": -4}, "since"),
    ({"checks": [1]}, "checks"), ({"switches": 3}, "switches"), ({"start": "zzz"}, "start"),
    ({"min_steps": -1}, "min_steps"), ({"best": "x"}, "best"), ({"relative": "yes"}, "relative"),
    ({"steps": {"adversarial": -1}}, "steps"), ({"i_target": 0.5}, "i_trigger"),
    ({"switches": [{"step": 1, "to": "nowhere"}]}, "switches")])
def test_load_state_dict_checks_every_entry_before_changing_anything(entry, match):
    # these raised AttributeError / TypeError / ValueError(int()) or loaded silently before
    s = AlternatingSchedule(i_target=0.1, i_trigger=0.2)
    s.update(0.3, step=5)
    before = s.state_dict()
    with pytest.raises(ValueRangeError, match=match):
        s.load_state_dict({**before, **entry})
    assert s.state_dict() == before
    with pytest.raises(ValueRangeError, match="^state: expected the mapping"):
        s.load_state_dict(None)


def test_update_refuses_a_step_before_the_last_check():
    s = AlternatingSchedule(i_target=0.1, i_trigger=0.2)
    s.update(0.3, step=10)
    with pytest.raises(ValueRangeError, match="^step: expected an int >= 10"):
        s.update(0.05, step=5)
    s.update(0.05, step=10)  # the same step again is fine
    with pytest.raises(ValueRangeError, match="^end"):
        s.segments("x")
