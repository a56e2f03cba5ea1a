"""Reading a server as the compiler and the running program see it.

Two things only the code can tell: which function a server installs as its
SIGCHLD handler, and everything that function may call. Neither is read from
the spelling of the source. The server runs with a preloaded shim
(shim.cpp: it records the address that sigaction() or signal() received, what
the handler does to errno, and whether a child ends with exit()), and the
compiler writes the call graph of the file it compiled (g++'s
-fcallgraph-info: one node per function after optimisation, one edge per
call). The handler's address names a function (nm); from it the graph is
followed through the file's own functions to every library function that the
handler may call, and each one is judged against POSIX's list of
async-signal-safe functions (an allow-list). A lambda, sa_sigaction, a helper
function, any names: what the compiler compiled is what is judged.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import harness

HERE = Path(__file__).resolve().parent
# Where the judge keeps what it builds: the shim, and the references built as make check builds a
# participant's file.
CACHE = Path(os.environ.get("WORKSHOP_JUDGE_BUILD", harness.BIN.parent / "judge"))

# make check builds every server this way: the steps' warnings, and a call graph beside the binary.
CXXFLAGS = ["-std=c++17", "-Wall", "-Wextra", "-Wpedantic", "-O1", "-g"]

# The functions that POSIX.1-2008 (TC2, 2016) requires to be async-signal-safe: signal-safety(7).
ASYNC_SIGNAL_SAFE = set("""
abort accept access aio_error aio_return aio_suspend alarm bind cfgetispeed cfgetospeed cfsetispeed
cfsetospeed chdir chmod chown clock_gettime close connect creat dup dup2 execl execle execv execve _exit
_Exit faccessat fchdir fchmod fchmodat fchown fchownat fcntl fdatasync fexecve ffs fork fstat fstatat
fsync ftruncate futimens getegid geteuid getgid getgroups getpeername getpgrp getpid getppid getsockname
getsockopt getuid htonl htons kill link linkat listen longjmp lseek lstat memccpy memchr memcmp memcpy
memmove memset mkdir mkdirat mkfifo mkfifoat mknod mknodat ntohl ntohs open openat pause pipe poll
posix_trace_event pselect pthread_kill pthread_self pthread_sigmask raise read readlink readlinkat recv
recvfrom recvmsg rename renameat rmdir select sem_post send sendmsg sendto setgid setpgid setsid
setsockopt setuid shutdown sigaction sigaddset sigdelset sigemptyset sigfillset sigismember siglongjmp
signal sigpause sigpending sigprocmask sigqueue sigset sigsuspend sleep sockatmark socket socketpair stat
stpcpy stpncpy strcat strchr strcmp strcpy strcspn strlen strncat strncmp strncpy strnlen strpbrk
strrchr strspn strstr strtok_r symlink symlinkat tcdrain tcflow tcflush tcgetattr tcgetpgrp tcsendbreak
tcsetattr tcsetpgrp time timer_getoverrun timer_gettime timer_settime times umask uname unlink unlinkat
utime utimensat utimes wait waitpid wcpcpy wcpncpy wcscat wcschr wcscmp wcscpy wcscspn wcslen wcsncat
wcsncmp wcsncpy wcsnlen wcspbrk wcsrchr wcsspn wcsstr wcstok write
""".split())
# What the compiler itself calls, not the program: the address of errno (reading and writing errno
# is safe; saving and restoring it is the rule) and the stack protector's report of a smashed stack.
COMPILER_HELPERS = {"__errno_location", "__stack_chk_fail"}


def is_async_signal_safe(name: str) -> bool:
    # glibc's checked variants (_FORTIFY_SOURCE) are the function they check: __read_chk is read.
    match = re.fullmatch(r"__(\w+)_chk", name)
    return (match.group(1) if match else name) in ASYNC_SIGNAL_SAFE | COMPILER_HELPERS


# ---------------------------------------------------------------------------
# Building: the participant's file, the references, the shim.

_thread_lock = threading.Lock()


@contextlib.contextmanager
def _cache_lock():
    """One builder at a time in the cache, across threads and processes (two make checks at once)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with _thread_lock, open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@dataclass
