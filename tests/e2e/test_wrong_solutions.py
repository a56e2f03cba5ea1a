"""The catalogue of solutions (tests/wrong_solutions.py), each written into a
participant's exercise file and judged by `make check` itself (the same entry
point, tools/exercises.py check):
- each wrong one fails, on the check that should catch it, with a hint that
  names the cause (its check alone runs: the rest of the step's checks are
  the matrix's and test_exercises.py's);
- each correct one, written another way than the reference, passes every
  check of its step: a fair judge reads behaviour, not spelling."""

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


def make_check(solution, folder) -> subprocess.CompletedProcess:
    """`make check` of the step, on the solution written as the participant's exercise."""
    source = steps.STEPS[solution.step].source.read_text()
    changed = solution.apply(source)
    assert changed != source
    (folder / "exercises").mkdir()
    (folder / "exercises" / f"webserver3{solution.step}.cpp").write_text(changed)
    env = dict(os.environ, WORKSHOP_EXERCISES=str(folder / "exercises"), WORKSHOP_EXERCISE_BUILD=str(folder / "build"))
    only = [] if solution.correct else ["--only", solution.check]
    return subprocess.run([sys.executable, str(TOOL), "check", solution.step, *only], env=env,
                          capture_output=True, text=True, timeout=300, cwd=folder)


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    """Every solution's `make check`, several at once (each waits for its own servers, mostly):
    {name: the finished process, or the exception its set-up raised}."""
    folders = {solution.name: tmp_path_factory.mktemp(solution.name) for solution in CATALOGUE}  # Not thread-safe.

    def attempt(solution):
        try:
            return make_check(solution, folders[solution.name])
        except Exception as error:  # Reported by that solution's own test.
            return error

    # The correct ones run every check of their step: they go first. Four at once, the load the judge is
    # made for (a room's four make checks beside two busy loops): eight at once, each running four checks,
    # slowed the tests beside this one too much (with two busy loops, a `make tour` beside it had not
    # ended its build, with nothing to build, within 60 s).
    order = sorted(CATALOGUE, key=lambda s: not s.correct)
    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip([s.name for s in order], pool.map(attempt, order)))


@pytest.mark.parametrize("solution", [s for s in CATALOGUE if not s.correct], ids=lambda s: s.name)
def test_make_check_catches_the_wrong_solution_with_its_hint(checked, solution):
    result = checked[solution.name]
    if isinstance(result, Exception):
        raise result
    output = result.stdout
    assert result.returncode == 1, f"make check STEP={solution.step} passed {solution.what}:\n{output}"
    title = checks.CHECKS[solution.check].title
    block = re.search(rf"^  FAIL  {re.escape(title)}\n((?:        .*\n)+)", output, re.MULTILINE)
    assert block, f"the check {solution.check!r} did not fail on {solution.what}:\n{output}"
    assert re.search(solution.hint, block.group(1)), \
        f"the failure of {solution.check!r} does not name the cause ({solution.hint!r}):\n{block.group(1)}"


@pytest.mark.parametrize("solution", [s for s in CATALOGUE if s.correct], ids=lambda s: s.name)
def test_make_check_passes_a_correct_solution_written_another_way(checked, solution):
    result = checked[solution.name]
    if isinstance(result, Exception):
        raise result
    assert result.returncode == 0 and "FAIL" not in result.stdout, \
        f"make check STEP={solution.step} failed a correct solution ({solution.what}):\n{result.stdout}"
