"""client3, the forking load client: it opens and holds what it is told to,
names its failures, and exits 0 only if every connection was made."""

import socket

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


@pytest.mark.parametrize("args", [["--max-clients", "0"], ["--max-conns", "x"], ["--port", "70000"],
                                  ["--bogus"], ["--port"]])
def test_a_bad_option_prints_usage_and_exits_2(args):
    result = harness.run_bounded([str(harness.binary("client3")), *args], timeout=10)
    assert result.returncode == 2
    assert "Usage:" in result.stderr


def test_an_unknown_host_is_named():
    result = harness.run_bounded([str(harness.binary("client3")), "--host", "no-such-host.invalid"], timeout=30)
    assert result.returncode == 1
    assert result.stderr.startswith("getaddrinfo: no-such-host.invalid:")
