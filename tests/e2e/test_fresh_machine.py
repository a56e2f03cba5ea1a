"""A fresh machine: every make entry point installs what it needs before it
uses it. The trap this guards against: GNU make expands a whole recipe before
its first line runs, so a Python looked up while make reads the Makefile
(with $(shell ...)) is looked up before the recipe's install step has
installed it, and the command becomes ` tools/tour.py` ("Permission denied").

The test runs the real Makefile and tools/python.sh in a copy of the
repository, on a PATH where python3 does not exist until a stand-in for
tools/install-deps.sh has "installed" it, and the programs that the recipes
call stand-ins too (cmake, the tour, the exercises), so that nothing is built
or installed for real. Every literal /usr/bin/python3 in the copied files is
pointed at a folder of the test's own, so that the machine's own python3 (which
the tests themselves run on) is invisible to the Makefile until then."""

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import harness
import pytest
import steps

REAL_PYTHON = sys.executable

# The tools are Python programs run by a Python, not executables: a recipe
# whose Python is missing fails as on a fresh machine, "tools/tour.py:
# Permission denied".
STAND_IN = """import sys
print("stand-in ran:", sys.argv[0].rsplit("/", 1)[-1], *sys.argv[1:])
"""


def executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


@pytest.fixture
def fresh(tmp_path):
    """A copy of the repository's make front door on a machine without python3:
    returns run(target, ...) -> the finished make."""
    repo, bin_dir, debian = tmp_path / "repo", tmp_path / "bin", tmp_path / "debian" / "usr" / "bin"
    (repo / "tools").mkdir(parents=True)
    bin_dir.mkdir()
    for record in steps.STEPS.values():
        (repo / record.folder).mkdir()
    # Every program of the machine's, but no Python at all.
    for directory in ("/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"):
        if not os.path.isdir(directory):
            continue
        for name in os.listdir(directory):
            if name.startswith("python") or (bin_dir / name).exists():
                continue
            (bin_dir / name).symlink_to(os.path.join(directory, name))
    (bin_dir / "cmake").unlink(missing_ok=True)
    executable(bin_dir / "cmake", "#!/bin/sh\nexit 0\n")  # Nothing is built.
    # The Makefile and what it runs, with Debian's python3 looked for in the test's folder.
    for name in ("Makefile", "tools/python.sh"):
        text = (harness.REPO / name).read_text()
        (repo / name).write_text(text.replace("/usr/bin/python3", str(debian / "python3")))
    # The install step "installs" python3: only from now on does it exist.
    executable(repo / "tools" / "install-deps.sh",
               f"#!/bin/sh\nmkdir -p '{debian}'\nln -sf '{REAL_PYTHON}' '{debian}/python3'\n"
               f"ln -sf '{REAL_PYTHON}' '{bin_dir}/python3'\necho \"install-deps ($1): installed python3\"\n")
    for tool in ("tour.py", "exercises.py", "room.py", "room_client.py"):
        (repo / "tools" / tool).write_text(STAND_IN)

    def run(*args):
        env = {"PATH": str(bin_dir), "HOME": str(tmp_path), "LANG": "C.UTF-8"}
        assert shutil.which("python3", path=env["PATH"]) is None
        return subprocess.run(["make", *args], cwd=repo, env=env, capture_output=True, text=True, timeout=60)

    return run


@pytest.mark.parametrize("target,ran", [
    (["tour"], "tour.py"),
    (["tour", "STEP=d"], "tour.py d"),
    (["exercise", "STEP=a"], "exercises.py exercise a"),
    (["check", "STEP=a"], "exercises.py check a"),
    (["hint", "STEP=a"], "exercises.py hint a"),
    (["watch", "STEP=a"], "exercises.py watch a"),
    (["progress"], "exercises.py progress"),
    (["room", "PORT=0"], "room.py --port 0"),
    (["leave"], "room_client.py leave"),
])
def test_the_python_that_the_install_step_installs_is_the_one_the_recipe_runs(fresh, target, ran):
    result = fresh(*target)
    output = result.stdout + result.stderr
    assert "installed python3" in output, f"make {' '.join(target)} did not run its install step first:\n{output}"
    assert f"stand-in ran: {ran}" in result.stdout and result.returncode == 0, (
        f"make {' '.join(target)} on a machine where its install step has just installed python3 did not run "
        f"{ran} with it (was the Python looked up while make read the Makefile, before the install step "
        f"ran? Look it up in the recipe line that uses it):\n{output}")
