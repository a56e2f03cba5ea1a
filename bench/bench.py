"""`make bench`: step g measured side by side with a floor and with Python,
and the server designs (steps a, g, h, i and j) measured against each other.

    python3 bench/bench.py [--rounds N]     (make bench ROUNDS=N)

Two tables come out of one run. The first compares step g with the floor, the
same server linked in other ways, and Python: what step g's code, linking and
an interpreter cost per request. The second, "designs", compares the ways of
serving that the workshop builds, as figure 30.1 of Stevens' Unix Network
Programming (vol. 1, 3rd ed.) does for its servers: step a (iterative), g
(fork per connection), h (fork per connection, the self-pipe), i (a pool of
--workers 4 forked once), j (one process, epoll), the floor and Python's
forking server.

What is measured, on 127.0.0.1 only:

- Throughput: the requests per second that Debian's `ab` reports for
  `ab -q -n N -c CONCURRENCY http://127.0.0.1:PORT/hello` (the servers
  send no Content-Length; ab reads each answer until the server closes).
- CPU time per request, over the server's whole process group: for every
  process in the group, its utime + stime + cutime + cstime (fields 14-17 of
  /proc/PID/stat: its own CPU time, and that of the children it has reaped),
  summed, read before and after the ab run, each time once the group has
  settled (see settle()), divided by the requests ab completed. A child that
  its parent has reaped counts once, in the parent's cutime and cstime; a
  live process counts once, in its own utime and stime. Reading the first
  process alone is not enough: cutime and cstime count only the children
  that were waited for, and a pool's workers are never waited for while
  they live (pitfall 24). For a fork-per-connection server, settled means
  that every child has been reaped, so the group is its first process alone.
- Minor page faults per request, in the parent and in its children: the
  growth of minflt and of cminflt (fields 10 and 11 of /proc/PID/stat: the
  process's own faults and those of its reaped children), over the same
  interval, divided by the requests ab completed. After fork(), parent and
  child share the written pages copy-on-write: the first write to such a
  page by either one faults and copies it. The child also faults, without
  copying, on each page of code or read-only data it touches, since fork()
  copies no page-table entries for a file mapping nobody wrote. So these
  counts show what each side writes per request, and for the child what it
  runs. The designs table sums both over the group, as it does the CPU time.
- Processes created per request, over the same interval: a perf event on the
  server's first process (the one the harness started) records every fork()
  it makes (see ForkCounter). That counts this server's processes only,
  exactly, whatever else the machine runs; and it works for the servers that
  print nothing per request (the floor, Python) as for those that name the
  process that answered. Every server here creates its processes from that
  first process (a pool's parent forks the workers; no worker forks). Where
  perf_event_open() is refused (a container's seccomp filter, say), the count
  falls back to the `processes` line of /proc/stat, the forks of the whole
  machine, and the table says so.
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
per request. And steps a, h, i and j as participants build them.

How: the servers are started through the workshop's harness
(tools/harness.py) and measured in interleaved rounds, one after the other
in the order of MEASURED, then client3; then again, so that whatever else
the machine does at the time weighs on all of them alike. A warm-up round is
not counted; the tables show the median of the rounds, with the lowest and
highest value. Each server gets the same load (ab, the same concurrency,
the same request); how many requests make its round is set once, from its
requests per second in the first warm-up: about ROUND_SECONDS of work, and
at most REQUESTS (Python at most PYTHON_REQUESTS), so that a machine where
fork() is slow (pitfall 12) still finishes in minutes. The servers are started
afresh, on new ports, every ROUNDS_PER_START rounds (pitfall 16: every
request leaves a connection in TIME_WAIT for 60 s). It also writes an SVG
bar chart of each table into bench/results/ (git-ignored).

A benchmark is not a test: the figures depend on the machine, and nothing
here fails because of them. The script exits with status 1 only if something
failed to run (a server did not start or died, ab or client3 failed).
"""

from __future__ import annotations

import argparse
import array
import contextlib
import ctypes
import errno
import fcntl
import math
import mmap
import os
import platform
import re
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))

import harness  # noqa: E402

