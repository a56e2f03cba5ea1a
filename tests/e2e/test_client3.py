"""client3, the forking load client: it opens and holds what it is told to,
counts a connection once the server has answered it, names its failures,
refuses a run the machine cannot carry, and exits 0 only if every connection
was made."""

import contextlib
import os
import select
import socket
import time

import harness
import pytest


def test_every_child_opens_holds_and_numbers_its_connections(start):
    server = start("g")
    result = harness.client3(server.port, max_clients=3, max_conns=4)
    assert result.returncode == 0, result.stdout + result.stderr
    numbers = [line for line in result.stdout.splitlines() if line.isdigit()]
    assert sorted(numbers) == sorted(["0", "1", "2", "3"] * 3)
    assert result.stdout.splitlines()[-1] == "client3: 12 of 12 connections made, 0 failed"
    # The server saw the article's request on each connection.
    assert server.out.wait_for(rf"^Host: localhost:{server.port}$", 10, count=12)


def test_a_refused_connection_is_named_and_fails_the_run():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]  # Bound but not listening: connections are refused.
        result = harness.client3(closed_port, max_clients=2, max_conns=3)
    assert result.returncode == 1
    assert "connect: Connection refused" in result.stderr
    assert result.stdout.splitlines()[-1] == (
        "client3: 0 of 6 connections made, 6 failed [connect: Connection refused x6]")


