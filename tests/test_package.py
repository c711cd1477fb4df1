"""The package itself: what importing it costs."""

from __future__ import annotations

import subprocess
import sys


def test_a_worker_imports_only_what_a_task_needs():
    """Unpickling a task imports egress.sweep; that must not pull in SciPy,
    plotting or the calibration code (they cost a worker seconds to start)."""
    code = ("import sys, egress.sweep, egress.policies, egress\n"
            "heavy = ('scipy', 'matplotlib.pyplot', 'egress.calibration', 'egress.reporting')\n"
            "print([m for m in heavy if m in sys.modules])\n"
            "print(egress.calibrate.__module__, egress.SweepError.__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out == ["[]", "egress.calibration.driver egress.errors"]
