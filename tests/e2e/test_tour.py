"""The tour (make tour) shows every lesson, in plain text when piped, exits 0,
and leaves nothing running, also when it is interrupted."""

import os
import signal
import subprocess
import sys
import time

import harness

TOUR = [sys.executable, str(harness.REPO / "tools" / "tour.py")]


def test_the_whole_tour_shows_every_lesson_in_plain_text():
    result = harness.run_bounded(TOUR, timeout=150)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    assert "\033[" not in result.stdout, "colour codes in a pipe"
    for evidence in ["Hello, World!", "<defunct>", "accept: Too many open files",
                     "fork: Resource temporarily unavailable", "accept: Interrupted system call",
                     "Every lesson showed as expected"]:
        assert evidence in result.stdout, evidence


def test_one_step_and_an_unknown_step():
    result = harness.run_bounded([*TOUR, "e"], timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Step e" in result.stdout and "Step d" not in result.stdout
    unknown = harness.run_bounded([*TOUR, "z"], timeout=60)
    assert unknown.returncode == 2
    assert "no step z" in unknown.stderr


def test_ctrl_c_stops_every_server():
    tour = subprocess.Popen([*TOUR, "c"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, process_group=0)
    try:
        # Wait until the tour has a server running, then interrupt it as Ctrl-C would.
        deadline = time.monotonic() + 30
        while not any(p.comm == "webserver3c" for p in harness.children_of(tour.pid)):
            assert time.monotonic() < deadline, "the tour never started its server"
            time.sleep(0.05)
        os.killpg(tour.pid, signal.SIGINT)
        _, stderr = tour.communicate(timeout=30)
        assert tour.returncode == 130, stderr.decode()
    finally:
        if tour.poll() is None:
            os.killpg(tour.pid, signal.SIGKILL)
            tour.wait()
    assert harness.reap_group(tour.pid) is True
    # The leaves_nothing_behind fixture checks that no server was orphaned to us.
