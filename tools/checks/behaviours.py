"""The behaviours that `make check` observes, one function each, and CHECKS,
the registry of checks by key (a step's record in tools/steps.py lists the
keys of its checks).

A behaviour is observed in the running program: its output, /proc, ps, its
exit status, under a forced fault (a low open-files limit, a burst of
clients). Where only the code can tell (what the signal handler calls), the
code is read as the compiler sees it (tools/checks/code.py), never by
spelling. A behaviour that is a failure in its step (step d's curl that never
ends, step e's death by EINTR, step f's zombies after a burst) is what that
step's check expects.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import harness
from checks.framework import Check, Context, Failed, NotChecked, expect, quote

ESCAPE_REQUEST = b"GET /\x1b[2J\x1b]0;owned\x07 HTTP/1.1\r\nHost: localhost\r\n\r\n"
ESCAPED_LINE = "GET /\\x1b[2J\\x1b]0;owned\\x07 HTTP/1.1"

# ---------------------------------------------------------------------------
# The behaviours.

# By hand: the server on a port the kernel chooses (on a shared machine another user's server may hold
# any fixed port), its output in a file, the port read from its first line into $P. $! is the server.
PORT = "sleep 0.5; P=$(awk '{{print $5; exit}}' $L);"


def serve(options: str = "") -> str:
    return f"L=$(mktemp); {{server}} --port 0{options} >$L & {PORT}"


SERVE = serve()
CURL = "curl -v --max-time 5 http://localhost:$P/hello"


def answers(ctx: Context) -> None:
    with ctx.server(*ctx.sleep_args()) as server:
        for attempt in ("first", "second"):
            data, closed = harness.http_get(server.port, timeout=3)
            expect(data == b"HTTP/1.1 200 OK\r\n\r\nHello, World!\n" and closed,
                   f"the {attempt} request answered 'HTTP/1.1 200 OK\\r\\n\\r\\nHello, World!\\n', then closed",
                   f"{quote(data)}, connection {'closed' if closed else 'still open after 3 s'}")
        ctx.quiet_stderr(server)


def prints_request_escaped(ctx: Context) -> None:
    with ctx.server(*ctx.sleep_args()) as server:
        harness.http_get(server.port, timeout=5, until=harness.BODY, request=ESCAPE_REQUEST)
        line = server.out.wait_for(r"^GET /", 5)
        expect(line is not None, "the request printed as received (GET ...)",
               f"stdout {quote(server.out.text())}",
               "Print the bytes that recv() returned, as they came (with write(), or printf and fflush).")
        text = server.out.text()
        expect(line.string == ESCAPED_LINE and "\x1b" not in text and "\r" not in text,
               f"control bytes shown escaped: {ESCAPED_LINE!r}", f"{quote(line.string)}",
               "A request is untrusted input: print it through escape_request(), never raw.")
        expect(server.out.wait_for(r"^Host: localhost$", 2), "the request's next line printed: 'Host: localhost'",
               f"stdout {quote(server.out.text())}", "Print the whole request, every line of it.")
        ctx.quiet_stderr(server)


def second_client_waits(ctx: Context) -> None:
    pause = 2.0
    with ctx.server(*ctx.sleep_args(required=True, seconds=pause)) as server:
        first, _ = harness.http_get(server.port, timeout=5, until=harness.BODY)
        expect(first.endswith(harness.BODY), "the first client answered", quote(first))
        with harness.connect(server.port, timeout=1) as second:  # The backlog takes it at once.
            second.sendall(harness.REQUEST)
            early, _ = harness.receive(second, pause / 2)
            printed = len(server.out.matches(r"^GET /hello"))
            # Answered at once already fails below: no use waiting for the rest of it.
            late = harness.receive(second, pause + 5, until=harness.BODY)[0] if early == b"" else b""
        expect(early == b"" and printed == 1,
               f"the second client waits: no answer, its request not even read, during the first {pause:g} s sleep",
               f"answered at once: {quote(early)}" if early else f"{printed} requests printed during the sleep",
               "The iterative server sleeps after answering, before it accept()s again: the pause belongs "
               "after close() of the connection, in the same loop, with no fork.")
        expect((early + late).endswith(harness.BODY), "the second client answered after the sleep",
               quote(early + late))
        ctx.quiet_stderr(server)


def both_at_once(ctx: Context) -> None:
    pause = 2.0
    with ctx.server(*ctx.sleep_args(required=True, seconds=pause)) as server:
        first, _ = harness.http_get(server.port, timeout=5, until=harness.BODY)
        expect(first.endswith(harness.BODY), "the first client answered", quote(first))
        with harness.connect(server.port, timeout=1) as second:
            second.sendall(harness.REQUEST)
            early, _ = harness.receive(second, pause / 2, until=harness.BODY)
        expect(early.endswith(harness.BODY),
               f"a second client answered at once, while the first one's child sleeps {pause:g} s",
               f"nothing within {pause / 2:g} s: {quote(early)}",
               "fork() after accept(): the child answers and sleeps, the parent goes straight back to accept().")
        ctx.quiet_stderr(server)


def child_pids(ctx: Context) -> None:
    with ctx.server(*ctx.sleep_args(required=True, seconds=2)) as server:
        expect(server.out.wait_for(rf"^Parent PID \(PPID\): {server.pid}$", 2),
               f"'Parent PID (PPID): {server.pid}' after the first line", quote(server.out.text()),
               "Print getpid() once, before the loop, as 'Parent PID (PPID): P', and fflush(stdout).")
        clients = [harness.connect(server.port) for _ in range(2)]
        try:
            for sock in clients:
                sock.sendall(harness.REQUEST)
            for sock in clients:
                harness.receive(sock, 5, until=harness.BODY)
            server.out.wait_for(r"^Child PID: ", 2, count=2)
            lines = server.out.matches(r"^Child PID: (\d+)\. Parent PID (\d+)$")
            sleeping = {p.pid for p in server.children() if p.state != "Z"}  # Each child sleeps 2 s.
            expect(len(lines) == 2 and all(int(m.group(2)) == server.pid and int(m.group(1)) in sleeping
                                           for m in lines),
                   f"two lines 'Child PID: X. Parent PID {server.pid}', X each a sleeping child of the server",
                   f"lines {[m.string for m in lines]}, children (pid, state) "
                   f"{sorted((p.pid, p.state) for p in server.children())}",
                   "The child prints getpid() and getppid(), once per connection, before it answers; "
                   "then it sleeps --sleep seconds.")
        finally:
            for sock in clients:
                sock.close()
        ctx.quiet_stderr(server)


# The lines a step's server prints, by name (a step's record lists the ones it prints: `prints`).
# name: (as make check names it, a regular expression, printed once in all rather than once per request)
LINES = {
    "parent": ("Parent PID (PPID)", r"^Parent PID \(PPID\): \d+$", True),  # Before the loop.
    "child": ("Child PID", r"^Child PID: \d+\. Parent PID \d+$", False),  # By the process that answers.
    "held": ("Connections held open", r"^Connections held open by the parent: \d+$", False),  # Step d's parent.
    "terminated": ("Child N terminated", r"^Child \d+ terminated with status", False),  # Whoever collects it.
}


def lines_once(ctx: Context) -> None:
    prints = ctx.step.prints
    # A step whose lesson is a death (e) serves one request only.
    requests = 1 if ctx.step.lesson_stderr else 3
    with ctx.server(*ctx.sleep_args()) as server:
        deadline = time.monotonic() + 10
        for done in range(1, requests + 1):
            harness.http_get(server.port, timeout=10, until=harness.BODY)
            if "terminated" in prints:
                # One child at a time: two children exiting together may send
                # one merged SIGCHLD, and step f's handler then reports one of
                # them only (its lesson, but not this check's).
                server.out.wait_for(LINES["terminated"][1], max(0.1, deadline - time.monotonic()), count=done)
        server.out.wait_for(r"^GET /hello", max(0.1, deadline - time.monotonic()), count=requests)
        server.settled_children(timeout=max(0.5, deadline - time.monotonic()))
        counts = {"Serving HTTP on port": (1, r"^Serving HTTP on port"),
                  "GET /hello": (requests, r"^GET /hello")}
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


def child_closes_listener_and_exits(ctx: Context) -> None:
    with ctx.server(*ctx.sleep_args()) as server:
        listener = socket_links(server.pid)
        with harness.connect(server.port) as sock:
            # No request yet: the child waits in recv(), long enough to look at it.
            deadline = time.monotonic() + 2
            while not [p for p in server.children() if p.state != "Z"] and time.monotonic() < deadline:
                time.sleep(0.01)
            live = [p for p in server.children() if p.state != "Z"]
            expect(len(live) == 1, "a child for the connection", f"children {live}",
                   "fork() after accept(), once per connection.")
            child_sockets, until = socket_links(live[0].pid), time.monotonic() + 1
            while child_sockets & listener and time.monotonic() < until:  # Just forked: give it time to close.
                time.sleep(0.01)
                child_sockets = socket_links(live[0].pid)
            expect(not child_sockets & listener,
                   "the child has closed its copy of the listening socket",
                   f"child {live[0].pid} holds {sorted(child_sockets)}, the listener is {sorted(listener)}",
                   "In the child (fork() returned 0), close(listen_socket) first: only the parent accepts.")
            sock.sendall(harness.REQUEST)
            data, _ = harness.receive(sock, 5, until=harness.BODY)
            expect(data.endswith(harness.BODY), "the child answers", quote(data))
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            still = [p for p in server.children() if p.pid == live[0].pid and p.state != "Z"]
            if not still:
                break
            time.sleep(0.02)
        expect(not still, "the child exits once it has answered (and slept, where the step sleeps)",
               f"child {live[0].pid} still running: {harness.ps_rows(server.pid)!r}",
               "End the child with _exit(EXIT_SUCCESS) right after it closes its connection; without it "
               "the child falls back into the parent's loop.")
        ctx.quiet_stderr(server)


def parent_closes_its_copy(ctx: Context) -> None:
    with ctx.server(*ctx.sleep_args(1)) as server:
        listener = socket_links(server.pid)
        with harness.connect(server.port) as sock:
            sock.sendall(harness.REQUEST)
            harness.receive(sock, 5, until=harness.BODY)
            deadline = time.monotonic() + 2
            while socket_links(server.pid) != listener and time.monotonic() < deadline:
                time.sleep(0.02)
            held = socket_links(server.pid) - listener
        expect(not held, "the parent holds only its listening socket once it has forked the child",
               f"the parent also holds {sorted(held)}",
               "In the parent (fork() returned the child's PID), close(client_connection): the child "
               "has its own copy, and the connection ends only when every copy is closed.")
        ctx.quiet_stderr(server)


def curl_ends(ctx: Context) -> None:
    with ctx.server(*ctx.sleep_args(0.2)) as server:
        result = harness.curl(server.port, max_time=3)
        expect(result.returncode == 0 and result.stdout == "Hello, World!\n",
               "curl prints 'Hello, World!' and ends (exit status 0)",
               f"curl exit {result.returncode} ({'timed out: the connection never closed' if result.returncode == 28 else quote(result.stderr)}), printed {quote(result.stdout)}",
               "The connection ends when its last descriptor is closed: the parent must close its copy "
               "of the connection after fork(), the child its own after answering.")
        ctx.quiet_stderr(server)


def curl_never_ends(ctx: Context) -> None:
    with ctx.server(*ctx.sleep_args()) as server:
        result = harness.curl(server.port, max_time=1.5)
        expect(result.stdout == "Hello, World!\n", "curl gets 'Hello, World!'", quote(result.stdout + result.stderr))
        expect(result.returncode == harness.CURL_TIMED_OUT,
               "curl never ends: the body arrives, but no end of file (curl stopped by --max-time, exit 28)",
               f"curl ended by itself, exit {result.returncode}",
               "This step's lesson is the mistake: the parent keeps its copy of the connection. Do not "
               "close(client_connection) in the parent.")
        expect(server.out.wait_for(r"^Connections held open by the parent: 1$", 3),
               "'Connections held open by the parent: 1' printed (and flushed) by the parent",
               quote(server.out.text()[-200:]),
               "Count the connections the parent holds and print the count after each fork(), with fflush.")
        ctx.quiet_stderr(server)


def zombies_pile_up(ctx: Context) -> None:
    with ctx.server(*ctx.sleep_args()) as server:
        for _ in range(3):
            harness.http_get(server.port, timeout=3, until=harness.BODY)
        children = server.settled_children(timeout=3)
        rows = [row for row in harness.ps_rows(server.pid).splitlines()[1:] if row.split()[1] == str(server.pid)]
        expect(len(children) == 3 and all(p.state == "Z" for p in children) and len(rows) == 3
               and all(r.endswith("<defunct>") for r in rows),
               "after 3 requests, 3 zombie children: ps shows them Z, <defunct>",
               f"ps: {rows!r}",
               "This step collects no child: no wait(), no SIGCHLD handler. Each child must exit (_exit) "
               "after answering and stay a zombie.")
        ctx.quiet_stderr(server)


OPEN_FILES = 32  # The article's 256, made smaller: each held connection costs one.


def _descriptors(server: harness.Server) -> int:
    try:
        return server.open_descriptors()
    except OSError:
        return 0  # It exited meanwhile.


def too_many_open_files(ctx: Context) -> None:
    with ctx.server(*ctx.sleep_args(), nofile=OPEN_FILES) as server:
        for _ in range(2):  # The backlog drops some of a burst; a second burst makes up for it.
            # A server that dies of EMFILE does so during the burst (its held connections then
            # close, which ends client3 at once): 3 s and 1 s are ample bounds for that.
            harness.client3(server.port, max_clients=2 * OPEN_FILES, max_conns=1, timeout=3)
            if server.wait_exit(1) is not None or _descriptors(server) < OPEN_FILES // 2:
                break  # Dead, or its descriptors do not grow: no use waiting for more.
        status = server.wait_exit(0)
        expect(status == 1 and server.err.text() == "accept: Too many open files",
               f"under an open-files limit of {OPEN_FILES}, the server dies: 'accept: Too many open files', status 1",
               f"{'still running' if status is None else f'exit status {status}'}, stderr {quote(server.err.text())}",
               "Every held connection costs the parent a descriptor until accept() fails with EMFILE; "
               "treat that as fatal (print 'accept: ...' and exit 1), never retry in a loop.")


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


NO_HANDLER_HINT = ("No SIGCHLD handler is installed, so nothing interrupts accept(). A wait() in the loop "
                   "collects the child, but it is not the lesson: install grim_reaper() with "
                   "sigaction(SIGCHLD, &action, nullptr) and let the handler call wait() and write the line.")


def reports_child(ctx: Context) -> None:
    with ctx.server(*ctx.sleep_args(0.2)) as server:
        with harness.connect(server.port) as sock:
            # Its child waits for the request meanwhile: the parent is surely alive, past its setup.
            # One 3 s bound for the fork and the child's line: a server that never forks fails
            # after 3 s, not after a wait for each.
            deadline = time.monotonic() + 3
            while not server.children() and time.monotonic() < deadline - 1:
                time.sleep(0.01)
            caught = catches_sigchld(server.pid)
            sock.sendall(harness.REQUEST)
            harness.receive(sock, 5, until=harness.BODY)
        child = server.out.wait_for(r"^Child PID: (\d+)\.", max(0.5, deadline - time.monotonic()))
        expect(child is not None, "'Child PID: X. Parent PID P' printed", quote(server.out.text()))
        reported = server.out.wait_for(rf"^Child {child.group(1)} terminated with status 0$", 3)
        expect(caught, "a SIGCHLD handler installed (the kernel lists SIGCHLD as caught) that reports the child",
               f"the server does not catch SIGCHLD (/proc/{server.pid}/status SigCgt)"
               f"{', yet the child was reported: by a wait() outside a handler' if reported else ''}",
               NO_HANDLER_HINT)
        expect(reported, f"the handler reports 'Child {child.group(1)} terminated with status 0'",
               quote(server.out.text()[-200:]),
               "Install a SIGCHLD handler (sigaction) that calls wait(&status) and writes the line with "
               "write(2): printf is not async-signal-safe.")
        ctx.quiet_stderr(server)


def dies_with_eintr(ctx: Context) -> None:
    pause = 0.5
    with ctx.server(*ctx.sleep_args(pause)) as server:
        asked = time.monotonic()
        result = harness.curl(server.port, max_time=3)
        expect(result.returncode == 0 and result.stdout == "Hello, World!\n", "curl answered and ends",
               f"curl exit {result.returncode}, {quote(result.stdout + result.stderr)}")
        # One 3 s bound for the child's line, its report and the server's death: on step e's server
        # they all follow curl's end within milliseconds, and a server that shows none of them
        # fails after 3 s, not after a wait for each.
        deadline = time.monotonic() + 3
        child = server.out.wait_for(r"^Child PID: (\d+)\.", 2)
        reported = child and server.out.wait_for(rf"^Child {child.group(1)} terminated",
                                                 max(0.1, deadline - time.monotonic()))
        # The child exits no earlier than its sleep after the request (a hard bound for a child that
        # sleeps; one that does not exits within milliseconds): the sleep is what puts the parent
        # back in accept() when the child exits, surely.
        if reported and ctx.takes_sleep():
            after = time.monotonic() - asked
            expect(after >= 0.8 * pause, f"the child sleeps --sleep {pause:g} s after answering, then exits",
                   f"the child's exit reported {after:.2f} s after the request",
                   "After answering, the child sleeps --sleep seconds before it closes the connection and "
                   "exits, so that the parent is surely back in accept() when the child exits.")
        status = server.wait_exit(max(0.2, deadline - time.monotonic()))
        err = server.err.text()
        if status is None:
            if not catches_sigchld(server.pid):  # Chosen from what was seen: no handler at all ...
                seen, hint = ("no SIGCHLD handler installed (/proc SigCgt)"
                              + (", the child reported by a wait() outside a handler" if reported else ""),
                              NO_HANDLER_HINT)
            elif reported:  # ... a handler that ran, and accept() went on ...
                seen, hint = ("the handler ran and reported the child, accept() went on",
                              "accept() was restarted after the handler ran. signal() (and std::signal) install "
                              "the handler with SA_RESTART on Linux, and the kernel then restarts accept() by "
                              "itself: install it with sigaction() and sa_flags = SA_NOCLDSTOP, no SA_RESTART. "
                              "(Or accept() is retried on EINTR: that is step f's fix, not step e.)")
            else:  # ... or a handler that did not report the child.
                seen, hint = ("a SIGCHLD handler is installed, but no child was reported",
                              "The handler must collect the child with wait() and write "
                              "'Child X terminated with status S' (with write(2)).")
            raise Failed("the child's exit interrupts accept(): 'accept: Interrupted system call', exit status 1",
                         f"server still running 3 s after curl ended: {seen}, stderr {quote(err)}", hint)
        expect(status == 1 and err == "accept: Interrupted system call",
               "the child's exit interrupts accept(): 'accept: Interrupted system call', exit status 1",
               f"exit status {status}, stderr {quote(err)}",
               "accept() returns -1 with errno EINTR; treat it as fatal like any other accept() failure, "
               "and save and restore errno in the handler (its wait() may set ECHILD).")
        expect(reported, "the SIGCHLD handler reports the child, 'Child X terminated with status 0'",
               quote(server.out.text()[-200:]),
               "Install a SIGCHLD handler with sigaction() that calls wait() and writes the line with write().")


def survives_child_exit(ctx: Context) -> None:
    with ctx.server(*ctx.sleep_args()) as server:
        result = harness.curl(server.port, max_time=3)
        expect(result.returncode == 0 and result.stdout == "Hello, World!\n", "curl answered and ends",
               f"curl exit {result.returncode}, {quote(result.stdout + result.stderr)}")
        reported = server.out.wait_for(r"^Child \d+ terminated with status 0$", 3)
        expect(reported, "the handler reports 'Child X terminated with status 0'", quote(server.out.text()[-200:]),
               "Keep step e's SIGCHLD handler.")
        left = server.wait_until_all_collected(timeout=3)
        expect(server.alive(), "the server lives on after its child's exit",
               f"exit status {server.wait_exit(1)}, stderr {quote(server.err.text())}",
               "When accept() fails with EINTR, nothing went wrong: call accept() again (loop while errno "
               "== EINTR). Any other error stays fatal.")
        expect(not left, "no zombie left after one request", f"children {left}",
               "The handler must collect the child: wait() or waitpid().")
        again = harness.curl(server.port, max_time=3)
        expect(again.stdout == "Hello, World!\n", "a second request answered too",
               f"curl exit {again.returncode}, {quote(again.stdout + again.stderr)}")
        ctx.quiet_stderr(server)


BURST = 128  # The article's client3 --max-clients 128.


def _forks(server: harness.Server) -> None:
    """Fail at once if the server does not fork a child per connection."""
    with harness.connect(server.port) as sock:
        deadline = time.monotonic() + 2
        while not server.children() and time.monotonic() < deadline:
            time.sleep(0.01)
        forked = bool(server.children())
        sock.sendall(harness.REQUEST)
        harness.receive(sock, 3, until=harness.BODY)
    expect(forked, "a child per connection", "no child 2 s after a connection",
           "fork() after accept(), once per connection.")


def _collects_one(server: harness.Server) -> None:
    """Fail at once if one request's child is not collected (and reported)."""
    _forks(server)
    # One 2 s deadline for both (the handler reports a child after it has
    # collected it): on a server with no handler the check fails after 2 s, not 4.
    deadline = time.monotonic() + 2
    reported = server.out.wait_for(r"^Child \d+ terminated with status", 2)
    left = server.wait_until_all_collected(timeout=max(0.5, deadline - time.monotonic()))
    expect(reported and not left, "one request's child collected by the SIGCHLD handler, and reported",
           f"{'reported' if reported else 'no child reported'}, children left {left}",
           "A SIGCHLD handler installed with sigaction() collects children with wait() or waitpid().")


