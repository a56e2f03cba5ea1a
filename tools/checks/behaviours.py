"""The behaviours that `make check` observes, one function each, and CHECKS,
the registry of checks by key (a step's record in tools/steps.py lists the
keys of its checks).

A behaviour is observed in the running program: its output, /proc, ps, its
exit status, under a forced fault (a low open-files limit, a burst of
clients, a descriptor limit that makes accept() fail). Where only the code
can tell (what the signal handler calls), the code is read as the compiler
sees it (tools/checks/code.py), never by its spelling. A behaviour that is a
failure in its step (step d's curl that never ends, step e's death by EINTR,
step f's zombies after a burst) is what that step's check expects.

Waits: what must happen gets a generous bound, and the check goes on as soon
as it has happened (a room's shared machine may be slow); what must not
happen is watched for a short while only. Each wait says which it is.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import resource
import select
import signal
import socket
import struct
import subprocess
import threading
import time

import harness
from checks import code
from checks.framework import Check, Context, Failed, NotChecked, expect, quote, stderr_hint, visible

# Zombies left unchanged this long are left for good: no handler is collecting them (a correct one,
# even on a busy machine, runs within a fraction of a second of the signal).
STEADY = 3.0
# Bounds for what must happen: generous, since a busy machine (a room's, load 5 to 11 on two cores)
# may take seconds for what takes milliseconds on a quiet one. A passing server ends each wait as
# soon as what it waits for has happened.
MUST = 10.0
# The requests that the printing is checked with, in this order: one of exactly 1024 bytes (what a
# single recv() of the steps' buffer takes; its last byte, after the blank line, is not a line break, so
# that a byte lost at the end shows), then one with bytes that would drive a terminal (clear
# the screen, set its title, ring the bell), a NUL, DEL and a byte that is not ASCII, ending with a
# control byte; a server prints each exactly as received, escaped, and a line break after it.
LONG_REQUEST = b"GET /" + b"a" * (1024 - 36) + b" HTTP/1.1\r\nHost: localhost\r\n\r\n."
assert len(LONG_REQUEST) == 1024
ESCAPE_REQUEST = b"GET /\x1b[2J\x1b]0;owned\x07\x00\x7f\xff HTTP/1.1\r\nHost: localhost\r\n\r\n\x1b"
# The answers that the contract allows: the article's bare line feeds, or HTTP's CRLF.
ANSWERS = (b"HTTP/1.1 200 OK\r\n\r\nHello, World!\n", b"HTTP/1.1 200 OK\n\nHello, World!\n")

# The lines a step's server prints, by name (a step's record lists the ones it prints: `prints`).
# name: (as make check names it, a regular expression, printed once in all rather than once per request)
LINES = {
    "parent": ("Parent PID (PPID)", r"^Parent PID \(PPID\): \d+$", True),  # Before the loop.
    "child": ("Child PID", r"^Child PID: \d+\. Parent PID \d+$", False),  # By the process that answers.
    "held": ("Connections held open", r"^Connections held open by the parent: \d+$", False),  # Step d's parent.
    "terminated": ("Child N terminated", r"^Child \d+ terminated with status", False),  # Whoever collects it.
}
STRUCTURE = re.compile(rb"^(?:Serving HTTP on port \d+ \.\.\.|Parent PID \(PPID\): \d+|Child PID: \d+\. Parent PID \d+"
                       rb"|Connections held open by the parent: \d+|Child \d+ terminated with status \d+)$")

# By hand: the server on a port the kernel chooses (on a shared machine another user's server may hold
# any fixed port), its output in a file, the port read from its first line into $P. $! is the server.
PORT = "sleep 0.5; P=$(awk '{{print $5; exit}}' $L);"


def serve(options: str = "") -> str:
    return f"L=$(mktemp); {{server}} --port 0{options} >$L & {PORT}"


SERVE = serve()
CURL = "curl -v --max-time 5 http://localhost:$P/hello"


# ---------------------------------------------------------------------------
# a and b: the answer, the printed request, the sleep.


def answers(ctx: Context) -> None:
    with ctx.server(*ctx.sleep_args()) as server:
        for attempt in ("first", "second"):
            server.steady_children(timeout=MUST)  # A child that exits meanwhile has exited (step e dies of it).
            data, closed = harness.http_get(server.port, timeout=MUST)
            expect(data in ANSWERS and closed,
                   f"the {attempt} request answered 'HTTP/1.1 200 OK', a blank line and 'Hello, World!\\n' "
                   "(no Content-Length), then the connection closed",
                   f"{quote(data)}, connection {'closed' if closed else f'still open after {MUST:g} s'}",
                   "Send HTTP_RESPONSE whole (send_all()), then close the connection: the client knows the "
                   "body is complete only when the connection closes." if data not in ANSWERS else
                   f"--help lists no --sleep, so the check could not shorten the pause: the server slept its "
                   f"default before closing. List --sleep in usage() (step {ctx.step.letter} sleeps)."
                   if ctx.step.takes_sleep and not ctx.takes_sleep() else
                   "Close the connection after answering (close(client_connection)).")
        ctx.quiet_stderr(server)


_ESCAPES = {b"a": 7, b"b": 8, b"t": 9, b"n": 10, b"v": 11, b"f": 12, b"r": 13, b"e": 27, b"\\": 92, b'"': 34,
            b"'": 39}


def unescape(printed: bytes) -> bytes | None:
    """The bytes that printed text stands for, reading C's escapes (\\x1b, \\033, \\e, \\r, \\\\ ...);
    None if a raw byte that is not printable text (a control byte, DEL, a byte over 0x7f) was printed."""
    out, i = bytearray(), 0
    while i < len(printed):
        c = printed[i]
        if c == 0x5C and i + 1 < len(printed):  # A backslash.
            rest = printed[i + 1:]
            if m := re.match(rb"[xX]([0-9a-fA-F]{2})", rest):
                out.append(int(m.group(1), 16))
                i += 1 + len(m.group(0))
                continue
            if m := re.match(rb"[0-7]{3}", rest):
                out.append(int(m.group(0), 8) & 0xFF)
                i += 4
                continue
            if rest[:1] in _ESCAPES:
                out.append(_ESCAPES[rest[:1]])
                i += 2
                continue
        if c != 0x0A and (c < 0x20 or c >= 0x7F):
            return None
        out.append(c)
        i += 1
    return bytes(out)


def printed_requests(raw: bytes) -> bytes:
    """What a server printed besides its first line and the lines of its own (Child PID ...), byte
    for byte, line breaks included."""
    kept, after_parent = [], False
    for line in raw.splitlines(keepends=True)[1:]:
        if STRUCTURE.match(line.rstrip(b"\n")):
            after_parent = line.startswith(b"Parent PID")
            continue
        if after_parent and line == b"\n":  # The blank line that steps c to g print after 'Parent PID'.
            after_parent = False
            continue
        after_parent = False
        kept.append(line)
    return b"".join(kept)


def _normal(data: bytes) -> bytes:
    """Line breaks as a terminal shows them: CRLF printed as a line break, or escaped, is one."""
    return data.replace(b"\r\n", b"\n")


def _settle(server: harness.Server, quiet: float = 0.2, timeout: float = MUST) -> None:
    """Wait until the server's output has stopped growing for `quiet` seconds, all of it read."""
    server.out.caught_up()
    deadline, size, since = time.monotonic() + timeout, -1, time.monotonic()
    while time.monotonic() < deadline:
        now = len(server.out.raw)
        if now != size:
            size, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        time.sleep(0.02)


def prints_request_escaped(ctx: Context) -> None:
    requests = [LONG_REQUEST, ESCAPE_REQUEST]
    # Step e dies when a child exits: there its children sleep long enough for both requests.
    with ctx.server(*ctx.sleep_args(5 if ctx.step.lesson_stderr else 0.2)) as server:
        for number, request in enumerate(requests, start=1):
            server.steady_children(timeout=MUST)  # A child that exits meanwhile has exited (step e dies of it).
            answer, _ = harness.http_get(server.port, timeout=MUST, until=harness.BODY, request=request)
            expect(answer.endswith(harness.BODY), f"a request of {len(request)} bytes answered", quote(answer),
                   "Read the request with recv() into a buffer of 1024 bytes, print it, then answer.")
            # Its first line read from the server's output (on a busy machine the reader may lag), then
            # whatever follows it: a child may print after it answered.
            server.out.wait_for(r"^GET /", MUST, count=number)
            _settle(server)
        shown = printed_requests(bytes(server.out.raw))
        decoded = unescape(shown)
        expect(decoded is not None,
               "each request printed with every byte that is not printable text escaped (\\x1b for ESC)",
               f"raw bytes on stdout: {quote(shown.decode('latin-1')[-300:])}",
               "A request is untrusted input: escape every byte that is not printable text (below 0x20 but the "
               "line break, DEL 0x7f, and every byte above 0x7f), never print it raw.")
        got = _normal(decoded)
        want = [_normal(r) for r in requests]
        if got != b"".join(r + b"\n" for r in want):
            raise Failed("each request printed exactly as received, escaped, then a line break",
                         *_misprinted(got, want, requests))
        ctx.quiet_stderr(server)


def _misprinted(got: bytes, want: list[bytes], sent: list[bytes]) -> tuple[str, str]:
    """What was wrong with the printed requests, and the hint for it: each request's part of the
    output (a request begins where its first bytes are printed) against the request itself."""
    starts = [0] + [got.find(w[:6], 1) for w in want[1:]]
    parts = [got[begin:end] for begin, end in zip(starts, [*starts[1:], len(got)])] if -1 not in starts else [got]
    if len(parts) != len(want):
        return quote(visible(got[:200].decode("latin-1"))), "Print each request that recv() returned, escaped, once."
    for part, meant, request in zip(parts, want, sent):
        shown = f"the {len(request)}-byte request"
        if part == meant + b"\n":
            continue
        if part == meant:
            return (f"{shown} printed with no line break after it",
                    "Print a line break after the request (the README: the request ends with an empty line, and "
                    "the server prints a line break after it).")
        if part.count(meant[:40]) > 1:
            return f"{shown} printed twice", "Print what recv() returned once."
        if meant.startswith(part.rstrip(b"\n")):
            printed = part.rstrip(b"\n")
            return (f"{shown} printed without its last {len(meant) - len(printed)} byte(s): the print ends "
                    f"{quote(visible(printed[-60:].decode('latin-1')))}, the request "
                    f"{quote(visible(meant[-60:].decode('latin-1')))}",
                    "Print every byte that recv() returned, all n of them: read with recv(fd, buffer, sizeof buffer) "
                    "(a request of 1024 bytes fills it), and print n bytes, not up to a NUL (strlen and printf's "
                    "%s stop there): escape the NUL like any byte that is not text.")
        if part.startswith(meant):
            return (f"{shown} printed with bytes the client never sent after it: "
                    f"{quote(visible(part[len(meant):].decode('latin-1')))}",
                    "Print exactly the n bytes that recv() returned, not the whole buffer nor up to a NUL: the rest "
                    "of the buffer holds what the client never sent (or an earlier request).")
        return (f"{shown} printed as {quote(visible(part.decode('latin-1')))}",
                "Print the bytes that recv() returned, in order, escaped, and nothing else.")
    return quote(visible(got[:200].decode("latin-1"))), "Print each request that recv() returned, escaped, once."


def survives_a_reset(ctx: Context) -> None:
    """A client that resets its connection is that client's problem: recv() fails, the server says so
    (warn) and serves the next client."""
    with ctx.server(*ctx.sleep_args()) as server:
        with harness.connect(server.port, timeout=MUST) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # The server's recv() now fails with ECONNRESET (pitfall 21: the reset connection is accepted).
        server.err.wait_for(r"Connection reset by peer", 2)  # May not be seen: a short look only.
        server.steady_children(timeout=MUST)  # A child that served it has exited (step e dies of it).
        data, closed = harness.http_get(server.port, timeout=MUST)
        expect(data in ANSWERS and closed, "after a client reset its connection, the next client is answered",
               f"{quote(data)}, server {'alive' if server.alive() else f'dead: exit status {server.wait_exit(1)}'}, "
               f"stderr {quote(server.err.text())}",
               "A failed recv() or send() concerns that client only: report it with warn() and return to "
               "accept(), never fatal().")
        err = [line for line in server.err.text().splitlines() if line]
        allowed = {"recv: Connection reset by peer", "send: Connection reset by peer", "send: Broken pipe"}
        expect(all(line in allowed for line in err), "at most 'recv: Connection reset by peer' on stderr",
               f"stderr {quote(server.err.text())}", stderr_hint(server.err.text()))


def restarts_on_its_port(ctx: Context) -> None:
    """SO_REUSEADDR: a restarted server binds its port at once, while the connections of its previous
    run wait out TIME_WAIT."""
    with ctx.server(*ctx.sleep_args()) as server:
        port = server.port
        for _ in range(2):  # The server closes first: its side of each connection is left in TIME_WAIT.
            server.steady_children(timeout=MUST)  # A child that exits meanwhile has exited (step e dies of it).
            answer, _ = harness.http_get(port, timeout=MUST, until=harness.BODY)
            expect(answer.endswith(harness.BODY), "the server answers", quote(answer))
    try:
        with ctx.server(*ctx.sleep_args(), port=port) as again:
            data, _ = harness.http_get(again.port, timeout=MUST)
            expect(data in ANSWERS, "restarted on the same port at once, it answers", quote(data))
    except Failed as failure:
        if "Address already in use" not in failure.seen:
            raise
        raise Failed("restarted at once on the port it had, while that run's connections wait out TIME_WAIT, "
                     "the server binds it", failure.seen,
                     "setsockopt(listen_socket, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) before bind(): without "
                     "it, the kernel refuses the port for a minute after a run whose connections the server "
                     "closed (TIME_WAIT).")


