"""make doctor (tools/doctor.sh) names the fix for what breaks the workshop.

Each test first takes this machine's own verdicts, then breaks one thing for
the doctor alone (a tool missing from PATH, a low process limit, an ignored
SIGCHLD) and checks that exactly that item turns into a FIX line that says
what to do, and that the doctor then exits 1. A doctor that only looked at
PATH, or at its own shell's SIGCHLD (which GNU make resets), or that counted
root's processes against a limit that does not bind root, fails here."""

import functools
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile

import harness

DOCTOR = harness.REPO / "tools" / "doctor.sh"
ITEMS = ["system", "repository", "compiler", "static link", "cmake", "make", "GoogleTest", "python3", "pytest", "curl",
         "ps, prlimit", "strace, ptrace", "open files", "processes", "SIGCHLD"]


def verdicts(output: str) -> dict[str, tuple[str, str]]:
    """{item: (verdict, text)} from the doctor's lines: `VERDICT  ITEM  TEXT`, in columns."""
    found = {}
    for line in output.splitlines():
        if line[:4].strip() in ("ok", "note", "FIX"):
            found[line[6:21].strip()] = (line[:4].strip(), line[22:])
    return found


def doctor(command=None, **kwargs) -> tuple[int, dict[str, tuple[str, str]], str]:
    result = subprocess.run(command or ["sh", str(DOCTOR)], capture_output=True, text=True, timeout=60,
                            **kwargs)
    # Nothing on stderr but make's own note of the exit status.
    assert [line for line in result.stderr.splitlines() if not re.match(r"make(\[\d+\])?: \*\*\*", line)] == [], \
        result.stderr
    return result.returncode, verdicts(result.stdout), result.stdout


@functools.lru_cache(maxsize=None)
def this_machine() -> tuple[int, dict[str, tuple[str, str]], str]:
    """The doctor's run as this test runs, untouched (once for all tests)."""
    return doctor()


def changed(before, after) -> dict[str, tuple[str, str]]:
    """The items whose verdict differs between two runs."""
    return {item: after[item] for item in after if after[item][0] != before[item][0]}


def test_this_machine_gets_one_verdict_per_item():
    code, found, output = this_machine()
    assert list(found) == ITEMS, output
    fixes = [item for item, (verdict, _) in found.items() if verdict == "FIX"]
    assert code == (1 if fixes else 0), output
    assert output.splitlines()[-1].startswith("doctor: ready" if not fixes else "doctor: "), output


def test_a_missing_tool_names_its_package():
    before = this_machine()[1]
    # PATH with every program this one has, except curl and strace.
    with tempfile.TemporaryDirectory() as bin_dir:
        for folder in os.environ["PATH"].split(os.pathsep):
            if not os.path.isdir(folder):
                continue
            for name in os.listdir(folder):
                path = os.path.join(folder, name)
                if name not in ("curl", "strace") and not os.path.lexists(os.path.join(bin_dir, name)) \
                        and os.access(path, os.X_OK):
                    os.symlink(path, os.path.join(bin_dir, name))
        code, after, output = doctor(env={**os.environ, "PATH": bin_dir})
    assert code == 1, output
    assert set(changed(before, after)) <= {"curl", "strace, ptrace"}, output
    verdict, text = after["curl"]
    assert verdict == "FIX" and "apt-get install -y curl" in text, output
    verdict, text = after["strace, ptrace"]
    assert verdict == "FIX" and "apt-get install -y strace" in text, output
    assert "apt-get install -y curl strace" in output.splitlines()[-1], "the summary installs both at once"


def test_a_compiler_without_static_libraries_gets_a_note_naming_them():
    """The steps then link dynamically (step_*/CMakeLists.txt): they work, so a
    note, not a fix. A g++ first on PATH that fails every -static link stands
    in for a system without glibc's and libstdc++'s static libraries."""
    before = this_machine()[1]
    assert before["static link"][0] == "ok", "this machine links statically (Debian's libc6-dev)"
    with tempfile.TemporaryDirectory() as bin_dir:
        fake = os.path.join(bin_dir, "g++")
        with open(fake, "w") as f:
            f.write('#!/bin/sh\nfor a in "$@"; do [ "$a" = -static ] && exit 1; done\n'
                    f'exec {shutil.which("g++")} "$@"\n')
        os.chmod(fake, 0o755)
        code, after, output = doctor(env={**os.environ, "PATH": bin_dir + os.pathsep + os.environ["PATH"]})
    assert set(changed(before, after)) == {"static link"}, output
    verdict, text = after["static link"]
    assert verdict == "note" and "glibc-static libstdc++-static" in text, output
    assert code == this_machine()[0], "a note does not change the doctor's verdict"


