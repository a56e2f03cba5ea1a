"""The process limit. Step d never collects its children, so every request
leaves a zombie that still counts against the user's process limit, until
fork() fails and the server dies. Step g collects them and lives on.

Root ignores RLIMIT_NPROC, so as root the harness runs the server under an
unused uid; as an ordinary user the limit is that user's current count plus a
margin (see harness.process_limit)."""

import harness

MARGIN = 12  # Processes the server may create beyond what its user already runs.


def test_d_dies_with_fork_resource_temporarily_unavailable(start):
    server = start("d", nproc=harness.process_limit(MARGIN))
    answered = 0
    for _ in range(3 * MARGIN):
        try:
            data, _ = harness.http_get(server.port, timeout=5, until=harness.BODY)
        except OSError:
            break  # The server is gone: connection refused or reset.
        if not data.endswith(harness.BODY):
            break
        answered += 1
        if answered == 3:
            assert len(server.settled_children()) == 3, "each answered request leaves a zombie"
    assert server.wait_exit(10) == 1, "the server survived its process limit"
    assert server.err.text() == "fork: Resource temporarily unavailable"
    assert 3 <= answered <= MARGIN


def test_g_fix_lives_under_the_same_limit(start):
    server = start("g", nproc=harness.process_limit(MARGIN))
    for _ in range(3 * MARGIN):
        # Step g answers and closes within milliseconds: 1.5 s is a bound only a broken server waits out.
        data, closed = harness.http_get(server.port, timeout=1.5)
        assert data.endswith(harness.BODY) and closed, (
            f"request not answered and closed within 1.5 s: {data!r}"
            + (" (the body came, the end of file did not: the parent keeps its copy)" if data.endswith(harness.BODY)
               else ""))
        # Let the handler collect this child before the next request, so the
        # test measures reaping, not how many children run at once.
        assert server.wait_until_all_collected() == []
    assert server.alive()
    assert server.err.text() == ""