def test_by_default_each_child_makes_one_connection_as_the_articles_client_did(start):
    server = start("g")
    result = harness.run_bounded([str(harness.binary("client3")), "--port", str(server.port), "--max-clients", "5"],
                                 timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == ["0"] * 5 + ["client3: 5 of 5 connections made, 0 failed"]


def test_a_run_that_needs_more_local_ports_than_the_machine_has_is_refused_up_front():
    # The old default (1024 connections per child) made the article's
    # --max-clients 128 ask for 131,072 connections and exhaust the ports.
    low, high = map(int, open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
    clients = (high - low + 1) // 2 // 1000 + 1  # Just over half the range, at 1000 connections each.
    result = harness.run_bounded([str(harness.binary("client3")), "--port", "1", "--max-clients", str(clients),
                                  "--max-conns", "1000"], timeout=10)
    assert result.returncode == 2, result.stdout[-300:] + result.stderr[-300:]
    assert result.stdout == "", "client3 started connecting before refusing"
    assert "refused" in result.stderr and "ip_local_port_range" in result.stderr
    assert result.seconds < 2


def test_a_connection_counts_only_once_the_server_has_answered_it():
    # A socket that listens but never accepts: the kernel completes every
    # handshake (connect() succeeds), but no server ever answers.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        port = listener.getsockname()[1]
        result = harness.run_bounded([str(harness.binary("client3")), "--port", str(port), "--max-clients", "3",
                                      "--timeout", "0.5"], timeout=20)
    assert result.returncode == 1
    assert result.stdout.splitlines()[-1] == (
        "client3: 0 of 3 connections made, 3 failed [no answer within 0.5s x3]"), "connect() alone counted as made"


def test_step_b_the_client_does_not_wait_out_the_sleep(start):
    # Step b answers the first client, then sleeps before it accepts the next.
    server = start("b", "--sleep", "30")
    began = time.monotonic()
    result = harness.run_bounded([str(harness.binary("client3")), "--port", str(server.port), "--max-clients", "3",
                                  "--timeout", "1"], timeout=20)
    assert time.monotonic() - began < 10, "client3 waited for the server's sleep"
    assert result.stdout.splitlines()[-1] == (
        "client3: 1 of 3 connections made, 2 failed [no answer within 1s x2]"), result.stderr


def test_the_help_says_host_takes_a_name_as_the_servers_do():
    result = harness.run_bounded([str(harness.binary("client3")), "--help"], timeout=10)
    assert result.returncode == 0
    assert "--host HOST" in result.stdout and "host name" in result.stdout
    readme = (harness.REPO / "client" / "README.md").read_text()
    assert "| `--max-conns M` | connections each child opens and holds | 1 |" in readme
    assert "host name" in readme


# Whole numbers in plain decimal, as the servers take them: a sign, a blank, hex or an exponent are
# usage errors (strtol() alone would read " 1" and "+1" as 1).
@pytest.mark.parametrize("args", [["--max-clients", "0"], ["--max-conns", "x"], ["--port", "70000"],
                                  ["--bogus"], ["--port"], ["--timeout", "0"], ["extra"], ["-x"],
                                  ["--port", " 1"], ["--port", "+1"], ["--max-clients", "0x1"],
                                  ["--max-conns", "1e1"], ["--timeout", "inf"], ["--timeout", " 1"],
                                  ["--help=1"]])
def test_a_bad_option_prints_usage_and_exits_2(args):
    result = harness.run_bounded([str(harness.binary("client3")), *args], timeout=10)
    assert result.returncode == 2, f"client3 {args!r} ran: {result.stdout[-200:]}"
    assert "Usage:" in result.stderr
    first = result.stderr.splitlines()[0]
    assert first.isprintable(), f"the message names the option with a raw control byte: {first!r}"


def test_an_unknown_host_is_named():
    result = harness.run_bounded([str(harness.binary("client3")), "--host", "no-such-host.invalid"], timeout=30)
    assert result.returncode == 1
    assert result.stderr.startswith("getaddrinfo: no-such-host.invalid:")


# A busy machine, made to order. On a shared machine (2 cores, load 5 to 11)
# a child of client3 can wait for a processor for a tenth of a second and
# more at any point, an acknowledgement can come late, and a listen queue of
# 5 fills up. The tests below make each such moment happen where it matters,
# every time, with a small library preloaded into client3 (LD_PRELOAD: client3
# is linked dynamically; root and an ordinary user alike can do it, with no
# privilege, namespace or ptrace):
# - each TCP connect() is noted (n);
# - CLIENT3_LATE_AFTER_CONNECT=S: connect() returns S seconds after the
#   kernel started the handshake (on loopback it completes in microseconds),
#   as when the process loses the processor right there (c);
# - CLIENT3_UNACKNOWLEDGED=1: ioctl(SIOCOUTQ) says that the request is not
#   acknowledged yet, as when the acknowledgement is late (u);
# - CLIENT3_LATE_CLOSE=S: close() of a TCP socket that is still connecting
#   first waits, at most S seconds, for its handshake to complete, as when the
#   process loses the processor just before close() (x; e once completed).
# The letters go to the file CLIENT3_SHIM_LOG, so that a test can tell that
# its condition was really made.
BUSY_MACHINE = r"""
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void note(char letter)
{
    const char *log = getenv("CLIENT3_SHIM_LOG");
    int fd = log ? open(log, O_WRONLY | O_APPEND | O_CREAT, 0600) : -1;
    if (fd != -1) {
        if (write(fd, &letter, 1) == -1) {}
        close(fd);
    }
}

static bool is_tcp(int fd)
{
    int type = 0, domain = 0;
    socklen_t length = sizeof type;
    return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) == 0 && type == SOCK_STREAM &&
           getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &length) == 0 && (domain == AF_INET || domain == AF_INET6);
}

static bool connected(int fd, int milliseconds)
{
    int error = 0;
    socklen_t length = sizeof error;
    pollfd entry{fd, POLLOUT, 0};
    return poll(&entry, 1, milliseconds) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 &&
           error == 0;
}

extern "C" int connect(int fd, const sockaddr *address, socklen_t length)
{
    using Connect = int (*)(int, const sockaddr *, socklen_t);
    static Connect real = reinterpret_cast<Connect>(dlsym(RTLD_NEXT, "connect"));
    int result = real(fd, address, length);
    int saved = errno;
    if (is_tcp(fd)) {
        note('n');
        if (const char *late = getenv("CLIENT3_LATE_AFTER_CONNECT")) {
            double seconds = atof(late);
            timespec pause{static_cast<time_t>(seconds),
                           static_cast<long>((seconds - static_cast<time_t>(seconds)) * 1e9)};
            while (nanosleep(&pause, &pause) == -1 && errno == EINTR) {}
            note('c');
        }
    }
    errno = saved;
    return result;
}

extern "C" int ioctl(int fd, unsigned long request, ...)
{
    using Ioctl = int (*)(int, unsigned long, ...);
    static Ioctl real = reinterpret_cast<Ioctl>(dlsym(RTLD_NEXT, "ioctl"));
    va_list arguments;
    va_start(arguments, request);
    void *argument = va_arg(arguments, void *);
    va_end(arguments);
    int result = real(fd, request, argument);
    if (result == 0 && request == SIOCOUTQ && getenv("CLIENT3_UNACKNOWLEDGED")) {
        int *bytes = static_cast<int *>(argument);
        if (*bytes == 0)
            *bytes = 1;
        note('u');
    }
    return result;
}

extern "C" int close(int fd)
{
    using Close = int (*)(int);
    static Close real = reinterpret_cast<Close>(dlsym(RTLD_NEXT, "close"));
    const char *late = getenv("CLIENT3_LATE_CLOSE");
    int error = 0;
    socklen_t length = sizeof error;
    if (late && is_tcp(fd) && getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 && error == 0 &&
        !connected(fd, 0)) {
        note('x');
        if (connected(fd, static_cast<int>(atof(late) * 1000)))
            note('e');
    }
    return real(fd);
}
"""


@pytest.fixture(scope="module")
def busy_machine(tmp_path_factory):
    """The preloaded library above, built with the C++ compiler that builds
    the workshop (CXX, else c++)."""
    folder = tmp_path_factory.mktemp("busy_machine")
    source = folder / "busy_machine.cpp"
    source.write_text(BUSY_MACHINE)
    library = folder / "busy_machine.so"
    built = harness.run_bounded([os.environ.get("CXX", "c++"), "-shared", "-fPIC", "-O1", "-o", str(library),
                                 str(source), "-ldl"], timeout=120)
    assert built.returncode == 0, f"the preloaded library did not build: {built.stderr[-2000:]}"
    return library


def preloaded(library, log, max_clients: int, port: int, timeout: float, **condition: str) -> list[str]:
    """client3's command line with the library preloaded, its letters going to
    `log`, and the condition's variables (late_close="5": CLIENT3_LATE_CLOSE=5)."""
    # A sanitizer build's client3 wants its runtime first among the libraries; it works as well with ours first.
    asan = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"), "verify_asan_link_order=0"]))
    return ["env", f"LD_PRELOAD={library}", f"CLIENT3_SHIM_LOG={log}", f"ASAN_OPTIONS={asan}",
            *(f"CLIENT3_{name.upper()}={value}" for name, value in condition.items()),
            str(harness.binary("client3")), "--port", str(port), "--max-clients", str(max_clients),
            "--timeout", str(timeout)]


def letters(log) -> str:
    return log.read_text() if log.exists() else ""


def accepted_only_what_was_made(server: harness.Server, pattern: str, made: int) -> int:
    """How many connections the server shows (lines matching `pattern`, one
    per connection it accepted): waits generously for the `made` that
    client3 counted, then briefly for one more, which must not come."""
    server.out.wait_for(pattern, 10, count=made)
    server.out.wait_for(pattern, 1.0, count=made + 1)
    return len(server.out.matches(pattern))


def test_a_late_client_never_gives_up_a_connection_the_server_has_accepted(start, busy_machine, tmp_path):
    # Each child of client3 loses the processor for 0.4 s right after
    # connect(), longer than it means to wait for a handshake (0.05 to 0.15 s
    # at first). Meanwhile the kernels complete the handshake and the server
    # accepts the connection: it is made, whatever client3's clock says. A
    # client that resets it makes the server's recv() fail; one that closes
    # it leaves the server a connection that client3 does not count.
    server = start("g")
    log = tmp_path / "letters"
    result = harness.run_bounded(preloaded(busy_machine, log, 3, server.port, 10, late_after_connect="0.4"),
                                 timeout=60)
    assert letters(log).count("c") >= 3, (f"the library made no connect() late ({letters(log)!r}): is client3 "
                                          f"linked statically? {result.stderr[-300:]}")
    quiet = server.err.wait_for(r".", 1.0) is None  # Brief: an error shows at once, and must not show at all.
    assert quiet, (
        f"webserver3g printed {server.err.text()!r}: client3 reset connections that the server had already "
        "accepted. Likely cause: client3 judged an attempt too slow by its own clock (it had lost the processor "
        "after connect()) and reset it, though the handshake had completed meanwhile. Look at the socket "
        "(poll() it once more) before giving up, and never reset an attempt whose handshake has completed.")
    # Step g reports each child it collects: one per connection it accepted.
    accepted = accepted_only_what_was_made(server, r"^Child \d+ terminated with status", 3)
    summary = result.stdout.splitlines()[-1:]
    assert accepted == 3 and summary == ["client3: 3 of 3 connections made, 0 failed"], (
        f"the server accepted {accepted} connections, client3 says {summary}: client3 gave up attempts whose "
        "handshake had completed (judged by its clock, not by the socket's state), and the server accepted "
        f"them too. {result.stderr[-300:]}")


def test_a_request_whose_acknowledgement_is_late_is_never_reset(start, busy_machine, tmp_path):
    # Step b answers the first client, then sleeps 1 s before it accepts the
    # next; the listen queue holds the other two meanwhile, their requests
    # received. The library makes client3 believe that those requests are not
    # acknowledged yet (as when the acknowledgement is late): a client that
    # gives them up for that leaves dead connections in the queue, which the
    # server accepts after its sleep (a reset one fails its send()).
    server = start("b", "--sleep", "1")
    log = tmp_path / "letters"
    result = harness.run_bounded(preloaded(busy_machine, log, 3, server.port, 8, unacknowledged="1"), timeout=60)
    acted = letters(log).count("u")
    quiet = server.err.wait_for(r".", 1.0) is None
    assert quiet, (
        f"webserver3b printed {server.err.text()!r} (the library acted {acted} times): client3 reset a "
        "connection after sending its request, because the server's kernel seemed not to have acknowledged it "
        "(SIOCOUTQ > 0), and the server accepted it dead. Once the handshake has completed the connection may "
        "be in the listen queue: wait for the answer until --timeout, never reset it.")
    answered = accepted_only_what_was_made(server, r"^GET /hello", 3)
    summary = result.stdout.splitlines()[-1:]
    assert answered == 3 and summary == ["client3: 3 of 3 connections made, 0 failed"], (
        f"the server answered {answered} requests, client3 says {summary}: client3 gave up connections whose "
        f"request the server had received (the library acted {acted} times), and the server answered them "
        f"later, while the connections client3 waited on waited behind them. {result.stderr[-300:]}")


@contextlib.contextmanager
def full_listen_queue(server: harness.Server):
    """Fill step a's listen queue (backlog 5): one connection that step a
    accepts and waits on in recv(), then others until the server's kernel
    drops a SYN. On leaving, close them all: step a reads an end of file on
    each, and the queue empties."""
    baseline = server.open_descriptors()
    held = [harness.connect(server.port)]
    try:
        # Step a accepts the first (one more descriptor): the queue is then empty.
        assert server.wait_for_descriptors(baseline + 1, timeout=10) == baseline + 1, "step a did not accept"
        for _ in range(20):  # A backlog of 5 holds 6 on Linux.
            probe = socket.socket()
            probe.setblocking(False)
            probe.connect_ex(("127.0.0.1", server.port))
            if not select.select([], [probe], [], 0.3)[1]:
                probe.close()  # Still connecting: its SYN was dropped, the queue is full.
                break
            held.append(probe)
        else:
            pytest.fail("step a's listen queue never filled: 20 connections completed their handshake")
        yield
    finally:
        for connection in held:
            connection.close()


def wait_for_letters(log, letter: str, count: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while letters(log).count(letter) < count:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_while_the_listen_queue_is_full_client3_tries_again_unseen(start, busy_machine, tmp_path):
    # The server's kernel drops client3's SYN and sends it again only 1, 3
    # and 7 s after the first: a client that waits for that makes a burst
    # against a backlog of 5 take seconds. client3 gives the attempt up and
    # makes another at once, and the server never sees the ones it gave up.
    server = start("a")
    log = tmp_path / "letters"
    with full_listen_queue(server):
        client = harness.run_in_background(preloaded(busy_machine, log, 1, server.port, 15))
        # Generous: client3 tries again within 0.15 s; the kernel alone would wait 1 s, then 3.
        again = wait_for_letters(log, "n", 2, timeout=2.9)
    try:
        stdout, stderr = client.communicate(timeout=30)
    finally:
        harness.reap_group(client.pid)
    assert again, ("client3 made one connect() in 2.9 s while the listen queue was full: it waits for the "
                   "kernel to send the SYN again (1, 3, 7 s after the first) instead of trying again itself")
    quiet = server.err.wait_for(r".", 1.0) is None
    assert quiet, f"webserver3a printed {server.err.text()!r}: client3's attempts that it gave up reached it"
    assert stdout.decode().splitlines()[-1:] == ["client3: 1 of 1 connections made, 0 failed"], stderr.decode()
    answered = accepted_only_what_was_made(server, r"^GET /hello", 1)
    assert answered == 1, f"step a answered {answered} requests for client3's one connection"


def test_an_attempt_given_up_as_its_handshake_completes_is_closed_not_reset(start, busy_machine, tmp_path):
    # The same full queue. The library holds client3's close() of the attempt
    # it gives up until that handshake completes after all: the test empties
    # the queue meanwhile, and the client's kernel sends the SYN again 1 s
    # after the first. So client3 closes a connection that the server's kernel
    # has just queued, and the server will accept it: a reset (SO_LINGER 0)
    # makes its recv() fail; an orderly close() gives it an end of file.
    server = start("a")
    log = tmp_path / "letters"
    with full_listen_queue(server):
        client = harness.run_in_background(preloaded(busy_machine, log, 1, server.port, 15, late_close="5"))
        wait_for_letters(log, "x", 1, timeout=10)
    try:
        stdout, stderr = client.communicate(timeout=30)
    finally:
        harness.reap_group(client.pid)
    assert "e" in letters(log), (
        f"the condition was not made (the library noted {letters(log)!r}; x: a close() of a connecting attempt "
        f"held, e: its handshake completed meanwhile): {stderr.decode()[-300:]}")
    quiet = server.err.wait_for(r".", 1.0) is None
    assert quiet, (
        f"webserver3a printed {server.err.text()!r}: client3 reset an attempt that it gave up just as its "
        "handshake completed, and the server accepted it. Give an attempt up with a plain close(): it sends "
        "nothing while the socket is still connecting, and an orderly FIN once it is connected.")
    assert stdout.decode().splitlines()[-1:] == ["client3: 1 of 1 connections made, 0 failed"], stderr.decode()
