"""The matrix: every step's checks against every step's reference server.
tests/check-matrix.txt is committed; each column (one reference server,
labelled with its step: `ctest -L step_e` runs column e) is regenerated and
compared. Column X shows step X's checks passing on its reference (the
lesson), and the previous step's lesson failing on it (the fix), for the
lesson's own reason (FIX_REASONS); the file as a whole proves that each
step's checks pass on that step's reference and fail on the exercise's
starting point (the previous step's server).

Each check runs once per column, all of them at once (tools/matrix.py): the
step's lesson and its fix are proven here, and nowhere again."""

import re

import checks
import matrix
import pytest
import steps

# The fixes: (step, check, server) -> what the check must have seen when it
# failed on that server, the reason the lesson gives (a regular expression).
# A `.` in the committed matrix says that the check failed; this says why.
FIX_REASONS = {
    # Step c answers a second client while the first one's child sleeps.
    ("b", "second_waits", "c"): r"answered during the sleep",
    # Steps e, f and g close the parent's copy: curl ends.
    ("d", "curl_hangs", "e"): r"curl ended by itself",
    ("d", "curl_hangs", "f"): r"curl ended by itself",
    ("d", "curl_hangs", "g"): r"curl ended by itself",
    # Step g lives under the same open-files limit, and collects its children.
    ("d", "emfile", "g"): r"still running",
    ("d", "zombies", "g"): r"ps: \[\]",
    # Step f restarts accept() after the handler ran.
    ("e", "eintr", "f"): r"the handler ran and reported the child, accept\(\) went on",
    # Step g's waitpid() loop collects a whole burst, and every child of one merged signal.
    ("f", "burst_zombies", "g"): r"no zombie after",
    ("f", "merged_zombies", "g"): r"no zombie left",
    # Step j's event loop answers beside silent clients: they no longer hold the server.
    ("i", "idle_workers", "j"): r"curl was answered",
}

# The checks that may not run on a server (- in the matrix), and the one reason each may give:
# the server has nothing for the check to look at.
NOT_APPLICABLE = {
    ("h", "with_restart"): r"installs no SIGCHLD handler",
}

committed_rows = matrix.committed_rows


@pytest.mark.parametrize("server", list(steps.LETTERS), ids=lambda letter: f"column_{letter}")
def test_column(server):
    # Every run of the column at once (29 of them): most of them wait, for a failing server's
    # bound, so the column takes about as long as its longest check.
    results = matrix.matrix(matrix.reference_program, jobs=32, servers=server)
    slow = {f"step {step} {key}": round(o.seconds, 1) for (step, key, _), o in results.items() if o.seconds >= 30}
    assert not slow, f"each check must complete in under 30 s, on webserver3{server}: {slow}"
    # A check that does not run (strace missing, say) must not pass for one that does: only a
    # check whose subject the server lacks altogether (committed as -) may not run, and then
    # for that reason.
    skipped = {f"step {step} {key}": o.skipped for (step, key, _), o in results.items()
               if o.skipped and not re.search(NOT_APPLICABLE.get((step, key), "$^"), o.skipped)}
    assert not skipped, f"checks that did not run on webserver3{server}: {skipped}"
    rows = committed_rows()
    column = steps.LETTERS.index(server)
    program = matrix.reference_program(server)
    changed, wrong_reason = [], []
    for (step, key, _), outcome in results.items():
        want = rows.get((step, key), ["?"] * len(steps.LETTERS))[column]
        if want != matrix.mark(outcome):
            changed.append(f"step {step}'s check {key} on webserver3{server}: committed {want!r}, now "
                           + (f"did not run ({outcome.skipped})" if outcome.skipped else "passed" if outcome.passed
                              else "failed:\n" + checks.describe(outcome, program)))
        elif (step, key, server) in FIX_REASONS and not re.search(FIX_REASONS[step, key, server], outcome.seen):
            wrong_reason.append(f"step {step}'s check {key} failed on webserver3{server}, but for another reason "
                           f"than {FIX_REASONS[step, key, server]!r}:\n" + checks.describe(outcome, program))
    assert not changed, ("the matrix changed (python3 tools/matrix.py --write rewrites "
                         "tests/check-matrix.txt):\n" + "\n".join(changed))
    assert not wrong_reason, "\n".join(wrong_reason)


def test_committed_matrix_has_every_check_and_separates_the_steps():
    rows = committed_rows()
    assert [key for (step, key) in rows] == [key for step in steps.LETTERS for key in steps.STEPS[step].checks]
    for index, step in enumerate(steps.LETTERS):
        own = {key: marks for (row_step, key), marks in rows.items() if row_step == step}
        assert all(marks[index] == "+" for marks in own.values()), f"step {step}'s checks fail on its reference"
        not_run = {key for key, marks in own.items() if "-" in marks}
        assert not_run <= {key for row_step, key in NOT_APPLICABLE if row_step == step}, \
            f"step {step}'s checks {not_run} do not run on some server, with no reason in NOT_APPLICABLE"
        if index:
            assert all(marks[index - 1] != "-" for marks in own.values()), \
                f"a check of step {step} does not run on its starting point: the exercise's failure is not judged"
        if index:
            assert any(marks[index - 1] == "." for marks in own.values()), \
                f"step {step}'s checks all pass on step {steps.LETTERS[index - 1]}, its starting point"
    for (step, key, server) in FIX_REASONS:
        assert rows[step, key][steps.LETTERS.index(server)] == ".", \
            f"FIX_REASONS: step {step}'s check {key} is committed as passing on webserver3{server}"
