"""Step g, the finished server: bursts of 128 clients, and thousands of
connections, leave no zombie and no extra descriptor, and the server lives."""

import harness


def test_g_thousands_of_connections(start):
    server = start("g")
    baseline = server.open_descriptors()
    result = harness.client3(server.port, max_clients=20, max_conns=100)
    assert result.returncode == 0, result.stdout[-300:] + result.stderr
    assert result.stdout.splitlines()[-1] == "client3: 2000 of 2000 connections made, 0 failed"
    assert server.wait_until_all_collected() == []
    assert server.wait_for_descriptors(baseline) == baseline
    assert harness.curl(server.port).stdout == "Hello, World!\n"