class CloseWatch:
    """Reads a connection on a thread of its own until end of file, and notes when it came: the moment
    the server closed it, whatever the check does meanwhile."""

    def __init__(self, sock: socket.socket, timeout: float):
        self.closed_at: float | None = None
        self._thread = threading.Thread(target=self._read, args=(sock, timeout), daemon=True)
        self._thread.start()

    def _read(self, sock: socket.socket, timeout: float) -> None:
        try:
            _, closed = harness.receive(sock, timeout)
        except OSError:  # The check closed the socket first (it failed, and is leaving).
            return
        if closed:
            self.closed_at = time.monotonic()

    def wait(self) -> float | None:
        """The time the connection closed, or None if it did not within the timeout."""
        self._thread.join()
        return self.closed_at


def second_client_waits(ctx: Context) -> None:
    pause = 1.5  # A fraction: a server that drops it (sleeps 1 s) is seen.
    with ctx.server(*ctx.sleep_args(pause, required=True)) as server:
        with harness.connect(server.port, timeout=MUST) as first:
            # Times are measured from the request: on a busy machine this thread may see the answer late,
            # never early, so the sleep is measured from a moment surely before the server's answer.
            sent = time.monotonic()
            first.sendall(harness.REQUEST)
            answer, _ = harness.receive(first, MUST, until=harness.BODY)
            answered = time.monotonic()
            expect(answer.endswith(harness.BODY), "the first client answered", quote(answer))
            first_close = CloseWatch(first, MUST + pause)
            with harness.connect(server.port, timeout=MUST) as second:  # The backlog takes it at once.
                second.sendall(harness.REQUEST)
                # Must not happen: a correct server reads the second request, and answers it, only once its
                # sleep is over, so not before `sent + pause`. Watched for most of the sleep (returning at the
                # first line that comes), and what is seen is judged by when this thread saw it: on a busy
                # machine that is late, never early, so a slow check fails no correct server (seen in a CI
                # rehearsal, when this watch was counted from the second request: a correct step b answered
                # it within the watch, this thread having sent it over 0.6 s after the first answer).
                early, _ = harness.receive(second, pause * 0.6, until=b"\n")
                early_seen = time.monotonic()
                printed = len(server.out.matches(r"^GET /hello"))
                looked = time.monotonic()
                answered_early = early != b"" and early_seen < sent + pause
                read_early = printed > 1 and looked < sent + pause
                expect(not answered_early and not read_early,
                       f"the second client waits: no answer, its request not even read, during the first "
                       f"client's {pause:g} s sleep",
                       f"answered during the sleep, {early_seen - sent:.2f} s after the first request: {quote(early)}"
                       if answered_early
                       else f"{printed} requests printed {looked - sent:.2f} s after the first request",
                       "The iterative server sleeps in its own loop, with no fork: after answering, sleep, then "
                       "close the connection, and only then accept() the next one.")
                late = early
                if harness.BODY not in early:
                    late += harness.receive(second, MUST + pause, until=harness.BODY)[0]
                closed = first_close.wait()
                second_at = time.monotonic()
        expect(closed is not None, "the first client's connection closed after the sleep",
               f"still open {MUST:g} s after its answer", "Close the connection after the sleep.")
        expect(late.endswith(harness.BODY), "the second client answered after the sleep", quote(late))
        # The answer first, the close a sleep later: a server that sleeps before answering closes at once
        # after its answer (a gap of half the sleep leaves room for an answer seen late).
        slept = second_at - sent >= 0.9 * pause
        expect(closed - sent >= 0.9 * pause and closed - answered >= 0.5 * pause,
               f"the first client's connection closed only after the {pause:g} s sleep (the pause comes after "
               "answering and before close(), as in the article)",
               f"closed {closed - answered:.2f} s after the answer, {closed - sent:.2f} s after the request" +
               (f"; the second client answered {second_at - sent:.2f} s after the first request" if slept else ""),
               "The pause goes after the answer is sent and before close(): the first client's curl ends only "
               "when the sleep is over, as in the article." if slept else
               f"--sleep {pause:g} slept about {closed - sent:.1f} s: parse it with fractions (strtod) and "
               "sleep with nanosleep(), which takes fractions of a second.")
        expect(slept,
               f"the second client answered only after the first one's {pause:g} s sleep",
               f"answered {second_at - sent:.2f} s after the first request",
               f"--sleep {pause:g} slept about {second_at - sent:.1f} s: parse it with fractions (strtod) "
               "and sleep with nanosleep(), which takes fractions of a second.")
        ctx.quiet_stderr(server)


# ---------------------------------------------------------------------------
# c: fork.


def both_at_once(ctx: Context) -> None:
    pause = 3.5  # A fraction: a child that sleeps 3 s instead is seen.
    with ctx.server(*ctx.sleep_args(pause, required=True)) as server:
        with harness.connect(server.port, timeout=MUST) as first:
            sent = time.monotonic()  # Surely before the answer (this thread may see it late).
            first.sendall(harness.REQUEST)
            answer, _ = harness.receive(first, MUST, until=harness.BODY)
            expect(answer.endswith(harness.BODY), "the first client answered", quote(answer))
            first_close = CloseWatch(first, MUST + pause)
            with harness.connect(server.port, timeout=MUST) as second:
                second.sendall(harness.REQUEST)
                # Must happen, and before the first child's sleep is over: as long as that allows.
                early, _ = harness.receive(second, pause - 1.0, until=harness.BODY)
            expect(early.endswith(harness.BODY),
                   f"a second client answered at once, while the first one's child sleeps {pause:g} s",
                   f"nothing within {pause - 1.0:g} s: {quote(early)}",
                   "fork() after accept(): the child answers and sleeps, the parent goes straight back to "
                   "accept().")
            closed = first_close.wait()
        expect(closed is not None and closed - sent >= 0.9 * pause,
               f"the first client's connection closed after its child's {pause:g} s sleep",
               "never closed" if closed is None else f"closed {closed - sent:.2f} s after the request",
               "The child sleeps --sleep seconds after answering, then closes its connection and exits; "
               "--sleep takes fractions (strtod, nanosleep()).")
        ctx.quiet_stderr(server)


def child_pids(ctx: Context) -> None:
    with ctx.server(*ctx.sleep_args(5, required=True)) as server:
        expect(server.out.wait_for(rf"^Parent PID \(PPID\): {server.pid}$", MUST),
               f"'Parent PID (PPID): {server.pid}' after the first line", quote(server.out.text()),
               "Print getpid() once, before the loop, as 'Parent PID (PPID): P', and fflush(stdout).")
        clients = [harness.connect(server.port, timeout=MUST) for _ in range(2)]
        try:
            for sock in clients:
                sock.sendall(harness.REQUEST)
            for sock in clients:
                harness.receive(sock, MUST, until=harness.BODY)
            answered = time.monotonic()
            server.out.wait_for(r"^Child PID: ", MUST, count=2)
            lines = server.out.matches(r"^Child PID: (\d+)\. Parent PID (\d+)$")
            children = server.children()
            sleeping = {p.pid for p in children if p.state != "Z"}  # Each child sleeps 5 s.
            late = [m for m in lines if (server.out.arrival(re.escape(m.string)) or 0) > answered + 1]
            if (not lines and children) or late:
                hint = ("The children answered, but their lines came only when they exited, or never: printed "
                        "with printf and not flushed? stdout is a pipe here, so stdio keeps the line in its buffer "
                        "until exit() flushes it, and _exit() throws it away. fflush(stdout) right after the "
                        "printf, or write() it.")
            elif any(m.group(1) == "0" for m in lines):
                hint = ("'Child PID: 0': fork() returns 0 in the child; the child's own PID is getpid(), and "
                        "its parent's getppid().")
            else:
                hint = ("The child prints getpid() and getppid(), once per connection, before it answers; "
                        "then it sleeps --sleep seconds.")
            expect(len(lines) == 2 and all(int(m.group(2)) == server.pid and int(m.group(1)) in sleeping
                                           for m in lines),
                   f"two lines 'Child PID: X. Parent PID {server.pid}', X each a sleeping child of the server",
                   f"lines {[m.string for m in lines]}, children (pid, state) "
                   f"{sorted((p.pid, p.state) for p in children)}", hint)
        finally:
            for sock in clients:
                sock.close()
        ctx.quiet_stderr(server)


def lines_once(ctx: Context) -> None:
    prints = ctx.step.prints
    # A step whose lesson is a death (e) serves one request only.
    requests = 1 if ctx.step.lesson_stderr else 3
    with ctx.server(*ctx.sleep_args()) as server:
        deadline = time.monotonic() + MUST
        for done in range(1, requests + 1):
            harness.http_get(server.port, timeout=MUST, until=harness.BODY)
            if "terminated" in prints:
                # One child at a time: two children exiting together may send
                # one merged SIGCHLD, and step f's handler then reports one of
                # them only (its lesson, but not this check's).
                server.out.wait_for(LINES["terminated"][1], max(0.1, deadline - time.monotonic()), count=done)
        server.out.wait_for(r"^GET /hello", max(0.1, deadline - time.monotonic()), count=requests)
        server.steady_children(timeout=max(0.5, deadline - time.monotonic()))
        counts = {"Serving HTTP on port": (1, r"^Serving HTTP on port"), "GET /hello": (requests, r"^GET /hello")}
        for name in prints:
            shown, regex, once = LINES[name]
            counts[shown] = (1 if once else requests, regex)
        wrong = {name: len(server.out.matches(regex)) for name, (want, regex) in counts.items()
                 if len(server.out.matches(regex)) != want}
        expected = ", ".join(f"{want} '{name}'" for name, (want, _) in counts.items())
        expect(not wrong, f"through a pipe, after {requests} request(s), each line exactly once: {expected}",
               "counted " + ", ".join(f"{n} '{name}'" for name, n in wrong.items()),
               "stdout is a pipe here, so stdio holds lines in its buffer: fflush(stdout) right after each "
               "printf, so that the buffer is empty when fork() gives the child a copy of it; the child "
               "ends with _exit(), which throws its own buffer away.")
        ctx.quiet_stderr(server)


def socket_links(pid: int) -> set[str]:
    """The sockets a process holds, as /proc names them ("socket:[inode]")."""
    links = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:"):
            links.add(link)
    return links


def _live_children(server: harness.Server, timeout: float) -> list[harness.Proc]:
    deadline = time.monotonic() + timeout
    while True:
        live = [p for p in server.children() if p.state != "Z"]
        if live or time.monotonic() > deadline:
            return live
        time.sleep(0.01)


def _extra_descriptors(server: harness.Server, pid: int) -> list[str]:
    """The descriptors a child holds besides 0, 1 and 2, its one socket (the connection) and the
    shim's log: what it kept of its parent's."""
    extra, sockets = [], 0
    for name in sorted(os.listdir(f"/proc/{pid}/fd"), key=int):
        fd = int(name)
        try:
            link = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue
        if fd <= 2 or (getattr(server, "shim_log", None) and link == server.shim_log):
            continue
        if link.startswith("socket:") and sockets == 0:
            sockets += 1  # Its connection.
            continue
        extra.append(f"{fd} ({link})")
    return extra


def child_closes_listener_and_exits(ctx: Context) -> None:
    with ctx.server(*ctx.sleep_args()) as server:
        listener = socket_links(server.pid)
        with harness.connect(server.port, timeout=MUST) as sock:
            # No request yet: the child waits in recv(), long enough to look at it.
            live = _live_children(server, MUST)
            expect(len(live) == 1, "a child for the connection", f"children {live}",
                   "fork() after accept(), once per connection.")
            child_sockets, until = socket_links(live[0].pid), time.monotonic() + MUST
            while child_sockets & listener and time.monotonic() < until:  # Just forked: give it time to close.
                time.sleep(0.01)
                child_sockets = socket_links(live[0].pid)
            expect(not child_sockets & listener,
                   "the child has closed its copy of the listening socket",
                   f"child {live[0].pid} holds {sorted(child_sockets)}, the listener is {sorted(listener)}",
                   "In the child (fork() returned 0), close(listen_socket) first: only the parent accepts.")
            extra = _extra_descriptors(server, live[0].pid)
            expect(not extra, "the child holds its connection and its standard input, output and error, nothing more",
                   f"child {live[0].pid} also holds {', '.join(extra)}",
                   "In the child, close what only the parent uses (the self-pipe's two ends in step h, say): a "
                   "child that keeps the pipe's write end keeps it open for as long as it lives.")
            sock.sendall(harness.REQUEST)
            data, _ = harness.receive(sock, MUST, until=harness.BODY)
            expect(data.endswith(harness.BODY), "the child answers", quote(data))
        deadline = time.monotonic() + MUST
        while time.monotonic() < deadline:
            still = [p for p in server.children() if p.pid == live[0].pid and p.state != "Z"]
            if not still:
                break
            time.sleep(0.02)
        expect(not still, "the child exits once it has answered (and slept, where the step sleeps)",
               f"child {live[0].pid} still running: {harness.ps_rows(server.pid)!r}",
               "End the child with _exit(EXIT_SUCCESS) right after it closes its connection; without it "
               "the child falls back into the parent's loop.")
        events = ctx.events(server)
        if events is not None:
            expect(not events.of_children("exit-in-child"),
                   "the child ends with _exit(), not exit()",
                   f"child {', '.join(events.of_children('exit-in-child'))} ran the exit handlers it inherited "
                   "from the parent: it ended with exit() (or by returning from main())",
                   "End the child with _exit(): exit() runs the exit handlers and flushes the stdio buffers "
                   "that the child inherited from its parent, which are the parent's to run and flush.")
        ctx.quiet_stderr(server)


