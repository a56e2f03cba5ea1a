"""Wrong turns a participant takes with make: a target named after a step's
letter or a program, make from inside build/, and a machine without
GoogleTest. Each is answered: the right target is named, build/ builds the
steps itself, and a step builds without the tests' libraries."""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import harness
import pytest

BUILD = harness.BIN.parent


def make(*args, cwd=harness.REPO, timeout=120):
    # MAKEFLAGS from a surrounding make (make test) must not leak in.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    return subprocess.run(["make", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("typed,named", [("step_e", "make step_e_sigchld"), ("step_c", "make step_c_fork"),
                                         ("webserver3c", "make step_c_fork"), ("client3", "make client"),
                                         ("step_e_sigchl", "make step_e_sigchld")])
def test_a_target_that_looks_like_a_step_or_a_program_names_the_right_one(typed, named):
    result = make(typed, timeout=30)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"there is no target '{typed}'" in lines[0], result.stderr
    assert f"'{named}'" in lines[0], f"make {typed} does not name {named}: {result.stderr!r}"


def test_an_unknown_target_lists_the_targets():
    result = make("bogus", timeout=30)
    assert result.returncode == 2
    assert "make step_a_iterative" in result.stderr and "make tour" in result.stderr


@pytest.mark.skipif(not (BUILD / "Makefile").exists(), reason="the build folder is not a Makefile build")
def test_make_a_step_from_inside_build_builds_that_step():
    # Inside build/ is CMake's Makefile, where build/step_c_fork is a folder:
    # without a target of that name, make would say nothing, exit 0, and
    # leave an old webserver3c in place.
    result = make("step_c_fork", cwd=BUILD)
    assert result.returncode == 0, result.stdout[-500:] + result.stderr
    assert "Built target webserver3c" in result.stdout, "make step_c_fork inside build/ did not build webserver3c"
    assert "Built target client3" in result.stdout


@pytest.mark.skipif(not (BUILD / "Makefile").exists(), reason="the build folder is not a Makefile build")
def test_make_tour_from_inside_build_runs_the_top_folders_make():
    result = make("-n", "tour", cwd=BUILD, timeout=60)  # -n: show what it would run, run nothing.
    assert f"-C {harness.REPO} tour BUILD={BUILD}" in result.stdout, result.stdout[-500:] + result.stderr


def test_a_step_builds_on_a_machine_without_googletest():
    # CMAKE_DISABLE_FIND_PACKAGE_GTest makes CMake behave as if GoogleTest
    # were not installed.
    folder = Path(tempfile.mkdtemp(prefix="workshop-nogtest-"))
    try:
        configured = make("configure", f"BUILD={folder}", "CMAKE_FLAGS=-DCMAKE_DISABLE_FIND_PACKAGE_GTest=ON")
        assert configured.returncode == 0, configured.stdout[-800:] + configured.stderr
        assert "Tests not configured" in configured.stdout
        built = make("step_a_iterative", f"BUILD={folder}")
        assert built.returncode == 0, built.stdout[-800:] + built.stderr
        assert (folder / "bin" / "webserver3a").exists() and (folder / "bin" / "client3").exists()
        assert not list(folder.glob("tests/unit/step_*_test")), "the unit tests were built without GoogleTest"
    finally:
        shutil.rmtree(folder, ignore_errors=True)
