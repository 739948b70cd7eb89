"""Shared test configuration: hypothesis profiles and reproducible tensor factories.

Profiles: ``dev`` (fast, random) and ``ci`` (derandomised, more examples). ``ci`` is chosen
when the environment variable ``CI`` is set; ``HYPOTHESIS_PROFILE`` overrides both.
"""

import os

import pytest
import torch
from hypothesis import HealthCheck, settings

settings.register_profile(
    "dev", max_examples=20, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.differing_executors],
)
settings.register_profile(
    "ci", max_examples=40, deadline=None, derandomize=True, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.differing_executors],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

torch.set_num_threads(min(2, torch.get_num_threads()))


def pytest_report_header(config):
    return f"dgblocks tests: hypothesis profile {settings._current_profile!r}, torch {torch.__version__}"


@pytest.fixture(autouse=True)
def _seed_everything():
    torch.manual_seed(0)
    yield