def parent_closes_its_copy(ctx: Context) -> None:
    # Where the child sleeps, it sleeps long: the parent must have closed its copy while the child
    # still holds its own (and while the parent is alive: step e's dies when a child exits). The wait
    # is timed from the request's sending, before which no server can start its sleep: a server that
    # holds the connection through the sleep (step b's, which does not fork) still holds it when the
    # wait ends, 5 s before the sleep does. (Timed from the answer's arrival, 1 s before a 5 s sleep
    # ended, a loaded machine once let step b's server pass.)
    with ctx.server(*ctx.sleep_args(10)) as server:
        listener = socket_links(server.pid)
        with harness.connect(server.port, timeout=MUST) as sock:
            sent = time.monotonic()
            sock.sendall(harness.REQUEST)
            harness.receive(sock, MUST, until=harness.BODY)
            deadline = sent + (5 if ctx.takes_sleep() else MUST)
            held = socket_links(server.pid) - listener
            while held and server.alive() and time.monotonic() < deadline:
                time.sleep(0.02)
                held = socket_links(server.pid) - listener
            alive = server.alive()
        expect(alive, "the parent lives while its child sleeps", f"it died: stderr {quote(server.err.text())}",
               stderr_hint(server.err.text()))
        expect(not held, "the parent holds only its listening socket once it has forked the child",
               f"the parent also holds {sorted(held)}",
               "In the parent (fork() returned the child's PID), close(client_connection): the child "
               "has its own copy, and the connection ends only when every copy is closed.")
        ctx.quiet_stderr(server)


# ---------------------------------------------------------------------------
# d: duplicates not closed, children not collected.


def curl_ends(ctx: Context) -> None:
    with ctx.server(*ctx.sleep_args(0.2)) as server:
        result = harness.curl(server.port, max_time=MUST)
        timed_out = result.returncode == harness.CURL_TIMED_OUT
        expect(result.returncode == 0 and result.stdout == "Hello, World!\n",
               "curl prints 'Hello, World!' and ends (exit status 0)",
               f"curl exit {result.returncode} "
               f"({'timed out: the connection never closed' if timed_out else quote(result.stderr)}), "
               f"printed {quote(result.stdout)}",
               "The connection ends when its last descriptor is closed: the parent must close its copy "
               "of the connection after fork(), the child its own after answering." if timed_out or not server.err.text()
               else None)
        ctx.quiet_stderr(server)


def curl_never_ends(ctx: Context) -> None:
    with ctx.server(*ctx.sleep_args()) as server:
        # The body must come (a generous wait); the end must not (a short look, 2.5 s). Should a busy
        # machine delay the body past the short look, curl runs again with time for both.
        for max_time in (2.5, MUST + 2.5):
            result = harness.curl(server.port, max_time=max_time)
            if result.stdout:
                break
        expect(result.stdout == "Hello, World!\n", "curl gets 'Hello, World!'", quote(result.stdout + result.stderr))
        expect(result.returncode == harness.CURL_TIMED_OUT,
               "curl never ends: the body arrives, but no end of file (curl stopped by --max-time, exit 28)",
               f"curl ended by itself, exit {result.returncode}",
               "This step's lesson is the mistake: the parent keeps its copy of the connection. Do not "
               "close(client_connection) in the parent.")
        held = server.out.wait_for(r"^Connections held open by the parent: (\d+)$", MUST)
        expect(held and held.group(1) == "1",
               "'Connections held open by the parent: 1' printed (and flushed) by the parent",
               quote(server.out.text()[-200:]),
               "Count the connections the parent holds and print the count after each fork(), with fflush."
               if not held else f"The count is off: after the first connection the parent holds 1, not "
               f"{held.group(1)}. Add one to the count before printing it.")
        ctx.quiet_stderr(server)


def zombies_pile_up(ctx: Context) -> None:
    with ctx.server(*ctx.sleep_args()) as server:
        for _ in range(3):
            harness.http_get(server.port, timeout=MUST, until=harness.BODY)
        children = server.settled_children(timeout=MUST)
        rows = [row for row in harness.ps_rows(server.pid).splitlines()[1:] if row.split()[1] == str(server.pid)]
        expect(len(children) == 3 and all(p.state == "Z" for p in children) and len(rows) == 3
               and all(r.endswith("<defunct>") for r in rows),
               "after 3 requests, 3 zombie children: ps shows them Z, <defunct>",
               f"ps: {rows!r}",
               "This step collects no child: no wait(), no SIGCHLD handler. Each child must exit (_exit) "
               "after answering and stay a zombie.")
        ctx.quiet_stderr(server)


OPEN_FILES = 32  # The article's 256, made smaller: each held connection costs one.


def burst_of(server: harness.Server, clients: int) -> harness.Result:
    """client3 --max-clients `clients`, for a check that needs every connection made: each connection
    may wait MUST seconds for its answer, and client3 is stopped only after twice that without one
    made. client3's own 5 s was seen too short: in a `make test` that ran eight checks at once, a
    correct step g had 21 of 128 connections unanswered within 5 s."""
    return harness.client3(server.port, max_clients=clients, max_conns=1, timeout=2 * MUST, answer_within=MUST)


def _descriptors(server: harness.Server) -> int:
    try:
        return server.open_descriptors()
    except OSError:
        return 0  # It exited meanwhile.


def too_many_open_files(ctx: Context) -> None:
    with ctx.server(*ctx.sleep_args(), nofile=OPEN_FILES) as server:
        for _ in range(3):  # The backlog drops some of a burst; more bursts make up for it.
            # A server that dies of EMFILE does so during the burst (its held connections then
            # close, which ends client3 at once).
            harness.client3(server.port, max_clients=2 * OPEN_FILES, max_conns=1, timeout=MUST)
            if server.wait_exit(1) is not None or _descriptors(server) < OPEN_FILES // 2:
                break  # Dead, or its descriptors do not grow: no use waiting for more.
        status = server.wait_exit(2)
        expect(status == 1 and server.err.text() == "accept: Too many open files",
               f"under an open-files limit of {OPEN_FILES}, the server dies: 'accept: Too many open files', status 1",
               f"{'still running' if status is None else f'exit status {status}'}, stderr {quote(server.err.text())}",
               "Every held connection costs the parent a descriptor until accept() fails with EMFILE; "
               "treat that as fatal (print 'accept: ...' and exit 1), never retry in a loop.")


# ---------------------------------------------------------------------------
# e: a SIGCHLD handler.


def catches_sigchld(pid: int) -> bool:
    """Whether the process has a handler installed for SIGCHLD: the kernel's
    own view (/proc/PID/status, SigCgt), whatever the source says."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) >> (signal.SIGCHLD - 1) & 1)
    except OSError:
        pass
    return False


SA_RESTART = 0x10000000  # <signal.h> on Linux (Python's signal module does not name it).
NO_HANDLER_HINT = ("No SIGCHLD handler is installed, so nothing interrupts accept(). A wait() in the loop "
                   "collects the child, but it is not the lesson: install grim_reaper() with "
                   "sigaction(SIGCHLD, &action, nullptr) and let the handler call wait() and write the line.")


def reports_child(ctx: Context) -> None:
    with ctx.server(*ctx.sleep_args(0.2)) as server:
        with harness.connect(server.port, timeout=MUST) as sock:
            # Its child waits for the request meanwhile: the parent is surely alive, past its setup.
            expect(_live_children(server, MUST), "a child for the connection", "no child",
                   "fork() after accept(), once per connection.")
            caught = catches_sigchld(server.pid)
            sock.sendall(harness.REQUEST)
            harness.receive(sock, MUST, until=harness.BODY)
        child = server.out.wait_for(r"^Child PID: (\d+)\.", MUST)
        expect(child is not None, "'Child PID: X. Parent PID P' printed", quote(server.out.text()))
        reported = server.out.wait_for(rf"^Child {child.group(1)} terminated with status 0$", MUST)
        expect(caught, "a SIGCHLD handler installed (the kernel lists SIGCHLD as caught) that reports the child",
               f"the server does not catch SIGCHLD (/proc/{server.pid}/status SigCgt)"
               f"{', yet the child was reported: by a wait() outside a handler' if reported else ''}",
               NO_HANDLER_HINT)
        expect(reported, f"the handler reports 'Child {child.group(1)} terminated with status 0'",
               quote(server.out.text()[-200:]),
               "Install a SIGCHLD handler (sigaction) that calls wait(&status) and writes the line with "
               "write(2): printf is not async-signal-safe.")
        ctx.quiet_stderr(server)


def _restart_hint(ctx: Context, server: harness.Server) -> str:
    """Why accept() went on after the handler ran: what the shim saw installed, when it saw it."""
    events = ctx.events(server)
    installed = events.installed if events else None
    if installed and installed[0] == "signal":
        return ("The handler was installed with signal(). glibc's signal() (and std::signal) installs it with "
                "SA_RESTART, the BSD behaviour that the C library chooses, and the kernel then restarts "
                "accept() by itself: install it with sigaction() and sa_flags = SA_NOCLDSTOP, no SA_RESTART.")
    if installed and installed[3] & SA_RESTART:
        return ("The handler was installed with SA_RESTART in sa_flags, and the kernel then restarts accept() "
                "by itself: sa_flags = SA_NOCLDSTOP, no SA_RESTART.")
    return ("accept() was restarted after the handler ran: either the handler was installed with SA_RESTART "
            "(signal() does that in glibc), or accept() is retried on EINTR, which is step f's fix, not step e's.")


def dies_with_eintr(ctx: Context) -> None:
    pause = 0.5
    with ctx.server(*ctx.sleep_args(pause)) as server:
        data, closed, sent = _exit_while_waiting(server)
        expect(data in ANSWERS and closed, "the client answered, and the connection closed",
               quote(data) + ("" if closed else " (the connection left open)"))
        # One bound for the child's line, its report and the server's death: on step e's server they
        # all follow the connection's end within milliseconds.
        deadline = time.monotonic() + MUST
        child = server.out.wait_for(r"^Child PID: (\d+)\.", MUST)
        reported = child and server.out.wait_for(rf"^Child {child.group(1)} terminated",
                                                 max(0.1, deadline - time.monotonic()))
        # The child exits no earlier than its sleep after the request (a hard bound for a child that
        # sleeps; one that does not exits within milliseconds): the sleep is what gives the parent
        # the time to be back in accept() when the child exits.
        if reported and ctx.takes_sleep():
            # From the request's sending to the child's report (after it exited), as the report arrived:
            # a child that sleeps after answering cannot exit sooner than the sleep after the request,
            # and a late reader only makes this longer. (From the child's own line to its report, a
            # reader that was late for the first line and on time for the second made it shorter:
            # 0.39 s for a 0.5 s sleep, under load.)
            after = server.out.arrival(rf"^Child {child.group(1)} terminated") - sent
            expect(after >= 0.8 * pause, f"the child sleeps --sleep {pause:g} s after answering, then exits",
                   f"the child's exit reported {after:.2f} s after the request was sent",
                   "After answering, the child sleeps --sleep seconds (fractions allowed) before it closes the "
                   "connection and exits, so that the parent is surely back in accept() when the child exits.")
        status = server.wait_exit(max(0.2, deadline - time.monotonic()))
        err = server.err.text()
        if status is None:
            if not catches_sigchld(server.pid):  # Chosen from what was seen: no handler at all ...
                seen, hint = ("no SIGCHLD handler installed (/proc SigCgt)"
                              + (", the child reported by a wait() outside a handler" if reported else ""),
                              NO_HANDLER_HINT)
            elif reported:  # ... a handler that ran, and accept() went on ...
                seen, hint = "the handler ran and reported the child, accept() went on", _restart_hint(ctx, server)
            else:  # ... or a handler that did not report the child.
                seen, hint = ("a SIGCHLD handler is installed, but no child was reported",
                              "The handler must collect the child with wait() and write "
                              "'Child X terminated with status S' (with write(2)).")
            raise Failed("the child's exit interrupts accept(): 'accept: Interrupted system call', exit status 1",
                         f"server still running {MUST:g} s after curl ended: {seen}, stderr {quote(err)}", hint)
        expect(status == 1 and err == "accept: Interrupted system call",
               "the child's exit interrupts accept(): 'accept: Interrupted system call', exit status 1",
               f"exit status {status}, stderr {quote(err)}",
               "accept() returns -1 with errno EINTR; treat it as fatal like any other accept() failure, "
               "and save and restore errno in the handler (its wait() may set ECHILD).")
        expect(reported, "the SIGCHLD handler reports the child, 'Child X terminated with status 0'",
               quote(server.out.text()[-200:]),
               "Install a SIGCHLD handler with sigaction() that calls wait() and writes the line with write().")


def _await_handler(ctx: Context, server: harness.Server) -> code.ShimEvents:
    harness.http_get(server.port, timeout=MUST, until=harness.BODY)
    deadline = time.monotonic() + MUST
    while True:
        events = ctx.events(server)
        if events.of_server("handler-ran") or time.monotonic() > deadline or not server.alive():
            time.sleep(0.05)  # The line after the handler's run (errno), written as it returns.
            return ctx.events(server)
        time.sleep(0.02)


def handler_is_signal_safe(ctx: Context) -> None:
    if ctx.callgraph is None:
        raise NotChecked("reads the code as the compiler compiled it: make check STEP=X builds your file "
                         "with a call graph (SERVER= gives no source)")
    if not ctx.can_observe():
        raise NotChecked("needs a dynamically linked server, for the shim that sees which handler is installed")
    with ctx.server(*ctx.sleep_args(0.2)) as server:
        events = _await_handler(ctx, server)
        installed = events.installed
        if installed is None and ctx.step.handler_optional:
            raise NotChecked("the server installs no SIGCHLD handler (signalfd, say): nothing runs in a handler")
        expect(installed is not None,
               "a SIGCHLD handler installed, with sigaction() (or signal())",
               "the server installed no SIGCHLD handler", NO_HANDLER_HINT)
        how, offset, base, _flags = installed
        symbol = code.symbol_at(ctx.program_path, offset, base)
        graph = code.read_callgraph(ctx.callgraph)
        node = code.node_of(graph, symbol) if symbol else None
        expect(node is not None, "the installed handler found in the compiler's call graph",
               f"the handler at offset {offset:#x} is {symbol or 'no symbol'}, not a function of "
               f"{ctx.source.name if ctx.source else 'the file'}",
               "Install a function of your own file as the SIGCHLD handler.")
        handler = code.name_of(graph, node)
        reached = code.unsafe_calls(graph, node)
        if reached:
            shown = []
            for item, readable in zip(reached, code.demangle([r.callee for r in reached])):
                via = " -> ".join(code.name_of(graph, p) for p in item.path[1:])
                shown.append(f"{readable}()" + (f" (through {via})" if via else ""))
            raise Failed(
                "the SIGCHLD handler calls only async-signal-safe functions (POSIX's list: write, waitpid, ...)",
                f"the handler, {handler} (installed with {how}()), may call {', '.join(shown)}",
                "A signal handler may call only async-signal-safe functions (man 7 signal-safety). stdio "
                "(printf, snprintf, fflush), the heap (new, std::string, std::to_string), strerror and exit() "
                "are not: the handler may interrupt the same function halfway, in the main program, and find its "
                "lock taken or its buffer half-written. Format the line into a char array by hand (digits by "
                "division by 10) and write(2) it.")


def handler_restores_errno(ctx: Context) -> None:
    if not ctx.can_observe():
        raise NotChecked("needs a dynamically linked server, for the shim that watches errno")
    with ctx.server(*ctx.sleep_args(0.2)) as server:
        events = _await_handler(ctx, server)
        if events.installed is None and ctx.step.handler_optional:
            raise NotChecked("the server installs no SIGCHLD handler (signalfd, say): no handler to leave errno")
        expect(events.installed is not None, "a SIGCHLD handler installed", "the server installed no SIGCHLD handler",
               NO_HANDLER_HINT)
        ran = events.of_server("handler-ran")
        expect(ran, "the SIGCHLD handler runs when a child exits",
               f"no run of the handler {MUST:g} s after the child answered",
               "The child must exit after answering (_exit), and the handler be installed for SIGCHLD.")
        changed = events.of_server("errno-changed")
        if changed:
            value = int(changed[0][0])
            name = errno.errorcode.get(value, str(value))
            raise Failed("the handler leaves errno as it found it (saved on entry, restored before it returns)",
                         f"errno was {name} after the handler returned (a successful waitpid() or write() inside "
                         "it was made to change errno, as POSIX allows)",
                         "Save errno on entry to the handler (int saved = errno;) and restore it before every "
                         "return (errno = saved;): the code the signal interrupted may be just about to read errno, "
                         "after a failed accept() say, and must find its own value there.")


# ---------------------------------------------------------------------------
# f and g: accept() restarted, every child collected.


def _switches(pid: int) -> tuple[str, int] | None:
    """The process's state and its count of voluntary context switches (/proc/PID/status)."""
    try:
        with open(f"/proc/{pid}/status") as file:
            fields = dict(line.split(":", 1) for line in file if ":" in line)
        return fields["State"].split()[0], int(fields["voluntary_ctxt_switches"])
    except (OSError, KeyError, ValueError):
        return None


