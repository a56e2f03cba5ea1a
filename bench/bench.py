"""`make bench`: step g measured side by side with a floor and with Python.

    python3 bench/bench.py [--rounds N]     (make bench ROUNDS=N)

What is measured, on 127.0.0.1 only:

- Throughput: the requests per second that Debian's `ab` reports for
  `ab -q -n N -c CONCURRENCY http://127.0.0.1:PORT/hello` (the servers
  send no Content-Length; ab reads each answer until the server closes).
- CPU time per request: the server's utime + stime + cutime + cstime (fields
  14-17 of /proc/PID/stat: its own CPU time and that of its reaped children),
  read before and after the ab run, each time once the server has accepted
  every connection and collected every child, divided by the requests ab
  completed.
- Minor page faults per request, in the parent and in its children: the
  growth of minflt and of cminflt (fields 10 and 11 of /proc/PID/stat: the
  process's own faults and those of its reaped children), over the same
  interval, divided by the requests ab completed. After fork(), parent and
  child share the written pages copy-on-write: the first write to such a
  page by either one faults and copies it. The child also faults, without
  copying, on each page of code or read-only data it touches, since fork()
  copies no page-table entries for a file mapping nobody wrote. So these
  counts show what each side writes per request, and for the child what it
  runs.
- client3's connection rate against step g: the connections it made, divided
  by the wall-clock time of `client3 --max-clients 20 --max-conns 50`.

The servers: step g as participants build it (build/bin/webserver3g, linked
statically where the system can: see step_g_waitpid/CMakeLists.txt); the
same binary with its output going to a file instead of the harness's pipe
(see FileOutputServer); step g's source linked dynamically, with the C++
runtime copied in and every symbol bound at start (bench_webserver3g_dynamic),
and with the compiler's default link (bench_webserver3g_default); the floor
(bench/floor_server.cpp), the leanest fork-per-connection server, whose CPU
time per request is what fork(), exit and a TCP connection cost, linked as
the steps are and dynamically (bench_floor_server,
bench_floor_server_dynamic); and Python's socketserver.ForkingTCPServer
(bench/python_forking_server.py) answering the same bytes. Step g is
compared with the floor linked alike: the difference is what step g's code
costs; the differences between the ways of linking are what linking costs
per request.

How: the servers are started through the workshop's harness
(tools/harness.py) and measured in interleaved rounds, one after the other
in the order of the table, then client3; then again, so that whatever else
the machine does at the time weighs on all of them alike. A warm-up round is
not counted; the table shows the median of the rounds, with the lowest and
highest value. The servers are started afresh, on new ports, every
ROUNDS_PER_START rounds (pitfall 16: every request leaves a connection in
TIME_WAIT for 60 s). It also writes an SVG bar chart into bench/results/
(git-ignored).

A benchmark is not a test: the figures depend on the machine, and nothing
here fails because of them. The script exits with status 1 only if something
failed to run (a server did not start or died, ab or client3 failed).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))

import harness  # noqa: E402

ROUNDS = 9  # The default; --rounds N for more.
# Requests per round: about 0.5 s for step g and the floor, 1 s for Python. The
# CPU times in /proc/PID/stat come in clock ticks (10 ms), so one round's figure
# is exact to 10 ms / N: 2 us for step g (2% of its cost), 10 us for Python
# (1%). Every request leaves a TIME_WAIT socket for 60 s; a warm-up and 5
# rounds of 5,000 stay inside the 28,232 local ports of one server port
# (pitfall 16), so the servers are started afresh, on new ports, after 5.
ROUNDS_PER_START = 5
REQUESTS = 5000
PYTHON_REQUESTS = 1000
WARM_UP_REQUESTS = 300
CONCURRENCY = 16  # Enough to keep both CPUs busy; 8 to 32 gave the same figures.
CLIENT3_CLIENTS = 20
CLIENT3_CONNS = 50
AB_TIME_LIMIT = 30.0  # Seconds for one ab run before it is killed.
CLIENT3_TIME_LIMIT = 30.0

# The targets that the issue sets; the table says whether they are met.
CPU_RATIO_TARGET = 1.10  # Step g's CPU time per request over the floor's, at most.
PYTHON_CPU_RATIO_TARGET = 10.0  # Python's CPU time per request over step g's, at least.

RESULTS = REPO / "bench" / "results"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class BenchFailed(RuntimeError):
    """Something did not run; the figures would mean nothing."""


@dataclass(frozen=True)
class Subject:
    """A server to measure: a name in build/bin, or a command (`program`)."""

    label: str
    name: str
    program: tuple[str, ...] | None = None
    requests: int = REQUESTS  # Per round.
    output_to_file: bool = False  # Its stdout goes to a file, not to the harness's pipe.

    def server(self) -> harness.Server | FileOutputServer:
        if self.output_to_file:
            return FileOutputServer(self.name)
        program = list(self.program) if self.program else None
        return harness.Server(self.name, program=program)

    def description(self) -> str:
        """What runs: the binary and how it is linked, or the command."""
        if self.program:
            return f"{self.label:<16}{Path(self.program[-1]).name}"
        path = harness.binary(self.name)
        output = ", > file" if self.output_to_file else ""
        return f"{self.label:<16}{path.name} ({'dynamic' if harness.is_dynamic(path) else 'static'}{output})"


class FileOutputServer:
    """A server started as the harness starts one (port 0, its own process
    group), but with its output going to an unnamed file instead of a pipe.

    Every server that the harness starts writes to a pipe that a thread of
    this process reads line by line; each line that the server writes wakes
    that thread up, and the server pays for the wake-up. A file has no reader
    to wake. So the two differ by what printing costs beyond write() itself."""

    def __init__(self, name: str):
        self.step = f"{name} > file"
        self.command = [str(harness.binary(name)), "--port", "0"]
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.out = tempfile.TemporaryFile()
        self.errors = tempfile.TemporaryFile()

    def __enter__(self) -> "FileOutputServer":
        self.proc = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=self.out,
                                     stderr=self.errors, process_group=0)
        deadline = time.monotonic() + 10.0
        while True:
            first = os.pread(self.out.fileno(), 200, 0).decode(errors="replace")
            match = re.match(r"Serving HTTP on port (\d+) \.\.\.\n", first)
            if match:
                self.port = int(match.group(1))
                return self
            if not self.alive() or time.monotonic() > deadline:
                self.__exit__()
                raise BenchFailed(f"{self.step} did not start: {first!r} {self.error_text()!r}")
            time.sleep(0.02)

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            harness.reap_group(self.proc.pid)
        self.out.close()
        self.errors.close()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def children(self) -> list[harness.Proc]:
        return harness.children_of(self.pid)

    def error_text(self) -> str:
        return os.pread(self.errors.fileno(), 2000, 0).decode(errors="replace")


def error_text(server: harness.Server | FileOutputServer) -> str:
    """What the server wrote to stderr."""
    return server.error_text() if isinstance(server, FileOutputServer) else server.err.text()


STEP_G = Subject("step g", "g")  # As participants build it.
STEP_G_FILE = Subject("step g > file", "g", output_to_file=True)
STEP_G_DYNAMIC = Subject("step g dynamic", "bench_webserver3g_dynamic")
STEP_G_DEFAULT = Subject("step g default", "bench_webserver3g_default")  # The compiler's default link.
FLOOR = Subject("floor", "bench_floor_server")  # Linked as the steps are.
FLOOR_DYNAMIC = Subject("floor dynamic", "bench_floor_server_dynamic")
PYTHON = Subject("Python", "ForkingTCPServer",
                 ("/usr/bin/python3", str(REPO / "bench" / "python_forking_server.py")), PYTHON_REQUESTS)
SUBJECTS = (STEP_G, FLOOR, STEP_G_FILE, STEP_G_DYNAMIC, FLOOR_DYNAMIC, STEP_G_DEFAULT, PYTHON)


@dataclass
class Figures:
    """One server's figures, one value per round."""

    requests_per_second: list[float] = field(default_factory=list)
    cpu_per_request: list[float] = field(default_factory=list)  # Seconds.
    parent_faults: list[float] = field(default_factory=list)  # Minor page faults per request.
    child_faults: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Counters:
    """What /proc/PID/stat counts for a process and its reaped children."""

    cpu_seconds: float  # utime + stime + cutime + cstime.
    minflt: int  # The process's own minor page faults.
    cminflt: int  # Those of the children it has reaped.


