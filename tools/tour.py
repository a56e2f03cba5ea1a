"""The tour: every lesson of the workshop, live, for the instructor's screen.

    make tour            every step (tools/steps.py), in order: the article's seven, then h, i, j
    make tour STEP=d     one step
    make tour PAUSE=1    wait for Enter before each lesson (for a presenter)

For each step it shows the commands a participant would type, runs them for
real (through the same harness as the tests), shows what they printed, and
says in one sentence what was just seen and why. For the signal lessons (e,
f and h) it also runs the server under strace and shows what the kernel saw.
Waits are short (a sleep of 2 seconds, not the article's 60). It exits 0 when
every lesson showed as expected; otherwise it names the lessons that did not
show and exits 1.

What it measures, it measures for its own servers only (their children, their
descriptors, their own user's processes), so that two tours, or a tour and
`make test`, can run at once.
"""

from __future__ import annotations

import os
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import termios
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
import steps  # noqa: E402

SLEEP = 2  # Seconds; the article uses 60 (and 3 for step e).


# ---------------------------------------------------------------------------
# The screen: colour on a terminal, plain text in a pipe or with NO_COLOR.

COLOUR = sys.stdout.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


_screen = threading.Lock()  # The server's echo runs on other threads: one line at a time.


def say(text: str = "") -> None:
    with _screen:
        print(text, flush=True)


def style(text: str, code: str) -> str:
    return f"\033[{code}m{text}\033[0m" if COLOUR else text


# What the programs and the kernel printed is the brightest thing on the
# screen (bold, in the terminal's own colour: readable on a projector, dark or
# light); the commands are coloured, the tour's own words plain.
EVIDENCE = "1"
FAILURE = "1;31"
COMMAND = "36"


def heading(step: str, title: str) -> None:
    say()
    say(style(f"━━ Step {step}: {title} ━━", "1;36"))


def command(text: str) -> None:
    say(style(f"$ {text}", COMMAND))


def output(text: str, prefix: str = "  ", colour: str = EVIDENCE) -> None:
    for line in text.rstrip("\n").splitlines():
        say(style(f"{prefix}{line}", colour))


def wrapped(text: str, first: str, rest: str) -> str:
    """On a terminal, the tour's own words break between words at the screen's
    edge (a projector's window is rarely wide); in a pipe they stay one line."""
    if not sys.stdout.isatty():
        return first + text
    width = max(40, shutil.get_terminal_size().columns - 1)
    return textwrap.fill(text, width, initial_indent=first, subsequent_indent=rest,
                         break_on_hyphens=False, break_long_words=False)


def explain(text: str) -> None:
    say(wrapped(text, "→ ", "  "))


def note(text: str) -> None:
    """The tour's own remark on what it does (not evidence)."""
    say(wrapped(f"({text})", "  ", "   "))


def relative(word: str) -> str:
    """Show paths inside the repository as a participant there would type them."""
    return word.replace(f"{harness.REPO}/", "./")


def as_typed(argv: list[str]) -> str:
    """A command line as a participant would type it into a shell."""
    return shlex.join(relative(a) for a in argv)


class Echo:
    """Prints a server's lines as they come, up to a limit per phase, and
    counts the rest, so a burst of 128 children does not flood the screen.
    With hold=True it keeps the lines until flush() (for the server's
    stderr: its dying words belong after what led to them)."""

    def __init__(self, label: str, colour: str, hold: bool = False):
        self.started = time.monotonic()  # Lines show the seconds since then.
        self.label = label
        self.colour = colour
        self.hold = hold
        self.held: list[str] = []
        self.budget = 0
        self.hidden = 0

    def allow(self, lines: int) -> None:
        self.flush()
        self.budget = lines

    def flush(self) -> None:
        for line in self.held:
            say(style(f"  {self.label}│ {line}", self.colour))
        self.held = []
        if self.hidden:
            say(f"  {self.label}│ … and {self.hidden} more lines")
            self.hidden = 0

    def __call__(self, line: str) -> None:
        if self.hold:
            self.held.append(line)
        elif self.budget > 0:
            self.budget -= 1
            say(style(f"  {self.label} {time.monotonic() - self.started:4.1f}s│ {line}", self.colour))
        else:
            self.hidden += 1


# The strace options for the signal lessons: the calls that show the lesson
# (glibc's accept() is the accept system call on x86-64, accept4 on some
# other machines), and the one signal that matters.
STRACE = ["-e", "trace=accept,accept4,wait4", "-e", "signal=SIGCHLD"]


class Trace:
    """What strace wrote about one server, read line by line. Each line starts
    with the PID of the process it is about (strace -f -o FILE), padded to
    the width of the longest PID seen."""

    def __init__(self, text: str, server: int):
        self.text = text
        self.lines = text.splitlines()
        self.server = server
        self._split = [re.match(r"(\d+)\s+(.*)", line) for line in self.lines]

    def _of(self, server: bool) -> list[str]:
        return [m.group(2) for m in self._split if m and (int(m.group(1)) == self.server) == server]

    def children_exited(self) -> int:
        return sum(1 for event in self._of(server=False) if event.startswith("+++ exited with "))

    def deliveries(self) -> int:
        """The SIGCHLD signals the server received (each one ran its handler once)."""
        return sum(1 for event in self._of(server=True) if event.startswith("--- SIGCHLD "))

    def interrupted(self) -> bool:
        return any("accept" in event and "ERESTARTSYS" in event for event in self._of(server=True))

    def restarted(self) -> bool:
        """accept() was called again after the handler's wait4."""
        events = self._of(server=True)
        waits = [i for i, event in enumerate(events) if "wait4" in event]
        return bool(waits) and any(event.startswith("accept") for event in events[waits[-1] + 1:])

    def server_exited(self, status: int) -> bool:
        return f"+++ exited with {status} +++" in self._of(server=True)


# Step h's strace options: the handler's calls up to its return
# (rt_sigreturn), and the main loop's poll(), its read() of the pipe, its
# wait4() and its printing.
STRACE_H = ["-e", "trace=poll,read,write,wait4,rt_sigreturn", "-e", "signal=SIGCHLD"]


def printed_twice(lines: list[str], pattern: str = r"^Child \d+ ") -> dict[str, int]:
    """The lines about one process (its PID in them) that were printed more than once."""
    regex = re.compile(pattern)
    counts = Counter(line for line in lines if regex.match(line))
    return {line: n for line, n in counts.items() if n > 1}