def _waiting(pid: int) -> bool:
    """Whether the process is blocked in a system call now: in a forking server's parent between
    connections, that is where it waits for the next one (accept(), or poll() from step h on).
    /proc/PID/syscall gives the call's number where the kernel shows it (some show -1 for every
    blocked task); otherwise the process has slept (state S) through 20 ms without waking once."""
    try:
        with open(f"/proc/{pid}/syscall") as file:
            first = file.read().split()[:1]
        if first and first[0].isdigit():
            return True
    except OSError:
        pass
    before = _switches(pid)
    time.sleep(0.02)
    after = _switches(pid)
    return before is not None and before == after and before[0] == "S"


def _exit_while_waiting(server: harness.Server) -> tuple[bytes, bool, float]:
    """One request whose child exits while the parent waits for the next connection: the request is
    sent only once the child lives (waiting for it in recv()) and the parent is seen blocked, so the
    child's SIGCHLD surely interrupts accept() (or poll()), on a busy machine too. Returns the answer,
    whether the connection was then closed, and when (time.monotonic()) the request was sent (a
    server that forks no child, or is never seen blocked, gets its request anyway)."""
    with harness.connect(server.port, timeout=MUST) as sock:
        seen = False
        child_by = time.monotonic() + 3.0  # A fork takes milliseconds: a short wait for one.
        deadline = time.monotonic() + MUST
        while not seen and time.monotonic() < deadline:
            if [p for p in server.children() if p.state != "Z"]:
                seen = _waiting(server.pid)
            elif time.monotonic() > child_by:
                break
            else:
                time.sleep(0.01)
        sent = time.monotonic()
        sock.sendall(harness.REQUEST)
        data, closed = harness.receive(sock, MUST)
    return data, closed, sent


DROPPED_HINT = ("The connection was accepted and never served: does the loop test errno after a successful "
                "accept()? errno keeps the EINTR of an earlier failure; loop only while accept() returns -1 and "
                "errno is EINTR.")


def survives_child_exit(ctx: Context) -> None:
    with ctx.server(*ctx.sleep_args(0.5)) as server:
        data, closed, _ = _exit_while_waiting(server)
        expect(data in ANSWERS and closed, "the client answered, and the connection closed",
               quote(data) + ("" if closed else " (the connection left open)"))
        reported = server.out.wait_for(r"^Child \d+ terminated with status 0$", MUST)
        expect(server.alive() or server.err.text() != "accept: Interrupted system call",
               "the server lives on after its child's exit",
               f"it died: exit status {server.wait_exit(1)}, stderr {quote(server.err.text())}",
               "accept() failed with EINTR when the handler ran, and the server died: when accept() fails "
               "with EINTR nothing went wrong, so call it again (loop while errno == EINTR). Any other error "
               "stays fatal.")
        expect(reported, "the handler reports 'Child X terminated with status 0'", quote(server.out.text()[-200:]),
               _no_report_hint(server))
        left = server.wait_until_all_collected(timeout=MUST)
        expect(server.alive(), "the server lives on after its child's exit",
               f"exit status {server.wait_exit(1)}, stderr {quote(server.err.text())}",
               "When accept() fails with EINTR, nothing went wrong: call accept() again (loop while errno "
               "== EINTR). Any other error stays fatal.")
        expect(not left, "no zombie left after one request", f"children {left}",
               "The handler must collect the child: wait() or waitpid().")
        printed = len(server.out.matches(r"^GET /"))
        again = harness.curl(server.port, max_time=MUST)
        expect(again.stdout == "Hello, World!\n", "a second request answered too",
               f"curl exit {again.returncode}, {quote(again.stdout + again.stderr)}",
               DROPPED_HINT if server.alive() and len(server.out.matches(r"^GET /")) == printed
               else None)
        ctx.quiet_stderr(server)


BURST = 128  # The article's client3 --max-clients 128.


def _forks(server: harness.Server) -> None:
    """Fail if the server does not fork a child per connection."""
    with harness.connect(server.port, timeout=MUST) as sock:
        forked = bool(_live_children(server, MUST) or server.children())
        sock.sendall(harness.REQUEST)
        harness.receive(sock, MUST, until=harness.BODY)
    expect(forked, "a child per connection", f"no child {MUST:g} s after a connection",
           "fork() after accept(), once per connection.")


def _collects_one(server: harness.Server) -> None:
    """Fail if one request's child is not collected (and reported)."""
    _forks(server)
    # One deadline for both (the handler reports a child after it has collected it).
    deadline = time.monotonic() + MUST
    reported = server.out.wait_for(r"^Child \d+ terminated with status", MUST)
    left = server.wait_until_all_collected(timeout=max(0.5, deadline - time.monotonic()))
    expect(reported and not left, "one request's child collected by the SIGCHLD handler, and reported",
           f"{'reported' if reported else 'no child reported'}, children left {left}",
           "A SIGCHLD handler installed with sigaction() collects children with wait() or waitpid()."
           if reported else _no_report_hint(server))


def client3_seen(result: harness.Result) -> str:
    """What client3 did, in a line: its summary and its first error, or how it was stopped."""
    lines = result.stdout.splitlines()
    summary = [line for line in lines if line.startswith("client3:")]
    made = sum(1 for line in lines if line.isdigit())
    if result.returncode is None:
        said = (f"client3 stopped after {result.seconds:.0f} s, with {made} connections answered: no more for "
                "as long as the check waits")
    else:
        said = f"client3 exit status {result.returncode}: " + (summary[-1] if summary else f"{made} connections answered")
    if result.stderr:
        said += f", stderr {quote(result.stderr[:200])}"
    if result.returncode != 0:  # Was the machine busy? A busy one slows every answer.
        said += f" (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} processors)"
    return said


def _burst(server: harness.Server, served_before: int) -> None:
    result = burst_of(server, BURST)
    expect(result.returncode == 0, f"client3 --max-clients {BURST}: every connection made",
           client3_seen(result), "The server must keep accepting during a burst.")
    expect(server.out.wait_for(r"^GET /hello", MUST, count=served_before + BURST),
           f"{served_before + BURST} requests printed", f"{len(server.out.matches('^GET /hello'))} printed")


def burst_leaves_zombies(ctx: Context) -> None:
    with ctx.server(*ctx.sleep_args()) as server:
        _collects_one(server)
        zombies = []
        for attempt in range(1, 3):  # Merging is a race the kernel wins almost always.
            _burst(server, 1 + BURST * (attempt - 1))
            zombies = [p for p in server.settled_children(timeout=MUST) if p.state == "Z"]
            if zombies:
                break
        expect(zombies, f"after a burst of {BURST} clients, zombies left (SIGCHLD signals merge; one wait() each)",
               f"no zombie after {attempt} bursts, server {'alive' if server.alive() else 'dead'}",
               "This step's lesson is the mistake: the handler calls wait() once per signal, and signals "
               "that arrive together count as one. Keep a single wait() in the handler.")
        expect(server.alive(), "the server lives", f"stderr {quote(server.err.text())}")
        ctx.quiet_stderr(server)


def _stuck_handler_hint(server: harness.Server) -> str:
    """Why the server stopped accepting, from what the kernel says the parent is doing."""
    try:
        state = open(f"/proc/{server.pid}/stat").read().rsplit(")", 1)[1].split()[0]
        wchan = open(f"/proc/{server.pid}/wchan").read().strip()
    except OSError:
        return "The handler must return at once: waitpid(-1, &status, WNOHANG) in a loop, until it returns 0 or -1."
    if state == "R":
        return ("The parent is running flat out (state R): the handler's loop never ends while a child still "
                "runs. waitpid(..., WNOHANG) returns 0 when children remain but none has exited: stop the loop "
                "when it returns 0 or -1, continue only while it returns a PID (> 0).")
    if "wait" in wchan:
        return ("The parent is blocked in the kernel's wait ({}): waitpid() without WNOHANG waits for the child "
                "that still runs, and the parent never returns to accept(). Use waitpid(-1, &status, WNOHANG) "
                "and stop the loop when it returns 0.".format(wchan))
    return (f"The parent is stuck (state {state}, waiting in {wchan or 'user space'}): the handler must return at "
            "once; waitpid(-1, &status, WNOHANG) in a loop, until it returns 0 or -1.")


def bursts_leave_no_zombie(ctx: Context) -> None:
    with ctx.server(*ctx.sleep_args()) as server:
        _collects_one(server)
        baseline = server.open_descriptors()  # Once it has served a request: set up, whatever its design.
        for attempt in range(2):
            _burst(server, 1 + BURST * attempt)
            left = server.wait_until_all_collected(timeout=MUST, steady=STEADY)
            if left:
                stuck = [p for p in left if p.state != "Z"]
                hint = ("A child is still running after its answer: it must end with _exit()."
                        if stuck else
                        "Signals merge: one SIGCHLD may stand for many exited children. In the handler, "
                        "loop: while ((pid = waitpid(-1, &status, WNOHANG)) > 0).")
                raise Failed(f"after {attempt + 1} burst{'s' if attempt else ''} of {BURST} clients, no child left",
                             f"{len(left)} children left, states {''.join(sorted(p.state for p in left))[:40]}"
                             f", server {'alive' if server.alive() else 'dead: ' + quote(server.err.text())}",
                             hint)
        expect(server.alive(), "the server lives", f"stderr {quote(server.err.text())}")
        count = server.wait_for_descriptors(baseline, timeout=MUST)
        expect(count == baseline, f"descriptors flat: {baseline} before and after",
               f"{count} after", "Close the parent's copy of each connection.")
        expect(server.out.wait_for(r"^Child \d+ terminated with status 0$", MUST, count=2 * BURST + 1),
               f"{2 * BURST + 1} children reported", f"{len(server.out.matches('^Child .* terminated'))} reported")
        ctx.quiet_stderr(server)


