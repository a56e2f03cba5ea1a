"""What a check is, what it runs against, and how its verdict is kept.

A check takes a server program, starts it through the command-line contract
with the shared harness (tools/harness.py), and either passes or fails with
what it expected, what it saw (a short quote of the real output), and a hint
chosen from the evidence. Every check also reads the server's stderr: it must
be empty, unless the step's lesson is a failure message, and then it must be
exactly that message. When a check fails and its server had died, the verdict
says so, with the server's own exit status and stderr.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import harness
import steps
from checks import code


class Failed(Exception):
    """A check did not see its behaviour."""

    def __init__(self, expected: str, seen: str, hint: str | None = None):
        super().__init__(expected)
        self.expected = expected
        self.seen = seen
        self.hint = hint


class NotChecked(Exception):
    """The check cannot run here (a check of the code, with no code given)."""


def expect(condition, expected: str, seen: str, hint: str | None = None) -> None:
    if not condition:
        raise Failed(expected, seen, hint)


# Control characters, shown by name: a quote of real output must never look
# like the escaped text a server is asked to print ("\x1b" typed out by the
# server and a raw ESC byte must read differently).
_CONTROL_NAMES = {0: "NUL", 7: "BEL", 8: "BS", 9: "TAB", 13: "CR", 27: "ESC", 127: "DEL"}


def visible(text: str) -> str:
    """Text with each control character (but the line break) shown as <NAME>."""
    return "".join(f"<{_CONTROL_NAMES.get(ord(c), f'0x{ord(c):02x}')}>"
                   if (ord(c) < 0x20 and c != "\n") or ord(c) == 0x7f else c for c in text)


def quote(text, limit: int = 160) -> str:
    """A short quote of real output: control characters shown by name, line breaks as ' | '."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "backslashreplace")
    text = visible(text.strip("\n")).replace("\n", " | ")
    if not text:
        return "(nothing)"
    return repr(text[: limit - 3] + "..." if len(text) > limit else text)


# ---------------------------------------------------------------------------
# What a check runs against.

_TAKES_SLEEP: dict[str, str] = {}  # program -> what its --help printed
_TAKES_SLEEP_LOCK = threading.Lock()


