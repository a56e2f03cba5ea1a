"""Step d: duplicate descriptors are not closed, children are not collected.
curl never ends, the server runs out of descriptors, zombies pile up. Steps
e, f and g close the duplicates: curl ends, the descriptors stay flat.
(The process limit, the fourth failure, is in test_process_limit.py.)
The behaviours are tools/checks.py's, as make check STEP=d runs them."""

import checks
import pytest


@pytest.mark.parametrize("key", checks.lesson_failures("d"))
def test_d_lesson_failure_shows_on_step_d(key):
    checks.assert_passes("d", key, "d")


@pytest.mark.parametrize("step", "efg")
def test_fix_curl_ends_once_the_duplicates_are_closed(step):
    checks.assert_passes(step, "curl_ends", step)
    checks.assert_fails("d", "curl_hangs", step, r"curl ended by itself")


def test_g_fix_lives_under_the_same_limit_with_flat_descriptors():
    checks.assert_passes("g", "low_nofile", "g")
    checks.assert_fails("d", "emfile", "g", r"still running")


def test_fix_a_handler_collects_the_children():
    checks.assert_passes("f", "survives", "f")  # One request, no zombie.
    checks.assert_fails("d", "zombies", "g", r"ps: \[\]")