def test_a_low_process_limit_says_how_to_raise_it():
    """As root the limit would not bind, so the doctor runs as an unused uid
    (from a copy it can reach); as an ordinary user, as that user."""
    with tempfile.TemporaryDirectory() as folder:
        os.chmod(folder, 0o755)
        os.mkdir(os.path.join(folder, "tools"))
        os.chmod(os.path.join(folder, "tools"), 0o755)
        copy = shutil.copy2(DOCTOR, os.path.join(folder, "tools"))
        # The limits probe and what it imports.
        for name in ("doctor_limits.py", "harness.py", "steps.py"):
            shutil.copy2(DOCTOR.with_name(name), os.path.join(folder, "tools"))
        command = ["sh", copy]
        if os.geteuid() == 0:
            uid, gid = harness.scratch_identity()
            command = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", *command]
            mine = 0
        else:
            mine = harness.tasks_of_user(os.getuid())
        _, before, _ = doctor(command, cwd=folder)
        # A soft limit 200 above what the user runs (room for the doctor, and
        # for what else an ordinary user starts meanwhile; the burst lessons
        # need 600); the hard limit (as it is, if it leaves room) lets them
        # raise it.
        soft = mine + 200
        hard = resource.getrlimit(resource.RLIMIT_NPROC)[1]
        assert hard == resource.RLIM_INFINITY or hard >= 4096, "this machine's own hard limit is too low"
        code, after, output = doctor(["prlimit", f"--nproc={soft}:{'unlimited' if hard < 0 else hard}", "--",
                                      *command], cwd=folder)
        assert code == 1, output
        assert set(changed(before, after)) == {"processes"}, output
        assert after["processes"][0] == "FIX" and "ulimit -u 4096" in after["processes"][1], output
        # With the hard limit as low, only an administrator (or a new terminal) can raise it.
        code, after, output = doctor(["prlimit", f"--nproc={soft}:{soft}", "--", *command], cwd=folder)
        assert code == 1, output
        verdict, text = after["processes"]
        assert verdict == "FIX" and "limits.conf" in text and "ulimit -u" not in text, output


LAUNCHER = """
import signal, subprocess, sys
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # As some editors, daemons and CI runners leave it.
result = subprocess.run(sys.argv[1:], capture_output=True, text=True, timeout=60)
sys.stdout.write(result.stdout)
sys.stderr.write(result.stderr)
"""


def test_an_ignored_sigchld_above_make_is_found():
    """GNU make resets SIGCHLD for what it runs, so the doctor's own shell
    looks fine under `make doctor`: the doctor must look at the processes
    above it, where the launcher that ignores SIGCHLD still runs."""
    before = this_machine()[1]
    # The launcher ignores SIGCHLD: with it, Python cannot collect its
    # child's status, so the verdict is read from the lines alone.
    # A make of its own, not a sub-make of the `make test` that may run this test.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    _, after, output = doctor([sys.executable, "-c", LAUNCHER, "make", "-s", "-C", str(harness.REPO), "doctor"],
                              env=env)
    assert set(changed(before, after)) == {"SIGCHLD"}, output
    verdict, text = after["SIGCHLD"]
    assert verdict == "FIX" and "ignored by python" in text and "env --default-signal=CHLD" in text, output
    assert output.splitlines()[-1].startswith("doctor: 1 to fix"), output


def test_an_ignored_sigchld_inherited_by_the_shell_is_found():
    """bash started with SIGCHLD ignored catches it itself (its own status
    shows no ignore) but passes the ignore on to every program it starts."""
    before = this_machine()[1]
    launcher = ("import os, signal, sys; signal.signal(signal.SIGCHLD, signal.SIG_IGN); "
                "os.execvp('bash', ['bash', sys.argv[1]])")
    code, after, output = doctor([sys.executable, "-c", launcher, str(DOCTOR)])
    assert code == 1, output
    assert set(changed(before, after)) == {"SIGCHLD"}, output
    assert "ignored by the programs this shell starts" in after["SIGCHLD"][1], output