def _burst(server: harness.Server, served_before: int) -> None:
    result = harness.client3(server.port, max_clients=BURST, max_conns=1, timeout=8)
    expect(result.returncode == 0, f"client3 --max-clients {BURST}: every connection made",
           quote(result.stdout[-200:] + result.stderr), "The server must keep accepting during a burst.")
    expect(server.out.wait_for(r"^GET /hello", 5, count=served_before + BURST),
           f"{served_before + BURST} requests printed", f"{len(server.out.matches('^GET /hello'))} printed")


def burst_leaves_zombies(ctx: Context) -> None:
    with ctx.server(*ctx.sleep_args()) as server:
        _collects_one(server)
        zombies = []
        for attempt in range(1, 3):  # Merging is a race the kernel wins almost always.
            _burst(server, 1 + BURST * (attempt - 1))
            zombies = [p for p in server.settled_children(timeout=3) if p.state == "Z"]
            if zombies:
                break
        expect(zombies, f"after a burst of {BURST} clients, zombies left (SIGCHLD signals merge; one wait() each)",
               f"no zombie after {attempt} bursts, server {'alive' if server.alive() else 'dead'}",
               "This step's lesson is the mistake: the handler calls wait() once per signal, and signals "
               "that arrive together count as one. Keep a single wait() in the handler.")
        expect(server.alive(), "the server lives", f"stderr {quote(server.err.text())}")
        ctx.quiet_stderr(server)


