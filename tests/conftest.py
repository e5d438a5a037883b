"""Shared test settings: hypothesis profiles and the data directory.

HYPOTHESIS_PROFILE=fast (the default, also in CI) keeps the suite quick;
HYPOTHESIS_PROFILE=thorough draws many more examples for a long local run.
"""
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "fast", max_examples=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile(
    "thorough", max_examples=400, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fast"))

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data_dir():
    """FASTGRAD_DATA, else ../shared/data beside the project root; tests that
    need real data are skipped only when neither exists."""
    candidates = [os.environ.get("FASTGRAD_DATA"), ROOT.parent / "shared" / "data"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "mnist").is_dir():
            return Path(candidate)
    pytest.skip("no data directory: set FASTGRAD_DATA or put shared/data "
                "beside the project")