ROUNDS = 9  # The default; --rounds N for more.
# Requests per round: about ROUND_SECONDS of ab's time, at most REQUESTS (Python:
# PYTHON_REQUESTS), at least MIN_REQUESTS. On the machine where the first table
# of bench/README.md was measured, that is 5,000 for every server but Python
# (about 0.5 s for step g), 1,000 for Python; where fork() costs ten times as
# much (pitfall 12), 1,000 to 2,000 for the forking servers and 200 for Python,
# and a run still takes minutes, not an hour. The CPU times in /proc/PID/stat come in clock ticks (10 ms), so
# one round's figure is exact to 10 ms over the CPU time the round took: 1%
# when a round takes a second of CPU. Every request leaves a TIME_WAIT socket
# for 60 s; a warm-up and 5 rounds of 5,000 stay inside the 28,232 local ports
# of one server port (pitfall 16), so the servers are started afresh, on new
# ports, after 5.
ROUNDS_PER_START = 5
REQUESTS = 5000
PYTHON_REQUESTS = 1000
MIN_REQUESTS = 200
ROUND_SECONDS = 2.0
WARM_UP_REQUESTS = 300
CONCURRENCY = 16  # Enough to keep both CPUs busy; 8 to 32 gave the same figures.
WORKERS = 4  # Step i's pool (its default, said explicitly).
CLIENT3_CLIENTS = 20
CLIENT3_CONNS = 50
AB_TIME_LIMIT = 60.0  # Seconds for one ab run before it is killed.
CLIENT3_TIME_LIMIT = 30.0
SETTLE_TIME_LIMIT = 15.0  # Seconds for a server's group to settle after a run.
QUIET = 0.05  # Seconds that a settled group must stay unchanged.

# The targets that the issue sets; the table says whether they are met.
CPU_RATIO_TARGET = 1.10  # Step g's CPU time per request over the floor's, at most.
PYTHON_CPU_RATIO_TARGET = 10.0  # Python's CPU time per request over step g's, at least.
POOL_CPU_RATIO_TARGET = 0.25  # Step i's and step j's CPU time per request over step g's, at most.
SELFPIPE_CPU_RATIO_TARGET = 1.10  # Step h's CPU time per request over step g's, at most.

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
    requests: int = REQUESTS  # Per round, at most.
    output_to_file: bool = False  # Its stdout goes to a file, not to the harness's pipe.
    args: tuple[str, ...] = ()  # Options after --port 0.

    def server(self) -> harness.Server | FileOutputServer:
        if self.output_to_file:
            return FileOutputServer(self.name)
        program = list(self.program) if self.program else None
        return harness.Server(self.name, *self.args, program=program)

    def description(self) -> str:
        """What runs: the binary and how it is linked, or the command."""
        if self.program:
            return f"{self.label:<16}{Path(self.program[-1]).name}"
        path = harness.binary(self.name)
        output = ", > file" if self.output_to_file else ""
        args = f", {' '.join(self.args)}" if self.args else ""
        return f"{self.label:<16}{path.name} ({'dynamic' if harness.is_dynamic(path) else 'static'}{output}{args})"


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
# The designs, as participants build them, beside step g, the floor and Python.
STEP_A = Subject("step a", "a")
STEP_H = Subject("step h", "h")
STEP_I = Subject("step i", "i", args=("--workers", str(WORKERS)))
STEP_J = Subject("step j", "j")
DESIGNS = (STEP_A, STEP_G, STEP_H, STEP_I, STEP_J, FLOOR, PYTHON)
# Everything, in the order of a round.
MEASURED = (STEP_A, STEP_G, STEP_H, STEP_I, STEP_J, FLOOR, STEP_G_FILE, STEP_G_DYNAMIC, FLOOR_DYNAMIC,
            STEP_G_DEFAULT, PYTHON)


@dataclass
class Figures:
    """One server's figures, one value per round."""

    requests_per_second: list[float] = field(default_factory=list)
    cpu_per_request: list[float] = field(default_factory=list)  # Seconds, over the whole process group.
    parent_faults: list[float] = field(default_factory=list)  # Minor page faults per request.
    child_faults: list[float] = field(default_factory=list)
    group_faults: list[float] = field(default_factory=list)  # Over the whole process group.
    processes: list[float] = field(default_factory=list)  # Processes created per request.


# ---------------------------------------------------------------------------
# What the kernel counts for a server's process group.


@dataclass(frozen=True)
class Member:
    """One process of a server's group, as /proc/PID/stat shows it."""

    state: str  # S sleeping, R running or runnable, Z zombie, ...
    ticks: int  # utime + stime + cutime + cstime: its own CPU time and its reaped children's.
    minflt: int  # Its own minor page faults.
    cminflt: int  # Those of the children it has reaped.


