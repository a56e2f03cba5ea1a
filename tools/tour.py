"""The tour: every lesson of the workshop, live, for the instructor's screen.

    make tour            all seven steps, in the article's order
    make tour STEP=d     one step

For each step it shows the commands a participant would type, runs them for
real (through the same harness as the tests), shows what they printed, and
says in one sentence what was just seen and why. Waits are short (a sleep of
2 seconds, not the article's 60). It exits 0 when every lesson showed as
expected; otherwise it names the lessons that did not show and exits 1.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402

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


def heading(step: str, title: str) -> None:
    say()
    say(style(f"━━ Step {step}: {title} ━━", "1;36"))


def command(text: str) -> None:
    say(style(f"$ {text}", "1"))


def output(text: str, prefix: str = "  ") -> None:
    for line in text.rstrip("\n").splitlines():
        say(f"{prefix}{line}")


def explain(text: str) -> None:
    say(style(f"→ {text}", "33"))


def relative(word: str) -> str:
    """Show paths inside the repository as a participant there would type them."""
    if not word.startswith("/"):
        return word
    try:
        return "./" + str(Path(word).resolve().relative_to(harness.REPO))
    except ValueError:
        return word


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
            say(style(f"  {self.label}│ … and {self.hidden} more lines", self.colour))
            self.hidden = 0

    def __call__(self, line: str) -> None:
        if self.hold:
            self.held.append(line)
        elif self.budget > 0:
            self.budget -= 1
            say(style(f"  {self.label} {time.monotonic() - self.started:4.1f}s│ {line}", self.colour))
        else:
            self.hidden += 1


# ---------------------------------------------------------------------------
# Running things, and showing them as typed.


class Tour:
    def __init__(self):
        self.servers: list[harness.Server] = []
        self.background: list = []  # Programs started with & (the timed curls).
        self.missed: list[str] = []

    def expect(self, lesson: str, shown: bool) -> bool:
        if not shown:
            self.missed.append(lesson)
            say(style(f"✗ This lesson did not show: {lesson}", "1;31"))
        return shown

    def start(self, step: str, *args, lines: int = 20, **limits) -> harness.Server:
        out = Echo("server", "2")
        err = Echo("server stderr", "1;31", hold=True)
        out.allow(3)  # Its first lines: the port, and step c's parent PID.
        server = harness.Server(step, *args, echo=out, echo_errors=err, **limits)
        server.out_echo = out
        server.err_echo = err
        self.servers.append(server)
        shown = " ".join(relative(a) for a in server.command())
        command(f"{shown} &")
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
        say(style(f"  (curl took {result.seconds:.1f} s, {status})", "2"))
        return result

    def client3(self, server: harness.Server, max_clients: int, max_conns: int = 1) -> harness.Result:
        command(f"./build/bin/client3 --port {server.port} --max-clients {max_clients} --max-conns {max_conns}")
        result = harness.client3(server.port, max_clients, max_conns)
        time.sleep(0.1)
        lines = result.stdout.splitlines()
        numbers = sum(1 for line in lines if line.isdigit())
        if numbers:
            say(style(f"  ({numbers} connection numbers printed)", "2"))
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

    def exited(self, server: harness.Server, timeout: float) -> int | None:
        """Wait for the server to exit; show its last words and its status."""
        status = server.wait_exit(timeout)
        server.out_echo.flush()
        server.err_echo.flush()
        if status is not None:
            say(style(f"  (the server exited with status {status})", "2"))
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

    # -----------------------------------------------------------------------
    # The lessons.

    def step_a(self) -> None:
        heading("a", "an iterative server answers one client at a time")
        server = self.start("a")
        result = self.curl(server)
        self.expect("a: curl gets Hello, World! and the server prints the request",
                    result.stdout == "Hello, World!\n" and server.out.wait_for(r"^GET /hello", 5) is not None)
        explain("The server read the request, printed it, answered and closed the connection; "
                "only then does it accept() the next one.")
        self.stop(server)

    def step_b(self) -> None:
        heading("b", "a sleeping iterative server keeps the next client waiting")
        server = self.start("b", "--sleep", SLEEP)
        clients = self._two_curls(server)
        first_byte = self._timings(clients)
        self.expect("b: the second client waits the whole sleep for its answer",
                    first_byte[0] < SLEEP / 2 and first_byte[1] >= SLEEP * 0.7)
        explain(f"Both connected at once (the kernel's listen queue, the backlog, held the second), but the "
                f"server slept {SLEEP} s after the first answer before it accepted the second: it serves one "
                f"client at a time.")
        self.stop(server)

    def _two_curls(self, server: harness.Server) -> list:
        """Two curls, the second a moment after the first, each timed."""
        clients = []
        for number in (1, 2):
            command(f"curl -w '%{{time_starttransfer}} %{{time_total}}' http://localhost:{server.port}/hello &"
                    f"   # curl #{number}")
            self.background.append(harness.run_in_background(
                ["curl", "-sS", "--max-time", str(4 * SLEEP + 5), "-w", "%{time_starttransfer} %{time_total}\n",
                 f"http://localhost:{server.port}/hello"]))
            clients.append(self.background[-1])
            time.sleep(0.2)
        return clients

    def _timings(self, clients: list) -> list[float]:
        """Show each curl's answer and timing; return the times to the first byte."""
        first_byte = []
        for number, proc in enumerate(clients, 1):
            out, _ = proc.communicate(timeout=4 * SLEEP + 10)
            answer, _, timing = out.decode().rstrip("\n").rpartition("\n")
            start, total = (float(t) for t in timing.split())
            output(answer)
            say(style(f"  (curl #{number}: answer after {start:.1f} s, connection closed after {total:.1f} s)",
                        "2"))
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
        children = self.ps(server)
        self.expect("d: the finished child is a zombie", any(p.state == "Z" for p in children))
        explain("The child has exited, but nobody wait()ed for it: it stays in the process table as a zombie "
                "(Z, <defunct>), and kill -9 cannot remove it.")
        self.stop(server)

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
            say(style(f"  (its last count: {held[-1].group(0)})", "2"))
        self.expect("d: the server dies with accept: Too many open files",
                    status == 1 and server.err.text() == "accept: Too many open files")
        explain("Each held connection costs the parent a descriptor; with a limit of 32 open files, accept() "
                "fails with EMFILE and the server is gone.")
        self.stop(server)

        say()
        limit = harness.process_limit(10)
        server = self.start("d", nproc=limit, lines=3)
        if os.geteuid() == 0:
            say(style(f"  (root ignores the process limit, so the server runs as unused uid {server.uid})", "2"))
        self.client3(server, 1, 5)
        server.settled_children()
        zombies = [p for p in self.ps(server, rows=3) if p.state == "Z"]
        say(style(f"  ({len(zombies)} zombies, each counting against the limit of {limit})", "2"))
        self.client3(server, 1, 20)
        status = self.exited(server, 10)
        self.expect("d: the server dies with fork: Resource temporarily unavailable",
                    len(zombies) == 5 and status == 1
                    and server.err.text() == "fork: Resource temporarily unavailable")
        explain("Zombies still count as the user's processes: when they reach the limit, fork() fails "
                "with EAGAIN.")
        self.stop(server)

    def step_e(self) -> None:
        heading("e", "a SIGCHLD handler collects the child, and accept() dies of EINTR")
        server = self.start("e", "--sleep", SLEEP)
        result = self.curl(server)
        status = self.exited(server, 10)
        self.expect("e: the server dies with accept: Interrupted system call",
                    result.returncode == 0 and status == 1
                    and server.err.text() == "accept: Interrupted system call")
        explain("curl ended normally (duplicates are closed again). When the child exited, its SIGCHLD "
                "interrupted the parent's accept(); the handler ran, and accept() returned EINTR.")
        self.stop(server)

    def step_f(self) -> None:
        heading("f", "accept() restarted; but a burst of clients leaves zombies")
        server = self.start("f", lines=12)
        self.curl(server)
        server.settled_children()
        server.out_echo.flush()
        one = self.ps(server)
        self.expect("f: one request leaves no zombie, and the server lives", one == [] and server.alive())
        explain("accept() failed with EINTR again, and the server simply called it again.")
        say()
        server.out_echo.allow(0)
        result = self.client3(server, 128)
        server.out.wait_for(r"^GET /hello", 10, count=129)
        zombies = [p for p in server.settled_children() if p.state == "Z"]
        server.out_echo.flush()
        self.ps(server, rows=4)
        collected = len(server.out.matches(r"^Child \d+ terminated")) - 1
        say(style(f"  ({len(zombies)} zombies; the handler reported {collected} of 128 children)", "2"))
        self.expect("f: a burst of 128 clients leaves zombies", result.returncode == 0 and len(zombies) > 0)
        explain("128 children exited at almost the same time. SIGCHLD signals are not queued: those that "
                "arrived while one was pending were merged, and each run of the handler wait()ed only once.")
        self.stop(server)

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
        say(style(f"  (the handler reported {collected} of {3 * 128} children; {len(left)} left)", "2"))
        self.expect("g: bursts of 128 leave no zombie, descriptors flat, server alive",
                    ok and left == [] and after == before and server.alive())
        explain("One run of the handler now loops with waitpid(-1, &status, WNOHANG) until no exited child is "
                "left, however many signals were merged into that run.")
        self.stop(server)


def main(argv: list[str]) -> int:
    wanted = [s.lower().removeprefix("step_")[:1] for s in argv] or list(harness.STEPS)
    unknown = [s for s in wanted if s not in harness.STEPS]
    if unknown:
        print(f"tour: no step {' '.join(unknown)}; choose from {' '.join(harness.STEPS)}", file=sys.stderr)
        return 2
    harness.prepare_process()
    # Ctrl-C or a kill: stop every server before leaving.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))

    tour = Tour()
    say(style("The workshop tour: each step's lesson, live.", "1"))
    say(f"Servers listen on ports the kernel chooses (--port 0); sleeps are {SLEEP} s, not the article's 60.")
    started = time.monotonic()
    try:
        for step in wanted:
            getattr(tour, f"step_{step}")()
    except KeyboardInterrupt:
        print("\ntour: interrupted; stopping the servers", file=sys.stderr)
        return 130
    finally:
        tour.stop_all()
    say()
    if tour.missed:
        say(style(f"{len(tour.missed)} lesson(s) did not show:", "1;31"))
        for lesson in tour.missed:
            say(f"  - {lesson}")
        return 1
    say(style(f"Every lesson showed as expected ({time.monotonic() - started:.0f} s).", "1;32"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
