"""Every command in the READMEs that looks up a server finds the
participant's own, also on a machine where other users run the same
programs. The lookups are run exactly as written, while an older copy of
each server runs under another uid: `pgrep -o -x webserver3g` alone would
pick that one (and `ls /proc/PID/fd` would say Permission denied)."""

import os
import re
import shutil
import subprocess
import tempfile

import harness
import steps

READMES = [harness.REPO / "README.md", harness.REPO / "client" / "README.md",
           *(record.readme for record in steps.STEPS.values())]
# A command line shown after a "$ " prompt that looks a server up by name.
LOOKUP = re.compile(r"^\$ (.*\$\((pgrep [^()]*(?:\([^()]*\)[^()]*)*)\).*)$", re.M)


def lookups() -> list[tuple[str, str, str]]:
    """(command line, its pgrep expression, the program it looks for)."""
    found = []
    for match in (m for path in READMES for m in LOOKUP.finditer(path.read_text())):
        program = re.search(r"-x (webserver3[a-z])\b", match.group(2))
        assert program, f"a lookup that does not name its program exactly (-x): {match.group(0)}"
        found.append((match.group(1), match.group(2), program.group(1)))
    return found


def test_every_process_lookup_shown_is_limited_to_your_own_processes():
    shown = [(path, line) for path in READMES for line in path.read_text().splitlines() if "pgrep" in line]
    assert shown, "no lookup found in the READMEs"
    for path, line in shown:
        assert re.search(r"pgrep [^|)]*-u ", line), f"{path.name}: a lookup that finds anyone's process: {line}"
    assert len(lookups()) >= 6


def isolation() -> list[str]:
    """A new PID namespace with its own /proc, so that only the processes this
    test starts are seen (other tests, other users' servers are not), and all
    of them die with it. As an ordinary user, inside a user namespace too."""
    for prefix in (["unshare", "--pid", "--fork", "--mount-proc"],
                   ["unshare", "--user", "--map-root-user", "--pid", "--fork", "--mount-proc"]):
        if subprocess.run([*prefix, "true"], capture_output=True, timeout=10).returncode == 0:
            return prefix
    return []


def test_each_lookup_finds_your_server_while_another_users_older_one_runs():
    commands = lookups()
    programs = sorted({program for _, _, program in commands})
    prefix = isolation()
    decoy_dir = tempfile.mkdtemp(prefix="workshop-decoy-")
    os.chmod(decoy_dir, 0o755)
    try:
        script = ["set -u"]
        # Another user's servers, started first: the oldest of each name. Only
        # root can start a process as someone else (pitfall 5's unused uid).
        other = os.geteuid() == 0 and prefix[:2] == ["unshare", "--pid"]
        if other:
            uid, gid = harness.scratch_identity()
            for program in programs:
                copy = shutil.copy2(harness.binary(program), decoy_dir)
                script.append(f"setpriv --reuid={uid} --regid={gid} --clear-groups {copy} --port 0 "
                              f">/dev/null 2>&1 &")
            script.append("sleep 0.3")
        for program in programs:
            script.append(f"{harness.binary(program)} --port 0 >/dev/null 2>&1 &")
            script.append(f"echo mine {program} $!")
        script.append("sleep 0.3")
        for number, (command, expression, _) in enumerate(commands):
            script.append(f"echo found {number} $({expression})")
            # On a line of its own: a command may end with a # comment.
            script.append(f"errors=$( {{\n{command}\n}} 2>&1 >/dev/null ); echo errors {number} \"$errors\"")
        script.append("kill $(jobs -p) 2>/dev/null; wait")
        result = harness.run_bounded([*prefix, "bash", "-c", "\n".join(script)], timeout=60)
    finally:
        shutil.rmtree(decoy_dir, ignore_errors=True)
    assert result.returncode == 0, result.stdout[-500:] + result.stderr[-500:]
    words = [line.split(" ", 2) for line in result.stdout.splitlines()]
    mine = {w[1]: w[2] for w in words if w[0] == "mine"}
    found = {int(w[1]): w[2] if len(w) > 2 else "" for w in words if w[0] == "found"}
    errors = {int(w[1]): w[2] if len(w) > 2 else "" for w in words if w[0] == "errors"}
    for number, (command, expression, program) in enumerate(commands):
        assert found[number] == mine[program], (
            f"{expression} found {found[number]!r}, not your {program} ({mine[program]})"
            + (" but another user's" if other else ""))
        assert errors[number] == "", f"{command}: {errors[number]}"