@dataclass
class Context:
    program: str  # The server binary.
    step: steps.Step  # The step whose checks these are.
    source: Path | None = None  # Its C++ source, when known.
    servers: list[harness.Server] = field(default_factory=list)  # Every server this check started.
    folder: str | None = None  # A temporary folder of the check's own (the shim's logs).

    @property
    def program_path(self) -> Path:
        return Path(self.program)

    @property
    def callgraph(self) -> Path | None:
        """The compiler's call graph of the server, written beside it when make check built it."""
        return code.callgraph_of(self.program_path)

    def can_observe(self) -> bool:
        """Whether the shim can watch this server: it loads into a dynamically linked program only."""
        return harness.is_dynamic(self.program) and code.shim() is not None

    def events(self, server: harness.Server) -> "code.ShimEvents | None":
        """What the shim has seen of this server so far; None when it could not watch it."""
        log = getattr(server, "shim_log", None)
        return None if log is None else code.read_events(Path(log), server.pid)

    def takes(self, option: str) -> bool:
        """Whether the server has this option (--sleep, --workers): its --help says."""
        with _TAKES_SLEEP_LOCK:
            if self.program not in _TAKES_SLEEP:
                result = harness.run_bounded([self.program, "--help"], timeout=10)
                _TAKES_SLEEP[self.program] = result.stdout
            return option in _TAKES_SLEEP[self.program]

    def takes_sleep(self) -> bool:
        return self.takes("--sleep")

    def sleep_args(self, seconds: float = 0.2, required: bool = False) -> list[str]:
        """--sleep SECONDS for a server that sleeps after answering, nothing for one that does not;
        with `required`, a server without --sleep fails the check.

        Not 0 by default: step e's server dies when a child exits while it waits in accept(), and
        with --sleep 0 whether the parent is back in accept() by then is a race that the child
        often wins; 0.2 s gives the parent the time on any machine that is not overloaded. The
        checks whose verdict depends on it (eintr, survives) see the parent in accept() in /proc
        before the child exits, and try again when it was not."""
        if required:
            expect(self.takes_sleep(), f"the server takes --sleep SECONDS (step {self.step.letter} sleeps)",
                   f"{Path(self.program).name} --help lists no --sleep",
                   "Add the --sleep option: in getopt_long's table and switch, parsed with fractions "
                   "allowed, listed by --help.")
        return ["--sleep", f"{seconds:g}"] if self.takes_sleep() else []

    @contextlib.contextmanager
    def server(self, *args: str, nofile: int | None = None, env: dict[str, str] | None = None, port: int = 0,
               strace: list[str] | None = None):
        """with ctx.server(...) as server: the server, started; at the end its
        whole process group is killed and reaped, also when it did not start."""
        log = None
        if self.can_observe():
            if self.folder is None:
                self.folder = tempfile.mkdtemp(prefix="workshop-check-")
            log = str(Path(self.folder) / f"shim-{len(self.servers)}.log")
            # A server built with AddressSanitizer (make sanitize) wants its runtime loaded first, before
            # any preloaded library: let it accept the shim before it.
            asan = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS", ""), "verify_asan_link_order=0"]))
            env = {**(env or {}), "LD_PRELOAD": str(code.shim()), "WORKSHOP_SHIM_LOG": log, "ASAN_OPTIONS": asan}
        server = harness.Server(Path(self.program).name, *args, program=[self.program], nofile=nofile, env=env,
                                port=port, strace=strace)
        server.shim_log = log
        self.servers.append(server)
        try:
            yield self._start(server)
        finally:
            server.stop()

    def _start(self, server: harness.Server) -> harness.Server:
        try:
            server.start(timeout=20)  # Generous: on a busy machine a first start can take seconds.
        except harness.ServerDidNotStart:
            server.stop()
            err = server.err.text() if getattr(server, "err", None) else ""
            out = server.out.text() if getattr(server, "out", None) else ""
            raise Failed("the server starts and prints 'Serving HTTP on port N ...' first, flushed",
                         f"{' '.join([Path(self.program).name, *server.command()[1:]])} printed {quote(out)}, "
                         f"stderr {quote(err)}",
                         "It did not start. Run the reproduce command by hand and read its first lines: "
                         "an option it does not know, a failing socket call, or the first line missing or "
                         "never flushed (fflush(stdout)).")
        return server

    def quiet_stderr(self, server: harness.Server, allowed: str | None = None) -> None:
        """stderr is empty, or exactly the lesson's message. Read once every
        child has finished (the server's death, in step e, follows a child's
        exit), so that the verdict does not depend on timing."""
        server.steady_children(timeout=10, idle=True)
        server.err.caught_up()  # Everything the server wrote on stderr, read.
        text = server.err.text()
        lesson = self.step.lesson_stderr if allowed is None else allowed
        if text in ("", lesson):
            return
        hint = stderr_hint(text)
        if "accept: Interrupted system call" in text and server.alive():
            hint = ("accept() failed with EINTR, and the server reported it, then went on. EINTR is no failure: "
                    "the handler ran, nothing went wrong. Call accept() again without a word.")
        raise Failed("nothing on stderr" + (f" but {lesson!r}" if lesson else ""), f"stderr {quote(text)}", hint)


def stderr_hint(text: str) -> str:
    """What a server's error message most likely means, for a participant."""
    if "poll: Interrupted system call" in text or "epoll_wait: Interrupted system call" in text:
        return ("poll() (or epoll_wait()) failed with EINTR: a signal's handler ran while it waited, and Linux never "
                "restarts poll() after a handler, SA_RESTART or not (signal(7)). Nothing went wrong: call it again.")
    if "accept: Interrupted system call" in text:
        return ("accept() failed with EINTR: a child's exit ran the SIGCHLD handler while the parent waited "
                "in accept(). Nothing went wrong: call accept() again when errno is EINTR.")
    if "Too many open files" in text:
        return "The server ran out of descriptors: the parent must close its copy of each connection after fork()."
    if "Bad file descriptor" in text:
        return ("A descriptor was closed twice or used after close. A child that does not end with _exit() "
                "after its work runs on into the parent's code and closes the parent's descriptors again.")
    if "Resource temporarily unavailable" in text and "fork" in text:
        return "fork() failed: too many processes. Are children collected, and do they exit after answering?"
    return "Every system call that fails prints 'call: reason'; find which call failed, and why."


