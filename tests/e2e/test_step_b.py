"""Step b: an iterative server that sleeps after answering. A second client
connects at once (the kernel's listen queue, the backlog, holds it) but gets
its answer only after the first client's sleep. Step c, forking, answers both
at once. The behaviours are tools/checks.py's, as make check STEP=b runs them."""

import checks
import pytest


@pytest.mark.parametrize("key", checks.lesson_failures("b"))
def test_b_lesson_failure_shows_on_step_b(key):
    checks.assert_passes("b", key, "b")


def test_c_fix_both_clients_are_answered_at_once():
    checks.assert_passes("c", "both_at_once", "c")
    checks.assert_fails("b", "second_waits", "c", r"answered at once")
