"""The catalogue of wrong solutions (tests/wrong_solutions.py): each one,
written into a participant's exercise file, makes `make check` (the same
entry point, tools/exercises.py check) fail, on the check that should catch
it, with a hint that names the cause."""

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import checks
import harness
import pytest
import steps

sys.path.insert(0, str(harness.REPO / "tests"))

from wrong_solutions import CATALOGUE  # noqa: E402

TOOL = harness.REPO / "tools" / "exercises.py"


def make_check(wrong, tmp_path) -> subprocess.CompletedProcess:
    """`make check` of the step, on the wrong solution written as the participant's exercise."""
    source = steps.STEPS[wrong.step].source.read_text()
    mutated = wrong.apply(source)
    assert mutated != source
    folder = tmp_path / "exercises"
    folder.mkdir()
    (folder / f"webserver3{wrong.step}.cpp").write_text(mutated)
    env = dict(os.environ, WORKSHOP_EXERCISES=str(folder), WORKSHOP_EXERCISE_BUILD=str(tmp_path / "build"))
    # The check that must catch it, alone (make check runs every check of the step; the time
    # budget of the suite runs the one that matters; test_exercises.py runs whole steps).
    return subprocess.run([sys.executable, str(TOOL), "check", wrong.step, "--only", wrong.check], env=env,
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    """Every wrong solution's `make check`, all at once (each waits for its own server, mostly):
    {name: the finished process, or the exception its set-up raised}."""
    folders = {wrong.name: tmp_path_factory.mktemp(wrong.name) for wrong in CATALOGUE}  # Not thread-safe.

    def attempt(wrong):
        try:
            return make_check(wrong, folders[wrong.name])
        except Exception as error:  # Reported by that wrong solution's own test.
            return error

    with ThreadPoolExecutor(max_workers=len(CATALOGUE)) as pool:
        return dict(zip([wrong.name for wrong in CATALOGUE], pool.map(attempt, CATALOGUE)))


@pytest.mark.parametrize("wrong", CATALOGUE, ids=lambda w: w.name)
def test_make_check_catches_the_wrong_solution_with_its_hint(checked, wrong):
    result = checked[wrong.name]
    if isinstance(result, Exception):
        raise result
    output = result.stdout
    assert result.returncode == 1, f"make check STEP={wrong.step} passed {wrong.what}:\n{output}"
    title = checks.CHECKS[wrong.check].title
    block = re.search(rf"^  FAIL  {re.escape(title)}\n((?:        .*\n)+)", output, re.MULTILINE)
    assert block, f"the check {wrong.check!r} did not fail on {wrong.what}:\n{output}"
    assert re.search(wrong.hint, block.group(1)), \
        f"the failure of {wrong.check!r} does not name the cause ({wrong.hint!r}):\n{block.group(1)}"
