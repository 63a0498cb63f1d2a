"""The CLI makes idle OpenMP threads sleep (before torch loads libgomp) unless the user chose a policy."""

from __future__ import annotations

import os
import subprocess
import sys

PROBE = "import crosstune.cli, os; print(os.environ.get('OMP_WAIT_POLICY'))"


def probe(**env) -> str:
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    out = subprocess.run([sys.executable, "-c", PROBE], env={**base, **env}, capture_output=True, text=True,
                         timeout=120, check=True)
    return out.stdout.split()[0]


def test_passive_by_default_and_the_users_choice_wins():
    assert probe() == "PASSIVE"
    assert probe(OMP_WAIT_POLICY="ACTIVE") == "ACTIVE"
    assert probe(GOMP_SPINCOUNT="10000") == "None"