def counters(pid: int) -> Counters:
    """A process's CPU time and minor faults, its reaped children's included.

    cutime, cstime and cminflt count only the children that the process has
    already reaped, so read this when none is left to collect."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    # The command name, in parentheses, may hold spaces: count from the ')'.
    # fields[0] here is field 3 of proc(5), the state.
    fields = stat[stat.rindex(")") + 2:].split()
    return Counters(cpu_seconds=sum(int(ticks) for ticks in fields[11:15]) / CLOCK_TICKS,  # Fields 14-17.
                    minflt=int(fields[7]),  # Field 10.
                    cminflt=int(fields[8]))  # Field 11.


def accept_queue(port: int) -> int:
    """How many connections wait in the accept queue of the socket listening
    on 127.0.0.1:port (for a listening socket, /proc/net/tcp shows that count
    as rx_queue)."""
    local = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == local and fields[3] == "0A":  # 0A: LISTEN.
                return int(fields[4].split(":")[1], 16)
    raise BenchFailed(f"nothing listens on 127.0.0.1:{port}")


def settle(server: harness.Server | FileOutputServer, timeout: float = 10.0) -> None:
    """Wait until the server has accepted every connection and collected
    every child, so that its CPU time covers all the work it was given.

    No child at one instant is not enough: client3 leaves hundreds of
    connections queued when it exits, and a child that lives shorter than a
    fork lets the server have no child between two of them."""
    deadline = time.monotonic() + timeout
    while accept_queue(server.port) > 0 or server.children():
        if not server.alive():
            raise BenchFailed(f"{server.step} died: {error_text(server)!r}")
        if time.monotonic() > deadline:
            raise BenchFailed(f"{server.step} did not serve and collect everything in {timeout:.0f} s")
        time.sleep(0.02)
    if not server.alive():
        raise BenchFailed(f"{server.step} died: {error_text(server)!r}")


def ab_figure(output: str, name: str) -> float:
    match = re.search(rf"^{name}:\s+([\d.]+)", output, re.MULTILINE)
    if match is None:
        raise BenchFailed(f"ab printed no {name!r}: {output!r}")
    return float(match.group(1))


@dataclass(frozen=True)
class Run:
    """One ab run's figures."""

    requests_per_second: float
    cpu_per_request: float  # Seconds.
    parent_faults: float  # Minor page faults per request.
    child_faults: float