def bursts_leave_no_zombie(ctx: Context) -> None:
    with ctx.server(*ctx.sleep_args()) as server:
        baseline = server.open_descriptors()
        _collects_one(server)
        for attempt in range(3):
            _burst(server, 1 + BURST * attempt)
            left = server.wait_until_all_collected(timeout=3)
            if left:
                stuck = [p for p in left if p.state != "Z"]
                hint = ("A child is still running after its answer: it must end with _exit()."
                        if stuck else
                        "Signals merge: one SIGCHLD may stand for many exited children. In the handler, "
                        "loop: while ((pid = waitpid(-1, &status, WNOHANG)) > 0). Without WNOHANG the "
                        "last waitpid() blocks the handler while other children still run.")
                raise Failed(f"after {attempt + 1} burst{'s' if attempt else ''} of {BURST} clients, no child left",
                             f"{len(left)} children left, states {''.join(sorted(p.state for p in left))[:40]}"
                             f", server {'alive' if server.alive() else 'dead: ' + quote(server.err.text())}",
                             hint)
        expect(server.alive(), "the server lives", f"stderr {quote(server.err.text())}")
        count = server.wait_for_descriptors(baseline, timeout=3)
        expect(count == baseline, f"descriptors flat: {baseline} before and after",
               f"{count} after", "Close the parent's copy of each connection.")
        expect(server.out.wait_for(r"^Child \d+ terminated with status 0$", 5, count=3 * BURST + 1),
               f"{3 * BURST + 1} children reported", f"{len(server.out.matches('^Child .* terminated'))} reported")
        ctx.quiet_stderr(server)


