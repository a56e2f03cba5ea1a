"""pytest set-up for the end-to-end demonstrations: the shared harness
(tools/harness.py, also used by the tour) and a check that nothing is left."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))

import harness  # noqa: E402

harness.prepare_process()


def pytest_configure(config):
    config.addinivalue_line("markers", "whole_tour: runs whole tours (the process limit among their lessons)")


def pytest_collection_modifyitems(items):
    """A test that uses whole tours (test_tour.py's two_tours) is marked
    whole_tour: CTest runs those alone (e2e.tour, -m whole_tour), and the
    tour's other tests, one or two short lessons each, with the rest of the
    suite (e2e.tour_controls, -m 'not whole_tour')."""
    for item in items:
        if "two_tours" in getattr(item, "fixturenames", ()):
            item.add_marker("whole_tour")


@pytest.fixture(autouse=True)
def leaves_nothing_behind():
    """Every test must stop what it started: no child of this process
    (server, client, or an orphan handed to it) may outlive the test. One that
    does fails the test, and is killed and collected, so that it cannot hold
    a port, the output pipes or a process slot for the tests that follow."""
    yield
    left = harness.kill_and_reap_children()
    if left:
        pytest.fail(f"the test left processes behind (now killed and collected): {left}", pytrace=False)


@pytest.fixture
def start():
    """start('d', '--sleep', '1', nofile=64) starts a server and stops it
    (killing and reaping its whole process group) when the test ends."""
    servers = []

    def _start(step, *args, **limits):
        server = harness.Server(step, *args, **limits)
        servers.append(server)
        return server.start()

    yield _start
    for server in servers:
        server.stop()
