"""Step b: an iterative server that sleeps after answering. A second client
connects at once (the kernel's listen queue, the backlog, holds it) but gets
its answer only after the first client's sleep. Step c, forking, answers both
at once."""

import harness

SLEEP = 2.0


def second_client(server):
    """Serve a first client, then connect a second one and watch it.

    Returns what the second client received in the first half of the sleep,
    and what it had received by the end of the sleep plus a margin."""
    first, _ = harness.http_get(server.port, timeout=5, until=harness.BODY)
    assert first.endswith(harness.BODY)
    with harness.connect(server.port, timeout=1) as second:  # Accepted by the kernel, at once.
        second.sendall(harness.REQUEST)
        early, _ = harness.receive(second, SLEEP / 2)
        late, _ = harness.receive(second, SLEEP + 5, until=harness.BODY)
    return early, early + late


def test_b_the_second_client_waits_for_the_whole_sleep(start):
    server = start("b", "--sleep", str(SLEEP))
    early, late = second_client(server)
    assert early == b"", "the iterative server answered the second client while asleep"
    assert late.endswith(harness.BODY), "the second client was never answered"
    # The server printed both requests (the reader thread may lag a little behind it).
    assert server.out.wait_for(r"^GET /hello", 5, count=2)


def test_b_while_it_sleeps_the_second_request_is_not_even_read(start):
    server = start("b", "--sleep", str(SLEEP))
    harness.http_get(server.port, timeout=5, until=harness.BODY)
    assert server.out.wait_for(r"^GET /hello", 5)
    with harness.connect(server.port, timeout=1) as second:
        second.sendall(harness.REQUEST)
        harness.receive(second, SLEEP / 2)
        assert len(server.out.matches(r"^GET /hello")) == 1


def test_c_fix_both_clients_are_answered_at_once(start):
    server = start("c", "--sleep", str(SLEEP))
    early, _ = second_client(server)
    assert early.endswith(harness.BODY), "the forking server kept the second client waiting"