def lives_under_low_open_files(ctx: Context) -> None:
    with ctx.server(*ctx.sleep_args(), nofile=OPEN_FILES) as server:
        baseline = server.open_descriptors()
        _collects_one(server)
        for _ in range(3):
            result = harness.client3(server.port, max_clients=2 * OPEN_FILES, max_conns=1, timeout=6)
            expect(result.returncode == 0 and server.alive(),
                   f"under an open-files limit of {OPEN_FILES}, bursts of {2 * OPEN_FILES} clients all served",
                   f"client3: {quote(result.stdout[-120:])}, server stderr {quote(server.err.text())}",
                   "Close the parent's copy of each connection, so its descriptors stay flat.")
        left = server.wait_until_all_collected(timeout=3)
        count = server.wait_for_descriptors(baseline, timeout=3)
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
        with harness.connect(server.port) as holder:  # Its child waits in recv() meanwhile.
            # Only a head start for that child (a fork shows within milliseconds): the verdict
            # below does not depend on it, and a server that never forks waits it out.
            deadline = time.monotonic() + 0.5
            while not server.children() and time.monotonic() < deadline:
                time.sleep(0.01)
            first, _ = harness.http_get(server.port, timeout=3, until=harness.BODY)
            expect(first.endswith(harness.BODY), "a request answered while another client is connected",
                   quote(first))
            server.out.wait_for(r"^Child \d+ terminated", 2)  # That child's SIGCHLD has come.
            second, _ = harness.http_get(server.port, timeout=3, until=harness.BODY)
            expect(second.endswith(harness.BODY),
                   "after a child exits, the next request answered at once, while another child still runs",
                   f"no answer within 3 s: {quote(second)}",
                   "The handler is stuck: waitpid() without WNOHANG waits for the child that still runs, "
                   "and the parent never returns to accept(). Use waitpid(-1, &status, WNOHANG) and stop "
                   "the loop when it returns 0.")
            holder.sendall(harness.REQUEST)
            harness.receive(holder, 3, until=harness.BODY)
        ctx.quiet_stderr(server)


