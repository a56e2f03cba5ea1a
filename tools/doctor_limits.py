"""make doctor's process-limit item: tools/doctor.sh runs this and prints its
one line (this prints `ok|text` or `FIX|text`).

The process limit (RLIMIT_NPROC) matters twice: the burst lessons need a few
hundred processes at once, and step d's lesson needs the limit to bind. Root
is not bound by it, so as root the lesson runs its server under an unused uid
(setpriv), and that is what is tried here too. The probe (`probe` below, run
as the user in question) lowers its own limit to leave room for EXTRA more
processes and forks until fork fails. If it never fails, the limit does not
bind; if it fails with room to spare, processes of the same uid that this
machine cannot see count too (a container sharing its uid with the host)."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402

NEEDED = 600  # Processes the burst tests may run at once (two tests, 128 clients and their children).
EXTRA = 12  # The room the probe leaves itself under its own low limit.


tasks = harness.tasks_of_user


def probe() -> None:
    """Run as the user to try: print how many forks succeeded, the limit, and
    the tasks in sight when fork failed (-1 if it never did)."""
    uid = os.getuid()
    limit = tasks(uid) + EXTRA
    resource.setrlimit(resource.RLIMIT_NPROC, (limit, limit))
    r, w = os.pipe()
    made, seen = 0, -1
    for _ in range(4 * EXTRA):
        try:
            pid = os.fork()
        except OSError:
            seen = tasks(uid)
            break
        if pid == 0:
            os.close(w)
            os.read(r, 1)  # Until the probe closes its end: then every child exits.
            os._exit(0)
        made += 1
    os.close(w)
    while True:
        try:
            os.wait()
        except ChildProcessError:
            break
    print(made, limit, seen)


def run_probe(prefix: list[str]) -> tuple[int, int, int]:
    """Run the probe with `prefix` (setpriv ..., or nothing). It runs from a copy of this folder's
    Python files in a fresh temporary folder: an unused uid cannot reach a checkout inside a private
    home folder (mode 700, as /root is)."""
    here = Path(__file__).resolve().parent
    folder = tempfile.mkdtemp(prefix="workshop-doctor-")
    try:
        os.chmod(folder, 0o755)
        for name in ("doctor_limits.py", "harness.py", "steps.py"):
            os.chmod(shutil.copy(here / name, folder), 0o644)
        result = subprocess.run([*prefix, sys.executable, os.path.join(folder, "doctor_limits.py"), "probe"],
                                capture_output=True, text=True, timeout=30, cwd=folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if result.returncode != 0:
        raise RuntimeError((result.stderr.strip().splitlines() or ["failed"])[-1])
    made, limit, seen = (int(x) for x in result.stdout.split())
    return made, limit, seen


def binds(made: int, limit: int, seen: int, who: str) -> str | None:
    """None if the limit binds as it should, else what is wrong."""
    if made >= 4 * EXTRA:
        return (f"the limit does not bind {who} (CAP_SYS_RESOURCE? a --privileged container?), so step d "
                "cannot run out of processes: run without those privileges")
    if made < 2 and 0 <= seen and seen + 3 < limit:
        return (f"fork failed for {who} with {seen} of {limit} processes in sight: processes of this uid "
                "outside this machine's view count too (a container sharing its uid with the host?): run "
                "the container as a uid of its own")
    return None


def show(n: int) -> str:
    return "unlimited" if n == resource.RLIM_INFINITY else str(n)


def verdict() -> str:
    uid = os.getuid()
    if uid == 0:
        try:
            scratch, group = harness.scratch_identity()
        except RuntimeError as error:
            return f"FIX|{error}, for step d's process lesson"
        try:
            result = run_probe(["setpriv", f"--reuid={scratch}", f"--regid={group}", "--clear-groups"])
        except (RuntimeError, OSError) as error:
            return (f"FIX|root cannot run a server as an unused uid here (setpriv: {error}), so step d's "
                    "process limit cannot bind: run the workshop as an ordinary user")
        finally:
            harness.release_scratch_identity(scratch)
        wrong = binds(*result, f"unused uid {scratch}")
        if wrong:
            return f"FIX|{wrong}"
        return (f"ok|root is exempt, so step d's lesson runs the server as unused uid {scratch}: the limit "
                f"binds there (with room for {EXTRA} more, fork failed after {result[0]})")

    soft, hard = resource.getrlimit(resource.RLIMIT_NPROC)
    mine = tasks(uid)
    result = run_probe([])
    wrong = binds(*result, "you")
    if wrong:
        return f"FIX|{wrong}"
    if soft != resource.RLIM_INFINITY and soft - mine < NEEDED:
        want = max(4096, mine + NEEDED)
        start = f"limit {show(soft)} with {mine} in use leaves room for {soft - mine}; the burst lessons need {NEEDED}"
        if hard == resource.RLIM_INFINITY or hard >= want:
            return f"FIX|{start}: run ulimit -u {want} in this shell first"
        return (f"FIX|{start}, and the hard limit is {show(hard)}: open a new terminal, or raise it in "
                f"/etc/security/limits.conf (a container: --ulimit nproc={want})")
    return (f"ok|limit {show(soft)}, {mine} in use; it binds you (with room for {EXTRA} more, fork failed "
            f"after {result[0]})")


if __name__ == "__main__":
    if sys.argv[1:] == ["probe"]:
        probe()
    else:
        try:
            print(verdict())
        except Exception as error:  # Report, never crash: the doctor's other lines still matter.
            print(f"FIX|could not check ({type(error).__name__}: {error})")
