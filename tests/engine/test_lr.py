import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dgblocks.engine import warmup_cosine


@pytest.mark.hypothesis
@given(total=st.integers(1, 500), warmup=st.floats(0.0, 1.0), step=st.integers(0, 600))
def test_factor_in_unit_interval(total, warmup, step):
    assert 0.0 <= warmup_cosine(step, total=total, warmup=warmup) <= 1.0 + 1e-12


@pytest.mark.hypothesis
@given(total=st.integers(2, 300), warmup=st.floats(0.0, 0.9))
def test_rises_then_falls_to_zero(total, warmup):
    f = [warmup_cosine(s, total=total, warmup=warmup) for s in range(total + 1)]
    w = max(1, int(warmup * total))
    assert all(a <= b for a, b in zip(f[:w], f[1:w + 1]))          # linear warm-up
    assert all(a >= b - 1e-12 for a, b in zip(f[w:], f[w + 1:]))   # cosine decay
    assert math.isclose(f[w - 1], 1.0) and f[-1] <= 1e-12 + (w >= total)


def test_bad_arguments():
    with pytest.raises(ValueError, match="warmup"):
        warmup_cosine(0, total=10, warmup=1.5)
    with pytest.raises(ValueError, match="total"):
        warmup_cosine(0, total=-1, warmup=0.1)