def lives_under_low_open_files(ctx: Context) -> None:
    with ctx.server(*ctx.sleep_args(), nofile=OPEN_FILES) as server:
        _collects_one(server)
        baseline = server.open_descriptors()  # Once it has served a request: set up, whatever its design.
        for _ in range(3):
            result = burst_of(server, 2 * OPEN_FILES)
            expect(result.returncode == 0 and server.alive(),
                   f"under an open-files limit of {OPEN_FILES}, bursts of {2 * OPEN_FILES} clients all served",
                   f"{client3_seen(result)}, server stderr {quote(server.err.text())}",
                   "Close the parent's copy of each connection, so its descriptors stay flat.")
        left = server.wait_until_all_collected(timeout=MUST, steady=STEADY)
        count = server.wait_for_descriptors(baseline, timeout=MUST)
        # The hint follows the evidence: descriptors that grow are connections the parent keeps;
        # children left with descriptors flat are zombies the handler did not collect.
        expect(count == baseline, f"no child left, descriptors flat at {baseline}",
               f"{len(left)} children left, {count} descriptors", "Close the parent's copy of each connection.")
        expect(not left, f"no child left, descriptors flat at {baseline}",
               f"{len(left)} children left (states {''.join(sorted(p.state for p in left))[:40]}), "
               f"{count} descriptors",
               "A child still running after its answer must end with _exit()." if any(p.state != "Z" for p in left)
               else "Signals merge: one SIGCHLD may stand for many exited children. In the handler, loop: "
               "while ((pid = waitpid(-1, &status, WNOHANG)) > 0).")
        ctx.quiet_stderr(server)


def keeps_accepting(ctx: Context) -> None:
    with ctx.server(*ctx.sleep_args()) as server:
        with harness.connect(server.port, timeout=MUST) as holder:  # Its child waits in recv() meanwhile.
            expect(_live_children(server, MUST), "a child for the connection", "no child",
                   "fork() after accept(), once per connection.")
            first, _ = harness.http_get(server.port, timeout=MUST, until=harness.BODY)
            expect(first.endswith(harness.BODY), "a request answered while another client is connected",
                   quote(first))
            expect(server.out.wait_for(r"^Child \d+ terminated", MUST), "the child that answered is collected and "
                   "reported", quote(server.out.text()[-200:]), _no_report_hint(server))  # Its SIGCHLD has come.
            second, _ = harness.http_get(server.port, timeout=MUST, until=harness.BODY)
            hint = None if second.endswith(harness.BODY) else _stuck_handler_hint(server)
            expect(second.endswith(harness.BODY),
                   "after a child exits, the next request answered at once, while another child still runs",
                   f"no answer within {MUST:g} s: {quote(second)}", hint)
            # A SIGCHLD with no exited child to collect (one that an earlier run of the handler already
            # collected, merged; here sent by hand, as `kill -CHLD` does): the handler must return at once.
            server.out.wait_for(r"^Child \d+ terminated", MUST, count=2)
            os.kill(server.pid, signal.SIGCHLD)
            third, _ = harness.http_get(server.port, timeout=MUST, until=harness.BODY)
            hint = None if third.endswith(harness.BODY) else _stuck_handler_hint(server)
            expect(third.endswith(harness.BODY),
                   "after a SIGCHLD with no exited child (kill -CHLD), the next request answered at once, while "
                   "another child still runs",
                   f"no answer within {MUST:g} s: {quote(third)}", hint)
            holder.sendall(harness.REQUEST)
            harness.receive(holder, MUST, until=harness.BODY)
        ctx.quiet_stderr(server)


def no_restart(ctx: Context) -> None:
    """accept() restarted by the server's own loop, not by the kernel: the handler is installed with
    sigaction() and without SA_RESTART, as the shim saw it installed."""
    if not ctx.can_observe():
        raise NotChecked("needs a dynamically linked server, for the shim that sees how the handler is installed")
    with ctx.server(*ctx.sleep_args()) as server:
        harness.http_get(server.port, timeout=MUST, until=harness.BODY)
        events = ctx.events(server)
        installed = events.installed
        expect(installed is not None, "a SIGCHLD handler installed with sigaction()",
               "no SIGCHLD handler installed", NO_HANDLER_HINT)
        how, _offset, _base, flags = installed
        expect(how == "sigaction" and not flags & SA_RESTART,
               "the SIGCHLD handler installed with sigaction(), without SA_RESTART: accept() is restarted by the "
               "server's loop when it fails with EINTR",
               "installed with signal(), which glibc makes set SA_RESTART" if how == "signal" else
               f"installed with SA_RESTART in sa_flags ({flags:#x})",
               "Step f's lesson is the loop: when accept() fails with EINTR, call it again. With SA_RESTART the "
               "kernel would restart accept() by itself, and the lesson would not show; keep sa_flags = "
               "SA_NOCLDSTOP, and write the loop in accept_connection().")
        ctx.quiet_stderr(server)


def restarts_calls(ctx: Context) -> None:
    """Step h's handler has nothing to tell the calls it interrupts: installed with SA_RESTART, so
    that a printf() whose write() a signal interrupts is finished by the kernel, not cut short."""
    if not ctx.can_observe():
        raise NotChecked("needs a dynamically linked server, for the shim that sees how the handler is installed")
    with ctx.server(*ctx.sleep_args()) as server:
        harness.http_get(server.port, timeout=MUST, until=harness.BODY)
        events = _await_handler(ctx, server)
        installed = events.installed
        if installed is None:
            raise NotChecked("the server installs no SIGCHLD handler (signalfd, say): no call to restart")
        if events.of_server("blocks-sigchld"):
            raise NotChecked("the server blocks SIGCHLD and takes it only where it waits (ppoll(), sshd's way): "
                             "the handler interrupts no other call")
        how, _offset, _base, flags = installed
        expect(flags & SA_RESTART, "the handler installed with SA_RESTART (and SA_NOCLDSTOP)",
               f"installed with sa_flags {flags:#x}, without SA_RESTART",
               "sa_flags = SA_RESTART | SA_NOCLDSTOP: the handler only writes a byte, so nothing need see EINTR; "
               "without SA_RESTART a printf() interrupted in its write() can lose what it had not written. "
               "(poll() fails with EINTR anyway: loop.)")
        ctx.quiet_stderr(server)


MERGED = 12  # Children that exit while the server is stopped: one SIGCHLD stands for all of them.


def merged_signals(ctx: Context, expect_left: bool) -> None:
    """Signals merge, made certain: the server is stopped (SIGSTOP) while MERGED children exit, so
    that their SIGCHLD signals merge into one pending signal; then it is continued (SIGCONT), and its
    handler runs for that one signal."""
    with ctx.server(*ctx.sleep_args()) as server:
        _collects_one(server)
        holders = [harness.connect(server.port, timeout=MUST) for _ in range(MERGED)]
        try:
            deadline = time.monotonic() + MUST
            while len([p for p in server.children() if p.state != "Z"]) < MERGED and time.monotonic() < deadline:
                time.sleep(0.02)
            children = server.children()
            expect(len(children) >= MERGED, f"a child for each of {MERGED} connections",
                   f"{len(children)} children", "fork() after accept(), once per connection.")
            os.kill(server.pid, signal.SIGSTOP)
            try:
                # kill() returns before the server has stopped: wait until the kernel says it has (state T),
                # or a child's SIGCHLD could still be handled before the stop.
                while _state(server.pid) not in ("T", "t", "") and time.monotonic() < deadline + MUST:
                    time.sleep(0.005)
                for sock in holders:
                    sock.sendall(harness.REQUEST)
                for sock in holders:
                    harness.receive(sock, MUST, until=harness.BODY)
                while any(p.state != "Z" for p in server.children()) and time.monotonic() < deadline + MUST:
                    time.sleep(0.02)  # Every child has answered and exited: zombies, their signals merged.
            finally:
                os.kill(server.pid, signal.SIGCONT)
        finally:
            for sock in holders:
                sock.close()
        if expect_left:
            left = server.settled_children(timeout=MUST)
            expect(left, f"{MERGED} children exit while the server is stopped; continued, it runs its handler once "
                   "for their one merged SIGCHLD, and a single wait() collects one: zombies are left",
                   f"no zombie left, server {'alive' if server.alive() else 'dead'}",
                   "This step's lesson is the mistake: the handler calls wait() once per signal. Keep a single "
                   "wait() in the handler.")
        else:
            left = server.wait_until_all_collected(timeout=MUST)
            expect(not left, f"{MERGED} children exit while the server is stopped; continued, it runs its handler "
                   "for their one merged SIGCHLD, and collects every one of them",
                   f"{len(left)} children left, states {''.join(sorted(p.state for p in left))}",
                   "One SIGCHLD may stand for many exited children: the handler must loop, "
                   "while ((pid = waitpid(-1, &status, WNOHANG)) > 0), until none is left, however many.")
        expect(server.alive(), "the server lives", f"stderr {quote(server.err.text())}", stderr_hint(server.err.text()))
        ctx.quiet_stderr(server)


def _lowest_free_descriptor(pid: int) -> int:
    used = {int(fd) for fd in os.listdir(f"/proc/{pid}/fd")}
    return next(n for n in range(len(used) + 1) if n not in used)


def _cpu_seconds(pid: int) -> float:
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def accept_failure_is_fatal(ctx: Context) -> None:
    with ctx.server(*ctx.sleep_args()) as server:
        # Once it has served a request (set up, whatever it opens on its way), a forced fault: from now
        # on the server may open no descriptor, so its next accept() fails with EMFILE (the lowest free
        # descriptor is at the limit).
        harness.http_get(server.port, timeout=MUST)  # To the end: the server has closed its side.
        server.steady_children(timeout=MUST)
        limit = _lowest_free_descriptor(server.pid)
        resource.prlimit(server.pid, resource.RLIMIT_NOFILE, (limit, limit))
        before = _cpu_seconds(server.pid)
        client = socket.socket()
        try:
            # The server may die, as it should, before the request is even sent: a reset, then.
            with contextlib.suppress(OSError):
                client.settimeout(MUST)
                client.connect(("127.0.0.1", server.port))
                client.sendall(harness.REQUEST)
            # Must happen: the death, at once. A server that retries spins meanwhile; stop watching it
            # once it has burnt more CPU than a correct server ever takes.
            deadline = time.monotonic() + MUST
            status = None
            while time.monotonic() < deadline:
                status = server.wait_exit(0.1)
                if status is not None or _cpu_seconds(server.pid) - before > 2.0:
                    break
        finally:
            client.close()
        spent = _cpu_seconds(server.pid) - before if status is None else 0.0
        err = server.err.text()
        if status is None:
            raise Failed("accept() failing with EMFILE (no descriptor left): 'accept: Too many open files', exit 1",
                         f"still running after accept() could only fail, {spent:.1f} s of CPU spent meanwhile"
                         + (", stderr " + quote(err) if err else ""),
                         "accept() is retried on every error: only EINTR means 'call it again'. Any other "
                         "failure (EMFILE here: no descriptor left) is fatal: print 'accept: reason' and exit 1; "
                         "a loop that retries it spins at full CPU while the client waits forever."
                         if spent > 0.5 else
                         "accept() failed and the server neither reported it nor exited: any failure but EINTR is "
                         "fatal (fatal(\"accept\")).")
        expect(status == 1 and err.endswith("accept: Too many open files"),
               "accept() failing with EMFILE (no descriptor left): 'accept: Too many open files', exit 1",
               f"exit status {status}, stderr {quote(err)}",
               "Report a failed accept() as 'accept: reason' (fatal(\"accept\")) and exit with status 1.")


# ---------------------------------------------------------------------------
# Every step: the command line, the backlog, the default sleep.


def _until_serving(argv: list[str], timeout: float) -> harness.Result:
    """Runs a server until it exits or prints "Serving HTTP" (then it is stopped, and returncode is
    None), for at most `timeout` seconds (then it is stopped too, and stdout says so)."""
    started = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    out = b""
    try:
        deadline = started + timeout
        while b"Serving HTTP" not in out and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(proc.stdout.fileno(), 4096) if ready else b""
            if ready and not chunk:  # End of output: it exited (or closed its stdout).
                break
            out += chunk
        if b"Serving HTTP" in out or (time.monotonic() >= deadline and proc.poll() is None):
            if b"Serving HTTP" not in out:
                out += f"(still running after {timeout:g} s)".encode()
            os.killpg(proc.pid, signal.SIGKILL)
            harness.reap_group(proc.pid)
            proc.wait()
            err = proc.stderr.read()
            return harness.Result(argv, None, out.decode(errors="replace"), err.decode(errors="replace"),
                                  time.monotonic() - started)
        err = proc.stderr.read()
        code = proc.wait(max(0.1, deadline - time.monotonic()))
        return harness.Result(argv, code, out.decode(errors="replace"), err.decode(errors="replace"),
                              time.monotonic() - started)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def _refuses(ctx: Context, args: list[str]) -> str | None:
    """None if the server refuses `args` as the contract says (usage on stderr, exit status 2);
    else what it did instead."""
    # A refusal must happen: a generous bound for it, since a program can take seconds to start on a busy
    # machine (3 s did not do under load). A server that takes the arguments is seen at once instead: it
    # prints its first line, "Serving HTTP on port N ...", and is then stopped.
    result = _until_serving([ctx.program, *args], timeout=MUST)
    if result.returncode is None:
        return f"{' '.join(args)!r}: it started ({result.stdout.strip()[:60]!r}) instead of refusing"
    if result.returncode != 2 or not result.stderr.strip():
        return (f"{' '.join(args)!r}: exit status {result.returncode}, stderr {quote(result.stderr[:100])} "
                "(not a usage error: status 2 and a message)")
    return None