def group(pgid: int) -> dict[int, Member]:
    """Every process whose process group is pgid, by PID.

    A server's children stay in its group (none of the servers calls
    setpgid()), so the group is the server and every process it has made."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()  # Bytes: another user's command name need not be UTF-8.
        except OSError:
            continue  # It exited meanwhile.
        # The command name, in parentheses, may hold spaces: count from the ')'.
        # fields[0] here is field 3 of proc(5), the state.
        fields = stat[stat.rindex(b")") + 2:].decode().split()
        if int(fields[2]) != pgid:  # Field 5, the process group.
            continue
        found[int(entry)] = Member(state=fields[0],
                                   ticks=sum(int(ticks) for ticks in fields[11:15]),  # Fields 14-17.
                                   minflt=int(fields[7]),  # Field 10.
                                   cminflt=int(fields[8]))  # Field 11.
    return found


@dataclass(frozen=True)
class Counters:
    """What /proc counts for a settled server."""

    cpu_seconds: float  # Over the whole group: its live processes and the children they reaped.
    minflt: int  # The first process's own minor page faults.
    cminflt: int  # Those of the children it has reaped.
    group_faults: int  # minflt + cminflt over the whole group.


def counters(members: dict[int, Member], leader: int) -> Counters:
    """The group's counters, from a snapshot taken when nothing in it runs
    and nothing is left to reap: then each child that has exited counts in
    its reaper's cutime and cstime, each live process in its own utime and
    stime, and none in both or neither."""
    return Counters(cpu_seconds=sum(m.ticks for m in members.values()) / CLOCK_TICKS,
                    minflt=members[leader].minflt, cminflt=members[leader].cminflt,
                    group_faults=sum(m.minflt + m.cminflt for m in members.values()))


class ForkCounter:
    """Counts the processes that one process creates, from a perf event on it.

    perf_event_open(2) attaches an event to the process; with `task` set, the
    kernel writes a PERF_RECORD_FORK into the event's ring buffer each time
    the process forks (and a PERF_RECORD_EXIT when it exits itself). The
    event is a "dummy" software event, which counts nothing; it exists for
    those records. It is not inherited: the server's children carry no event,
    so fork() has nothing more to copy for them (a child that forked would go
    uncounted; none of the servers' children does). A new process is a FORK
    record whose pid equals its tid; a new thread has its process's pid.

    It needs the right to watch the process (the same user will do) and a
    perf_event_paranoid of at most 2 for an ordinary user (a user-space-only
    event: exclude_kernel), or CAP_PERFMON. The buffer holds `most` records,
    and is read only between ab runs: a record lost to a full buffer fails the
    run rather than the count."""

    RECORD = 32  # PERF_RECORD_FORK: header (8), pid, ppid, tid, ptid (4 each), time (8).
    SYSCALL = {"x86_64": 298, "aarch64": 241}  # __NR_perf_event_open.

    class Attr(ctypes.Structure):
        """struct perf_event_attr as Linux 2.6.31 first had it (PERF_ATTR_SIZE_VER0):
        every later field may be left out, and reads as zero."""

        _fields_ = [("type", ctypes.c_uint32), ("size", ctypes.c_uint32), ("config", ctypes.c_uint64),
                    ("sample_period", ctypes.c_uint64), ("sample_type", ctypes.c_uint64),
                    ("read_format", ctypes.c_uint64), ("flags", ctypes.c_uint64),
                    ("wakeup_events", ctypes.c_uint32), ("bp_type", ctypes.c_uint32),
                    ("config1", ctypes.c_uint64)]

    PERF_TYPE_SOFTWARE, PERF_COUNT_SW_DUMMY = 1, 9
    EXCLUDE_KERNEL, EXCLUDE_HV, TASK = 1 << 5, 1 << 6, 1 << 13  # Bits of `flags`.
    PERF_FLAG_FD_CLOEXEC = 8
    PERF_RECORD_LOST, PERF_RECORD_FORK = 2, 7
    method = "perf: FORK records of an event on the server's first process (this group only, exact)"

    def __init__(self, pid: int, most: int):
        number = self.SYSCALL.get(platform.machine())
        if number is None:
            raise OSError(errno.ENOSYS, f"no perf_event_open() number known for {platform.machine()}")
        attr = self.Attr(type=self.PERF_TYPE_SOFTWARE, size=ctypes.sizeof(self.Attr),
                         config=self.PERF_COUNT_SW_DUMMY,
                         flags=self.EXCLUDE_KERNEL | self.EXCLUDE_HV | self.TASK)
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        # syscall() is variadic and reads each argument as a long: pass longs.
        fd = libc.syscall(ctypes.c_long(number), ctypes.byref(attr), ctypes.c_long(pid), ctypes.c_long(-1),
                          ctypes.c_long(-1), ctypes.c_long(self.PERF_FLAG_FD_CLOEXEC))
        if fd == -1:
            code = ctypes.get_errno()
            raise OSError(code, f"perf_event_open: {os.strerror(code)}")
        self.fd = fd
        # One page of metadata, then 2^n pages of records.
        pages = 1 << max(0, math.ceil(math.log2(most * self.RECORD / mmap.PAGESIZE)))
        try:
            self.ring = mmap.mmap(fd, (1 + pages) * mmap.PAGESIZE, mmap.MAP_SHARED,
                                  mmap.PROT_READ | mmap.PROT_WRITE)
        except OSError:
            os.close(fd)
            raise

    def take(self) -> int:
        """The processes created since the last call; the records read are
        handed back to the kernel. (Called only when the server has been
        quiet for a while, so the kernel is not writing: no memory barrier
        is needed between reading data_head and the records.)"""
        # struct perf_event_mmap_page: data_head, data_tail, data_offset, data_size at 1024.
        head, tail, offset, size = struct.unpack_from("<QQQQ", self.ring, 1024)
        if offset == 0:  # Before Linux 4.1: the records start at the second page.
            offset, size = mmap.PAGESIZE, len(self.ring) - mmap.PAGESIZE

        def read(position: int, length: int) -> bytes:
            """Bytes of the records, which may wrap around the buffer's end."""
            start = position % size
            first = min(length, size - start)
            return self.ring[offset + start:offset + start + first] + self.ring[offset:offset + length - first]

        created, position = 0, tail
        while position < head:
            kind, _, length = struct.unpack("<IHH", read(position, 8))
            if kind == self.PERF_RECORD_FORK:
                pid, _, tid, _ = struct.unpack("<IIII", read(position + 8, 16))
                created += pid == tid
            elif kind == self.PERF_RECORD_LOST:
                lost, = struct.unpack("<Q", read(position + 16, 8))
                raise BenchFailed(f"the fork counter's buffer overflowed: {lost} records lost")
            position += length
        struct.pack_into("<Q", self.ring, 1032, head)  # data_tail: read up to here.
        return created

    def close(self) -> None:
        self.ring.close()
        os.close(self.fd)


class MachineForkCounter:
    """The fallback: every fork() on the machine (the `processes` line of
    /proc/stat, proc(5)), this server's and any other program's."""

    method = "/proc/stat processes: every fork on the machine, other programs' included"

    def __init__(self):
        self.last = self.forks()

    @staticmethod
    def forks() -> int:
        with open("/proc/stat") as f:
            return int(next(line for line in f if line.startswith("processes ")).split()[1])

    def take(self) -> int:
        now = self.forks()
        created, self.last = now - self.last, now
        return created

    def close(self) -> None:
        pass


def fork_counter(pid: int, most: int) -> ForkCounter | MachineForkCounter:
    """A ForkCounter on the process if perf allows one here, otherwise the machine's count."""
    try:
        return ForkCounter(pid, most)
    except OSError:
        return MachineForkCounter()


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


def unread_output(server: harness.Server | FileOutputServer) -> int:
    """The bytes waiting in the pipe of the server's output, not yet read by
    the harness's thread (FIONREAD). A server that writes into a full pipe
    sleeps with work left to do (pitfall 13)."""
    if isinstance(server, FileOutputServer):
        return 0
    waiting = array.array("i", [0])
    fcntl.ioctl(server.proc.stdout.fileno(), termios.FIONREAD, waiting)
    return waiting[0]


def settle(server: harness.Server | FileOutputServer, timeout: float = SETTLE_TIME_LIMIT) -> Counters:
    """Wait until the server has done all the work it was given, then return
    its group's counters.

    Settled means: no connection waits in the accept queue; nothing waits in
    the pipe of its output; every process of its group sleeps (none is
    running or waiting for a CPU, none is a zombie left to reap); and all of
    that, with every process's CPU time and faults, stays the same for QUIET
    seconds. Then a fork-per-connection server has collected every child,
    and a pool's workers wait in accept(). No child at one instant is not
    enough: client3 leaves hundreds of connections queued when it exits, and
    a child that lives shorter than a fork lets the server have no child
    between two of them. Nor is a quiet moment: on a busy machine a process
    may wait longer than QUIET for a CPU, runnable (R), with work left."""
    deadline = time.monotonic() + timeout
    last: dict[int, Member] | None = None
    while True:
        if not server.alive():
            raise BenchFailed(f"{server.step} died: {error_text(server)!r}")
        members = group(server.pid)
        calm = (accept_queue(server.port) == 0 and unread_output(server) == 0
                and all(m.state == "S" for m in members.values()))
        if calm and members == last:
            return counters(members, server.pid)
        if time.monotonic() > deadline:
            states = ", ".join(f"{pid} {m.state}" for pid, m in sorted(members.items()))
            raise BenchFailed(f"{server.step} did not serve and collect everything in {timeout:.0f} s"
                              f" (its processes: {states})")
        last = members if calm else None
        time.sleep(QUIET)


def ab_figure(output: str, name: str) -> float:
    match = re.search(rf"^{name}:\s+([\d.]+)", output, re.MULTILINE)
    if match is None:
        raise BenchFailed(f"ab printed no {name!r}: {output!r}")
    return float(match.group(1))


@dataclass(frozen=True)
class Run:
    """One ab run's figures."""

    requests_per_second: float
    cpu_per_request: float  # Seconds, over the whole process group.
    parent_faults: float  # Minor page faults per request.
    child_faults: float
    group_faults: float
    processes: float  # Processes created per request.


def measure_ab(server: harness.Server | FileOutputServer, forks: ForkCounter | MachineForkCounter,
               requests: int) -> Run:
    """One ab run against the server."""
    before = settle(server)
    forks.take()  # Forget what came before.
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
    after = settle(server)
    created = forks.take()
    return Run(requests_per_second=ab_figure(result.stdout, "Requests per second"),
               cpu_per_request=(after.cpu_seconds - before.cpu_seconds) / complete,
               parent_faults=(after.minflt - before.minflt) / complete,
               child_faults=(after.cminflt - before.cminflt) / complete,
               group_faults=(after.group_faults - before.group_faults) / complete,
               processes=created / complete)


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


def round_size(subject: Subject, requests_per_second: float) -> int:
    """The requests of each of the subject's rounds: about ROUND_SECONDS of
    ab's time at the rate of its first warm-up, in hundreds."""
    wanted = int(requests_per_second * ROUND_SECONDS) // 100 * 100
    return max(MIN_REQUESTS, min(subject.requests, wanted))


@dataclass
class Results:
    figures: dict[Subject, Figures]
    connection_rates: list[float]
    requests: dict[Subject, int]  # Per round.
    fork_method: str  # How processes were counted (a counter's `method`).
    rounds: int
    load: tuple[float, float, float]  # The load average at the start.


def run_rounds(rounds: int) -> Results:
    """The interleaved rounds. The servers are started afresh every
    ROUNDS_PER_START rounds, each time with a warm-up round that is not
    counted; the first warm-up sets each server's round size."""
    results = Results(figures={subject: Figures() for subject in MEASURED}, connection_rates=[], requests={},
                      fork_method="", rounds=rounds, load=os.getloadavg())
    most = max(subject.requests for subject in MEASURED) + WARM_UP_REQUESTS  # Forks between two reads.
    number = 0
    while number < rounds:
        with contextlib.ExitStack() as stack:
            servers = {subject: stack.enter_context(subject.server()) for subject in MEASURED}
            forks = {}
            for subject, server in servers.items():
                forks[subject] = fork_counter(server.pid, most)
                stack.callback(forks[subject].close)
            if any(isinstance(counter, MachineForkCounter) for counter in forks.values()):
                # perf refused one (its locked memory ran out, say): count all alike.
                forks = {subject: MachineForkCounter() for subject in servers}
            results.fork_method = forks[STEP_G].method
            for subject, server in servers.items():
                warm_up = measure_ab(server, forks[subject], WARM_UP_REQUESTS)
                results.requests.setdefault(subject, round_size(subject, warm_up.requests_per_second))
            for _ in range(min(ROUNDS_PER_START, rounds - number)):
                number += 1
                print(f"round {number} of {rounds} ...", file=sys.stderr, flush=True)
                for subject, server in servers.items():
                    run = measure_ab(server, forks[subject], results.requests[subject])
                    figures = results.figures[subject]
                    figures.requests_per_second.append(run.requests_per_second)
                    figures.cpu_per_request.append(run.cpu_per_request)
                    figures.parent_faults.append(run.parent_faults)
                    figures.child_faults.append(run.child_faults)
                    figures.group_faults.append(run.group_faults)
                    figures.processes.append(run.processes)
                results.connection_rates.append(measure_client3(servers[STEP_G]))
    return results


# ---------------------------------------------------------------------------
# The report.


def median_and_range(values: list[float], scale: float = 1.0, digits: int = 0) -> str:
    """'  1,234 (1,100-1,300)': the median, then the lowest and highest value."""
    low, high = min(values) * scale, max(values) * scale
    return f"{statistics.median(values) * scale:7,.{digits}f} {f'({low:,.{digits}f}-{high:,.{digits}f})':<15}"


def ratio_line(name: str, ratio: float, target: str = "", met: bool = True, aside: str = "") -> str:
    verdict = f"   target {target}: {'met' if met else 'NOT met'}" if target else ""
    return f"{name:<44}{ratio:6.2f}x{verdict}{aside}"


def cpu_ratio(results: Results, subject: Subject, base: Subject, name: str, target: float | None = None,
              at_least: bool = False, aside: str | None = None) -> str:
    """The subject's median CPU per request over the base's, against a target
    if there is one; and unless `aside` says something else, the same ratio
    round by round, where both servers met the same machine, which shows how
    much the machine's noise moves it."""
    figures = results.figures
    ratio = statistics.median(figures[subject].cpu_per_request) / statistics.median(figures[base].cpu_per_request)
    rounds = [a / b for a, b in zip(figures[subject].cpu_per_request, figures[base].cpu_per_request)]
    if aside is None:
        aside = f" (round by round: median {statistics.median(rounds):.2f}x, {min(rounds):.2f}-{max(rounds):.2f}x)"
    if target is None:
        return ratio_line(name, ratio, aside=aside)
    met = ratio >= target if at_least else ratio <= target
    words = f"at least {target:.0f}x" if at_least else f"at most {target:.2f}x"
    return ratio_line(name, ratio, words, met, aside)


def sizes(results: Results, subjects: tuple[Subject, ...]) -> str:
    """ab's -n for these subjects: the most common, and the others by name."""
    counts = [results.requests[s] for s in subjects]
    usual = max(set(counts), key=counts.count)
    others = [f"{s.label}: {results.requests[s]:,}" for s in subjects if results.requests[s] != usual]
    return f"{usual:,}" + (f" ({', '.join(others)})" if others else "")


def heading(results: Results) -> str:
    load = ", ".join(f"{x:.2f}" for x in results.load)
    return (f"make bench: {results.rounds} interleaved rounds on 127.0.0.1 ({os.cpu_count()} CPUs,"
            f" Linux {platform.release()}, load average {load} at the start); median (lowest-highest)")


def table(results: Results) -> str:
    """Step g against the floor, other links and Python."""
    figures = results.figures
    median = statistics.median

    def cpu(subject: Subject) -> float:
        return median(figures[subject].cpu_per_request)

    def linking(dynamic: Subject, static: Subject) -> str:
        """What linking dynamically costs per request (per fork)."""
        extra = (cpu(dynamic) - cpu(static)) * 1e6
        return f"{cpu(dynamic) / cpu(static):.2f}x ({extra:+.0f} us)"

    python_dynamic_ratio = cpu(PYTHON) / cpu(STEP_G_DYNAMIC)
    rps = {subject: median(figures[subject].requests_per_second) for subject in SUBJECTS}
    lines = [
        heading(results),
        f"load: ab -n {sizes(results, SUBJECTS)} -c {CONCURRENCY} per server and round;"
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
        f"{'client3 against step g':<52}{median_and_range(results.connection_rates).rstrip()} connections/s"
        f" (--max-clients {CLIENT3_CLIENTS} --max-conns {CLIENT3_CONNS})",
        "",
        cpu_ratio(results, STEP_G, FLOOR, "step g CPU per request / floor's", CPU_RATIO_TARGET),
        cpu_ratio(results, STEP_G_DYNAMIC, FLOOR_DYNAMIC, "the same, both dynamic"),
        cpu_ratio(results, STEP_G_FILE, FLOOR, "the same, step g's output to a file"),
        "CPU per request, dynamic / steps' link".ljust(44)
        + f"step g {linking(STEP_G_DYNAMIC, STEP_G)}, floor {linking(FLOOR_DYNAMIC, FLOOR)}",
        "CPU per request, default link / steps' link".ljust(44) + f"step g {linking(STEP_G_DEFAULT, STEP_G)}",
        cpu_ratio(results, PYTHON, STEP_G, "Python's CPU per request / step g's", PYTHON_CPU_RATIO_TARGET,
                  at_least=True, aside=f" (step g dynamic: {python_dynamic_ratio:.2f}x)"),
        ratio_line("step g requests/s / Python's", rps[STEP_G] / rps[PYTHON],
                   aside=f"   (step g dynamic: {rps[STEP_G_DYNAMIC] / rps[PYTHON]:.2f}x,"
                   f" the floor: {rps[FLOOR] / rps[PYTHON]:.2f}x)"),
    ]
    return "\n".join(lines)


def designs_table(results: Results) -> str:
    """The ways of serving, side by side: UNP's figure 30.1 for today's Linux."""
    figures = results.figures
    rps = {subject: statistics.median(figures[subject].requests_per_second) for subject in DESIGNS}
    cpu = {subject: statistics.median(figures[subject].cpu_per_request) for subject in DESIGNS}
    lines = [
        f"designs: the same rounds; load: ab -n {sizes(results, DESIGNS)} -c {CONCURRENCY} per server and round",
        "CPU: utime+stime+cutime+cstime summed over every process of the server's group (/proc/PID/stat);"
        " faults: minflt+cminflt, likewise",
        f"processes created: {results.fork_method}",
        "",
        f"{'server':<52}{'processes/request':<24}{'requests/s':<24}{'CPU us/request':<24}faults/request",
    ]
    for subject in DESIGNS:
        f = figures[subject]
        lines.append(f"{subject.description():<52}{median_and_range(f.processes, digits=2):<24}"
                     f"{median_and_range(f.requests_per_second):<24}"
                     f"{median_and_range(f.cpu_per_request, 1e6):<24}"
                     f"{median_and_range(f.group_faults, digits=1)}".rstrip())
    lines += [
        "",
        cpu_ratio(results, STEP_I, STEP_G, "step i CPU per request / step g's", POOL_CPU_RATIO_TARGET),
        cpu_ratio(results, STEP_J, STEP_G, "step j CPU per request / step g's", POOL_CPU_RATIO_TARGET),
        cpu_ratio(results, STEP_H, STEP_G, "step h CPU per request / step g's", SELFPIPE_CPU_RATIO_TARGET),
        cpu_ratio(results, STEP_A, STEP_G, "step a CPU per request / step g's"),
        cpu_ratio(results, FLOOR, STEP_G, "the floor's CPU per request / step g's"),
        "requests/s / step g's".ljust(44)
        + ", ".join(f"{s.label} {rps[s] / rps[STEP_G]:.2f}x" for s in DESIGNS if s != STEP_G),
        # UNP's figure 30.1 shows each design's CPU time less the iterative server's: what the design's
        # process control costs, the work of serving a connection taken out.
        "CPU per request less step a's".ljust(44)
        + ", ".join(f"{s.label} {(cpu[s] - cpu[STEP_A]) * 1e6:+,.0f} us" for s in DESIGNS if s != STEP_A),
    ]
    return "\n".join(lines)


def svg(width: int, height: int, parts: list[str]) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'font-family="sans-serif" font-size="13">\n<rect width="100%" height="100%" fill="white"/>\n'
            + "\n".join(parts) + "\n</svg>\n")


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
    return svg(width, y, parts)


