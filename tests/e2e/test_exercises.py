"""Learner mode (make exercise, check, hint, watch, progress): tools/exercises.py,
run as a participant runs it, on files in a temporary exercises folder.

Rustlings' two meta-checks are here: every step's starting point fails its
checks, and every reference passes them (test_matrix.py proves the same of
every column)."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import harness
import pytest
import steps

TOOL = harness.REPO / "tools" / "exercises.py"


def learner_in(folder):
    env = dict(os.environ, WORKSHOP_EXERCISES=str(folder / "exercises"),
               WORKSHOP_EXERCISE_BUILD=str(folder / "build"))

    def run(*args, timeout=180):
        return subprocess.run([sys.executable, str(TOOL), *args], env=env, capture_output=True, text=True,
                              timeout=timeout, cwd=folder)

    run.folder = folder / "exercises"
    run.env = env
    return run


@pytest.fixture
def learner(tmp_path):
    return learner_in(tmp_path)


def source_of(step):
    return steps.STEPS[step].source.read_text()


def test_exercise_starts_from_the_previous_reference_and_never_overwrites(learner):
    for step in steps.LETTERS[1:]:
        result = learner("exercise", step)
        assert result.returncode == 0, result.stdout + result.stderr
        path = learner.folder / f"webserver3{step}.cpp"
        previous = steps.STEPS[step].previous.letter
        assert f"Created exercises/webserver3{step}.cpp (it starts as step {previous}'s reference server" \
            in result.stdout
        assert "goal" in result.stdout and f"make check STEP={step}" in result.stdout
        assert path.read_text() == source_of(previous)
        path.unlink()  # So that the next step starts from the reference too (see the next test).
    path = learner.folder / "webserver3e.cpp"
    path.write_text("// my work\n")
    again = learner("exercise", "e")
    assert "exists already: it was not touched" in again.stdout
    assert "rm exercises/webserver3e.cpp && make exercise STEP=e" in again.stdout
    assert path.read_text() == "// my work\n"


def test_exercise_continues_from_your_own_previous_step_when_it_passes(learner):
    learner.folder.mkdir()
    # A passing step b of the participant's own (the reference, with their own comment in it).
    mine = "// My own step b.\n" + source_of("b")
    (learner.folder / "webserver3b.cpp").write_text(mine)
    result = learner("exercise", "c")
    assert "it starts as your own step b, which passes its checks" in result.stdout, result.stdout
    assert (learner.folder / "webserver3c.cpp").read_text() == mine
    # A failing step c of their own: step d starts from the reference, and says why.
    (learner.folder / "webserver3c.cpp").write_text(source_of("b"))
    result = learner("exercise", "d")
    assert re.search(r"it starts as step c's reference server: your exercises/webserver3c\.cpp does not pass its "
                     r"checks yet \(its first failing check: \w+\)", result.stdout), result.stdout
    assert (learner.folder / "webserver3d.cpp").read_text() == source_of("c")
    assert (learner.folder / "webserver3c.cpp").read_text() == source_of("b"), "the participant's file was changed"


def test_the_skeleton_builds_and_fails_every_check_with_a_hint(learner):
    learner("exercise", "a")
    skeleton = (learner.folder / "webserver3a.cpp").read_text()
    assert skeleton.count("TODO(step a)") == 3
    result = learner("check", "a")
    assert result.returncode == 1
    assert "is not written yet" in result.stdout
    # Its first build is clean (the helpers it is to call are marked [[maybe_unused]]): the one PASS
    # besides the command line, which the skeleton has. The first verdict must not tell a participant to
    # fix helpers they are meant to use.
    assert "warning:" not in result.stdout, result.stdout
    passing = [line for line in result.stdout.splitlines() if "PASS" in line]
    assert passing == ["  PASS  builds without warnings (-Wall -Wextra -Wpedantic)",
                       "  PASS  the command line: --help lists the options; bad ones are refused (usage, exit 2)"], \
        result.stdout
    assert result.stdout.count("hint:") >= 2 and "by hand:" in result.stdout


@pytest.mark.parametrize("step", "ae")
def test_the_reference_copied_in_passes_and_the_starting_point_fails(tmp_path, step):
    """Rustlings' meta-checks through make check itself, on two steps (the matrix, tests/e2e/test_matrix.py,
    proves them for every step, with the same checks run on the same builds)."""
    learner = learner_in(tmp_path)
    learner.folder.mkdir()
    (learner.folder / f"webserver3{step}.cpp").write_text(source_of(step))
    result = learner("check", step)
    assert result.returncode == 0 and "FAIL" not in result.stdout, result.stdout
    assert result.stdout.rstrip().endswith(f"step {step} works.")
    if steps.STEPS[step].previous:
        (learner.folder / f"webserver3{step}.cpp").write_text(source_of(steps.STEPS[step].previous.letter))
        result = learner("check", step)
        assert result.returncode == 1 and "FAIL" in result.stdout, result.stdout


def test_compiler_errors_are_shown_as_the_compiler_prints_them(learner):
    learner.folder.mkdir()
    (learner.folder / "webserver3c.cpp").write_text("int main() { return nope; }\n")
    result = learner("check", "c")
    assert result.returncode == 1
    assert "error: ‘nope’ was not declared" in result.stdout or "error: use of undeclared" in result.stdout
    assert "the build failed" in result.stdout


def test_check_any_binary_reports_each_failure_with_its_evidence(learner):
    result = learner("check", "b", str(harness.binary("a")))
    assert result.returncode == 1
    assert "PASS  answers 'Hello, World!'" in result.stdout
    assert "FAIL  a second client is accepted by the kernel but waits the whole sleep" in result.stdout
    assert "webserver3a --help lists no --sleep" in result.stdout
    assert "by hand:  " in result.stdout and "hint:" in result.stdout


def test_the_first_hint_is_for_the_check_that_failed_last_then_the_steps_own(learner):
    shown = [learner("hint", "g").stdout for _ in range(4)]
    assert shown[0].startswith("Hint 1 of 3 for step g")
    assert shown[1].startswith("Hint 2 of 3") and shown[2].startswith("Hint 3 of 3")
    assert "That was the last hint" in shown[3]
    # A failure: its own hint comes first, once, then the step's hints go on.
    learner.folder.mkdir(exist_ok=True)
    (learner.folder / "webserver3a.cpp").write_text(source_of("a").replace(
        "escape_request(std::string_view(request, static_cast<std::size_t>(n)), end)",
        "escape_request(std::string_view(request, sizeof request), end)"))
    assert learner("check", "a").returncode == 1
    first, second = learner("hint", "a").stdout, learner("hint", "a").stdout
    assert first.startswith("Your last make check STEP=a failed on: prints each request exactly as received"), first
    assert "recv() returned" in first, first
    assert second.startswith("Hint 1 of 3 for step a"), second


def test_progress_is_one_table_of_every_step_and_a_summary(learner):
    learner.folder.mkdir()
    (learner.folder / "webserver3a.cpp").write_text(source_of("a"))
    (learner.folder / "webserver3b.cpp").write_text(source_of("a"))  # Step b's starting point: it fails.
    result = learner("progress", timeout=300)
    assert result.returncode == 0, result.stdout
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line[:1] in steps.LETTERS and
            len(line) > 5 and line[1] == " "}
    assert set(rows) == set(steps.LETTERS), result.stdout
    assert re.search(r"\bpassed\b", rows["a"]) and re.search(r"\bfailing: \w+", rows["b"]), result.stdout
    assert all("not started" in rows[s] for s in steps.LETTERS[2:]), result.stdout
    assert f"1 of {len(steps.LETTERS)} steps passed, 1 failing, {len(steps.LETTERS) - 2} not started." \
        in result.stdout
    # The verdicts are kept: a second report card checks nothing again.
    again = learner("progress")
    assert "checking step" not in again.stdout and rows["a"] in again.stdout
    verdict = json.loads((learner.folder / ".verdict-b.json").read_text())
    assert verdict["passed"] is False and verdict["failing"]


def test_ctrl_c_leaves_nothing_running(learner):
    check = subprocess.Popen([sys.executable, str(TOOL), "check", "g", str(harness.binary("g"))],
                             env=learner.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             process_group=0)
    deadline = time.monotonic() + 10
    while not [p for p in harness.processes() if p.comm == "webserver3g" and
               p.ppid == check.pid] and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(check.pid, signal.SIGINT)  # As Ctrl-C does: the whole foreground group.
    output, _ = check.communicate(timeout=20)
    assert check.returncode == 130, output
    assert "interrupted" in output
    assert harness.reap_group(check.pid), "the check left its process group behind"


def test_a_wrong_step_is_named(learner):
    first, last = steps.LETTERS[0], steps.LETTERS[-1]
    result = learner("check", "z")
    assert result.returncode == 2 and f"There is no step z: steps are {first} to {last}" in result.stdout, \
        result.stdout
    result = learner("hint", "")
    assert result.returncode == 2 and f"Which step? Say STEP={first} ... STEP={last}" in result.stdout, result.stdout