@dataclass(frozen=True)
class Check:
    key: str  # Short and unique: the matrix's row name, and what `make hint` remembers.
    title: str  # One line: the behaviour, as make check prints it.
    run: Callable[[Context], None]
    hint: str  # The hint when it fails, unless the evidence chose a better one.
    reproduce: str  # By hand; {server} is the binary.
    lesson_failure: bool = False  # The behaviour is the failure the step shows.
    needs_source: bool = False  # It reads the code (as the compiler sees it), not only the running server.
    long: bool = False  # It takes seconds even when it passes (bursts, limits): started first.


@dataclass
class Outcome:
    check: Check
    passed: bool
    expected: str = ""
    seen: str = ""
    hint: str = ""
    seconds: float = 0.0
    skipped: str = ""  # Why the check could not run (it then counts as neither).

    def reproduce(self, program: str) -> str:
        return self.check.reproduce.format(server=program)


def _death(context: Context) -> str:
    """', and the server had died: exit status N, stderr ...' when a server of the check died by itself."""
    for server in context.servers:
        status = server.exit_status()
        if status is not None and not server.stopped_by_us:
            return f"; the server had died: exit status {status}, stderr {quote(server.err.text())}"
    return ""


def run(check: Check, program, step: str, source=None) -> Outcome:
    """Run one check of `step` against `program`; never raises for a failed behaviour."""
    started = time.monotonic()
    context = Context(str(program), steps.STEPS[step], None if source is None else Path(source))
    try:
        check.run(context)
    except NotChecked as reason:
        return Outcome(check, True, skipped=str(reason))
    except Failed as failure:
        seen = failure.seen
        if "died" not in seen and "exit status" not in seen:
            seen += _death(context)
        return Outcome(check, False, failure.expected, seen, failure.hint or check.hint, time.monotonic() - started)
    except (OSError, harness.ServerDidNotStart) as error:
        return Outcome(check, False, "the behaviour above", f"{type(error).__name__}: {error}{_death(context)}",
                       check.hint, time.monotonic() - started)
    except Exception as error:  # The judge's own fault: say so, never blame the server for it.
        return Outcome(check, False, "the check to run to its end",
                       f"the check itself failed ({type(error).__name__}: {error}): this is a bug of make check, "
                       "not of your server; please report it", "Run make check again; report it if it stays.",
                       time.monotonic() - started)
    finally:
        if context.folder:
            shutil.rmtree(context.folder, ignore_errors=True)
    return Outcome(check, True, seconds=time.monotonic() - started)


def run_step(step: str, program, checks: dict[str, Check], on_outcome: Callable[[Outcome], None] | None = None,
             source=None, keys: list[str] | None = None, jobs: int = 4) -> list[Outcome]:
    """Run step `step`'s checks against `program`, `jobs` at a time, the long ones first; report each
    outcome to on_outcome in the step's order, as soon as it and the ones before it are known."""
    wanted = [checks[key] for key in steps.STEPS[step].checks if keys is None or key in keys]
    order = sorted(wanted, key=lambda c: not c.long)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {c.key: pool.submit(run, c, program, step, source) for c in order}
        outcomes = []
        for check in wanted:
            outcome = futures[check.key].result()
            outcomes.append(outcome)
            if on_outcome:
                on_outcome(outcome)
    return outcomes


def describe(outcome: Outcome, program: str) -> str:
    return (f"{outcome.check.title}\n  expected: {outcome.expected}\n  seen:     {outcome.seen}\n"
            f"  by hand:  {outcome.reproduce(program)}\n  hint:     {outcome.hint}")
