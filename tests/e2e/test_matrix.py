"""The matrix: every step's checks against every step's reference server.
tests/check-matrix.txt is committed; this regenerates it and compares, so it
proves that each step's checks pass on that step's reference and fail on the
exercise's starting point (the previous step's server)."""

from pathlib import Path

import checks
import harness

COMMITTED = Path(__file__).resolve().parents[1] / "check-matrix.txt"


def test_the_matrix_is_as_committed():
    results = checks.matrix(lambda letter: str(harness.binary(letter)), jobs=6)
    slow = {f"step {step} {key} on webserver3{server}": round(o.seconds, 1)
            for (step, key, server), o in results.items() if o.seconds >= 15}
    assert not slow, f"each check must complete in under 15 s: {slow}"
    text = checks.matrix_text(results)
    if text != COMMITTED.read_text():
        changed = []
        for (step, key, server), outcome in sorted(results.items()):
            line = [row for row in COMMITTED.read_text().splitlines() if row.split()[:2] == [step, key]]
            want = line[0].split()[2 + "abcdefg".index(server)] if line else "?"
            if want != ("+" if outcome.passed else "."):
                changed.append(f"step {step} check {key} on webserver3{server}: committed {want}, now "
                               + ("passed" if outcome.passed else "failed: " + outcome.seen))
        raise AssertionError("the matrix changed (python3 tools/exercises.py matrix --write rewrites it):\n"
                             + "\n".join(changed[:20]))


def test_each_step_passes_on_its_reference_and_fails_on_its_starting_point():
    rows = [line.split() for line in COMMITTED.read_text().splitlines()
            if line[:1] in checks.STEP_LETTERS and len(line.split()) == 9]
    for index, step in enumerate(checks.STEP_LETTERS):
        own = [row for row in rows if row[0] == step]
        assert [row[1] for row in own] == checks.STEP_CHECKS[step]
        assert all(row[2 + index] == "+" for row in own), f"step {step}'s checks fail on its reference"
        if index:
            assert any(row[1 + index] == "." for row in own), \
                f"step {step}'s checks all pass on step {checks.STEP_LETTERS[index - 1]}, its starting point"
