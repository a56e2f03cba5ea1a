"""Learner mode (make exercise, check, hint, watch): tools/exercises.py, run as
a participant runs it, on files in a temporary exercises folder."""

import os
import signal
import subprocess
import sys
import time

import harness
import pytest
import steps

TOOL = harness.REPO / "tools" / "exercises.py"


@pytest.fixture
def learner(tmp_path):
    env = dict(os.environ, WORKSHOP_EXERCISES=str(tmp_path / "exercises"),
               WORKSHOP_EXERCISE_BUILD=str(tmp_path / "build"))

    def run(*args, timeout=120):
        return subprocess.run([sys.executable, str(TOOL), *args], env=env, capture_output=True, text=True,
                              timeout=timeout, cwd=tmp_path)

    run.folder = tmp_path / "exercises"
    run.env = env
    return run


def source_of(step):
    return steps.STEPS[step].source.read_text()


def test_exercise_starts_from_the_previous_step_and_never_overwrites(learner):
    for previous, step in zip("abcdef", "bcdefg"):
        result = learner("exercise", step)
        assert result.returncode == 0, result.stdout + result.stderr
        path = learner.folder / f"webserver3{step}.cpp"
        assert f"Created exercises/webserver3{step}.cpp" in result.stdout
        assert "goal" in result.stdout and f"make check STEP={step}" in result.stdout
        assert path.read_text() == source_of(previous)
    path.write_text("// my work\n")
    again = learner("exercise", "e")
    assert "exists already: it was not touched" in again.stdout
    assert "rm exercises/webserver3e.cpp && make exercise STEP=e" in again.stdout
    assert path.read_text() == "// my work\n"


def test_the_skeleton_builds_and_fails_every_check_with_a_hint(learner):
    learner("exercise", "a")
    skeleton = (learner.folder / "webserver3a.cpp").read_text()
    assert skeleton.count("TODO(step a)") == 3
    result = learner("check", "a")
    assert result.returncode == 1
    assert "is not written yet" in result.stdout
    # Its first build is clean (the helpers it is to call are marked [[maybe_unused]]): the one PASS.
    # The first verdict must not tell a participant to fix helpers they are meant to use.
    assert "warning:" not in result.stdout, result.stdout
    assert [line for line in result.stdout.splitlines() if "PASS" in line] == \
        ["  PASS  builds without warnings (-Wall -Wextra -Wpedantic)"], result.stdout
    assert result.stdout.count("hint:") >= 2 and "by hand:" in result.stdout


@pytest.mark.parametrize("step", "ae")
def test_the_reference_copied_in_passes(learner, step):
    learner("exercise", step)
    (learner.folder / f"webserver3{step}.cpp").write_text(source_of(step))
    result = learner("check", step)
    assert result.returncode == 0, result.stdout
    assert "FAIL" not in result.stdout
    assert result.stdout.rstrip().endswith(f"step {step} works.")


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


def test_hints_come_one_at_a_time(learner):
    shown = [learner("hint", "g").stdout for _ in range(4)]
    assert shown[0].startswith("Hint 1 of 3 for step g")
    assert shown[1].startswith("Hint 2 of 3") and shown[2].startswith("Hint 3 of 3")
    assert "That was the last hint" in shown[3]
    assert len(set(shown[:3])) == 3


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
    result = learner("check", "h")
    assert result.returncode == 2 and "There is no step h: steps are a to g" in result.stdout, result.stdout
    result = learner("check", "")
    assert result.returncode == 2 and "Which step? Say STEP=a ... STEP=g" in result.stdout, result.stdout
