"""How importing fastgrad sets up its OpenMP runtime (in fresh processes)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

import fastgrad

# The folder holding the fastgrad under test (the source tree after an
# in-place build, site-packages after pip install): `python -c` imports
# from its working folder first.
PACKAGE_PARENT = Path(fastgrad.__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(not fastgrad.openmp_enabled(),
                                reason="serial build")


def _import_fastgrad(**env):
    """stderr and stdout of `import fastgrad` in a fresh interpreter whose
    OpenMP runtime prints its settings (OMP_DISPLAY_ENV)."""
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    environment.update(OMP_DISPLAY_ENV="verbose", **env)
    code = ("import os, fastgrad; "
            "print('left:', os.environ.get('GOMP_SPINCOUNT'))")
    done = subprocess.run([sys.executable, "-c", code], env=environment,
                          capture_output=True, text=True, timeout=60,
                          cwd=PACKAGE_PARENT)
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def test_workers_spin_briefly_and_the_variable_is_removed_again():
    output = _import_fastgrad()
    if "OPENMP DISPLAY ENVIRONMENT" not in output:
        pytest.skip("this OpenMP runtime does not print its settings")
    assert "GOMP_SPINCOUNT = '30000'" in output
    assert "left: None" in output


def test_the_users_choice_wins():
    output = _import_fastgrad(OMP_WAIT_POLICY="passive")
    if "OPENMP DISPLAY ENVIRONMENT" not in output:
        pytest.skip("this OpenMP runtime does not print its settings")
    assert "GOMP_SPINCOUNT = '0'" in output
    output = _import_fastgrad(GOMP_SPINCOUNT="1234")
    assert "GOMP_SPINCOUNT = '1234'" in output
    assert "left: 1234" in output