def measure_ab(server: harness.Server | FileOutputServer, requests: int) -> Run:
    """One ab run against the server."""
    settle(server)
    before = counters(server.pid)
    result = harness.run_bounded(
        ["ab", "-q", "-s", "10", "-n", str(requests), "-c", str(CONCURRENCY),
         f"http://127.0.0.1:{server.port}/hello"],
        timeout=AB_TIME_LIMIT)
    if result.returncode != 0:
        raise BenchFailed(f"ab against {server.step} exited with {result.returncode}: {result.stderr.strip()!r}")
    complete = ab_figure(result.stdout, "Complete requests")
    failed = ab_figure(result.stdout, "Failed requests")
    if complete != requests or failed != 0:
        raise BenchFailed(f"ab against {server.step}: {complete:.0f} complete, {failed:.0f} failed")
    settle(server)
    after = counters(server.pid)
    return Run(requests_per_second=ab_figure(result.stdout, "Requests per second"),
               cpu_per_request=(after.cpu_seconds - before.cpu_seconds) / complete,
               parent_faults=(after.minflt - before.minflt) / complete,
               child_faults=(after.cminflt - before.cminflt) / complete)


def measure_client3(server: harness.Server) -> float:
    """One client3 run against the server: connections per second."""
    settle(server)
    result = harness.run_bounded(
        [str(harness.binary("client3")), "--host", "127.0.0.1", "--port", str(server.port),
         "--max-clients", str(CLIENT3_CLIENTS), "--max-conns", str(CLIENT3_CONNS)],
        timeout=CLIENT3_TIME_LIMIT)
    summary = result.stdout.splitlines()[-1] if result.stdout else ""
    if result.returncode != 0:
        raise BenchFailed(f"client3 exited with {result.returncode}: {summary!r} {result.stderr.strip()[:200]!r}")
    made = re.match(r"client3: (\d+) of", summary)
    if made is None:
        raise BenchFailed(f"client3 printed no summary: {summary!r}")
    return int(made.group(1)) / result.seconds


