"""Bad input of the submodules of dgblocks.data and of the engine's batches: a ValueError
naming the argument (the names of dgblocks.data and dgblocks.protocols run in
tests/test_bad_input.py, from tests/data/bad_input_cases.py)."""

from __future__ import annotations

import pytest

import dgblocks
from tests.data.bad_input_cases import EXTRA_CASES

ALL = [pytest.param(fn, arg, id=f"{name}-{case}") for name, cases in EXTRA_CASES.items()
       for case, fn, arg in cases]


@pytest.mark.parametrize(("call", "arg"), ALL)
def test_bad_input_raises_value_error_naming_the_argument(call, arg, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a case that wrongly succeeded writes nothing here
    with pytest.raises(ValueError) as info:
        call()
    assert isinstance(info.value, dgblocks.DGBlocksError) or type(info.value) is ValueError
    assert str(info.value).startswith(f"{arg}") or arg in str(info.value), str(info.value)
