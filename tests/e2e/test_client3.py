"""client3, the forking load client: it opens and holds what it is told to,
counts a connection once the server has answered it, names its failures,
refuses a run the machine cannot carry, and exits 0 only if every connection
was made."""

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


@pytest.mark.parametrize("args", [["--max-clients", "0"], ["--max-conns", "x"], ["--port", "70000"],
                                  ["--bogus"], ["--port"], ["--timeout", "0"], ["extra"], ["-x"]])
def test_a_bad_option_prints_usage_and_exits_2(args):
    result = harness.run_bounded([str(harness.binary("client3")), *args], timeout=10)
    assert result.returncode == 2
    assert "Usage:" in result.stderr


def test_an_unknown_host_is_named():
    result = harness.run_bounded([str(harness.binary("client3")), "--host", "no-such-host.invalid"], timeout=30)
    assert result.returncode == 1
    assert result.stderr.startswith("getaddrinfo: no-such-host.invalid:")
