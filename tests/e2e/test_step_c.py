"""Step c: a child per connection. Each child prints its PID and its parent's;
the parent is the server, which only accepts and forks."""

import os
import time

import harness


def test_each_child_reports_its_pid_and_the_server_as_its_parent(start):
    server = start("c", "--sleep", "3")
    assert server.out.wait_for(rf"^Parent PID \(PPID\): {server.pid}$", 5)
    clients = [harness.connect(server.port) for _ in range(2)]
    try:
        for sock in clients:
            sock.sendall(harness.REQUEST)
        for sock in clients:
            data, _ = harness.receive(sock, 5, until=harness.BODY)
            assert data.endswith(harness.BODY)
        # Both children are still asleep, each holding its connection.
        assert server.out.wait_for(r"^Child PID: ", 5, count=2)
        lines = server.out.matches(r"^Child PID: (\d+)\. Parent PID (\d+)$")
        assert len(lines) == 2
        sleeping = {p.pid for p in server.children()}
        for line in lines:
            assert int(line.group(2)) == server.pid
            assert int(line.group(1)) in sleeping
    finally:
        for sock in clients:
            sock.close()


def test_every_line_is_printed_exactly_once_through_a_pipe(start):
    # stdout is a pipe here, so stdio buffers it fully: a child that flushed
    # the parent's leftovers, or lost its own, would show up as a duplicate
    # or a missing line.
    server = start("c", "--sleep", "0")
    for _ in range(3):
        data, closed = harness.http_get(server.port)
        assert data.endswith(harness.BODY) and closed
    assert server.out.wait_for(r"^Child PID:", 5, count=3)
    server.settled_children()
    assert len(server.out.matches(r"^Serving HTTP on port")) == 1
    assert len(server.out.matches(r"^Parent PID \(PPID\)")) == 1
    assert len(server.out.matches(r"^Child PID:")) == 3
    assert len(server.out.matches(r"^GET /hello")) == 3


def socket_links(pid):
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


def test_the_parent_closes_its_copy_and_the_child_closes_the_listener(start):
    server = start("c", "--sleep", "3")
    listener = socket_links(server.pid)
    assert len(listener) == 1
    with harness.connect(server.port) as sock:
        sock.sendall(harness.REQUEST)
        harness.receive(sock, 5, until=harness.BODY)
        # The child may answer before the parent, just back from fork(), has
        # run its close(): give the parent a moment (a parent that never
        # closes its copy still fails, after 2 seconds).
        deadline = time.monotonic() + 2.0
        while socket_links(server.pid) != listener and time.monotonic() < deadline:
            time.sleep(0.01)
        assert socket_links(server.pid) == listener, "the parent kept its copy of the connection"
        (child,) = server.children()
        child_sockets = socket_links(child.pid)
        assert len(child_sockets) == 1, "the child holds its connection, and only that"
        assert not child_sockets & listener, "the child kept its copy of the listening socket"
