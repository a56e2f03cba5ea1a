"""Step e: a SIGCHLD handler collects each child, but the signal interrupts the
parent's blocked accept(), which fails with EINTR, and the server dies. Step f
restarts accept(). The behaviours are tools/checks.py's (make check STEP=e)."""

import checks
import pytest


@pytest.mark.parametrize("key", checks.lesson_failures("e"))
def test_e_lesson_failure_shows_on_step_e(key):
    checks.assert_passes("e", key, "e")


def test_f_fix_the_server_lives_and_leaves_no_zombie():
    checks.assert_passes("f", "survives", "f")
    checks.assert_fails("e", "eintr", "f", r"the handler ran and reported the child, accept\(\) went on")