def command_line(ctx: Context) -> None:
    record = ctx.step
    result = harness.run_bounded([ctx.program, "--help"], timeout=MUST)
    wanted = ["--port", "--host", *(["--sleep"] if record.takes_sleep else []), *record.options]
    missing = [option for option in wanted if option not in result.stdout]
    expect(result.returncode == 0 and not missing,
           f"--help prints the usage on stdout, listing {', '.join(wanted)}, and exits 0",
           f"exit status {result.returncode}, stdout {quote(result.stdout)}" +
           (f", without {', '.join(missing)}" if missing else ""),
           "Every option is in getopt_long's table, in the switch and in usage(); --help prints usage() on "
           "stdout and exits 0.")
    # Whole numbers are plain decimal: these would all be read as port 0 (a port the kernel chooses) by a
    # parser that is not strict, so that a server that takes them starts harmlessly, and is seen.
    bad = [["--port", "abc"], ["--port", "0x0"], ["--port", "0e0"], ["--port", " 0"], ["--port", "70000"],
           ["--port", "0", "--bogus"]]
    if record.takes_sleep:
        bad += [["--port", "0", "--sleep", "abc"], ["--port", "0", "--sleep", "-1"]]
    else:
        bad += [["--port", "0", "--sleep", "1"]]  # Only steps b, c and e sleep.
    for option in record.options:
        bad += [["--port", "0", option, "0"], ["--port", "0", option, "abc"]]
    wrong = [problem for args in bad if (problem := _refuses(ctx, args))]
    expect(not wrong, "bad options refused: usage on stderr, exit status 2 (whole numbers in plain decimal only"
           + ("" if record.takes_sleep else "; this step takes no --sleep") + ")",
           "; ".join(wrong[:3]),
           "Parse each value strictly (parse_number: digits only for whole numbers, the whole text, in range) "
           "and call bad_usage() for anything else; a step that does not sleep has no --sleep option."
           if record.takes_sleep or not any("--sleep" in w for w in wrong) else
           f"Step {record.letter} does not sleep: remove the --sleep option (its table entry, its case, its "
           "line in usage()) and the child's sleep.")


def listen_backlog(ctx: Context) -> None:
    """The backlog that listen() was given, as the kernel keeps it: for a listening socket, ss shows it
    as Send-Q (capped by net.core.somaxconn)."""
    somaxconn = int(open("/proc/sys/net/core/somaxconn").read())
    want = min(ctx.step.backlog, somaxconn)
    with ctx.server(*ctx.sleep_args()) as server:
        result = harness.run_bounded(["ss", "-Hltn", f"sport = :{server.port}"], timeout=MUST)
        fields = result.stdout.split()
        expect(result.returncode == 0 and len(fields) >= 3, "ss lists the listening socket",
               quote(result.stdout + result.stderr), "Install iproute2 (ss): make check does.")
        backlog = int(fields[2])
        expect(backlog == want, f"listen()'s backlog is {ctx.step.backlog}, as in the article"
               + (f" (capped at net.core.somaxconn, {somaxconn})" if want != ctx.step.backlog else ""),
               f"the kernel keeps a backlog of {backlog} for it (ss -ltn: Send-Q)",
               f"listen(listen_socket, REQUEST_QUEUE_SIZE) with REQUEST_QUEUE_SIZE {ctx.step.backlog} in step "
               f"{ctx.step.letter}: 5 in steps a to e, as the article has it, 1024 from step f on, so that a burst "
               "of clients is not dropped.")


_SLEEP_CALL = re.compile(r"(?:clock_nanosleep|nanosleep)\(.*?\{tv_sec=(\d+), tv_nsec=(\d+)\}")


def default_sleep(ctx: Context) -> None:
    problem = harness.strace_problem()
    if problem:
        raise NotChecked(f"watches the sleep with strace, which cannot run here: {problem}")
    want = ctx.step.sleep
    ctx.sleep_args(required=True)  # A server without --sleep fails here, at once.
    with ctx.server(strace=["-e", "trace=nanosleep,clock_nanosleep"]) as server:
        harness.http_get(server.port, timeout=2, until=harness.BODY)  # The sleep follows the answer.
        deadline, found = time.monotonic() + MUST, None
        while time.monotonic() < deadline and not found:
            found = _SLEEP_CALL.search(server.trace_text())
            time.sleep(0.05)
        expect(found, f"without --sleep, the pause after answering is the article's {want:g} s",
               f"no nanosleep() or clock_nanosleep() seen within {MUST:g} s of the answer",
               f"Without --sleep the server sleeps {want:g} s after answering (the default of --sleep).")
        seconds = int(found.group(1)) + int(found.group(2)) / 1e9
        expect(abs(seconds - want) < 0.01, f"without --sleep, the pause after answering is the article's {want:g} s",
               f"it sleeps {seconds:g} s ({found.group(0)[:80]})",
               f"The default of --sleep is {want:g} seconds in step {ctx.step.letter}, as in the article.")


def stopped_child(ctx: Context) -> None:
    """SA_NOCLDSTOP: a child that is only stopped (kill -STOP) sends no SIGCHLD; without it, the
    handler's wait() would block until some child exits, and the server with it."""
    with ctx.server(*ctx.sleep_args(5)) as server:
        with harness.connect(server.port, timeout=MUST):  # Its child waits for a request, then sleeps.
            live = _live_children(server, MUST)
            expect(live, "a child for the connection", "no child", "fork() after accept(), once per connection.")
            os.kill(live[0].pid, signal.SIGSTOP)
            try:
                time.sleep(0.2)  # A SIGCHLD for the stop would arrive now.
                answer, _ = harness.http_get(server.port, timeout=MUST, until=harness.BODY)
                hint = None if answer.endswith(harness.BODY) else (
                    "Stopping a child (kill -STOP) sent the server a SIGCHLD, and the handler's wait() blocks until "
                    "some child exits: nothing is accepted meanwhile. sa_flags = SA_NOCLDSTOP: no SIGCHLD for a "
                    "child that is only stopped." + (" (The parent is waiting in the kernel's "
                                                     f"{_wchan(server.pid)}.)" if _wchan(server.pid) else ""))
                expect(answer.endswith(harness.BODY), "while one child is stopped (kill -STOP), the next client is "
                       "answered", f"no answer within {MUST:g} s: {quote(answer)}", hint)
            finally:
                os.kill(live[0].pid, signal.SIGCONT)



def _signal_sets(pid: int) -> dict[str, bool]:
    """Whether SIGCHLD is blocked, ignored or caught by the process: the kernel's view (/proc/PID/status)."""
    found = {}
    try:
        for line in open(f"/proc/{pid}/status"):
            key, _, value = line.partition(":")
            if key in ("SigBlk", "SigIgn", "SigCgt"):
                found[key] = bool(int(value.split()[0], 16) >> (signal.SIGCHLD - 1) & 1)
    except OSError:
        pass
    return found


def _no_report_hint(server: harness.Server) -> str:
    """Why no child was reported, from how the server treats SIGCHLD."""
    sets = _signal_sets(server.pid)
    if sets.get("SigIgn"):
        return ("SIGCHLD is ignored (SIG_IGN): the kernel then collects the children itself, and nothing reports "
                "them. Install a handler that collects each child with waitpid() and reports it.")
    if sets.get("SigBlk"):
        return ("SIGCHLD is blocked in the server (sigprocmask): the handler never runs, and the children stay "
                "zombies. Leave SIGCHLD unblocked.")
    if sets.get("SigCgt"):
        return ("A SIGCHLD handler is installed, but no child was reported: for each child it collects, it writes "
                "'Child X terminated with status S' (with write()).")
    return NO_HANDLER_HINT


def _state(pid: int) -> str:
    """The process's state letter (/proc/PID/stat): R running, S sleeping, T stopped, Z zombie; '' if gone."""
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return ""


def _wchan(pid: int) -> str:
    try:
        return open(f"/proc/{pid}/wchan").read().strip().strip("0")
    except OSError:
        return ""


# ---------------------------------------------------------------------------
# h, i and j: after the article.


def reaps_outside_the_handler(ctx: Context) -> None:
    """The handler only takes note; the main loop collects the children."""
    if not ctx.can_observe():
        raise NotChecked("needs a dynamically linked server, for the shim that sees what the handler calls")
    with ctx.server(*ctx.sleep_args()) as server:
        _collects_one(server)
        _burst(server, 1)
        left = server.wait_until_all_collected(timeout=MUST, steady=STEADY)
        events = ctx.events(server)
        expect(events.of_server("handler-ran") or events.installed is None,
               "a SIGCHLD handler runs when a child exits", "the server's SIGCHLD handler never ran", NO_HANDLER_HINT)
        inside = sorted({line[1].removeprefix("in-handler-") for line in events.lines
                         if line[0] == str(server.pid) and line[1].startswith("in-handler-")})
        expect(not inside, "the SIGCHLD handler only takes note (one write() to the pipe); the main loop collects "
               "the children", f"the handler itself calls {', '.join(f'{c}()' for c in inside)}",
               "Step h's handler writes one byte into the self-pipe and returns; the main loop, woken by poll(), "
               "empties the pipe and calls waitpid(-1, &status, WNOHANG) until no exited child is left.")
        expect(not left, f"after a burst of {BURST}, every child collected by the main loop",
               f"{len(left)} children left", "When the pipe has a note, collect every exited child: waitpid() "
               "with WNOHANG in a loop, until it returns 0 or -1.")
        ctx.quiet_stderr(server)


def _fd_flags(pid: int, fd: int) -> int | None:
    try:
        for line in open(f"/proc/{pid}/fdinfo/{fd}"):
            if line.startswith("flags:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    return None


def pipe_never_blocks(ctx: Context) -> None:
    """The handler's pipe: its write end non-blocking, so that a full pipe never stops the server inside
    its own handler (/proc/PID/fdinfo shows each descriptor's flags)."""
    with ctx.server(*ctx.sleep_args()) as server:
        harness.http_get(server.port, timeout=MUST, until=harness.BODY)
        blocking = []
        for name in os.listdir(f"/proc/{server.pid}/fd"):
            fd = int(name)
            try:
                link = os.readlink(f"/proc/{server.pid}/fd/{fd}")
            except OSError:
                continue
            flags = _fd_flags(server.pid, fd)
            # Its own pipes (not stdin, stdout and stderr, the harness's), the end it writes to.
            if fd > 2 and link.startswith("pipe:") and flags is not None and flags & 0o3 == 0o1 \
                    and not flags & os.O_NONBLOCK:
                blocking.append(fd)
        expect(not blocking, "the pipe that the handler writes into is non-blocking (O_NONBLOCK)",
               f"descriptor {', '.join(map(str, blocking))}, the write end of a pipe, blocks "
               f"(/proc/{server.pid}/fdinfo: no O_NONBLOCK)",
               "Make the pipe's write end non-blocking (fcntl(fd, F_SETFL, flags | O_NONBLOCK)): when the loop "
               "falls behind and the pipe is full (64 KiB of notes), a blocking write() would stop the server "
               "inside its own handler for ever; a non-blocking one fails with EAGAIN, and one note waiting is "
               "enough.")
        ctx.quiet_stderr(server)


def _runnable_seconds(pid: int) -> float:
    """How long a process has been runnable: on a CPU, or waiting in the run queue for one
    (/proc/PID/schedstat). A loop that never waits is runnable all the time, however busy the machine
    is; a server that waits in poll() or accept() is not runnable at all."""
    try:
        on_cpu, waiting, _ = open(f"/proc/{pid}/schedstat").read().split()
        return (int(on_cpu) + int(waiting)) / 1e9
    except (OSError, ValueError):
        return 0.0


def quiet_when_idle(ctx: Context) -> None:
    """Idle, the server waits (in poll, epoll_wait, accept, wait) and is not runnable: a loop that
    never blocks shows as time spent runnable with nothing to do, in any process of the server."""
    with ctx.server(*ctx.sleep_args()) as server:
        harness.http_get(server.port, timeout=MUST)
        server.steady_children(timeout=MUST)
        time.sleep(0.3)  # The work for that request done.
        pids = _group_pids(server)
        before, started = {pid: _runnable_seconds(pid) for pid in pids}, time.monotonic()
        time.sleep(1.5)  # Must not happen: a short look.
        elapsed = time.monotonic() - started
        busy = {pid: _runnable_seconds(pid) - before[pid] for pid in pids}
        spinning = {pid: spent for pid, spent in busy.items() if spent > 0.5 * elapsed}
        expect(not spinning, "idle, the server's processes wait (in poll(), epoll_wait(), accept() or wait()): "
               "none is runnable with nothing to do",
               ", ".join(f"{'the server' if pid == server.pid else f'its process {pid}'} runnable {spent:.1f} s "
                         f"of {elapsed:.1f} s" for pid, spent in spinning.items()),
               "A loop never waits: a note left in the self-pipe (never read) makes poll() return at once for "
               "ever; a timeout of 0, or WNOHANG in a loop, never sleeps; a non-blocking accept() retried on "
               "EAGAIN spins. Wait in the call that blocks until there is something to do.")
        ctx.quiet_stderr(server)


def _listening_inode(port: int) -> str | None:
    for table in ("/proc/net/tcp",):
        for line in open(table).readlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].split(":")[1], 16) == port:
                return fields[9]
    return None


def _socket_flags(pid: int) -> dict[int, tuple[str, int]]:
    """fd -> (socket:[inode], flags) for each socket the process holds."""
    found = {}
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue
        if link.startswith("socket:"):
            flags = _fd_flags(pid, int(name))
            if flags is not None:
                found[int(name)] = (link, flags)
    return found