class ChildWatch:
    """Samples a server's children every 5 ms while a load runs (in a
    `with` block): the most it had at once, and every PID seen."""

    def __init__(self, server: harness.Server):
        self.server = server
        self.most = 0
        self.seen: set[int] = set()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._done.is_set():
            children = [p for p in self.server.children() if p.state != "Z"]
            self.most = max(self.most, len(children))
            self.seen.update(p.pid for p in children)
            self._done.wait(0.005)

    def __enter__(self) -> "ChildWatch":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()


def shorten(line: str) -> str:
    """A strace line made fit for a projector: the columns strace aligns its
    results to, and the signal's details beyond the child's PID, left out."""
    line = re.sub(r"\)\s+= ", ") = ", line)
    return re.sub(r"(--- SIGCHLD \{si_signo=SIGCHLD, si_code=\w+, si_pid=\d+), [^}]*\}", r"\1, ...}", line)


# ---------------------------------------------------------------------------
# Running things, and showing them as typed.


class Tour:
    def __init__(self, pause: bool = False):
        self.servers: list[harness.Server] = []
        self.background: list = []  # Programs started with & (the timed curls).
        self.missed: list[str] = []
        self.pausing = pause
        self._strace_problem: str | None | bool = False  # False: not asked yet.
        self.step: str | None = None  # The lesson being shown.
        self._strace_problem_said: str | None = None  # The lesson that said strace cannot trace.

    def expect(self, lesson: str, shown: bool) -> bool:
        if not shown:
            self.missed.append(lesson)
            say(style(f"✗ This lesson did not show: {lesson}", FAILURE))
        return shown

    def pause(self, what: str) -> None:
        """With PAUSE=1: wait for Enter (end of input: go on without waiting)."""
        if not self.pausing:
            return
        if sys.stdin.isatty():
            # Forget keys pressed before the prompt shows (a presenter's
            # double press must not skip this pause); keys pressed once it is
            # on the screen count, so forget them before printing it.
            termios.tcflush(sys.stdin, termios.TCIFLUSH)
        say()
        say(f"⏎  Press Enter for {what}")
        if sys.stdin.readline() == "":
            note("no more input: going on without pausing")
            self.pausing = False

    def tracing(self, options: list[str] = STRACE) -> list[str] | None:
        """strace's options when strace can trace here, else None (said once
        per lesson)."""
        if self._strace_problem is False:
            self._strace_problem = harness.strace_problem()
        if self._strace_problem is None:
            return options
        if self._strace_problem_said != self.step:
            note(f"strace cannot trace here ({self._strace_problem}): the lesson runs without it")
            self._strace_problem_said = self.step
        return None

    def start(self, step: str, *args, lines: int = 20, server: harness.Server | None = None,
              **options) -> harness.Server:
        out = Echo("server", EVIDENCE)
        err = Echo("server stderr", FAILURE, hold=True)
        out.allow(3)  # Its first lines: the port, and step c's parent PID.
        if server is None:
            server = harness.Server(step, *args, **options)
        server.echo, server.echo_errors = out, err
        server.out_echo = out
        server.err_echo = err
        self.servers.append(server)
        command(f"{as_typed(server.command())} &")
        server.start()
        time.sleep(0.1)  # Let its first lines reach the screen before ours.
        out.allow(lines)
        return server

    def curl(self, server: harness.Server, max_time: float = 10) -> harness.Result:
        command(f"curl --max-time {max_time:g} http://localhost:{server.port}/hello")
        result = harness.curl(server.port, max_time=max_time)
        time.sleep(0.1)
        output(result.stdout + result.stderr)
        status = "timed out" if result.returncode == harness.CURL_TIMED_OUT else f"exit status {result.returncode}"
        output(f"(curl took {result.seconds:.1f} s, {status})")
        return result

    def client3(self, server: harness.Server, max_clients: int, max_conns: int = 1,
                answer_within: float | None = None) -> harness.Result:
        budget = "" if answer_within is None else f" --timeout {answer_within:g}"
        command(f"./build/bin/client3 --port {server.port} --max-clients {max_clients} --max-conns {max_conns}"
                + budget)
        result = harness.client3(server.port, max_clients, max_conns,
                                 **({} if answer_within is None else {"timeout": 3 * answer_within,
                                                                      "answer_within": answer_within}))
        time.sleep(0.1)
        lines = result.stdout.splitlines()
        numbers = sum(1 for line in lines if line.isdigit())
        if numbers:
            output(f"({numbers} connection number{'s' if numbers != 1 else ''} printed)")
        output("\n".join(line for line in lines if not line.isdigit()))
        first_errors = sorted(set(result.stderr.splitlines()))[:3]
        output("\n".join(first_errors), prefix="  client3 stderr│ ")
        return result

    def ps(self, server: harness.Server, rows: int = 8) -> list[harness.Proc]:
        command(f"ps -o pid,ppid,stat,cmd --pid {server.pid} --ppid {server.pid}")
        table = harness.ps_rows(server.pid).splitlines()
        output("\n".join(table[: rows + 1]))
        if len(table) > rows + 1:
            say(f"  … and {len(table) - rows - 1} more rows")
        return server.children()

    def trace(self, server: harness.Server, lines: list[str] | None = None, first: int = 1) -> Trace:
        """Show the trace as `cat` would (or, given the lines from line
        `first` on, as `tail` would)."""
        trace = Trace(server.trace_text(), server.pid)
        command(f"cat {server.trace_file}" if first == 1 else f"tail -n +{first} {server.trace_file}")
        for line in trace.lines if lines is None else lines:
            say(style(f"  strace│ {shorten(line)}", EVIDENCE))
        return trace

    def exited(self, server: harness.Server, timeout: float) -> int | None:
        """Wait for the server to exit; show its last words and its status."""
        status = server.wait_exit(timeout)
        server.out_echo.flush()
        server.err_echo.flush()
        if status is not None:
            output(f"(the server exited with status {status})")
        return status

    def stop(self, server: harness.Server) -> None:
        server.out_echo.flush()
        server.err_echo.flush()
        server.stop()

    def stop_all(self) -> None:
        for proc in self.background:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
        for server in self.servers:
            server.stop()
        # A Ctrl-C that lands while Popen() is still starting a server leaves
        # that server unknown to the tour (Popen never returned): kill and
        # collect whatever child is left, so nothing outlives the tour.
        harness.kill_and_reap_children()

    # -----------------------------------------------------------------------
    # The lessons.

    def step_a(self) -> None:
        heading("a", "an iterative server answers one client at a time")
        server = self.start("a")
        result = self.curl(server)
        self.expect("a: curl gets Hello, World! and the server prints the request",
                    result.stdout == "Hello, World!\n" and server.out.wait_for(r"^GET /hello", 10) is not None)
        explain("The server read the request, printed it, answered and closed the connection; "
                "only then does it accept() the next one.")
        self.stop(server)

    def step_b(self) -> None:
        heading("b", "a sleeping iterative server keeps the next client waiting")
        server = self.start("b", "--sleep", SLEEP)
        clients = self._two_curls(server)
        first_byte = self._timings(clients)
        # Curl #2 starts once the server has read #1's request, which it answers
        # at once and then sleeps: #2's own clock starts a little into that sleep
        # (more on a busy machine, where a curl takes a while to start), so it
        # must wait at least half of it, not all.
        self.expect("b: the second client waits out the server's sleep for its answer",
                    first_byte[0] < SLEEP / 2 and first_byte[1] >= SLEEP / 2)
        explain(f"Both connected at once (the kernel's listen queue, the backlog, held the second), but the "
                f"server slept {SLEEP} s after the first answer before it accepted the second: it serves one "
                f"client at a time.")
        self.stop(server)

    def _two_curls(self, server: harness.Server) -> list:
        """Two curls, the second once the server has read the first's request,
        each timed. (Started a fixed moment apart, on a busy machine the second
        curl could connect first: a curl takes longer to start than a fifth of a
        second there, and #1 would then be the one that waited.)"""
        clients = []
        for number in (1, 2):
            command(f"curl -w '%{{time_starttransfer}} %{{time_total}}' http://localhost:{server.port}/hello &"
                    f"   # curl #{number}")
            self.background.append(harness.run_in_background(
                ["curl", "-sS", "--max-time", str(4 * SLEEP + 5), "-w", "%{time_starttransfer} %{time_total}\n",
                 f"http://localhost:{server.port}/hello"]))
            clients.append(self.background[-1])
            if number == 1:
                server.out.wait_for(r"^GET /hello", 10)
        return clients

    def _timings(self, clients: list) -> list[float]:
        """Show each curl's answer and timing; return the times to the first byte."""
        first_byte = []
        for number, proc in enumerate(clients, 1):
            out, _ = proc.communicate(timeout=4 * SLEEP + 10)
            answer, _, timing = out.decode().rstrip("\n").rpartition("\n")
            start, total = (float(t) for t in timing.split())
            output(answer)
            output(f"(curl #{number}: answer after {start:.1f} s, connection closed after {total:.1f} s)")
            first_byte.append(start)
        return first_byte

    def step_c(self) -> None:
        heading("c", "fork(): a child per connection, every client answered at once")
        server = self.start("c", "--sleep", SLEEP)
        clients = self._two_curls(server)
        time.sleep(0.3)
        children = self.ps(server)
        first_byte = self._timings(clients)
        reported = server.out.matches(rf"^Child PID: (\d+)\. Parent PID {server.pid}$")
        self.expect("c: both clients answered at once, by two children of the server",
                    max(first_byte) < SLEEP / 2 and len(reported) == 2
                    and {int(m.group(1)) for m in reported} <= {p.pid for p in children})
        explain("Each connection got its own child process (PPID = the server's PID); the children sleep, "
                "the parent is already back in accept().")
        self.stop(server)

    def step_d(self) -> None:
        heading("d", "duplicates not closed, children not collected")
        server = self.start("d")
        result = self.curl(server, max_time=SLEEP)
        self.expect("d: curl gets the body but never ends",
                    result.stdout == "Hello, World!\n" and result.returncode == harness.CURL_TIMED_OUT)
        explain("The child answered, closed its copy and exited, but the parent still holds a copy of the "
                "connection: the kernel sends no FIN, and curl waits for more.")
        server.settled_children()
        zombies = [p for p in self.ps(server) if p.state == "Z"]
        self.expect("d: the finished child is a zombie", len(zombies) == 1)
        explain("The child has exited, but nobody wait()ed for it: it stays in the process table as a zombie "
                "(Z, <defunct>).")
        if zombies:
            command(f"kill -9 {zombies[0].pid}")
            killed = harness.run_bounded(["kill", "-9", str(zombies[0].pid)], timeout=10)
            output(killed.stdout + killed.stderr)
            still = [p for p in self.ps(server) if p.state == "Z"]
            self.expect("d: kill -9 leaves the zombie listed", killed.returncode == 0 and still == zombies)
            explain("kill -9 changed nothing: a zombie has already exited, there is nothing left to kill. "
                    "Only its parent's wait() removes it.")
        self.stop(server)

        self.pause("step d, part 2: too many open files")
        say()
        server = self.start("d", nofile=32, lines=3)
        before = server.open_descriptors()
        command(f"ls /proc/{server.pid}/fd | wc -l")
        output(str(before))
        self.client3(server, 64)
        if server.wait_exit(5) is None:  # The backlog of 5 made the kernel drop part of the burst.
            self.client3(server, 64)
        status = self.exited(server, 5)
        held = server.out.matches(r"^Connections held open by the parent: \d+$")
        if held:
            output(f"(its last count: {held[-1].group(0)})")
        self.expect("d: the server dies with accept: Too many open files",
                    status == 1 and server.err.text() == "accept: Too many open files")
        explain("Each held connection costs the parent a descriptor; with a limit of 32 open files, accept() "
                "fails with EMFILE and the server is gone.")
        self.stop(server)

        self.pause("step d, part 3: the process limit")
        say()
        self.expect("d: the server dies with fork: Resource temporarily unavailable", self._process_limit())

    MARGIN = 10  # Processes the server's user may add under the limit.
    ATTEMPTS = 3  # For f's single request.
    LIMIT_ATTEMPTS = 5  # For the process limit, as an ordinary user.

    def _process_limit(self) -> bool:
        """Zombies count against the process limit, until fork() fails.

        As root, the server runs under an unused uid of its own, and nothing
        else counts. As an ordinary user, every process of that user counts,
        another tour's burst of clients too: the count is taken when it holds
        still, the server is then given connections until it dies, and if
        other processes came or went so much that it died too early or not at
        all, the lesson is shown again."""
        for attempt in range(self.LIMIT_ATTEMPTS):
            if attempt:
                say()
                note("other programs of this user started or ended processes meanwhile, so the limit was "
                     "off: once more, in a moment")
                time.sleep(1)  # Let a burst of theirs pass.
            shown = self._process_limit_attempt()
            if shown is not None:
                return shown
        return False

    def _process_limit_attempt(self) -> bool | None:
        """True or False: the lesson showed or not; None: disturbed, try again."""
        scratch = os.geteuid() == 0
        count = 0 if scratch else harness.steady_tasks_of_user(os.getuid())
        limit = count + self.MARGIN
        server = harness.Server("d", nproc=limit)
        server.command()  # Chooses the unused uid, as root.
        uid = server.uid if scratch else os.getuid()
        if scratch:
            note(f"root ignores ulimit -u, so the server runs as unused uid {uid}, from a copy of the "
                 f"program that uid can read")
            count = harness.tasks_of_user(uid)
        command(f"ps -u {uid if scratch else os.environ.get('USER', uid)} -L --no-headers | wc -l"
                f"   # the processes (threads) of the server's user now")
        output(str(count))
        note(f"the limit: {count} processes now + a margin of {self.MARGIN} = ulimit -u {limit}")
        server = self.start("d", server=server, lines=3)
        self.client3(server, 1, 5)
        zombies = [p for p in server.settled_children() if p.state == "Z"]
        self.ps(server, rows=3)
        if len(zombies) != 5 or not server.alive():
            self.stop(server)
            return None if not scratch else False
        output(f"({len(zombies)} zombies, each counting against the limit of {limit})")
        users = "the server itself and its 5 zombies" if scratch else \
            "the server itself, its 5 zombies, and client3's two processes while it runs"
        note(f"the margin of {self.MARGIN} is shared: {users} take part of it, so the next few connections' "
             f"children fill it up")
        # Five more connections at a time (no more than step d's backlog
        # holds), each round once the server has taken the last, until it
        # dies: normally in the next round. If other processes of this user
        # ended meanwhile, it has more room, and more rounds (not shown).
        held = 5
        for batch in range(limit // 5 + 2):
            if not server.alive():
                break
            if batch < 2:
                self.client3(server, 1, 5)
            else:
                harness.client3(server.port, 1, 5)
            held += 5
            server.out.wait_for(r"^Connections held open by the parent: \d+$", 5, count=held)
        if batch > 2:
            note(f"{batch - 2} more rounds of 5 connections not shown: other programs of this user ended "
                 f"processes meanwhile, leaving the server more room")
        status = self.exited(server, 5)
        if status is None and not scratch:
            self.stop(server)
            return None
        shown = status == 1 and server.err.text() == "fork: Resource temporarily unavailable"
        if shown:
            explain("Zombies still count as the user's processes: when they reach the limit, fork() fails "
                    "with EAGAIN.")
        self.stop(server)
        return shown

    def step_e(self) -> None:
        heading("e", "a SIGCHLD handler collects the child, and accept() dies of EINTR")
        strace = self.tracing()
        server = self.start("e", "--sleep", SLEEP, strace=strace)
        result = self.curl(server)
        status = self.exited(server, 10)
        self.expect("e: the server dies with accept: Interrupted system call",
                    result.returncode == 0 and status == 1
                    and server.err.text() == "accept: Interrupted system call")
        explain("curl ended normally (duplicates are closed again). When the child exited, its SIGCHLD "
                "interrupted the parent's accept(); the handler ran, and accept() returned EINTR.")
        if strace:
            say()
            trace = self.trace(server)
            self.expect("e: strace shows accept interrupted, SIGCHLD delivered, the server's exit",
                        trace.interrupted() and trace.deliveries() == 1 and trace.server_exited(1))
            explain("What the kernel saw: the child exited; the server's accept was interrupted (ERESTARTSYS: "
                    "the kernel would restart it if the handler had SA_RESTART), SIGCHLD was delivered, the "
                    "handler's wait4 collected the child, and accept() returned EINTR: the server exited.")
        self.stop(server)

    def step_f(self) -> None:
        heading("f", "accept() restarted; but a burst of clients leaves zombies")
        strace = self.tracing()
        server = self.start("f", lines=12, strace=strace)
        # A child that answers and exits before the server is back in
        # accept() (under load it can) interrupts nothing: then one more curl.
        curls, seen = 0, 0
        for attempt in range(self.ATTEMPTS if strace else 1):
            if attempt:
                say()
                note("the child exited before the server was back in accept(), so there was nothing to "
                     "interrupt this time: once more")
                server.out_echo.allow(12)
            self.curl(server)
            curls += 1
            server.settled_children()
            server.out_echo.flush()
            one = self.ps(server)
            if not strace:
                break
            text = self._wait_for_trace(server, Trace.restarted).text
            trace = Trace(text[seen:], server.pid)  # This request's lines.
            self.trace(server, trace.lines, first=text.count("\n", 0, seen) + 1)
            seen = text.rfind("\n") + 1  # A call still blocked is shown again next time.
            if trace.interrupted():
                break
        self.expect("f: one request leaves no zombie, and the server lives", one == [] and server.alive())
        if strace:
            self.expect("f: strace shows accept interrupted, SIGCHLD delivered, and accept called again",
                        trace.interrupted() and trace.deliveries() == 1 and trace.restarted())
            explain("The same interruption as in step e (ERESTARTSYS, then SIGCHLD and the handler's wait4), "
                    "but this time the server called accept() again: it is waiting for the next client.")
        else:
            explain("If the child exited while the server waited in accept(), accept() failed with EINTR, and the "
                    "server simply called it again.")

        self.pause("step f, part 2: a burst of 128 clients")
        say()
        server.out_echo.allow(0)
        result = self.client3(server, 128)
        server.out.wait_for(r"^GET /hello", 10, count=128 + curls)
        zombies = [p for p in server.settled_children() if p.state == "Z"]
        server.out_echo.flush()
        self.ps(server, rows=4)
        collected = len(server.out.matches(r"^Child \d+ terminated")) - curls
        output(f"({len(zombies)} zombies; the handler reported {collected} of 128 children)")
        self.expect("f: a burst of 128 clients leaves zombies", result.returncode == 0 and len(zombies) > 0)
        if strace:
            trace = Trace(server.trace_text(), server.pid)
            exited, deliveries = trace.children_exited(), trace.deliveries()
            command(f"grep -cE '^{server.pid} +--- SIGCHLD' {server.trace_file}   # signals the server received")
            output(str(deliveries))
            command(f"grep -vE '^{server.pid} ' {server.trace_file} | grep -c '+++ exited'   # children that exited")
            output(str(exited))
            output(f"({exited} children exited: 128 from the burst and {curls} from curl; the server received "
                   f"{deliveries} SIGCHLD; {exited} - {deliveries} = {exited - deliveries}, the zombies ps shows: "
                   f"{len(zombies)})")
            self.expect("f: strace counts fewer SIGCHLD deliveries than children exited, one per zombie short",
                        deliveries < exited and exited - deliveries == len(zombies))
        explain("128 children exited close together. SIGCHLD signals are not queued: those that arrived while "
                "one was pending (or while the handler ran, which blocks SIGCHLD) were merged, and each run of "
                "the handler wait()ed only once.")
        self.stop(server)

    @staticmethod
    def _wait_for_trace(server: harness.Server, ready, timeout: float = 10.0) -> Trace:
        """The trace once `ready(trace)` holds (strace writes as the calls come)."""
        deadline = time.monotonic() + timeout
        while True:
            trace = Trace(server.trace_text(), server.pid)
            if ready(trace) or time.monotonic() > deadline:
                return trace
            time.sleep(0.05)

    def step_g(self) -> None:
        heading("g", "a waitpid() loop collects every child")
        server = self.start("g", lines=0)
        before = server.open_descriptors()
        command(f"ls /proc/{server.pid}/fd | wc -l")
        output(str(before))
        ok = True
        for _ in range(3):
            result = self.client3(server, 128)
            ok = ok and result.returncode == 0
        server.out.wait_for(r"^Child \d+ terminated", 10, count=3 * 128)
        left = server.wait_until_all_collected()
        server.out_echo.flush()
        self.ps(server)
        after = server.wait_for_descriptors(before)
        command(f"ls /proc/{server.pid}/fd | wc -l")
        output(str(after))
        collected = len(server.out.matches(r"^Child \d+ terminated"))
        output(f"(the handler reported {collected} of {3 * 128} children; {len(left)} left)")
        self.expect("g: bursts of 128 leave no zombie, descriptors flat, server alive",
                    ok and left == [] and after == before and server.alive())
        explain("One run of the handler now loops with waitpid(-1, &status, WNOHANG) until no exited child is "
                "left, however many signals were merged into that run.")
        self.stop(server)

    # Step h: first what goes wrong in step g with a maintainer's logging,
    # then step h's handler under strace.
    BURSTS = 3  # Shown, before strace makes the moment come (most bursts show it by themselves).
    MORE_BURSTS = 7  # Without strace: the same command again, not shown.

    def step_h(self) -> None:
        heading("h", "the handler only takes note, the main loop reaps")
        note("first, what goes wrong in step g: webserver3g_logging is step g with a maintainer's logging "
             "(step_h_selfpipe/demo_g_logging.cpp), a printf() in the main loop after each fork(), and the "
             "handler's report printed with printf() too")
        server = self.start("webserver3g_logging", lines=0)
        with tempfile.TemporaryDirectory(prefix="workshop-tour-") as folder:
            log = Path(folder) / "log.txt"
            note(f"the server's output reaches the tour through a pipe; the tour keeps a copy in {log}, as "
                 f"`| tee log.txt` would")
            how, twice, burst = "", [], 0
            for burst in range(1, self.BURSTS + 1):
                result = self.client3(server, 128)
                twice = self._doubled_started(self._settled_output(server))
                if twice or not server.alive():
                    break
                output("(no line printed twice this time: the signal must arrive while the loop is inside "
                       "write()" + ("; once more)" if burst < self.BURSTS else ")"))
            if not twice and server.alive():
                hold = self.tracing(harness.HOLD_WRITES)
                if hold:
                    note("the moment did not come by itself; it comes in most bursts, not in every one. strace "
                         "makes it come: it holds each write() of the server for 5 ms after the kernel has done "
                         "it, as a busy machine may pause a program at any system call's return, and a SIGCHLD "
                         "that arrives meanwhile is delivered right there. The burst is slower: client3 gives "
                         "each connection 20 s for its answer")
                    self.stop(server)
                    server = self.start("webserver3g_logging", lines=0, strace=hold, follow_forks=False)
                    result = self.client3(server, 128, answer_within=20)
                    twice = self._doubled_started(self._settled_output(server))
                    burst, how = 1, ", with each write() held by strace"
                else:
                    for more in range(1, self.MORE_BURSTS + 1):
                        result = harness.client3(server.port, 128)
                        twice = self._doubled_started(self._settled_output(server))
                        if twice or not server.alive():
                            break
                    note(f"{more} more bursts of 128 not shown: the same command again")
                    burst += more
            server.out_echo.flush()
            log.write_bytes(bytes(server.out.raw))
            self._shell(f"sort {log} | uniq -d | grep -c started")
            if twice:
                self._shell(f"grep -n -A1 -x '{self._example(server.out.lines, twice)}' {log}")
            output(f"({len(twice)} of the main loop's 'Child N started' lines printed twice, in {burst} "
                   f"burst{'s' if burst > 1 else ''} of 128{how}; the server is "
                   f"{'alive' if server.alive() else 'gone'})")
        if self.expect("h: step g with printf() in its handler prints lines twice under a burst",
                       bool(twice) and server.alive() and result.returncode == 0):
            explain("The loop's fflush() had handed its line to write(), and glibc's stdio marks its buffer empty "
                    "only once write() has returned.")
            explain("A SIGCHLD delivered at that return ran the handler's printf() on the same buffer, and its "
                    "fflush() wrote the loop's line again, then its own.")
            explain("A single-threaded program takes no stdio lock (glibc skips them until a second thread starts), "
                    "so nothing stopped the handler: lines are printed twice, and the server carries on.")
        self.stop(server)

        self.pause("step h, part 2: the handler only writes one byte")
        say()
        strace = self.tracing(STRACE_H)
        server = self.start("h", lines=12, strace=strace)
        result = self.curl(server)
        one = result.returncode == 0 and result.stdout == "Hello, World!\n"
        if strace:
            runs, loop = self._wait_for_handler_runs(server)
            lines = [line for line in server.trace_text().splitlines() if line.split(" ", 1)[0] == str(server.pid)]
            command(f"grep '^{server.pid} ' {server.trace_file}   # the server's own lines, not its child's")
            for line in lines:
                say(style(f"  strace│ {shorten(line)}", EVIDENCE))
            note_fd = self._one_byte_notes(runs)
            read_fd = self._pipe_read_fd(loop)
            pipe = []
            if note_fd is not None and read_fd is not None:
                ends = [f"/proc/{server.pid}/fd/{fd}" for fd in (read_fd, note_fd)]
                pipe = self._shell(f"readlink {' '.join(ends)}   # what descriptors {read_fd} and {note_fd} are")
            if self.expect("h: strace shows the handler making one one-byte write() into its pipe, and wait4() "
                           "in the main loop after poll()",
                           one and note_fd is not None and read_fd is not None
                           and self._reaps_after_poll(loop, read_fd)
                           and len(pipe) == 2 and pipe[0] == pipe[1] and pipe[0].startswith("pipe:")):
                explain(f"Between the signal and the return from the handler (rt_sigreturn) there is one call: "
                        f"one byte into the pipe (descriptor {note_fd}), with write(), which is async-signal-safe.")
                explain(f"poll() woke up with the pipe readable (descriptor {read_fd}); the main loop emptied it, "
                        f"collected the child with wait4() (what waitpid() calls on Linux) and printed its line, "
                        f"where any call is allowed.")
        elif self.expect("h: curl is answered, and its child reported",
                         one and server.out.wait_for(r"^Child \d+ terminated with status 0$", 10) is not None):
            explain("The handler only wrote one byte into a pipe; poll() woke up with the pipe readable, and the "
                    "main loop collected the child and printed its line, where any call is allowed.")

        say()
        server.out_echo.allow(0)
        result = self.client3(server, 128)
        reported = server.out.wait_for(r"^Child \d+ terminated with status 0$", 20, count=129)
        left = server.wait_until_all_collected(timeout=10)
        lines = self._settled_output(server)
        server.out_echo.flush()
        self.ps(server)
        twice = printed_twice(lines)
        collected = len(server.out.matches(r"^Child \d+ terminated with status"))
        output(f"(the main loop reported {collected} of 129 children; {len(left)} left; {len(twice)} lines "
               f"printed twice)")
        shown = result.returncode == 0 and reported is not None and left == [] and not twice and server.alive()
        if strace:
            runs, loop = self._wait_for_handler_runs(server, reaped=129)
            note_fd = self._one_byte_notes(runs)
            reaps = sum(1 for call in loop if re.match(r"wait4\(-1, .*WNOHANG.*\) += [1-9]", call))
            made = (f"each one write() of one byte into descriptor {note_fd} and nothing else" if note_fd is not None
                    else f"not each a single one-byte write(): {sum(map(len, runs))} calls in all")
            output(f"(in the trace: {len(runs)} runs of the handler, {made}; {reaps} children collected by wait4() "
                   f"in the main loop)")
            shown = shown and note_fd is not None and reaps == 129
        if self.expect("h: a burst of 128 leaves no zombie, every child reported once"
                       + (", and the handler only writes its byte" if strace else ""), shown):
            explain("Signals merged as in step f, but each time the pipe woke it the main loop collected every "
                    "exited child, and printed each line once.")
        self.stop(server)

    @staticmethod
    def _settled_output(server: harness.Server, quiet: float = 0.3, bound: float = 15.0) -> list[str]:
        """The server's lines, once it has no child left running and has
        printed nothing new for `quiet` seconds (`bound` at most)."""
        deadline = time.monotonic() + bound
        last, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            count, now = len(server.out.lines), time.monotonic()
            if count != last:
                last, since = count, now
            elif now - since >= quiet and not [p for p in server.children() if p.state != "Z"]:
                break
            time.sleep(0.05)
        return list(server.out.lines)

    @staticmethod
    def _doubled_started(lines: list[str]) -> list[str]:
        """The 'Child N started' lines printed twice with no 'Child N terminated'
        between the two: printed again, not a PID that the kernel gave to a
        later child (PIDs wrap at /proc/sys/kernel/pid_max)."""
        doubled, open_ = [], set()
        for line in lines:
            started = re.fullmatch(r"Child (\d+) started", line)
            ended = re.match(r"Child (\d+) terminated", line)
            if started:
                if started.group(1) in open_ and line not in doubled:
                    doubled.append(line)
                open_.add(started.group(1))
            elif ended:
                open_.discard(ended.group(1))
        return doubled

    @staticmethod
    def _example(lines: list[str], doubled: list[str]) -> str:
        """The clearest of the doubled lines: one whose two copies are next to
        each other, followed by another child's report (the handler's own
        line, in the same write()); else one next to each other; else the first."""
        def rank(line: str) -> int:
            at = [i for i, printed in enumerate(lines) if printed == line]
            if len(at) < 2 or at[1] != at[0] + 1:
                return 2
            after = lines[at[1] + 1] if at[1] + 1 < len(lines) else ""
            pid = line.split()[1]
            return 0 if after.startswith("Child ") and " terminated " in after and after.split()[1] != pid else 1
        return min(doubled, key=rank)

    def _shell(self, text: str) -> list[str]:
        """Run a short shell command as typed; show and return its output lines."""
        command(text)
        result = harness.run_bounded(["sh", "-c", text], timeout=10)
        output(result.stdout + result.stderr)
        return result.stdout.splitlines()

    def _wait_for_handler_runs(self, server: harness.Server, reaped: int = 1,
                               timeout: float = 10.0) -> tuple[list[list[str]], list[str]]:
        """The handler's runs and the main loop's calls, once the loop has
        collected `reaped` children and is back in poll() (strace writes as
        the calls come)."""
        reap = re.compile(r"wait4\(-1, .*WNOHANG.*\) += [1-9]")
        deadline = time.monotonic() + timeout
        while True:
            runs, loop = harness.handler_runs(server.trace_text(), server.pid)
            last = max((i for i, call in enumerate(loop) if call.startswith("wait4(")), default=None)
            done = sum(1 for call in loop if reap.match(call)) >= reaped and last is not None \
                and any(call.startswith("poll(") for call in loop[last + 1:])
            if done or time.monotonic() > deadline:
                return runs, loop
            time.sleep(0.05)

    @staticmethod
    def _one_byte_notes(runs: list[list[str]]) -> int | None:
        """The descriptor every run of the handler wrote its one byte into,
        when each run made that one call and nothing else; else None."""
        fds = set()
        for calls in runs:
            note = re.fullmatch(r'write\((\d+), "x", 1\) += 1', calls[0]) if len(calls) == 1 else None
            if note is None:
                return None
            fds.add(int(note.group(1)))
        return fds.pop() if len(fds) == 1 and runs else None

    @staticmethod
    def _pipe_read_fd(loop: list[str]) -> int | None:
        """The descriptor the main loop read the handler's bytes from."""
        read = next((m for m in map(re.compile(r'read\((\d+), "x+", \d+\) += [1-9]').match, loop) if m), None)
        return int(read.group(1)) if read else None

    @staticmethod
    def _reaps_after_poll(loop: list[str], read_fd: int) -> bool:
        """The main loop's first wait4() that collected a child came after a
        poll() that found the pipe readable."""
        reap = next((i for i, call in enumerate(loop) if re.match(r"wait4\(-1, .*\) += [1-9]", call)), None)
        return reap is not None and any(call.startswith("poll(") and f"{{fd={read_fd}, revents=POLLIN" in call
                                        for call in loop[:reap])

    WORKERS = 4

    def step_i(self) -> None:
        heading("i", "a pool of workers instead of a fork per request")
        server = self.start("i", "--workers", self.WORKERS, lines=0)
        workers = self._pool(server)
        before = self.ps(server)
        server.out_echo.allow(0)
        with ChildWatch(server) as watch:
            result = self.client3(server, 128)
        answered = server.out.wait_for(r"^Child PID: \d+\. Parent PID \d+$", 10, count=128)
        server.out_echo.flush()
        after = self.ps(server)
        by = Counter(int(m.group(1)) for m in server.out.matches(rf"^Child PID: (\d+)\. Parent PID {server.pid}$"))
        answerers = ", ".join(f"{n} by {pid}" for pid, n in sorted(by.items())) if len(by) <= 8 else \
            f"{sum(by.values())} by {len(by)} different processes"
        children = f"{watch.most} child{'ren' if watch.most != 1 else ''}"
        output(f"(requests answered, by worker: {answerers}; sampled every 5 ms during the burst, the server had at "
               f"most {children}, {len(watch.seen - set(workers))} of them new)")
        if self.expect(f"i: the server and its {self.WORKERS} workers, the same 5 processes before and after a burst "
                       f"of 128, answer every request",
                       len(workers) == self.WORKERS and result.returncode == 0 and answered is not None
                       and [p.pid for p in before] == [p.pid for p in after] == workers
                       and set(by) <= set(workers) and sum(by.values()) == 128
                       and watch.most <= self.WORKERS and watch.seen <= set(workers)):
            explain(f"The {self.WORKERS} workers were forked once, at the start; each accepts a connection on the "
                    f"listening socket they share, answers it, and accepts the next: no fork() per request.")

        if not workers:
            self.expect("i: a worker killed with kill -9 is reported (status 9) and replaced", False)
            note("the server has no worker to kill")
        else:
            victim = workers[0]
            server.out_echo.allow(3)
            command(f"kill -9 {victim}")
            killed = harness.run_bounded(["kill", "-9", str(victim)], timeout=10)
            output(killed.stdout + killed.stderr)
            # Both must happen: wait generously (a busy machine may take seconds to run the parent).
            reported = server.out.wait_for(rf"^Child {victim} terminated with status 9$", 10)
            replaced = self._pool(server, without=victim)
            time.sleep(0.1)  # Let the server's line reach the screen before ps.
            self.ps(server)
            if self.expect("i: a worker killed with kill -9 is reported (status 9) and replaced",
                           killed.returncode == 0 and reported is not None and len(replaced) == self.WORKERS
                           and victim not in replaced and len(set(replaced) - set(workers)) == 1):
                explain("The parent waits in wait() for a worker to die: it collected this one (status 9: killed by "
                        "signal 9, SIGKILL) and forked a new worker in its place.")

        self.pause("step i, part 2: its limit, clients that send nothing")
        say()
        server.out_echo.allow(0)
        listener = harness.sockets_of(server.pid)
        silent_client = f"exec 3<>/dev/tcp/127.0.0.1/{server.port} && exec sleep 30"
        command(f"for i in 1 2 3 4; do bash -c {shlex.quote(silent_client)} & done   # clients that send nothing")
        silent = [harness.run_in_background(["bash", "-c", silent_client]) for _ in range(self.WORKERS)]
        self.background.extend(silent)
        each = self._held_connections(server, listener, self.WORKERS)
        held = sum(each.values())
        output(f"(connections each worker holds, besides the listening socket (/proc/PID/fd): "
               f"{', '.join(f'{n} by {pid}' for pid, n in sorted(each.items()))})")
        timed_out = self.curl(server, max_time=2)
        url = f"http://localhost:{server.port}/hello"
        command(f"curl -sS -w '(answered after %{{time_total}} s)\\n' {url} &")
        started = time.monotonic()
        waiting = harness.run_in_background(["curl", "-sS", "--max-time", "15", "-w",
                                             "(answered after %{time_total} s)\n", url])
        self.background.append(waiting)
        time.sleep(1.0)
        still_waiting = waiting.poll() is None
        command(f"kill {silent[0].pid}   # one silent client leaves")
        left_at = time.monotonic()
        harness.run_bounded(["kill", str(silent[0].pid)], timeout=10)
        try:
            out, err = waiting.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            out, err = b"", b"curl: still waiting after 10 s"
        ended = time.monotonic()
        output((out + err).decode("utf-8", "backslashreplace"))
        output(f"(the curl started {left_at - started:.1f} s before the silent client left, and ended "
               f"{ended - left_at:.1f} s after)")
        time.sleep(0.1)  # The worker's lines about the two curls, before the verdict.
        server.out_echo.flush()
        if self.expect(f"i: {self.WORKERS} silent clients hold every worker: curl times out (exit 28), and is "
                       f"answered once one of them leaves",
                       held == self.WORKERS and set(each.values()) == {1}
                       and timed_out.returncode == harness.CURL_TIMED_OUT
                       and timed_out.stdout == "" and still_waiting and waiting.returncode == 0
                       and out.startswith(b"Hello, World!\n")):
            explain("A worker serves one client from accept() to close(): four clients that send nothing hold the "
                    "four workers, and the next connection waits in the listen queue until one of them is free.")
        for client in silent:
            if client.poll() is None:
                os.killpg(client.pid, signal.SIGKILL)
            client.communicate()
        self.stop(server)

    def _pool(self, server: harness.Server, without: int | None = None, timeout: float = 10.0) -> list[int]:
        """The server's workers, once it has WORKERS live children (none of
        them `without`) and no zombie; whatever it has at the timeout otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            children = server.children()
            workers = sorted(p.pid for p in children if p.state != "Z")
            if (len(children) == len(workers) == self.WORKERS and without not in workers) \
                    or time.monotonic() > deadline:
                return workers
            time.sleep(0.02)

    @staticmethod
    def _held_connections(server: harness.Server, listener: set[str], count: int,
                          timeout: float = 10.0) -> dict[int, int]:
        """How many connections each of the server's workers holds (the
        listening socket aside), once they hold `count` together (or at the
        timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            each = {p.pid: len(harness.sockets_of(p.pid) - listener) for p in server.children()}
            if sum(each.values()) >= count or time.monotonic() > deadline:
                return each
            time.sleep(0.02)

    IDLE = 500  # Silent clients for step j; the open-files limit is set for them if it is lower.

    def step_j(self) -> None:
        heading("j", "one process, an event loop")
        idle, nofile = self._room_for(self.IDLE)
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if nofile is not None:
            note(f"the open-files limit here, {soft}, is lower than {self.IDLE} clients need: the server and the "
                 f"clients get {nofile} (ulimit -n)")
        elif idle < self.IDLE:
            note(f"the open-files limit here is {soft}, and cannot be raised: {idle} silent clients, to stay below it")
        server = self.start("j", lines=0, nofile=nofile)
        epoll = self._wait_for_epoll(server)  # Made after the first line.
        before = server.open_descriptors()
        command(f"ls /proc/{server.pid}/fd | wc -l")
        output(str(before))
        limit = f"ulimit -n {nofile}; " if nofile is not None else ""
        holder = f"{limit}for i in $(seq {idle}); do exec {{fd}}<>/dev/tcp/127.0.0.1/{server.port}; done; exec sleep 30"
        command(f"bash -c {shlex.quote(holder)} &   # {idle} clients that send nothing")
        clients = harness.run_in_background(["bash", "-c", holder])
        self.background.append(clients)
        during = server.wait_for_descriptors(before + idle, timeout=10)
        command(f"ls /proc/{server.pid}/fd | wc -l")
        output(str(during))
        server.out_echo.allow(1)
        result = self.curl(server, max_time=2)
        children = self.ps(server)
        server.out_echo.flush()
        command(f"kill {clients.pid}   # the {idle} clients leave")
        harness.run_bounded(["kill", str(clients.pid)], timeout=10)
        clients.communicate()
        after = server.wait_for_descriptors(before, timeout=10)
        command(f"ls /proc/{server.pid}/fd | wc -l")
        output(str(after))
        if self.expect(f"j: one process holds {idle} silent clients, answers a curl at once, and gives their "
                       f"descriptors back",
                       epoll and during == before + idle and result.returncode == 0
                       and result.stdout == "Hello, World!\n" and result.seconds < 2 and children == []
                       and after == before):
            explain("Each client costs the one process a descriptor, not a process: epoll_wait() reports only the "
                    "sockets that are ready, a silent client's only once it leaves, so the curl was answered at once.")
            explain("When a client leaves, its recv() returns 0 (end of file) and the server closes its descriptor: "
                    f"back to {before}.")

        say()
        server.out_echo.allow(0)
        with ChildWatch(server) as watch:
            result = self.client3(server, 128)
        answered = server.out.wait_for(r"^Child PID: \d+\. Parent PID \d+$", 10, count=129)
        server.out_echo.flush()
        self.ps(server)
        pids = Counter(m.group(1) for m in server.out.matches(r"^Child PID: (\d+)\. Parent PID \d+$"))
        output(f"(requests answered since the start: {sum(pids.values())}, by PID {', '.join(pids)}; children "
               f"seen during the burst, sampled every 5 ms: {len(watch.seen)})")
        left = server.wait_for_descriptors(before, timeout=10)
        command(f"ls /proc/{server.pid}/fd | wc -l")
        output(str(left))
        if self.expect("j: a burst of 128 answered by the one process, no child, descriptors back",
                       result.returncode == 0 and answered is not None and set(pids) == {str(server.pid)}
                       and watch.seen == set() and left == before and server.alive()):
            explain("No fork(): the one process accepted, read and answered every connection in turn, each as soon "
                    "as epoll said it was ready.")
        self.stop(server)

    @staticmethod
    def _wait_for_epoll(server: harness.Server, timeout: float = 10.0) -> bool:
        """Wait until the server holds its epoll instance (bounded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for fd in os.listdir(f"/proc/{server.pid}/fd"):
                try:
                    if os.readlink(f"/proc/{server.pid}/fd/{fd}") == "anon_inode:[eventpoll]":
                        return True
                except OSError:
                    continue
            time.sleep(0.02)
        return False

    @staticmethod
    def _room_for(clients: int, own: int = 64) -> tuple[int, int | None]:
        """How many silent clients to hold, and the open-files limit to set for
        the server and them (None: leave the one in force), leaving `own`
        descriptors: `clients` and a higher limit when the hard limit allows
        one, fewer clients when it does not."""
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        need = clients + own
        if soft == resource.RLIM_INFINITY or soft >= need:
            return clients, None
        if hard == resource.RLIM_INFINITY or hard >= need:
            return clients, need
        return hard - own, (hard if hard > soft else None)


def main(argv: list[str]) -> int:
    pause = "--pause" in argv
    argv = [a for a in argv if a != "--pause"]
    unknown = [s for s in argv if steps.step(s) is None]
    if unknown:
        print(f"tour: no step {' '.join(unknown)}; choose from {' '.join(steps.LETTERS)}", file=sys.stderr)
        return 2
    wanted = [steps.step(s).letter for s in argv] or list(steps.LETTERS)
    harness.prepare_process()
    # Ctrl-C or a kill: stop every server before leaving.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))

    tour = Tour(pause)
    say(style("The workshop tour: each step's lesson, live.", "1"))
    say(f"Servers listen on ports the kernel chooses (--port 0); sleeps are {SLEEP} s, not the article's 60.")
    if pause:
        say("PAUSE=1: the tour waits for Enter before each lesson.")
    started = time.monotonic()
    try:
        for step in wanted:
            tour.pause(f"step {step}: {steps.STEPS[step].title}")
            tour.step = step
            getattr(tour, f"step_{step}")()
    except KeyboardInterrupt:
        print("\ntour: interrupted; stopping the servers", file=sys.stderr)
        return 130
    finally:
        tour.stop_all()
    say()
    if tour.missed:
        say(style(f"{len(tour.missed)} lesson(s) did not show:", FAILURE))
        for lesson in tour.missed:
            say(f"  - {lesson}")
        return 1
    say(style(f"Every lesson showed as expected ({time.monotonic() - started:.0f} s).", "1;32"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