class Build:
    binary: Path | None  # None: it did not compile.
    output: str  # What the compiler printed.
    callgraph: Path | None = None

    @property
    def warnings(self) -> list[str]:
        return [line for line in self.output.splitlines() if ": warning:" in line]


def compile_server(source: Path, binary: Path, compiler: str | None = None) -> Build:
    """Compile one server as make check does: dynamically linked (so that the shim can be
    preloaded), with the steps' warnings, and with its call graph beside the binary."""
    binary.parent.mkdir(parents=True, exist_ok=True)
    for old in [*binary.parent.glob(f"{binary.name}-*.ci"), binary.with_name(binary.name + ".ci")]:
        old.unlink(missing_ok=True)
    command = [compiler or os.environ.get("CXX", "c++"), *CXXFLAGS, "-fcallgraph-info", "-o", str(binary),
               str(source)]
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0:
        return Build(None, result.stdout)
    return Build(binary, result.stdout, callgraph_of(binary))


def callgraph_of(binary: Path) -> Path | None:
    """The call graph g++ wrote beside a binary it compiled and linked: NAME.ci when the binary is named
    after the source, NAME-SOURCE.ci otherwise."""
    binary = Path(binary)
    graphs = sorted(binary.parent.glob(f"{binary.name}-*.ci")) + [binary.with_name(binary.name + ".ci")]
    return next((graph for graph in graphs if graph.exists()), None)


def reference_build(source: Path) -> Path:
    """A reference server's source, built as make check builds a participant's file (cached)."""
    digest = hashlib.sha256(source.read_bytes() + " ".join(CXXFLAGS).encode()).hexdigest()[:16]
    binary = CACHE / "references" / f"{source.stem}-{digest}"
    with _cache_lock():
        if not binary.exists() or callgraph_of(binary) is None:
            build = compile_server(source, binary)
            if build.binary is None:
                raise RuntimeError(f"{source} does not compile:\n{build.output}")
    return binary


SHIM_SOURCE = HERE / "shim.cpp"


def shim() -> Path | None:
    """The shim, built once per version of shim.cpp; None where it cannot be built (not Linux)."""
    digest = hashlib.sha256(SHIM_SOURCE.read_bytes()).hexdigest()[:16]
    library = CACHE / f"libworkshop_shim-{digest}.so"
    with _cache_lock():
        if not library.exists():
            with tempfile.NamedTemporaryFile(dir=CACHE, suffix=".so", delete=False) as partial:
                pass
            result = subprocess.run([os.environ.get("CXX", "c++"), "-std=c++17", "-O1", "-Wall", "-Wextra", "-shared", "-fPIC",
                                     "-nodefaultlibs", "-o", partial.name, str(SHIM_SOURCE), "-lc", "-ldl", "-lgcc"],
                                    capture_output=True, text=True)
            if result.returncode != 0:
                os.unlink(partial.name)
                return None
            os.replace(partial.name, library)
    return library


# ---------------------------------------------------------------------------
# What the shim saw.


@dataclass
class ShimEvents:
    """The shim's lines for one server's processes."""

    pid: int
    lines: list[list[str]] = field(default_factory=list)

    def of_server(self, word: str) -> list[list[str]]:
        return [line[2:] for line in self.lines if line[0] == str(self.pid) and line[1] == word]

    def of_children(self, word: str) -> list[str]:
        """The PIDs, other than the server's, that wrote `word`."""
        return [line[0] for line in self.lines if line[0] != str(self.pid) and line[1] == word]

    @property
    def installed(self) -> tuple[str, int, int, int] | None:
        """The last SIGCHLD handler the server installed: (how, offset, base, flags)."""
        found = [("sigaction", *map(int, rest)) for rest in self.of_server("installed-sigaction")]
        found += [("signal", *map(int, rest)) for rest in self.of_server("installed-signal")]
        # Lines are in time order; keep the last installation.
        order = [line for line in self.lines if line[0] == str(self.pid) and line[1].startswith("installed-")]
        if not order:
            return None
        how = order[-1][1].removeprefix("installed-")
        return (how, *map(int, order[-1][2:5]))


