"""Start, limit, observe and stop the workshop's programs.

One implementation serves the pytest demonstrations (tests/e2e) and the tour
(tools/tour.py), so that what the instructor shows and what the tests prove
cannot drift apart. It drives the programs through their command-line
contract only, and reads its evidence from /proc and ps, so it needs Linux.

Every program is started in a process group of its own, and stopped by
killing and reaping that whole group: a server's child that outlives it would
otherwise keep the port and the output pipes open (and stay a zombie).
"""

from __future__ import annotations

import atexit
import ctypes
import os
import random
import re
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import steps

REPO = steps.REPO
BIN = Path(os.environ.get("WORKSHOP_BIN", REPO / "build" / "bin"))

REQUEST = b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
BODY = b"Hello, World!\n"


def binary(name: str) -> Path:
    """The path of a built program: 'webserver3d', 'client3', or a step letter."""
    if name in steps.STEPS:
        name = steps.STEPS[name].program
    path = BIN / name
    if not path.exists():
        raise FileNotFoundError(f"{path} is not built yet: run 'make' first")
    return path


_git_dir: Path | None = None


def git(*args: str) -> subprocess.CompletedProcess:
    """Runs git on the project's files, as git sees them: in a checkout, its own
    repository; in a copy without .git (a downloaded archive, a container's copy),
    a throwaway repository whose index holds every file that .gitignore does not
    exclude, so that `ls-files`, `grep` and `check-ignore` answer as they would
    in a clone of it."""
    global _git_dir
    env = None
    if not (REPO / ".git").exists():
        if _git_dir is None:
            _git_dir = Path(tempfile.mkdtemp(prefix="workshop-git-"))
            atexit.register(shutil.rmtree, _git_dir, True)
            for argv in (["git", "init", "-q"], ["git", "add", "-A"]):
                subprocess.run(argv, cwd=REPO, check=True, timeout=60, capture_output=True,
                               env=dict(os.environ, GIT_DIR=str(_git_dir), GIT_WORK_TREE=str(REPO)))
        env = dict(os.environ, GIT_DIR=str(_git_dir), GIT_WORK_TREE=str(REPO))
    return subprocess.run(["git", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)


PT_INTERP = 3  # The ELF program header that names the dynamic loader.


def is_dynamic(path: Path | str) -> bool:
    """Whether a program is a 64-bit ELF executable that asks for a dynamic loader (has PT_INTERP):
    only such a program loads what LD_PRELOAD names."""
    try:
        with open(path, "rb") as f:
            header = f.read(64)
            if header[:5] != b"\x7fELF\x02":
                return False
            phoff, = struct.unpack_from("<Q", header, 0x20)
            phentsize, phnum = struct.unpack_from("<HH", header, 0x36)
            f.seek(phoff)
            table = f.read(phentsize * phnum)
    except (OSError, struct.error):
        return False
    return any(struct.unpack_from("<I", table, i * phentsize)[0] == PT_INTERP for i in range(phnum))


# ---------------------------------------------------------------------------
# The process that starts servers.

_PR_SET_CHILD_SUBREAPER = 36


def prepare_process() -> None:
    """Make this process a safe launcher. Call once, before starting anything.

    SIGCHLD goes back to its default disposition and is unblocked: an ignored
    SIGCHLD is inherited across exec, and children are then reaped by the
    kernel, so no zombie would ever show (a blocked one would keep step e's
    handler from running at all). And this process becomes a "child
    subreaper": the children of a server that dies are handed to it, rather
    than to PID 1 (which on some machines never reaps them), so that stop()
    can collect them.
    """
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # Not Linux: orphans go to PID 1 instead.


def reap_group(pgid: int, timeout: float = 5.0) -> bool:
    """Kill every process left in group pgid and collect the ones handed to us.

    Returns True once the group is empty (no process, not even a zombie)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        try:
            while os.waitid(os.P_PGID, pgid, os.WEXITED | os.WNOHANG) is not None:
                pass
        except ChildProcessError:
            pass  # None of the group's processes is ours (yet).
        time.sleep(0.01)
    return False


def kill_and_reap_children(timeout: float = 5.0) -> list["Proc"]:
    """Kill every child of this process (with its process group, when it
    leads one of its own) and collect it, and the orphans its death hands to
    this process, until none is left or the timeout passes. Returns the
    children found at first: what a test left behind."""
    me, my_group = os.getpid(), os.getpgrp()
    found = children_of(me)
    deadline = time.monotonic() + timeout
    left = found
    while left and time.monotonic() < deadline:
        for proc in left:
            try:
                group = os.getpgid(proc.pid)
            except ProcessLookupError:
                continue
            if group == proc.pid and group != my_group:
                reap_group(group, max(0.1, deadline - time.monotonic()))
            else:
                try:
                    os.kill(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                os.waitpid(proc.pid, os.WNOHANG)
            except ChildProcessError:
                pass
        time.sleep(0.01)
        left = children_of(me)
    return found


# ---------------------------------------------------------------------------
# Output, read as it comes.


class Stream:
    """Drains a pipe on a thread, so that the writer never blocks on a full
    pipe, and keeps every line for the test or the tour to look at."""

    def __init__(self, pipe, echo=None):
        self.lines: list[str] = []
        self.times: list[float] = []  # When each line arrived (time.monotonic()).
        self.raw = bytearray()  # Every byte, exactly as the program wrote it.
        self._pipe = pipe
        self._echo = echo
        self._changed = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        try:
            for raw in iter(self._pipe.readline, b""):
                line = raw.decode("utf-8", "backslashreplace").rstrip("\n")
                with self._changed:
                    self.raw += raw
                    self.lines.append(line)
                    self.times.append(time.monotonic())
                    self._changed.notify_all()
                if self._echo:
                    self._echo(line)
        finally:
            with self._changed:
                self._closed = True
                self._changed.notify_all()

    def wait_for(self, pattern: str, timeout: float, count: int = 1) -> re.Match | None:
        """Wait until `count` lines match `pattern`; return the last match."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                matches = [m for m in map(regex.search, self.lines) if m]
                if len(matches) >= count:
                    return matches[count - 1]
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    return None
                self._changed.wait(remaining)

    def arrival(self, pattern: str) -> float | None:
        """When the first line matching `pattern` arrived, or None."""
        regex = re.compile(pattern)
        with self._changed:
            return next((t for line, t in zip(self.lines, self.times) if regex.search(line)), None)

    def matches(self, pattern: str) -> list[re.Match]:
        regex = re.compile(pattern)
        with self._changed:
            return [m for m in map(regex.search, self.lines) if m]

    def text(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def caught_up(self, timeout: float = 5.0) -> None:
        """Wait until this reader has read everything written to the pipe so far (on a busy machine
        the reading thread may lag behind the program that writes)."""
        import fcntl
        import termios

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                pending = struct.unpack("i", fcntl.ioctl(self._pipe.fileno(), termios.FIONREAD, b"\0" * 4))[0]
            except (OSError, ValueError):
                return  # Closed: everything has been read.
            if pending == 0:
                # The pipe is empty; let the reading thread hand what it took to the lists (its count
                # of bytes stops growing).
                size = len(self.raw)
                time.sleep(0.05)
                if len(self.raw) == size:
                    return
            time.sleep(0.01)

    def join(self, timeout: float = 5.0) -> None:
        self._thread.join(timeout)


# ---------------------------------------------------------------------------
# Evidence from /proc and ps.


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    state: str  # R running, S sleeping, Z zombie, ...
    comm: str


def processes() -> list[Proc]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode("utf-8", "replace")
        except OSError:
            continue  # It exited meanwhile.
        # The command name is in parentheses and may itself hold spaces or ')'.
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        found.append(Proc(int(entry), int(fields[1]), fields[0], comm))
    return found


def _proc(pid: int) -> Proc | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("utf-8", "replace")
    except OSError:
        return None  # It exited (and was collected) meanwhile.
    comm = stat[stat.index("(") + 1 : stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2 :].split()
    return Proc(pid, int(fields[1]), fields[0], comm)


def children_of(pid: int) -> list[Proc]:
    """The children of a process, zombies included. Linux lists each thread's children in
    /proc/PID/task/TID/children (when built with CONFIG_PROC_CHILDREN): reading those is far cheaper
    than reading every process of the machine, which the checks would otherwise do every few
    milliseconds. Without the file, every process is read."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
        listed = []
        for task in tasks:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                listed += f.read().split()
    except FileNotFoundError:
        if not os.path.exists(f"/proc/{pid}"):
            return []
        return [p for p in processes() if p.ppid == pid]
    except OSError:
        return []
    found = [_proc(int(child)) for child in listed]
    return sorted((p for p in found if p is not None and p.ppid == pid), key=lambda p: p.pid)


def open_descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def sockets_of(pid: int) -> set[str]:
    """The sockets a process holds, as /proc names them (socket:[inode])."""
    sockets = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:"):
                sockets.add(link)
    except OSError:
        pass  # It has exited.
    return sockets


def tasks_of_user(uid: int) -> int:
    """How many tasks (threads, as RLIMIT_NPROC counts them) a real uid has."""
    count = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                status = dict(line.split(":", 1) for line in f if ":" in line)
            if int(status["Uid"].split()[0]) == uid:
                count += int(status["Threads"])
        except (OSError, KeyError, ValueError):
            continue
    return count


def steady_tasks_of_user(uid: int, timeout: float = 3.0) -> int:
    """tasks_of_user(uid), once it has stayed the same for a moment: that
    user's other programs (another tour's burst of clients, say) come and go,
    and a limit computed in the middle of a burst would be far off."""
    deadline = time.monotonic() + timeout
    last = tasks_of_user(uid)
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = tasks_of_user(uid)
        if now == last:
            break
        last = now
    return last


_reserved_uids: dict[int, socket.socket] = {}


def scratch_identity() -> tuple[int, int]:
    """An unused uid, and the gid of the same number: no account, no group,
    no process. Root runs a server under it to make RLIMIT_NPROC bite.

    The process limit counts every process of that uid, so two launchers
    (two tours, a tour and the tests) must never share one. The uid is
    reserved for this process until release_scratch_identity() (or its exit)
    by binding an abstract Unix socket named after it: the kernel keeps the
    name unique and frees it with the socket, leaving no file behind. The
    search starts at a random place, so that launchers rarely even meet."""
    import grp
    import pwd

    first, last = 54321, 60000
    start = random.randrange(first, last)
    for uid in [*range(start, last), *range(first, start)]:
        try:
            pwd.getpwuid(uid)
            continue
        except KeyError:
            pass
        try:
            grp.getgrgid(uid)
            continue
        except KeyError:
            pass
        claim = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            claim.bind(f"\0workshop-scratch-uid-{uid}")
        except OSError:
            claim.close()
            continue  # Another launcher holds it.
        if tasks_of_user(uid) == 0:
            _reserved_uids[uid] = claim
            return uid, uid
        claim.close()
    raise RuntimeError(f"no unused uid between {first} and {last}")


def release_scratch_identity(uid: int) -> None:
    claim = _reserved_uids.pop(uid, None)
    if claim is not None:
        claim.close()


def strace_problem() -> str | None:
    """None when strace can trace a program here; otherwise why not, in a few
    words. Containers often forbid ptrace: try it once on `true`."""
    if shutil.which("strace") is None:
        return "strace is not installed"
    try:
        result = subprocess.run(["strace", "-o", "/dev/null", "true"], stdin=subprocess.DEVNULL,
                                capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"strace did not run ({error})"
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        return lines[0] if lines else f"strace failed with status {result.returncode}"
    return None


# strace's options that hold each write() for 5 ms after the kernel has done
# it, before the program sees it return: the pause a busy machine may give a
# program at any system call's return, made long. A signal that arrives
# meanwhile is delivered right there, as the write() returns. Step h's
# demonstration needs exactly that moment (a SIGCHLD inside fflush(), after its
# write() and before stdio marks its buffer empty), which comes by itself in
# most bursts of 128 but not in every one. Trace the server alone
# (follow_forks=False): its children, untraced, run at full speed.
HOLD_WRITES = ["-e", "trace=write", "-e", "inject=write:delay_exit=5000", "-e", "signal=SIGCHLD"]


def handler_runs(trace: str, pid: int) -> tuple[list[list[str]], list[str]]:
    """From `strace -f -o FILE` output (traced with rt_sigreturn among the
    calls): the calls that process `pid` made inside each run of its SIGCHLD
    handler (between the signal and rt_sigreturn, the return from the
    handler), and the calls it made outside the handler, in order."""
    inside, outside, current, unfinished = [], [], None, ""
    for line in trace.splitlines():
        first, _, call = line.partition(" ")
        if first != str(pid):
            continue
        call = call.lstrip()  # strace pads the PID to a width.
        # strace -f splits a call that another process interrupts: 'write(5, "x", 1 <unfinished ...>',
        # then "<... write resumed>) = 1"; or "wait4(-1,  <unfinished ...>" (the space after the comma
        # kept), then "<... wait4 resumed>[...], WNOHANG, NULL) = 123". Join the two halves.
        if call.endswith(" <unfinished ...>"):
            unfinished = call[: -len(" <unfinished ...>")]
            continue
        if call.startswith("<..."):
            call, unfinished = unfinished + call.split(">", 1)[1], ""
        if call.startswith("--- SIGCHLD"):
            current = []
        elif current is not None and call.startswith("rt_sigreturn("):
            inside.append(current)
            current = None
        elif current is not None:
            current.append(call)
        else:
            outside.append(call)
    return inside, outside


def ps_rows(pid: int) -> str:
    """What `ps -o pid,ppid,stat,cmd` shows for a process and its children."""
    result = subprocess.run(
        ["ps", "-o", "pid,ppid,stat,cmd", "--pid", str(pid), "--ppid", str(pid)],
        capture_output=True,
        text=True,
        timeout=10,
    )
    return result.stdout.rstrip("\n")


# ---------------------------------------------------------------------------
# A server under test.


class ServerDidNotStart(RuntimeError):
    pass


class Server:
    """One step's server, on a port the kernel chooses, in its own process group.

    `step` is a step letter or the name of a program in build/bin (see
    binary()). Any other command that keeps the servers' contract (`--port 0`,
    then `Serving HTTP on port N ...` first) runs with `program`, the start of
    its command line (an interpreter and a script, say); `step` only names it.
    Optional limits apply to the server alone, set with the shell's `ulimit`
    as a participant would: `nofile` (open files) and `nproc` (processes of
    its user). Root ignores the process limit, so with `nproc` set a root
    launcher runs the server under an unused uid and gid of its own (see
    scratch_identity()), from a copy of the binary in a fresh folder that uid
    can reach (so not with `program`, which cannot be copied that way).
    With `strace` (a list of strace options, say ["-e", "trace=accept"]) the
    server runs under `strace -f -o FILE` (without -f with follow_forks=False);
    `pid` is then the server's, not strace's, and trace_text() returns what
    strace has written so far.
    Use as a context manager: leaving it kills and reaps the whole group.
    """

    def __init__(self, step: str, *args: str, nofile: int | None = None, nproc: int | None = None,
                 echo=None, echo_errors=None, program: list[str] | None = None,
                 strace: list[str] | None = None, env: dict[str, str] | None = None, port: int = 0,
                 follow_forks: bool = True):
        if program is not None and nproc is not None and os.geteuid() == 0:
            raise ValueError("a root launcher cannot apply nproc to a program given by `program`")
        self.step = step
        self.program = None if program is None else [str(p) for p in program]
        self.args = [str(a) for a in args]
        self.nofile = nofile
        self.nproc = nproc
        self.strace = None if strace is None else [str(o) for o in strace]
        self.follow_forks = follow_forks  # strace -f: the server's children too.
        self.echo = echo
        self.echo_errors = echo_errors
        self.env = env  # Variables added to the server's environment (LD_PRELOAD, say).
        self.requested_port = port  # 0: the kernel chooses (the default, and the only safe one on a shared machine).
        self.stopped_by_us = False  # stop() has killed it: an exit status after that is ours, not its own.
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.uid: int | None = None
        self.trace_file: str | None = None
        self._scratch_dir: str | None = None
        self._pid: int | None = None
        self.argv: list[str] | None = None

    def command(self) -> list[str]:
        """The command line, as a participant would type it, limits spelled out."""
        if self.argv is None:
            self.argv = self._build_command()
        return self.argv

    def _build_command(self) -> list[str]:
        program = self.program or [str(binary(self.step))]
        scratch = self.nproc is not None and os.geteuid() == 0
        if scratch or self.strace is not None:
            self._scratch_dir = tempfile.mkdtemp(prefix="workshop-")
            os.chmod(self._scratch_dir, 0o755)
        if scratch:
            program = [shutil.copy2(program[0], self._scratch_dir)]
        command = [*program, "--port", str(self.requested_port), *self.args]
        limits = []
        if self.nofile is not None:
            limits.append(f"ulimit -n {self.nofile}")
        if self.nproc is not None:
            limits.append(f"ulimit -u {self.nproc}")
        if limits:
            # bash, not sh: dash has no `ulimit -u`. `exec` keeps the PID.
            command = ["bash", "-c", " && ".join([*limits, f"exec {shlex.join(command)}"])]
        if scratch:
            self.uid, gid = scratch_identity()
            command = ["setpriv", f"--reuid={self.uid}", f"--regid={gid}", "--clear-groups", *command]
        if self.strace is not None:
            self.trace_file = os.path.join(self._scratch_dir, "strace.txt")
            command = ["strace", *(["-f"] if self.follow_forks else []), "-o", self.trace_file, *self.strace, *command]
        return command

    def start(self, timeout: float = 10.0) -> "Server":
        self.proc = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            process_group=0,
            cwd=self._scratch_dir,
            env=None if self.env is None else {**os.environ, **self.env},
        )
        self.out = Stream(self.proc.stdout, self.echo)
        self.err = Stream(self.proc.stderr, self.echo_errors)
        first = self.out.wait_for(r"^Serving HTTP on port (\d+) \.\.\.$", timeout)
        if first is None:
            self.stop()
            raise ServerDidNotStart(f"{' '.join(self.argv)} did not start: {self.err.text()!r}")
        if self.out.lines[0] != first.group(0):
            raise ServerDidNotStart(f"the first line was {self.out.lines[0]!r}")
        self.port = int(first.group(1))
        if self.strace is not None:
            # strace's only child is the server (it has printed, so it exists).
            self._pid = children_of(self.proc.pid)[0].pid
        return self

    @property
    def pid(self) -> int:
        return self._pid or self.proc.pid

    def trace_text(self) -> str:
        """What strace has written so far (with `strace`); a call still
        blocked shows as a last line without its end."""
        with open(self.trace_file, encoding="utf-8", errors="backslashreplace") as f:
            return f.read()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def exit_status(self) -> int | None:
        """Its exit status if it has exited (negative: killed by that signal), else None."""
        return None if self.proc is None else self.proc.poll()

    def wait_exit(self, timeout: float) -> int | None:
        """The exit status once the server has exited, or None if it is still running."""
        try:
            status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        # Let the readers catch up with the server's last words. (A child
        # still holding the pipes would keep them open: wait a little only.)
        self.out.join(2.0)
        self.err.join(2.0)
        return status

    def children(self) -> list[Proc]:
        return children_of(self.pid)

    def zombies(self) -> list[Proc]:
        return [p for p in self.children() if p.state == "Z"]

    def open_descriptors(self) -> int:
        return open_descriptors(self.pid)

    def wait_for_descriptors(self, expected: int, timeout: float = 5.0) -> int:
        """Wait until the server holds `expected` descriptors (it may still be
        working through connections that its clients have already left);
        return the count at the end."""
        deadline = time.monotonic() + timeout
        while True:
            count = self.open_descriptors()
            if count == expected or time.monotonic() > deadline:
                return count
            time.sleep(0.02)

    def settled_children(self, timeout: float = 10.0, quiet: float = 0.3) -> list[Proc]:
        """Wait until every child has exited (none is left running) and the
        server has stopped collecting them (the same children for `quiet`
        seconds: a SIGCHLD may still be on its way); then return the children
        left over, the zombies nobody collected."""
        deadline = time.monotonic() + timeout
        last, since = None, time.monotonic()
        while True:
            children = self.children()
            now = time.monotonic()
            if children != last:
                last, since = children, now
            elif all(p.state == "Z" for p in children) and now - since >= quiet:
                return children
            if now > deadline:
                return children
            time.sleep(0.02)

    def steady_children(self, timeout: float = 10.0, quiet: float = 0.3, idle: bool = False) -> list[Proc]:
        """Wait until the children, and their states, have not changed for `quiet` seconds: every child
        that was about to exit or be collected has (a pool's workers, which live on, are steady too).
        With `idle`, also until neither the server nor a child is runnable (R) all that time: on a busy
        machine a child that has closed its connection can wait longer than `quiet` to run on to its exit,
        and the server to act on that exit (step e dies of it)."""
        deadline = time.monotonic() + timeout
        last, since = None, time.monotonic()
        while True:
            children = self.children()
            now = time.monotonic()
            server = _proc(self.pid) if idle else None
            runnable = idle and (any(p.state == "R" for p in children) or (server is not None and server.state == "R"))
            if children != last or runnable:
                last, since = children, now
            elif now - since >= quiet or now > deadline:
                return children
            time.sleep(0.02)

    def wait_until_all_collected(self, timeout: float = 5.0, steady: float | None = None) -> list[Proc]:
        """Wait until the server has no child left at all, neither running nor
        a zombie; return the children still there at the timeout. With
        `steady`, give up sooner once the same zombies, and only zombies, have
        been left that long: nothing is collecting them."""
        deadline = time.monotonic() + timeout
        last, since = None, time.monotonic()
        while True:
            children = self.children()
            now = time.monotonic()
            if not children or now > deadline:
                return children
            if children != last:
                last, since = children, now
            elif steady is not None and now - since >= steady and all(p.state == "Z" for p in children):
                return children
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.stopped_by_us = self.stopped_by_us or self.proc.poll() is None
        pgid = self.proc.pid
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        reap_group(pgid)
        # The readers exist unless start() was interrupted (Ctrl-C) right after Popen.
        for stream in (getattr(self, "out", None), getattr(self, "err", None)):
            if stream is not None:
                stream.join()
        self.proc.stdout.close()
        self.proc.stderr.close()
        if self._scratch_dir:
            shutil.rmtree(self._scratch_dir, ignore_errors=True)
        if self.uid is not None:
            release_scratch_identity(self.uid)

    def __enter__(self) -> "Server":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# ---------------------------------------------------------------------------
# Clients: curl, client3, and a plain socket.


@dataclass
class Result:
    argv: list[str]
    returncode: int | None  # None: killed at its time limit
    stdout: str
    stderr: str
    seconds: float


def run_bounded(argv: list[str], timeout: float) -> Result:
    """Run a program in its own process group, and kill the group at the time limit."""
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            process_group=0)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
        returncode = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        returncode = None
    reap_group(proc.pid)
    return Result(argv, returncode, stdout.decode("utf-8", "backslashreplace"),
                  stderr.decode("utf-8", "backslashreplace"), time.monotonic() - start)


CURL_TIMED_OUT = 28  # curl's exit status when --max-time runs out.


def curl(port: int, max_time: float = 5.0, path: str = "/hello") -> Result:
    return run_bounded(["curl", "-sS", "--max-time", str(max_time), f"http://localhost:{port}{path}"],
                       timeout=max_time + 10)


def run_in_background(argv: list[str]) -> subprocess.Popen:
    """Start a program in its own process group; the caller communicate()s."""
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            process_group=0)


def client3(port: int, max_clients: int, max_conns: int = 1, timeout: float = 60.0,
            answer_within: float | None = None) -> Result:
    """Run client3, killed (returncode None) once it has printed nothing for `timeout` seconds, or
    at six times that in all. Each of its children prints as it ends, so on a machine busy enough
    to slow the burst down client3 goes on as long as it makes progress; one that waits on a server
    that accepts nothing is stopped as soon as before.

    `answer_within` is client3's own --timeout: how long each connection may wait for the server's
    answer, counted from its child's start (client3's default, 5 s, when not given). A check that
    needs every connection made gives a generous one: on a busy machine 128 children of client3
    and 128 of a correct server share the processors, and some answers come later than 5 s."""
    argv = [str(binary("client3")), "--host", "localhost", "--port", str(port),
            "--max-clients", str(max_clients), "--max-conns", str(max_conns)]
    if answer_within is not None:
        assert answer_within < timeout, "client3 must give up on a connection before it is killed for silence"
        argv += ["--timeout", f"{answer_within:g}"]
    start = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, process_group=0)
        printed, last, killed = 0, start, False
        while proc.poll() is None:
            time.sleep(0.05)
            now, size = time.monotonic(), os.fstat(out.fileno()).st_size
            if size != printed:
                printed, last = size, now
            if now - last > timeout or now - start > 6 * timeout:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                killed = True
        returncode = None if killed else proc.returncode
        reap_group(proc.pid)
        out.seek(0)
        err.seek(0)
        return Result(argv, returncode, out.read().decode("utf-8", "backslashreplace"),
                      err.read().decode("utf-8", "backslashreplace"), time.monotonic() - start)


def connect(port: int, timeout: float = 5.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def receive(sock: socket.socket, timeout: float, until: bytes | None = None) -> tuple[bytes, bool]:
    """Read for up to `timeout` seconds, until end of file or until `until` has
    arrived. Returns the bytes and whether end of file was seen."""
    deadline = time.monotonic() + timeout
    data = b""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or (until is not None and until in data):
            return data, False
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return data, False
        except ConnectionResetError:
            return data, True
        if not chunk:
            return data, True
        data += chunk


def http_get(port: int, timeout: float = 5.0, until: bytes | None = None,
             request: bytes = REQUEST) -> tuple[bytes, bool]:
    """One request on a fresh connection: the bytes received and whether the
    server closed the connection (end of file) within the timeout."""
    with connect(port, timeout) as sock:
        sock.sendall(request)
        return receive(sock, timeout, until)


def process_limit(margin: int) -> int:
    """A process limit (RLIMIT_NPROC) that leaves room for about `margin` more
    processes of the server's user. Root's servers run under an unused uid,
    which has no process yet; an ordinary user's limit counts every process
    that user already has."""
    if os.geteuid() == 0:
        return margin
    return steady_tasks_of_user(os.getuid()) + margin
