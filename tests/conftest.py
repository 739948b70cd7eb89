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


_property_tests = {"passed": 0, "failed": 0}


def pytest_runtest_logreport(report):
    if report.when == "call" and "hypothesis" in report.keywords:
        _property_tests["passed" if report.passed else "failed"] += 1


def pytest_collection_modifyitems(items):
    for item in items:
        if getattr(getattr(item, "obj", None), "is_hypothesis_test", False):
            item.add_marker("hypothesis")


def pytest_terminal_summary(terminalreporter):
    p = settings._current_profile
    terminalreporter.write_line(
        f"hypothesis property tests: {_property_tests['passed']} passed, "
        f"{_property_tests['failed']} failed (profile {p!r}, "
        f"max_examples={settings.default.max_examples})")
