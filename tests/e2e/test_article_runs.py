"""The article's own commands, typed as a participant types them (each with
--port, so that the test takes a free port): the step d run under
`ulimit -n 256` with `client3 --max-clients=300` crashes the server within
seconds, and client3's count agrees with the server's; `client3
--max-clients 128` against step g makes 128 connections in seconds, and
leaves no zombie."""

import time

import harness


def typed(command: str, port: int, timeout: float) -> harness.Result:
    """Run a command line through the shell, as typed, on the server's port."""
    return harness.run_bounded(["bash", "-c", f"{command} --port {port}"], timeout)


def test_d_the_articles_run_ends_in_too_many_open_files_within_seconds():
    # (ulimit -n 256; exec ./build/bin/webserver3d), with the test's port.
    server = harness.Server("d", program=["bash", "-c", 'ulimit -n 256; exec "$0" "$@"', harness.binary("d")])
    with server:
        client = f"{harness.binary('client3')} --max-clients=300"
        result = typed(client, server.port, timeout=60)
        # It dies during client3's run (its held connections then close, which ends client3):
        # 3 s more is a bound that only a server that does not die waits out.
        status = server.wait_exit(3)
        held = server.out.matches(r"^Connections held open by the parent: (\d+)$")
        assert status == 1 and server.err.text() == "accept: Too many open files", (
            f"the server is still alive (held {held[-1].group(1) if held else 0}), or died otherwise: "
            f"{server.err.text()!r}; client3: {result.stdout.splitlines()[-1:]}")
        assert result.seconds < 20
        # 256 descriptors, less stdin, stdout, stderr and the listening socket.
        assert int(held[-1].group(1)) == 252
        made = int(result.stdout.splitlines()[-1].split()[1])
        assert made == 252, f"client3 counted {made} connections made, the server held 252: {result.stdout[-200:]}"
        assert result.returncode == 1


def test_g_the_articles_128_clients_take_seconds_and_leave_no_zombie(start):
    server = start("g")
    began = time.monotonic()
    result = typed(f"{harness.binary('client3')} --max-clients 128", server.port, timeout=60)
    assert result.returncode == 0, result.stdout[-300:] + result.stderr[-300:]
    assert result.stdout.splitlines()[-1] == "client3: 128 of 128 connections made, 0 failed"
    assert time.monotonic() - began < 15, "128 connections should take about a second"
    left = server.wait_until_all_collected(timeout=3)
    assert left == [], f"children left {left}: the handler must loop on waitpid(-1, &status, WNOHANG)"
    assert server.alive()