def read_events(log: Path, pid: int) -> ShimEvents:
    try:
        text = log.read_text()
    except OSError:
        text = ""
    return ShimEvents(pid, [line.split() for line in text.splitlines() if len(line.split()) >= 2])


# ---------------------------------------------------------------------------
# The call graph.


@dataclass
class CallGraph:
    labels: dict[str, str]  # node title -> label (its demangled name and place)
    external: set[str]  # nodes the file calls but does not define
    calls: dict[str, list[str]]  # node title -> the titles it calls, in order


_NODE = re.compile(r'^node: \{ title: "([^"]*)" label: "((?:[^"\\]|\\.)*)"( shape : ellipse)?')
_EDGE = re.compile(r'^edge: \{ sourcename: "([^"]*)" targetname: "([^"]*)"')


def read_callgraph(path: Path) -> CallGraph:
    graph = CallGraph({}, set(), {})
    for line in path.read_text(errors="replace").splitlines():
        if match := _NODE.match(line):
            graph.labels[match.group(1)] = match.group(2).replace("\\n", "\n")
            if match.group(3):
                graph.external.add(match.group(1))
        elif match := _EDGE.match(line):
            graph.calls.setdefault(match.group(1), []).append(match.group(2))
    return graph


def symbol_at(binary: Path, offset: int, base: int) -> str | None:
    """The function that starts at the handler's address, from the binary's symbol table."""
    result = subprocess.run(["nm", "--defined-only", str(binary)], capture_output=True, text=True)
    for line in result.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "tTwWiI":
            value = int(parts[0], 16)
            if value == offset or value == offset + base:  # PIE (relative), or an absolute address.
                return parts[2]
    return None


def node_of(graph: CallGraph, symbol: str) -> str | None:
    """The call graph's node for a symbol: local symbols are titled "file:symbol"."""
    for title in graph.labels:
        if title == symbol or title.endswith(":" + symbol):
            return title
    return None


def name_of(graph: CallGraph, title: str) -> str:
    """A node's name as a person reads it (the demangled name from its label)."""
    if title in graph.external:
        return title.split(":")[-1] + "()"
    label = graph.labels.get(title, title).split("\n")[0]
    if "::<lambda" in label:
        owner = label.split("::<lambda")[0].split()[-1]
        return f"the lambda in {owner}"
    match = re.search(r"([\w:~{}]+)\(", label)
    return f"{match.group(1)}()" if match else label


@dataclass
class Reached:
    callee: str  # A library function the handler may call.
    path: list[str]  # The handler, then each of the file's functions on the way.


def unsafe_calls(graph: CallGraph, start: str) -> list[Reached]:
    """Every library function outside the allow-list that `start` may call, directly or through the
    file's own functions, with the first path found to it."""
    found: dict[str, Reached] = {}
    seen, todo = {start}, [(start, [start])]
    while todo:
        node, path = todo.pop(0)
        for callee in graph.calls.get(node, []):
            if callee in graph.external:
                name = callee.split(":")[-1]
                if not is_async_signal_safe(name) and name not in found:
                    found[name] = Reached(name, path)
            elif callee not in seen:
                seen.add(callee)
                todo.append((callee, path + [callee]))
    return list(found.values())


def demangle(names: list[str]) -> list[str]:
    if not names:
        return []
    result = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True)
    shown = result.stdout.splitlines()
    return shown if len(shown) == len(names) else names