# What a signal handler may not call: stdio and iostreams (they take locks and
# share buffers with the code the handler interrupted), and what allocates.
UNSAFE_IN_HANDLER = re.compile(
    r"\b(?:std::)?(printf|fprintf|vprintf|vfprintf|dprintf|puts|fputs|putchar|fputc|putc|fwrite|fflush|perror|"
    r"cout|cerr|clog|to_string|string|ostringstream|malloc|free|exit)\b(?!\s*::)")


def _without_comments_and_strings(source: str) -> str:
    source = re.sub(r"/\*.*?\*/", " ", source, flags=re.DOTALL)
    source = re.sub(r"//[^\n]*", "", source)
    return re.sub(r'"(?:\\.|[^"\\\n])*"', '""', source)


def _function_bodies(source: str) -> dict[str, str]:
    """name -> body of every function defined at the top level of the file."""
    bodies = {}
    for match in re.finditer(r"^[^\s#/][^;{}()]*?\b(\w+)\s*\([^;{}]*\)\s*(?:noexcept\s*)?\{", source, re.MULTILINE):
        depth, index = 1, match.end()
        while depth and index < len(source):
            depth += {"{": 1, "}": -1}.get(source[index], 0)
            index += 1
        bodies.setdefault(match.group(1), source[match.end():index - 1])
    return bodies


