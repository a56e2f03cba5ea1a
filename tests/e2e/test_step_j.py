"""Step j: one process, non-blocking sockets, an epoll event loop. It holds
hundreds of idle connections and still answers a curl at once, with no child
process; and each connection's descriptor is closed when its client leaves."""

import resource
import time

import harness

IDLE = 500
# The server's open-files limit, set for it alone: room for the idle clients
# and its own few descriptors, and well below the machine's default (20000
# here, 1024 on many desktops) so that the count means something.
NOFILE = 1024


def descriptors_once_serving(server) -> int:
    """The server's descriptors once it has answered a first curl: its
    listening socket and its epoll instance, both made after the first line."""
    result = harness.curl(server.port, max_time=2)
    assert result.returncode == 0 and result.stdout == "Hello, World!\n", (
        f"the first curl: exit {result.returncode}, {result.stdout!r}" + (
            " (the answer but no end of file: close a connection once it is answered)"
            if result.stdout == "Hello, World!\n" else ""))
    return server.open_descriptors()


def test_hundreds_of_idle_connections_and_a_curl_answered_at_once(start):
    # This test process holds the idle clients' ends: make room for them too.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < IDLE + 100 and (hard == resource.RLIM_INFINITY or hard >= IDLE + 100):
        resource.setrlimit(resource.RLIMIT_NOFILE, (IDLE + 100, hard))
    server = start("j", nofile=NOFILE)
    baseline = descriptors_once_serving(server)
    idle = []
    try:
        for _ in range(IDLE):
            idle.append(harness.connect(server.port))
        # The idle clients are in the listen queue or accepted already; the
        # curl comes after them, and the server must reach it at once.
        result = harness.curl(server.port, max_time=2)
        assert result.returncode == 0 and result.stdout == "Hello, World!\n", (
            "curl got the answer but no end of file: the server does not close a connection once it has answered"
            if result.stdout == "Hello, World!\n" else
            f"curl (exit {result.returncode}) was not answered within 2 s beside {IDLE} idle connections: the "
            "server waits for one client (a blocking accept() or recv()), or serves them from a small pool")
        held = server.wait_for_descriptors(baseline + IDLE, timeout=10)
        assert held == baseline + IDLE, f"the server holds {held - baseline} of the {IDLE} idle connections"
        assert server.children() == [], f"step j forks no child: {server.children()}"
    finally:
        for sock in idle:
            sock.close()
    left = server.wait_for_descriptors(baseline, timeout=10)
    assert left == baseline, (f"{left - baseline} descriptors still open after the {IDLE} clients left: close a "
                              "connection's descriptor when recv() reports its end (0) or an error")
    assert server.alive() and server.err.text() == ""


def test_one_process_answers_a_burst_with_no_child(start):
    server = start("j")
    baseline = descriptors_once_serving(server)
    client = harness.run_in_background([str(harness.binary("client3")), "--port", str(server.port),
                                        "--max-clients", "128"])
    children = set()
    deadline = time.monotonic() + 60
    while client.poll() is None and time.monotonic() < deadline:
        children.update(p.pid for p in server.children())
        time.sleep(0.005)
    out, err = client.communicate(timeout=10) if client.poll() is not None else (b"", b"")
    harness.reap_group(client.pid)
    assert out.decode().splitlines()[-1:] == ["client3: 128 of 128 connections made, 0 failed"], out[-300:] + err
    assert children == set(), f"the server had {len(children)} child processes during the burst; step j has none"
    # Each request's lines were written before its answer; the reader of the server's output may lag.
    assert server.out.wait_for(r"^Child PID: \d+\. Parent PID \d+$", 5, count=128), "a request was not printed"
    answered = server.out.matches(r"^Child PID: (\d+)\. Parent PID \d+$")
    assert {m.group(1) for m in answered} == {str(server.pid)}, "every request is answered by the one process"
    assert server.wait_for_descriptors(baseline) == baseline, "descriptors left open after the burst"
    assert server.alive()