def designs_chart(results: Results) -> str:
    """The designs table as SVG: CPU per request on a logarithmic scale (the
    designs differ a hundredfold), each target marked on its row; then
    requests per second."""
    figures, median = results.figures, statistics.median
    cpu = {s: median(figures[s].cpu_per_request) * 1e6 for s in DESIGNS}
    rps = {s: median(figures[s].requests_per_second) for s in DESIGNS}
    processes = {s: median(figures[s].processes) for s in DESIGNS}
    targets = {STEP_H: SELFPIPE_CPU_RATIO_TARGET, STEP_I: POOL_CPU_RATIO_TARGET, STEP_J: POOL_CPU_RATIO_TARGET}
    forking = "#2b6cb0"  # A process per request.
    colours = {STEP_A: "#38a169", STEP_I: "#38a169", STEP_J: "#38a169", PYTHON: "#d69e2e"}
    label_width, plot, row = 70, 360, 28
    text_x = label_width + plot + 12
    width = text_x + 440
    # Whole decades around every value and every target.
    shown = [*cpu.values(), *(cpu[STEP_G] * t for t in targets.values())]
    low = 10 ** math.floor(math.log10(max(min(shown), 0.1)))
    high = 10 ** math.ceil(math.log10(max(shown)))

    def x(value: float) -> float:
        return label_width + plot * (math.log10(max(value, low)) - math.log10(low)) / math.log10(high / low)

    def duration(us: float) -> str:
        return f"{us / 1000:g} ms" if us >= 1000 else f"{us:g} us"

    parts = [f'<text x="10" y="22" font-weight="bold">Server designs: CPU time per request, over the whole'
             f' process group (less is better)</text>',
             f'<text x="10" y="40" fill="#4a5568">make bench, {results.rounds} interleaved rounds, medians;'
             f' ab -c {CONCURRENCY}; {os.cpu_count()} CPUs, load average {results.load[0]:.2f} at the start</text>']
    top = 54
    bottom = top + row * len(DESIGNS)
    decade = low
    while decade <= high * 1.001:  # Grid lines at each power of ten, labelled below.
        parts.append(f'<line x1="{x(decade):.1f}" y1="{top}" x2="{x(decade):.1f}" y2="{bottom}" stroke="#e2e8f0"/>')
        parts.append(f'<text x="{x(decade):.1f}" y="{bottom + 14}" text-anchor="middle" font-size="11" '
                     f'fill="#4a5568">{duration(decade)}</text>')
        decade *= 10
    y = top
    for subject in DESIGNS:
        value, colour = cpu[subject], colours.get(subject, forking)
        parts.append(f'<text x="10" y="{y + 18}">{subject.label}</text>')
        parts.append(f'<rect x="{label_width}" y="{y + 5}" width="{x(value) - label_width:.1f}" height="{row - 10}" '
                     f'fill="{colour}"/>')
        note = f"{value:,.0f} us = {value / cpu[STEP_G]:.2f}x step g; {processes[subject]:.2f} processes/request"
        if subject in targets:
            limit = cpu[STEP_G] * targets[subject]
            met = value <= limit
            parts.append(f'<line x1="{x(limit):.1f}" y1="{y + 1}" x2="{x(limit):.1f}" y2="{y + row - 1}" '
                         f'stroke="#e53e3e" stroke-width="3"/>')
            note += f'; <tspan fill="#c53030">target &#8804; {targets[subject]:.2f}x: {"met" if met else "NOT met"}</tspan>'
        parts.append(f'<text x="{text_x}" y="{y + 18}" font-size="12">{note}</text>')
        y += row
    y = bottom + 32
    for line in (f"Logarithmic scale. Red mark: the row's target (step h at most {SELFPIPE_CPU_RATIO_TARGET:.2f}x"
                 f" step g's CPU per request; steps i and j at most {POOL_CPU_RATIO_TARGET:.2f}x).",
                 "Blue: a C++ server that forks a child per request; orange: Python's, which does too;"
                 " green: no process per request."):
        parts.append(f'<text x="10" y="{y}" font-size="12" fill="#4a5568">{line}</text>')
        y += 16
    y += 16
    parts.append(f'<text x="10" y="{y}" font-weight="bold">Requests per second (more is better; ab and the server'
                 f' share the CPUs)</text>')
    y += 8
    most = max(rps.values())
    for subject in DESIGNS:
        length = plot * rps[subject] / most
        parts.append(f'<text x="10" y="{y + 18}">{subject.label}</text>')
        parts.append(f'<rect x="{label_width}" y="{y + 5}" width="{length:.1f}" height="{row - 10}" '
                     f'fill="{colours.get(subject, forking)}"/>')
        parts.append(f'<text x="{label_width + length + 6:.1f}" y="{y + 18}" font-size="12">'
                     f'{rps[subject]:,.0f}</text>')
        y += row
    return svg(width, y + 12, parts)


def main() -> int:
    parser = argparse.ArgumentParser(description="make bench: step g against the floor and Python, and the designs")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help=f"interleaved rounds (default {ROUNDS})")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    harness.prepare_process()
    try:
        results = run_rounds(args.rounds)
    except (BenchFailed, harness.ServerDidNotStart, FileNotFoundError) as error:
        print(f"bench: {error}", file=sys.stderr)
        return 1
    left = harness.children_of(os.getpid())
    if left:
        print(f"bench: processes left behind: {left}", file=sys.stderr)
        return 1
    report = table(results) + "\n\n" + designs_table(results)
    print(report)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "bench.txt").write_text(report + "\n")
    (RESULTS / "bench.svg").write_text(bar_chart(results.figures))
    (RESULTS / "designs.svg").write_text(designs_chart(results))
    print(f"\n(also in {RESULTS.relative_to(REPO)}/bench.txt, bench.svg and designs.svg)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
