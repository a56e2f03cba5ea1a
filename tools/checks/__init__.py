"""Each step's checks: the behaviours that show its lesson, against any server.

One implementation serves three jobs: `make check` (a participant's own
server, tools/exercises.py), the end-to-end demonstrations (tests/e2e, against
the reference servers), and the matrix (every step's checks against every
step's reference, tools/matrix.py and tests/check-matrix.txt).

    framework.py   what a check is, what it runs against, its verdict
    behaviours.py  the behaviours, one function each, and CHECKS by key
    code.py        reading the code as the compiler sees it (the signal handler)

A step's record (tools/steps.py) lists the keys of its checks.
"""

from checks.behaviours import CHECKS
from checks.framework import Check, Failed, NotChecked, Outcome, describe, run
from checks.framework import run_step as _run_step


def run_step(step, program, on_outcome=None, source=None, keys=None, jobs=6):
    """Run step `step`'s checks (its record's) against `program`; see framework.run_step."""
    return _run_step(step, program, CHECKS, on_outcome, source, keys, jobs)


__all__ = ["CHECKS", "Check", "Failed", "NotChecked", "Outcome", "describe", "run", "run_step"]
