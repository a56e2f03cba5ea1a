"""The matrix: every step's checks against every step's reference server.
tests/check-matrix.txt is committed; each column (one reference server,
labelled with its step: `ctest -L step_e` runs column e) is regenerated and
compared. Column X shows step X's checks passing on its reference (the
lesson), and the previous step's lesson failing on it (the fix); the file
as a whole proves that each step's checks pass on that step's reference and
fail on the exercise's starting point (the previous step's server)."""

from pathlib import Path

import checks
import harness
import pytest

COMMITTED = Path(__file__).resolve().parents[1] / "check-matrix.txt"


def committed_rows():
    return {tuple(line.split()[:2]): line.split()[2:] for line in COMMITTED.read_text().splitlines()
            if line[:1] in checks.STEP_LETTERS and len(line.split()) == 2 + len(checks.STEP_LETTERS)}


@pytest.mark.parametrize("server", list(checks.STEP_LETTERS), ids=lambda letter: f"column_{letter}")
def test_column(server):
    results = checks.matrix(lambda letter: str(harness.binary(letter)), jobs=12, servers=server)
    slow = {f"step {step} {key}": round(o.seconds, 1) for (step, key, _), o in results.items() if o.seconds >= 15}
    assert not slow, f"each check must complete in under 15 s, on webserver3{server}: {slow}"
    rows = committed_rows()
    column = checks.STEP_LETTERS.index(server)
    changed = []
    for (step, key, _), outcome in results.items():
        want = rows.get((step, key), ["?"] * 7)[column]
        if want != ("+" if outcome.passed else "."):
            program = str(harness.binary(server))
            changed.append(f"step {step}'s check {key} on webserver3{server}: committed {want!r}, now "
                           + ("passed" if outcome.passed else "failed:\n" + checks.describe(outcome, program)))
    assert not changed, ("the matrix changed (python3 tools/exercises.py matrix --write rewrites "
                         "tests/check-matrix.txt):\n" + "\n".join(changed))


def test_committed_matrix_has_every_check_and_separates_the_steps():
    rows = committed_rows()
    assert [key for (step, key) in rows] == [key for step in checks.STEP_LETTERS for key in checks.STEP_CHECKS[step]]
    for index, step in enumerate(checks.STEP_LETTERS):
        own = {key: marks for (row_step, key), marks in rows.items() if row_step == step}
        assert all(marks[index] == "+" for marks in own.values()), f"step {step}'s checks fail on its reference"
        if index:
            assert any(marks[index - 1] == "." for marks in own.values()), \
                f"step {step}'s checks all pass on step {checks.STEP_LETTERS[index - 1]}, its starting point"