def run_rounds(rounds: int) -> tuple[dict[Subject, Figures], list[float]]:
    """The interleaved rounds. The servers are started afresh every
    ROUNDS_PER_START rounds, each time with a warm-up round that is not
    counted."""
    figures = {subject: Figures() for subject in SUBJECTS}
    connection_rates: list[float] = []
    number = 0
    while number < rounds:
        with contextlib.ExitStack() as stack:
            servers = {subject: stack.enter_context(subject.server()) for subject in SUBJECTS}
            for server in servers.values():
                measure_ab(server, WARM_UP_REQUESTS)
            for _ in range(min(ROUNDS_PER_START, rounds - number)):
                number += 1
                print(f"round {number} of {rounds} ...", file=sys.stderr, flush=True)
                for subject, server in servers.items():
                    run = measure_ab(server, subject.requests)
                    figures[subject].requests_per_second.append(run.requests_per_second)
                    figures[subject].cpu_per_request.append(run.cpu_per_request)
                    figures[subject].parent_faults.append(run.parent_faults)
                    figures[subject].child_faults.append(run.child_faults)
                connection_rates.append(measure_client3(servers[STEP_G]))
    return figures, connection_rates


# ---------------------------------------------------------------------------
# The report.


def median_and_range(values: list[float], scale: float = 1.0, digits: int = 0) -> str:
    """'  1,234 (1,100-1,300)': the median, then the lowest and highest value."""
    low, high = min(values) * scale, max(values) * scale
    return f"{statistics.median(values) * scale:7,.{digits}f} {f'({low:,.{digits}f}-{high:,.{digits}f})':<15}"


def ratio_line(name: str, ratio: float, target: str = "", met: bool = True, aside: str = "") -> str:
    verdict = f"   target {target}: {'met' if met else 'NOT met'}" if target else ""
    return f"{name:<44}{ratio:6.2f}x{verdict}{aside}"


def table(figures: dict[Subject, Figures], connection_rates: list[float], rounds: int) -> str:
    median = statistics.median

    def cpu(subject: Subject) -> float:
        return median(figures[subject].cpu_per_request)

    def code_ratio(g: Subject, floor: Subject, name: str, target: bool = True) -> str:
        """Step g over the floor, linked alike: what step g's code costs."""
        ratio = cpu(g) / cpu(floor)
        # The same ratio round by round: how much the machine's noise moves it.
        rounds = [a / b for a, b in zip(figures[g].cpu_per_request, figures[floor].cpu_per_request)]
        return ratio_line(name, ratio, f"at most {CPU_RATIO_TARGET:.2f}x" if target else "",
                          ratio <= CPU_RATIO_TARGET,
                          f" (round by round: median {median(rounds):.2f}x, {min(rounds):.2f}-{max(rounds):.2f}x)")

    def linking(dynamic: Subject, static: Subject) -> str:
        """What linking dynamically costs per request (per fork)."""
        extra = (cpu(dynamic) - cpu(static)) * 1e6
        return f"{cpu(dynamic) / cpu(static):.2f}x ({extra:+.0f} us)"

    python_ratio = cpu(PYTHON) / cpu(STEP_G)
    python_dynamic_ratio = cpu(PYTHON) / cpu(STEP_G_DYNAMIC)
    rps = {subject: median(figures[subject].requests_per_second) for subject in SUBJECTS}
    lines = [
        f"make bench: {rounds} interleaved rounds on 127.0.0.1 ({os.cpu_count()} CPUs, Linux {platform.release()});"
        " median (lowest-highest)",
        f"load: ab -n {REQUESTS} (Python: {PYTHON_REQUESTS}) -c {CONCURRENCY} per server and round;"
        " CPU: utime+stime+cutime+cstime in /proc/PID/stat",
        "minor page faults per request: minflt (parent) and cminflt (children) in /proc/PID/stat",
        "",
        f"{'server':<52}{'requests/s':<24}{'CPU us/request':<24}{'faults: parent':<22}children",
    ]
    for subject in SUBJECTS:
        f = figures[subject]
        lines.append(f"{subject.description():<52}{median_and_range(f.requests_per_second):<24}"
                     f"{median_and_range(f.cpu_per_request, 1e6):<24}"
                     f"{median_and_range(f.parent_faults, digits=1):<22}"
                     f"{median_and_range(f.child_faults, digits=1)}".rstrip())
    lines += [
        f"{'client3 against step g':<52}{median_and_range(connection_rates).rstrip()} connections/s"
        f" (--max-clients {CLIENT3_CLIENTS} --max-conns {CLIENT3_CONNS})",
        "",
        code_ratio(STEP_G, FLOOR, "step g CPU per request / floor's"),
        code_ratio(STEP_G_DYNAMIC, FLOOR_DYNAMIC, "the same, both dynamic", target=False),
        code_ratio(STEP_G_FILE, FLOOR, "the same, step g's output to a file", target=False),
        "CPU per request, dynamic / steps' link".ljust(44)
        + f"step g {linking(STEP_G_DYNAMIC, STEP_G)}, floor {linking(FLOOR_DYNAMIC, FLOOR)}",
        "CPU per request, default link / steps' link".ljust(44) + f"step g {linking(STEP_G_DEFAULT, STEP_G)}",
        ratio_line("Python's CPU per request / step g's", python_ratio,
                   f"at least {PYTHON_CPU_RATIO_TARGET:.0f}x", python_ratio >= PYTHON_CPU_RATIO_TARGET,
                   f" (step g dynamic: {python_dynamic_ratio:.2f}x)"),
        ratio_line("step g requests/s / Python's", rps[STEP_G] / rps[PYTHON],
                   aside=f"   (step g dynamic: {rps[STEP_G_DYNAMIC] / rps[PYTHON]:.2f}x,"
                   f" the floor: {rps[FLOOR] / rps[PYTHON]:.2f}x)"),
    ]
    return "\n".join(lines)


