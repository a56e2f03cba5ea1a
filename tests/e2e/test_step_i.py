"""Step i: a pool of --workers N processes (4 by default), forked once, each
accepting on the shared listening socket. The server stays N + 1 processes
through a burst of clients, a worker killed with SIGKILL is replaced, and N
clients that connect and send nothing hold every worker: the next curl waits
until one of them sends its request."""

import os
import signal
import subprocess
import time

import harness

WORKERS = 4  # The default.


def live_workers(server) -> list[int]:
    return sorted(p.pid for p in server.children() if p.state != "Z")


def pool(server, count: int = WORKERS, timeout: float = 5.0, without: int | None = None) -> list[int]:
    """The server's workers, once there are `count` live ones (none of them
    `without`) and no zombie; whatever there is at the timeout otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        children = server.children()
        workers = live_workers(server)
        if (len(workers) == count and len(children) == count and without not in workers) \
                or time.monotonic() > deadline:
            return workers
        time.sleep(0.02)


def accepted(server, listener: set[str]) -> int:
    """How many connections the server's processes hold (the listening socket aside)."""
    held = set()
    for pid in [server.pid, *(p.pid for p in server.children())]:
        held |= harness.sockets_of(pid)
    return len(held - listener)


def test_the_server_stays_n_plus_one_processes_through_a_burst(start):
    server = start("i")
    workers = pool(server)
    client = harness.run_in_background([str(harness.binary("client3")), "--port", str(server.port),
                                        "--max-clients", "128"])
    most, seen = 0, set()
    deadline = time.monotonic() + 60
    while client.poll() is None and time.monotonic() < deadline:
        children = server.children()
        most = max(most, len(children))
        seen.update(p.pid for p in children)
        time.sleep(0.005)
    out, err = client.communicate(timeout=10) if client.poll() is not None else (b"", b"")
    harness.reap_group(client.pid)
    assert out.decode().splitlines()[-1:] == ["client3: 128 of 128 connections made, 0 failed"], out[-300:] + err
    assert most <= WORKERS and seen == set(workers), (
        f"during the burst the server had up to {most} children, {len(seen - set(workers))} of them new: a fork "
        "per request; the pool's workers are forked once and serve one client after another")
    assert len(workers) == WORKERS, f"--workers defaults to {WORKERS}; the server has {len(workers)} children"
    assert pool(server) == workers, "the pool changed during the burst"


def test_a_worker_killed_with_sigkill_is_replaced(start):
    server = start("i")
    workers = pool(server)
    assert len(workers) == WORKERS, f"no pool of {WORKERS} workers: {server.children()}"
    victim = workers[0]
    os.kill(victim, signal.SIGKILL)
    assert server.out.wait_for(rf"^Child {victim} terminated with status 9$", 5), (
        "the parent did not report the killed worker: it should wait() for its workers")
    after = pool(server, without=victim)
    assert len(after) == WORKERS and victim not in after, (
        f"after kill -9 of worker {victim}, the pool is {after}: the parent forks a new worker in its place")
    assert victim not in [p.pid for p in server.children()], "the killed worker is a zombie"
    for _ in range(WORKERS + 1):
        result = harness.curl(server.port, max_time=5)
        assert result.returncode == 0 and result.stdout == "Hello, World!\n"


def test_n_idle_clients_hold_every_worker_and_the_next_curl_waits(start):
    server = start("i")
    listener = harness.sockets_of(server.pid)
    idle = [harness.connect(server.port) for _ in range(WORKERS)]
    try:
        # Each worker accepts one silent client and waits in recv() for its request.
        deadline = time.monotonic() + 5
        while accepted(server, listener) < WORKERS and time.monotonic() < deadline:
            time.sleep(0.02)
        assert accepted(server, listener) == WORKERS, "the server did not accept the 4 silent clients within 5 s"

        waited = harness.curl(server.port, max_time=1)
        assert waited.returncode == harness.CURL_TIMED_OUT and waited.stdout == "", (
            f"curl was answered (exit {waited.returncode}) while {WORKERS} silent clients held the "
            f"{WORKERS} workers: the server does not serve from a pool of {WORKERS} alone")

        url = f"http://localhost:{server.port}/hello"
        curl = harness.run_in_background(["curl", "-sS", "--max-time", "10", url])
        try:
            time.sleep(0.5)
            assert curl.poll() is None, "the curl ended while every worker was held"
            idle[0].sendall(harness.REQUEST)
            data, _ = harness.receive(idle[0], 5, until=harness.BODY)
            assert data.endswith(harness.BODY)
            out, err = curl.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            out, err = b"", b"curl still waiting"
        finally:
            harness.reap_group(curl.pid)
        assert out == b"Hello, World!\n", (
            f"the curl was not answered once a worker was free: {err!r}")
    finally:
        for sock in idle:
            sock.close()
