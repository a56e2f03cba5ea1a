"""Step a, the iterative server: it answers, prints the request (escaped), and
keeps the command-line contract that every tool here relies on. The lesson's
behaviours are the checks of tools/checks.py (make check STEP=a runs the same),
run against step a's reference by test_matrix.py (column a)."""

import socket

import harness
import pytest

ALL_SERVERS = [*harness.STEPS, *harness.STEPS_AFTER_ARTICLE]


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