def bar_chart(figures: dict[Subject, Figures]) -> str:
    """Two panels of horizontal bars (requests/s, CPU us/request), as SVG."""
    panels = [
        ("requests per second (more is better)",
         [statistics.median(figures[s].requests_per_second) for s in SUBJECTS]),
        ("CPU microseconds per request (less is better)",
         [statistics.median(figures[s].cpu_per_request) * 1e6 for s in SUBJECTS]),
    ]
    width, label_width, bar_width, row = 640, 110, 420, 26
    colours = ("#2b6cb0", "#718096", "#4299e1", "#63b3ed", "#a0aec0", "#90cdf4", "#d69e2e")
    parts, y = [], 10
    for title, values in panels:
        parts.append(f'<text x="10" y="{y + 14}" font-weight="bold">{title}</text>')
        y += 24
        for subject, value, colour in zip(SUBJECTS, values, colours):
            length = bar_width * value / max(values)
            parts.append(f'<text x="10" y="{y + 16}">{subject.label}</text>')
            parts.append(f'<rect x="{label_width}" y="{y + 3}" width="{length:.1f}" height="{row - 8}" '
                         f'fill="{colour}"/>')
            parts.append(f'<text x="{label_width + length + 6:.1f}" y="{y + 16}">{value:,.0f}</text>')
            y += row
        y += 12
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y}" '
            f'font-family="sans-serif" font-size="13">\n<rect width="100%" height="100%" fill="white"/>\n'
            + "\n".join(parts) + "\n</svg>\n")


def main() -> int:
    parser = argparse.ArgumentParser(description="make bench: step g against the floor and Python")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help=f"interleaved rounds (default {ROUNDS})")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    harness.prepare_process()
    try:
        figures, connection_rates = run_rounds(args.rounds)
    except (BenchFailed, harness.ServerDidNotStart, FileNotFoundError) as error:
        print(f"bench: {error}", file=sys.stderr)
        return 1
    left = harness.children_of(os.getpid())
    if left:
        print(f"bench: processes left behind: {left}", file=sys.stderr)
        return 1
    report = table(figures, connection_rates, args.rounds)
    print(report)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "bench.txt").write_text(report + "\n")
    (RESULTS / "bench.svg").write_text(bar_chart(figures))
    print(f"\n(also in {RESULTS.relative_to(REPO)}/bench.txt and bench.svg)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