def nonblocking_sockets(ctx: Context) -> None:
    """The listening socket is non-blocking (poll() or epoll says a connection waits, but it may be
    gone by the time accept() runs); in an event loop, every connection is too."""
    with ctx.server(*ctx.sleep_args()) as server:
        harness.http_get(server.port, timeout=MUST)
        inode = _listening_inode(server.port)
        with harness.connect(server.port, timeout=MUST):  # A connection the server holds, silent.
            time.sleep(0.3)
            sockets = _socket_flags(server.pid)
        listener = [fd for fd, (link, _) in sockets.items() if link == f"socket:[{inode}]"]
        expect(listener and sockets[listener[0]][1] & os.O_NONBLOCK,
               "the listening socket is non-blocking (O_NONBLOCK): accept() then fails with EAGAIN rather than "
               "wait, when the connection that poll() saw is gone",
               f"descriptor {listener[0] if listener else '?'}, the listening socket, blocks "
               f"(/proc/{server.pid}/fdinfo: no O_NONBLOCK)",
               "fcntl(listen_socket, F_SETFL, flags | O_NONBLOCK) once it is created, and treat accept()'s EAGAIN "
               "as 'nothing after all'.")
        if ctx.step.letter in ("j",) or "one_process" in ctx.step.checks:
            blocking = [fd for fd, (link, flags) in sockets.items() if fd not in listener and not flags & os.O_NONBLOCK]
            expect(not blocking, "every connection the event loop holds is non-blocking (O_NONBLOCK)",
                   f"descriptor {', '.join(map(str, blocking))}, a connection, blocks (/proc/{server.pid}/fdinfo)",
                   "Linux's accept() does not pass O_NONBLOCK on to the new socket: set it on each connection "
                   "(fcntl, or accept4() with SOCK_NONBLOCK), or one slow client stops the one process.")
        ctx.quiet_stderr(server)


def _group_pids(server: harness.Server) -> set[int]:
    """The server and every process of its process group (its workers, their children)."""
    found = set()
    for proc in harness.processes():
        try:
            if os.getpgid(proc.pid) == server.proc.pid and proc.state != "Z":
                found.add(proc.pid)
        except OSError:
            continue
    return found


WORKERS = 3  # Not the default 4: the check sees that --workers is obeyed.


def pool_serves_every_request(ctx: Context) -> None:
    with ctx.server("--workers", str(WORKERS)) as server:
        deadline = time.monotonic() + MUST
        while len(server.children()) < WORKERS and time.monotonic() < deadline:
            time.sleep(0.02)
        # Then until the children have settled: a pool of more workers than asked has them all.
        workers = {p.pid for p in server.steady_children(timeout=MUST, quiet=0.5)}
        expect(len(workers) == WORKERS, f"--workers {WORKERS}: {WORKERS} workers, forked at the start",
               f"{len(workers)} children", "fork() --workers N workers before the parent starts waiting.")
        peak = len(_group_pids(server))
        result = burst_of(server, BURST)
        peak = max(peak, len(_group_pids(server)))
        expect(result.returncode == 0, f"client3 --max-clients {BURST}: every connection made",
               client3_seen(result), "The workers must keep accepting.")
        server.out.wait_for(r"^GET /hello", MUST, count=BURST)
        answered = {int(m.group(1)) for m in server.out.matches(r"^Child PID: (\d+)\.")}
        strangers = answered - workers
        # Processes that answered, are not among the workers counted at the start, and live on: workers
        # that came late (more of them than --workers said), not a child per request.
        alive = {p.pid for p in server.children() if p.state != "Z"}
        if strangers and strangers <= alive and len(alive) != WORKERS:
            expect(False, f"--workers {WORKERS}: {WORKERS} workers, forked at the start",
                   f"{len(alive)} workers answering (children {sorted(alive)})",
                   "fork() --workers N workers (the option's value, not a constant) before the parent starts "
                   "waiting.")
        expect(not strangers and peak <= WORKERS + 1,
               f"every request answered by one of the {WORKERS} workers, {WORKERS + 1} processes throughout",
               f"{len(strangers)} requests answered by processes that were not workers, "
               f"{peak} processes at the most",
               "Fork the workers once, at the start; each worker loops: accept(), answer, close(), and accept "
               "again. No fork() per request.")
        ctx.quiet_stderr(server)


def replaces_a_killed_worker(ctx: Context) -> None:
    with ctx.server("--workers", str(WORKERS)) as server:
        deadline = time.monotonic() + MUST
        while len(server.children()) < WORKERS and time.monotonic() < deadline:
            time.sleep(0.02)
        before = {p.pid for p in server.children()}
        expect(len(before) == WORKERS, f"{WORKERS} workers", f"{len(before)} children",
               "fork() --workers N workers at the start.")
        victim = min(before)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + MUST
        now = before
        while time.monotonic() < deadline:
            now = {p.pid for p in server.children() if p.state != "Z"}
            if victim not in now and len(now) == WORKERS:
                break
            time.sleep(0.02)
        expect(victim not in now and len(now) == WORKERS,
               f"a worker killed with SIGKILL is collected and replaced: {WORKERS} workers again",
               f"workers now {sorted(now)} (killed {victim}), zombies "
               f"{[p.pid for p in server.children() if p.state == 'Z']}",
               "The parent waits for its workers (wait()); when one was killed by a signal, it reports it and "
               "forks another in its place.")
        expect(server.out.wait_for(rf"^Child {victim} terminated with status 9$", MUST),
               f"'Child {victim} terminated with status 9' reported", quote(server.out.text()[-200:]),
               "Report each worker that ends: 'Child X terminated with status S'.")
        data, _ = harness.http_get(server.port, timeout=MUST)
        expect(data in ANSWERS, "and the server answers", quote(data))
        ctx.quiet_stderr(server)


def no_fork_storm(ctx: Context) -> None:
    """A worker that fails by itself (here accept() with EMFILE: the whole pool may open no more
    descriptors) reports it and exits; it is not replaced, or its replacement would fail the same way
    at once, and again, as fast as the parent can fork."""
    with ctx.server("--workers", str(WORKERS)) as server:
        deadline = time.monotonic() + MUST
        while len(server.children()) < WORKERS and time.monotonic() < deadline:
            time.sleep(0.02)
        harness.http_get(server.port, timeout=MUST)
        for pid in _group_pids(server):  # Every process of the pool: no descriptor left to open.
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (_lowest_free_descriptor(pid),) * 2)
        seen = set(_group_pids(server))
        # Sampling /proc misses a child that lives a millisecond (a storm's, on a busy machine): where the
        # shim watches the server, it counts every fork() as it returns.
        events = ctx.events(server)
        forked_before = len(events.of_server("forked")) if events else 0
        # A worker blocked in accept() has already taken the descriptor it will return (Linux reserves it
        # first): served a request, it goes back to accept(), which now fails.
        with contextlib.suppress(OSError):
            harness.http_get(server.port, timeout=2)
        watch = time.monotonic() + 2.0  # Must not happen: a short look.
        while time.monotonic() < watch:
            seen |= _group_pids(server)
            time.sleep(0.005)
        events = ctx.events(server)
        forked = len(events.of_server("forked")) - forked_before if events else 0
        created = max(len(seen) - (WORKERS + 1), forked)
        expect(created <= 1, "a worker whose accept() fails (EMFILE) reports it and is not replaced: no fork storm",
               f"{created} new processes in 2 s (a worker replaced, failing at once, replaced again...), stderr "
               f"{quote(server.err.text()[-150:])}",
               "Replace a worker only when a signal killed it (WIFSIGNALED): one that exited by itself met an error "
               "that its replacement would meet at once, and the parent would fork for ever.")


def idle_clients_hold_the_pool(ctx: Context) -> None:
    """Step i's limit: as many clients as workers, connected and silent, hold every worker."""
    # --workers 2 where the server has it; a server without a pool (step j) runs as it is.
    with ctx.server(*(["--workers", "2"] if ctx.takes("--workers") else [])) as server:
        holders = [harness.connect(server.port, timeout=MUST) for _ in range(2)]
        try:
            time.sleep(0.3)  # The workers take them.
            result = harness.curl(server.port, max_time=2)  # Must not be answered: a short wait.
            expect(result.returncode == harness.CURL_TIMED_OUT,
                   "with 2 workers, 2 silent clients hold both: the next curl waits (stopped by --max-time, exit 28)",
                   f"curl was answered (exit {result.returncode})",
                   "This step's lesson is its limit: a worker serves one client at a time, from accept() to "
                   "close(). Keep one connection per worker at a time.")
            holders.pop().close()  # A worker is free again: the next client is served.
            data, _ = harness.http_get(server.port, timeout=MUST)
            expect(data in ANSWERS, "once one of them leaves, the next client is answered", quote(data))
        finally:
            for sock in holders:
                sock.close()
        ctx.quiet_stderr(server)


IDLE = 200  # Silent clients held beside a curl (an ordinary limit of 1024 descriptors holds them).


def answers_beside_idle_clients(ctx: Context) -> None:
    with ctx.server(nofile=IDLE + 64) as server:
        harness.http_get(server.port, timeout=MUST)  # To the end: the server has closed its side.
        baseline = server.open_descriptors()  # Once it has served a request: set up, whatever its design.
        holders = []
        try:
            deadline = time.monotonic() + MUST  # One bound for them all: the kernel takes them at once.
            for _ in range(IDLE):
                left = deadline - time.monotonic()
                try:
                    holders.append(harness.connect(server.port, timeout=max(0.1, left)))
                except OSError:
                    left = 0
                expect(left > 0, f"{IDLE} connections taken by the kernel", f"{len(holders)} within {MUST:g} s",
                       "listen() with a backlog of 1024, and accept() every connection as it comes.")
            holders[0].sendall(b"GET /hel")  # Half a request, and no more: it must hold up no one.
            result = harness.curl(server.port, max_time=MUST)
            expect(result.returncode == 0 and result.stdout == "Hello, World!\n",
                   f"a curl answered at once beside {IDLE} clients that connected and sent nothing (one of them "
                   "half a request)",
                   f"curl exit {result.returncode} "
                   f"{'(timed out: every process busy with a silent client?)' if result.returncode == 28 else ''}",
                   "Never wait for one client: non-blocking sockets, and epoll tells which one is ready; an idle "
                   "client costs a descriptor, not a process.")
            expect(not server.children(), "one process, no children", f"children {server.children()}",
                   "Step j forks nothing: one process serves every client from its event loop.")
        finally:
            for sock in holders:
                sock.close()
        count = server.wait_for_descriptors(baseline, timeout=MUST)
        expect(count == baseline, f"once the {IDLE} clients have gone, the server's descriptors are back to {baseline}",
               f"{count} descriptors", "When a client closes its connection (recv() returns 0), or when the answer "
               "is sent, close() its descriptor (which also takes it out of the epoll set).")
        ctx.quiet_stderr(server)


def survives_stop_and_continue(ctx: Context) -> None:
    """kill -STOP, then kill -CONT: on Linux, epoll_wait() then fails with EINTR, even with no handler
    installed (signal(7)); the loop calls it again."""
    with ctx.server() as server:
        harness.http_get(server.port, timeout=MUST)
        os.kill(server.pid, signal.SIGSTOP)
        deadline = time.monotonic() + MUST
        while _state(server.pid) not in ("T", "t", "") and time.monotonic() < deadline:
            time.sleep(0.005)
        os.kill(server.pid, signal.SIGCONT)
        data, _ = harness.http_get(server.port, timeout=MUST)
        expect(data in ANSWERS and server.alive(), "stopped (kill -STOP) and continued (kill -CONT), it answers",
               f"{quote(data)}, server {'alive' if server.alive() else f'dead: {quote(server.err.text())}'}",
               "After a stop and continue, Linux makes epoll_wait() fail with EINTR, handler or not (signal(7)): "
               "call it again, as for any EINTR.")
        ctx.quiet_stderr(server)


def one_process(ctx: Context) -> None:
    with ctx.server() as server:
        result = burst_of(server, BURST)
        expect(result.returncode == 0, f"client3 --max-clients {BURST}: every connection made",
               client3_seen(result), "Keep accepting while the burst comes.")
        server.out.wait_for(r"^GET /hello", MUST, count=BURST)
        answered = {int(m.group(1)) for m in server.out.matches(r"^Child PID: (\d+)\.")}
        expect(answered == {server.pid} and not server.children(),
               f"every one of the {BURST} requests answered by the server's one process",
               f"answered by {len(answered)} processes, children now {len(server.children())}",
               "Step j forks nothing: one process serves every client from its event loop.")
        ctx.quiet_stderr(server)


# ---------------------------------------------------------------------------
# The checks, by key. A step's record (tools/steps.py) lists the keys of its checks.

