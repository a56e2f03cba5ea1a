"""Step f: accept() is restarted, and one request leaves no zombie. But a burst
of clients makes many children exit at once; their SIGCHLD signals merge, the
handler's single wait() collects one child per run, and zombies stay behind.
Step g's waitpid() loop collects them all. The behaviours are tools/checks.py's
(make check STEP=f)."""

import checks
import pytest


@pytest.mark.parametrize("key", checks.lesson_failures("f"))
def test_f_lesson_failure_shows_on_step_f(key):
    checks.assert_passes("f", key, "f")


def test_g_fix_bursts_leave_no_zombie():
    checks.assert_passes("g", "no_zombies", "g")
    checks.assert_fails("f", "burst_zombies", "g", r"no zombie after")
