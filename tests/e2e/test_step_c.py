"""Step c: a child per connection. Each child prints its PID and its parent's;
the parent is the server, which only accepts and forks; every line is printed
exactly once through a pipe; the child closes the listener, answers and exits.
The behaviours are tools/checks.py's, as make check STEP=c runs them."""

import checks
import pytest


@pytest.mark.parametrize("key", checks.STEP_CHECKS["c"])
def test_c_checks_pass_on_step_c(key):
    checks.assert_passes("c", key, "c")