def handler_is_signal_safe(ctx: Context) -> None:
    if ctx.source is None or not Path(ctx.source).exists():
        raise NotChecked("reads the source: not given with SERVER=")
    source = _without_comments_and_strings(Path(ctx.source).read_text())
    # A handler counts only if it is installed: named in sa_handler and passed to sigaction(SIGCHLD, ...),
    # or (a mistake the eintr check names) given to signal().
    handlers = set(re.findall(r"sa_handler\s*=\s*&?(\w+)", source))
    if not re.search(r"\bsigaction\s*\(\s*SIGCHLD\b", source):
        handlers = set()
    handlers |= set(re.findall(r"\bsignal\s*\(\s*SIGCHLD\s*,\s*&?(\w+)", source))
    handlers -= {"SIG_IGN", "SIG_DFL"}
    expect(handlers, "a SIGCHLD handler installed: sigaction(SIGCHLD, &action, ...) with action.sa_handler = "
           "your function", f"no sigaction(SIGCHLD, ...) with an sa_handler in {Path(ctx.source).name}",
           "Install the handler with sigaction(SIGCHLD, &action, nullptr), action.sa_handler = grim_reaper.")
    bodies = _function_bodies(source)
    seen, todo, unsafe = set(), list(handlers), []
    while todo:  # The handler, and every function of the file it calls.
        name = todo.pop()
        if name in seen or name not in bodies:
            continue
        seen.add(name)
        body = bodies[name]
        unsafe += [f"{m.group(1)} in {name}()" for m in UNSAFE_IN_HANDLER.finditer(body)]
        todo += [callee for callee in re.findall(r"\b(\w+)\s*\(", body) if callee in bodies]
    expect(not unsafe, "the SIGCHLD handler calls only async-signal-safe functions (write, waitpid, ...)",
           f"it reaches {', '.join(sorted(set(unsafe)))}",
           "A signal handler may call only async-signal-safe functions. printf and fflush are not: the "
           "handler may interrupt a printf halfway and deadlock on stdout's lock or corrupt its buffer "
           "(adding fflush only hides it). Format the line into a char array by hand and write(2) it.")