CHECKS = {check.key: check for check in [
    Check("answers", "answers 'Hello, World!' (HTTP/1.1 200 OK, no Content-Length) and closes, twice",
          answers, "socket, bind, listen, accept, recv, send, close: each checked against -1.",
          f"{SERVE} {CURL}; {CURL}; kill $!; cat $L"),
    Check("escapes", "prints each request exactly as received, every byte that is not text escaped",
          prints_request_escaped, "Print what recv() returned, escaped, once.",
          f"{SERVE} printf 'GET /\\033[2J\\177\\377 HTTP/1.1\\r\\n\\r\\n' "
          "| curl -s telnet://localhost:$P --max-time 2; kill $!; cat -v $L"),
    Check("second_waits", "a second client is accepted by the kernel but waits the whole sleep (after the answer, "
          "before close)", second_client_waits, "After answering, sleep (--sleep seconds), then close.",
          f"{serve(' --sleep 1.5')} time {CURL} & sleep 0.2; time {CURL}; wait; kill $!",
          lesson_failure=True),
    Check("both_at_once", "a second client is answered at once while the first child sleeps",
          both_at_once, "fork() a child per connection; the child answers and sleeps.",
          f"{serve(' --sleep 3.5')} time {CURL} & sleep 0.2; time {CURL}; wait; kill $!"),
    Check("child_pids", "prints 'Parent PID (PPID): P', and each child 'Child PID: X. Parent PID P'",
          child_pids, "getpid() in the parent before the loop; getpid() and getppid() in each child.",
          f"{serve(' --sleep 10')} {CURL}; ps -o pid,ppid,stat,cmd --ppid $!; kill $!; cat $L"),
    Check("lines_once", "through a pipe, every line printed exactly once",
          lines_once, "fflush(stdout) after each printf: nothing left in the buffer at fork().",
          f"{SERVE} {CURL}; {CURL}; sleep 1; kill $!; cat $L"),
    Check("child_exits", "the child closes its copy of the listener, answers, and ends with _exit()",
          child_closes_listener_and_exits,
          "In the child: close(listen_socket), answer, close(client_connection), _exit().",
          f"{SERVE} (sleep 3 | curl -s --max-time 4 telnet://localhost:$P &); sleep 0.5; "
          "ls -l /proc/$(pgrep -n -P $!)/fd; kill $!"),
    Check("parent_closes", "the parent closes its copy of each connection",
          parent_closes_its_copy, "close(client_connection) in the parent, after fork().",
          f"{SERVE} {CURL}; ls -l /proc/$!/fd; kill $!"),
    Check("curl_ends", "curl gets the answer and ends",
          curl_ends, "The connection ends when every copy of its descriptor is closed.",
          f"{SERVE} {CURL}; echo \"curl exit $?\"; kill $!"),
    Check("curl_hangs", "curl gets the body but never ends; the parent counts its held connections",
          curl_never_ends, "Do not close the parent's copy of the connection.",
          f"{SERVE} curl --max-time 3 http://localhost:$P/hello; echo \"curl exit $? (28: timed out)\"; kill $!; cat $L",
          lesson_failure=True),
    Check("zombies", "every request leaves a zombie (Z, <defunct>)",
          zombies_pile_up, "Collect no child in this step.",
          f"{SERVE} {CURL}; {CURL}; ps -o pid,ppid,stat,cmd --ppid $!; kill $!",
          lesson_failure=True),
    Check("emfile", f"dies with 'accept: Too many open files' under an open-files limit of {OPEN_FILES}",
          too_many_open_files, "accept() failing with EMFILE is fatal.",
          f"L=$(mktemp); (ulimit -n {OPEN_FILES}; exec {{server}} --port 0 >$L) & {PORT} "
          "build/bin/client3 --port $P --max-clients 64; wait",
          lesson_failure=True, long=True),
    Check("reports_child", "the SIGCHLD handler collects the child and reports it",
          reports_child, "A SIGCHLD handler, installed with sigaction(), that calls wait().",
          f"{serve(' --sleep 0.2')} {CURL}; sleep 1; cat $L; kill $! 2>/dev/null"),
    Check("eintr", "the child's exit interrupts accept(): the server dies with 'accept: Interrupted system call'",
          dies_with_eintr, "sigaction() with sa_flags = SA_NOCLDSTOP: no SA_RESTART.",
          f"{serve(' --sleep 0.5')} {CURL}; sleep 1; cat $L; kill $! 2>/dev/null && echo 'still running: killed'; "
          "wait $!; echo \"server exit $?\"",
          lesson_failure=True),
    Check("handler_safe", "the SIGCHLD handler calls only async-signal-safe functions (its compiled code)",
          handler_is_signal_safe, "write(2) and waitpid(), not printf, in the handler.",
          "make check builds your file with -fcallgraph-info: the call graph is build/exercises/webserver3X-*.ci",
          needs_source=True),
    Check("handler_errno", "the SIGCHLD handler leaves errno as it found it",
          handler_restores_errno, "Save errno on entry to the handler, restore it before returning.",
          f"{serve(' --sleep 0.2')} {CURL}; sleep 1; kill $!   # read the handler: errno saved and restored?"),
    Check("survives", "the server survives its child's exit, collects it, and answers again",
          survives_child_exit, "Restart accept() when it fails with EINTR.",
          f"{SERVE} {CURL}; sleep 0.5; {CURL}; ps -o pid,ppid,stat,cmd --ppid $!; kill $!"),
    Check("burst_zombies", f"a burst of {BURST} clients leaves zombies (signals merge)",
          burst_leaves_zombies, "One wait() per signal.",
          f"{SERVE} build/bin/client3 --port $P --max-clients {BURST}; sleep 1; "
          "ps -o stat --ppid $! | grep -c Z; kill $!",
          lesson_failure=True, long=True),
    Check("no_zombies", f"bursts of {BURST} clients leave no zombie and no extra descriptor",
          bursts_leave_no_zombie, "waitpid(-1, &status, WNOHANG) in a loop.",
          f"{SERVE} build/bin/client3 --port $P --max-clients {BURST}; sleep 1; "
          "ps -o stat --ppid $! | grep -c Z; kill $!", long=True),
    Check("low_nofile", f"lives under an open-files limit of {OPEN_FILES}, descriptors flat",
          lives_under_low_open_files, "Close the parent's copy of each connection.",
          f"L=$(mktemp); (ulimit -n {OPEN_FILES}; exec {{server}} --port 0 >$L) & {PORT} "
          "build/bin/client3 --port $P --max-clients 64; ls /proc/$!/fd | wc -l; kill $!", long=True),
    Check("keeps_accepting", "the handler never blocks: the server accepts while a child runs",
          keeps_accepting, "waitpid with WNOHANG.",
          f"{SERVE} (sleep 5 | curl -s --max-time 6 telnet://localhost:$P &); sleep 0.3; "
          f"{CURL}; {CURL}; kill $!", long=True),
    Check("reset", "a client that resets its connection costs that client only: the next one is answered",
          survives_a_reset, "A failed recv() is warn(), not fatal().",
          f"{SERVE} python3 -c \"import socket,struct; s=socket.create_connection(('127.0.0.1',$P)); "
          "s.setsockopt(socket.SOL_SOCKET,socket.SO_LINGER,struct.pack('ii',1,0)); s.close()\"; "
          f"{CURL}; kill $!; cat $L"),
    Check("restarts", "restarted at once on the same port (SO_REUSEADDR), it binds and answers",
          restarts_on_its_port, "SO_REUSEADDR on the listening socket, before bind().",
          "build/exercises/webserver3a --port 8088 & sleep 0.5; curl -s localhost:8088; kill $!; "
          "{server} --port 8088"),
    Check("options", "the command line: --help lists the options; bad ones are refused (usage, exit 2)",
          command_line, "Every option in getopt_long's table, its case, and usage().",
          "{server} --help; {server} --port 0x0; echo \"exit $?\"; {server} --port 0 --sleep 1; echo \"exit $?\""),
    Check("backlog", "listen()'s backlog is the article's (5 in steps a to e, 1024 from f on)",
          listen_backlog, "REQUEST_QUEUE_SIZE as the step says.",
          f"{SERVE} ss -ltn sport = :$P; kill $!   # Send-Q: the backlog"),
    Check("sleep_default", "without --sleep, the pause is the article's (b and c: 60 s, e: 3 s)",
          default_sleep, "The default of --sleep as the article has it.",
          f"L=$(mktemp); strace -f -e trace=nanosleep,clock_nanosleep {{server}} --port 0 >$L & {PORT} {CURL}; "
          "sleep 1; kill %1"),
    Check("stopped_child", "a stopped child (kill -STOP) does not freeze the server (SA_NOCLDSTOP)",
          stopped_child, "sa_flags = SA_NOCLDSTOP.",
          f"{serve(' --sleep 5')} (sleep 3 | curl -s telnet://localhost:$P &); sleep 0.5; "
          f"kill -STOP $(pgrep -n -P $!); {CURL}; kill $!"),
    Check("no_restart", "accept() is restarted by the server's loop: the handler installed without SA_RESTART",
          no_restart, "sa_flags = SA_NOCLDSTOP; the loop in accept_connection() retries EINTR.",
          f"{SERVE} strace -e trace=rt_sigaction -p $! & sleep 0.5; {CURL}; kill $!"),
    Check("merged_zombies", f"{MERGED} children exit while the server is stopped: their one merged SIGCHLD leaves "
          "zombies", lambda ctx: merged_signals(ctx, True), "One wait() per signal.",
          f"{SERVE} for i in $(seq {MERGED}); do (sleep 1 | curl -s telnet://localhost:$P &); done; sleep 0.5; "
          "kill -STOP $!; sleep 1; kill -CONT $!; sleep 0.5; ps -o stat --ppid $! | grep -c Z; kill $!",
          lesson_failure=True),
    Check("merged_collected", f"{MERGED} children exit while the server is stopped: one SIGCHLD, every child "
          "collected", lambda ctx: merged_signals(ctx, False), "waitpid(-1, &status, WNOHANG) in a loop.",
          f"{SERVE} for i in $(seq {MERGED}); do (sleep 1 | curl -s telnet://localhost:$P &); done; sleep 0.5; "
          "kill -STOP $!; sleep 1; kill -CONT $!; sleep 0.5; ps -o stat --ppid $! | grep -c Z; kill $!"),
    Check("reaps_outside", "the SIGCHLD handler only takes note; the main loop collects every child",
          reaps_outside_the_handler, "One write() into the self-pipe in the handler; waitpid() in the main loop.",
          f"{SERVE} strace -f -e trace=poll,write,wait4 -e signal=SIGCHLD -p $! & sleep 0.5; {CURL}; kill $!",
          long=True),
    Check("pipe_nonblocking", "the handler's pipe never blocks (its write end is O_NONBLOCK)",
          pipe_never_blocks, "fcntl(pipe_end, F_SETFL, flags | O_NONBLOCK).",
          f"{SERVE} {CURL}; grep flags /proc/$!/fdinfo/*; kill $!"),
    Check("idle_quiet", "idle, the server spends no CPU: its loop waits",
          quiet_when_idle, "Empty the self-pipe each time; wait in poll() or epoll_wait().",
          f"{SERVE} {CURL}; sleep 2; ps -o time,stat,cmd -p $!; kill $!"),
    Check("pool", f"--workers {WORKERS}: every request of a burst answered by the pool, {WORKERS + 1} processes",
          pool_serves_every_request, "Fork the workers once; each loops on accept().",
          f"L=$(mktemp); {{server}} --port 0 --workers {WORKERS} >$L & {PORT} build/bin/client3 --port $P "
          f"--max-clients {BURST}; ps -o pid,ppid,cmd --pid $! --ppid $!; kill -- -$!", long=True),
    Check("replaces_worker", "a worker killed with kill -9 is collected, reported and replaced",
          replaces_a_killed_worker, "The parent wait()s for workers and forks a new one for a killed one.",
          f"{SERVE} kill -9 $(pgrep -n -P $!); sleep 0.5; ps -o pid,ppid,cmd --ppid $!; cat $L; kill -- -$!"),
    Check("idle_workers", "2 workers, 2 silent clients: the next curl waits (the pool's limit)",
          idle_clients_hold_the_pool, "A worker serves one client at a time.",
          f"L=$(mktemp); {{server}} --port 0 --workers 2 >$L & {PORT} for i in 1 2; do (exec 3<>/dev/tcp/127.0.0.1/$P; "
          "sleep 4) & done; sleep 0.5; curl --max-time 2 http://localhost:$P/hello; echo \"curl exit $?\"; kill -- -$!",
          lesson_failure=True),
    Check("idle_clients", f"a curl answered at once beside {IDLE} silent clients, by one process; their "
          "descriptors closed when they leave", answers_beside_idle_clients,
          "Non-blocking sockets and epoll; close() a finished connection.",
          f"{SERVE} bash -c 'for i in $(seq {IDLE}); do exec {{{{fd}}}}<>/dev/tcp/127.0.0.1/'$P'; done; sleep 5' & "
          f"sleep 1; {CURL}; ls /proc/$!/fd | wc -l; kill $!", long=True),
    Check("one_process", f"a burst of {BURST} clients answered by the one process, with no child",
          one_process, "No fork(): the event loop serves everyone.",
          f"{SERVE} build/bin/client3 --port $P --max-clients {BURST}; grep -c 'Child PID' $L; "
          "ps --ppid $! | wc -l; kill $!", long=True),
    Check("nonblocking", "the listening socket is non-blocking (and, in an event loop, every connection)",
          nonblocking_sockets, "fcntl(fd, F_SETFL, flags | O_NONBLOCK).",
          f"{SERVE} {CURL}; grep flags /proc/$!/fdinfo/*; kill $!"),
    Check("with_restart", "step h's handler is installed with SA_RESTART: nothing need see EINTR but poll()",
          restarts_calls, "sa_flags = SA_RESTART | SA_NOCLDSTOP.",
          f"{SERVE} strace -e trace=rt_sigaction -p $! & sleep 0.5; {CURL}; kill $!"),
    Check("no_storm", "a worker that fails by itself is not replaced: no fork storm",
          no_fork_storm, "Replace only a worker killed by a signal.",
          f"L=$(mktemp); {{server}} --port 0 --workers 3 >$L & {PORT} for p in $(pgrep -g $!); do prlimit --pid $p "
          "--nofile=$(ls /proc/$p/fd | wc -l); done; curl --max-time 2 http://localhost:$P/; ps -o pid --ppid $!; "
          "kill -- -$!"),
    Check("stop_continue", "stopped and continued (kill -STOP, kill -CONT), it answers: EINTR from epoll_wait() retried",
          survives_stop_and_continue, "epoll_wait() fails with EINTR after a stop: call it again.",
          f"{SERVE} kill -STOP $!; kill -CONT $!; {CURL}; kill $!"),
    Check("accept_fatal", "an accept() failure other than EINTR is reported and fatal, not retried",
          accept_failure_is_fatal, "Only EINTR means 'call accept() again'; any other failure is fatal.",
          f"{SERVE} prlimit --pid $! --nofile=$(ls /proc/$!/fd | wc -l); {CURL}; sleep 1; "
          "cat /proc/$!/stat | cut -d' ' -f3; kill $!; wait $!; echo \"server exit $?\""),
]}
