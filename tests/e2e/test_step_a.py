"""Step a, the iterative server: it answers, prints the request (escaped), and
keeps the command-line contract that every tool here relies on."""

import socket

import harness
import pytest

ALL_SERVERS = list(harness.STEPS)


def test_answers_hello_world_and_prints_the_request(start):
    server = start("a")
    result = harness.curl(server.port)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Hello, World!\n"
    assert server.out.wait_for(r"^GET /hello HTTP/1\.1$", 5)
    assert server.out.wait_for(rf"^Host: localhost:{server.port}$", 5)


def test_the_answer_is_exactly_the_contracts_bytes(start):
    server = start("a")
    data, closed = harness.http_get(server.port)
    assert data == b"HTTP/1.1 200 OK\r\n\r\nHello, World!\n"
    assert closed, "the server closes the connection to end the body"


def test_a_request_cannot_drive_the_terminal(start):
    server = start("a")
    harness.http_get(server.port, request=b"GET /\x1b[2J\x1b]0;owned\x07 HTTP/1.1\r\n\r\n")
    line = server.out.wait_for(r"^GET /", 5)
    assert line is not None
    assert line.string == "GET /\\x1b[2J\\x1b]0;owned\\x07 HTTP/1.1"
    assert "\x1b" not in server.out.text()


@pytest.mark.parametrize("step", ALL_SERVERS)
def test_first_line_reports_the_port_the_kernel_chose(start, step):
    args = ["--sleep", "0"] if step in "bce" else []
    server = start(step, *args)
    assert server.out.lines[0] == f"Serving HTTP on port {server.port} ..."
    assert 0 < server.port < 65536
    with harness.connect(server.port):
        pass  # Something really listens there.


def test_an_explicit_port_is_used(start):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    server = harness.Server("a")
    server.args = ["--port", str(free_port)]  # After the harness's own --port 0: the last one wins.
    with server:
        assert server.port == free_port


@pytest.mark.parametrize("step", ALL_SERVERS)
def test_a_port_in_use_is_a_fatal_bind_error(start, step):
    first = start("a")
    result = harness.run_bounded([str(harness.binary(step)), "--port", str(first.port)], timeout=10)
    assert result.returncode == 1
    assert result.stderr == "bind: Address already in use\n"


@pytest.mark.parametrize("step", ALL_SERVERS)
@pytest.mark.parametrize("args", [["--port", "abc"], ["--port", "70000"], ["--port", "-1"],
                                  ["--bogus"], ["--port"], ["--host", "not-an-address"]])
def test_a_bad_option_prints_usage_and_exits_2(step, args):
    result = harness.run_bounded([str(harness.binary(step)), *args], timeout=10)
    assert result.returncode == 2
    assert "Usage:" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("step", ALL_SERVERS)
def test_help_prints_usage_and_exits_0(step):
    result = harness.run_bounded([str(harness.binary(step)), "--help"], timeout=10)
    assert result.returncode == 0
    assert result.stdout.startswith("Usage:")
    assert ("--sleep" in result.stdout) == (step in "bce")