# ---------------------------------------------------------------------------
# The checks of each step.

CHECKS = {
    "answers": Check("answers", "answers 'Hello, World!' (HTTP/1.1 200 OK, no Content-Length) and closes, twice",
                     answers, "socket, bind, listen, accept, recv, send, close: each checked against -1.",
                     f"{SERVE} {CURL}; {CURL}; kill $!; cat $L"),
    "escapes": Check("escapes", "prints each request as received, control bytes escaped",
                     prints_request_escaped, "Print what recv() returned through escape_request().",
                     f"{SERVE} printf 'GET /\\033[2J HTTP/1.1\\r\\n\\r\\n' "
                     "| curl -s telnet://localhost:$P --max-time 2; kill $!; cat $L"),
    "second_waits": Check("second_waits", "a second client is accepted by the kernel but waits the whole sleep",
                          second_client_waits, "After answering, sleep (--sleep seconds) before the next accept().",
                          f"{serve(' --sleep 10')} {CURL}; time {CURL}; kill $!",
                          lesson_failure=True),
    "both_at_once": Check("both_at_once", "a second client is answered at once while the first child sleeps",
                          both_at_once, "fork() a child per connection; the child answers and sleeps.",
                          f"{serve(' --sleep 10')} {CURL}; time {CURL}; kill $!"),
    "child_pids": Check("child_pids", "prints 'Parent PID (PPID): P', and each child 'Child PID: X. Parent PID P'",
                        child_pids, "getpid() in the parent before the loop; getpid() and getppid() in each child.",
                        f"{serve(' --sleep 10')} {CURL}; ps -o pid,ppid,stat,cmd --ppid $!; kill $!; cat $L"),
    "lines_once": Check("lines_once", "through a pipe, every line printed exactly once",
                        lines_once, "fflush(stdout) after each printf: nothing left in the buffer at fork().",
                        f"{SERVE} {CURL}; {CURL}; sleep 1; kill $!; cat $L"),
    "child_exits": Check("child_exits", "the child closes its copy of the listener, answers, and exits",
                         child_closes_listener_and_exits,
                         "In the child: close(listen_socket), answer, close(client_connection), _exit().",
                         f"{SERVE} (sleep 3 | curl -s --max-time 4 telnet://localhost:$P &); sleep 0.5; "
                         "ls -l /proc/$(pgrep -n -P $!)/fd; kill $!"),
    "parent_closes": Check("parent_closes", "the parent closes its copy of each connection",
                           parent_closes_its_copy, "close(client_connection) in the parent, after fork().",
                           f"{SERVE} {CURL}; ls -l /proc/$!/fd; kill $!"),
    "curl_ends": Check("curl_ends", "curl gets the answer and ends",
                       curl_ends, "The connection ends when every copy of its descriptor is closed.",
                       f"{SERVE} {CURL}; echo \"curl exit $?\"; kill $!"),
    "curl_hangs": Check("curl_hangs", "curl gets the body but never ends; the parent counts its held connections",
                        curl_never_ends, "Do not close the parent's copy of the connection.",
                        f"{SERVE} curl --max-time 3 http://localhost:$P/hello; echo \"curl exit $? (28: timed out)\"; kill $!; cat $L",
                        lesson_failure=True),
    "zombies": Check("zombies", "every request leaves a zombie (Z, <defunct>)",
                     zombies_pile_up, "Collect no child in this step.",
                     f"{SERVE} {CURL}; {CURL}; ps -o pid,ppid,stat,cmd --ppid $!; kill $!",
                     lesson_failure=True),
    "emfile": Check("emfile", f"dies with 'accept: Too many open files' under an open-files limit of {OPEN_FILES}",
                    too_many_open_files, "accept() failing with EMFILE is fatal.",
                    f"L=$(mktemp); (ulimit -n {OPEN_FILES}; exec {{server}} --port 0 >$L) & {PORT} "
                    "build/bin/client3 --port $P --max-clients 64; wait",
                    lesson_failure=True),
    "reports_child": Check("reports_child", "the SIGCHLD handler collects the child and reports it",
                           reports_child, "A SIGCHLD handler, installed with sigaction(), that calls wait().",
                           f"{serve(' --sleep 0.2')} {CURL}; sleep 1; cat $L; kill $! 2>/dev/null"),
    "eintr": Check("eintr", "the child's exit interrupts accept(): the server dies with 'accept: Interrupted system call'",
                   dies_with_eintr, "sigaction() with sa_flags = SA_NOCLDSTOP: no SA_RESTART.",
                   f"{serve(' --sleep 0.5')} {CURL}; sleep 1; cat $L; kill $! 2>/dev/null && echo 'still running: killed'; "
                   "wait $!; echo \"server exit $?\"",
                   lesson_failure=True),
    "survives": Check("survives", "the server survives its child's exit, collects it, and answers again",
                      survives_child_exit, "Restart accept() when it fails with EINTR.",
                      f"{SERVE} {CURL}; sleep 0.5; {CURL}; ps -o pid,ppid,stat,cmd --ppid $!; kill $!"),
    "burst_zombies": Check("burst_zombies", f"a burst of {BURST} clients leaves zombies (signals merge)",
                           burst_leaves_zombies, "One wait() per signal.",
                           f"{SERVE} build/bin/client3 --port $P --max-clients {BURST}; sleep 1; "
                           "ps -o stat --ppid $! | grep -c Z; kill $!",
                           lesson_failure=True),
    "no_zombies": Check("no_zombies", f"bursts of {BURST} clients leave no zombie and no extra descriptor",
                        bursts_leave_no_zombie, "waitpid(-1, &status, WNOHANG) in a loop.",
                        f"{SERVE} build/bin/client3 --port $P --max-clients {BURST}; sleep 1; "
                        "ps -o stat --ppid $! | grep -c Z; kill $!"),
    "low_nofile": Check("low_nofile", f"lives under an open-files limit of {OPEN_FILES}, descriptors flat",
                        lives_under_low_open_files, "Close the parent's copy of each connection.",
                        f"L=$(mktemp); (ulimit -n {OPEN_FILES}; exec {{server}} --port 0 >$L) & {PORT} "
                        "build/bin/client3 --port $P --max-clients 64; ls /proc/$!/fd | wc -l; kill $!"),
    "keeps_accepting": Check("keeps_accepting", "the handler never blocks: the server accepts while a child runs",
                             keeps_accepting, "waitpid with WNOHANG.",
                             f"{SERVE} (sleep 5 | curl -s --max-time 6 telnet://localhost:$P &); sleep 0.3; "
                             f"{CURL}; {CURL}; kill $!"),
    "handler_safe": Check("handler_safe", "the SIGCHLD handler uses only async-signal-safe calls (its source)",
                          handler_is_signal_safe, "write(2), not printf, in the handler.",
                          "grep -n -A25 'static void grim_reaper' exercises/webserver3*.cpp "
                          "(or the function your sa_handler names)"),
}

