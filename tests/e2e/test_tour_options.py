"""The tour's options and edges, each on one lesson of the tour run by
tools/tour.py itself (no build, no process limit): strace missing, --pause,
colours and wrapping on a terminal, an unknown step, Ctrl-C. Apart from
test_tour.py, whose whole tours (the process limit among their lessons) run
alone: these run alongside the other tests."""

import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import termios
import time

import harness
from test_tour import TOUR, end


def test_without_ptrace_the_tour_says_so_in_one_line_and_shows_the_lesson(tmp_path):
    # A strace that cannot trace, as in a container that forbids ptrace.
    fake = tmp_path / "strace"
    fake.write_text("#!/bin/sh\necho 'strace: PTRACE_TRACEME: Operation not permitted' >&2\nexit 1\n")
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    result = subprocess.run([*TOUR, "e"], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    said = [line for line in result.stdout.splitlines() if "strace cannot trace here" in line]
    assert len(said) == 1 and "Operation not permitted" in said[0], result.stdout
    assert "accept: Interrupted system call" in result.stdout and "strace│" not in result.stdout
    assert "Step e" in result.stdout and "Step d" not in result.stdout, "STEP=e shows step e alone"


def test_pause_waits_for_enter_before_each_lesson():
    # Step a twice: two lessons, and the quickest.
    tour = subprocess.Popen([*TOUR, "--pause", "a", "a"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, process_group=0)
    out = harness.Stream(tour.stdout)
    err = harness.Stream(tour.stderr)
    try:
        for lesson in (1, 2):
            assert out.wait_for("Press Enter for step a", 30, count=lesson), out.text() + err.text()
            time.sleep(1.0)
            assert len(out.matches("━━ Step a")) == lesson - 1, f"lesson {lesson} began without Enter"
            tour.stdin.write(b"\n")
            tour.stdin.flush()
            assert out.wait_for("━━ Step a", 10, count=lesson), f"Enter did not start lesson {lesson}"
        assert tour.wait(30) == 0, out.text() + err.text()
    finally:
        end(tour)
        tour.stdin.close()
        out.join()
        err.join()
        tour.stdout.close()
        tour.stderr.close()
    assert "Every lesson showed as expected" in out.text()


def test_on_a_terminal_the_evidence_is_bold_never_dim_and_the_explanations_plain():
    main, terminal = pty.openpty()
    env = {key: value for key, value in os.environ.items() if key != "NO_COLOR"}
    tour = subprocess.Popen([*TOUR, "a"], stdin=subprocess.DEVNULL, stdout=terminal, stderr=subprocess.PIPE,
                            process_group=0, env={**env, "TERM": "xterm"})
    os.close(terminal)
    screen = b""
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and select.select([main], [], [], 1)[0]:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: the tour has closed the terminal.
                break
            if not chunk:
                break
            screen += chunk
        assert tour.wait(30) == 0, tour.stderr.read().decode()
    finally:
        end(tour)
        tour.stderr.close()
        os.close(main)
    lines = screen.decode().splitlines()
    bold = "\033[1m"
    assert "\033[2m" not in screen.decode() and "\033[2;" not in screen.decode(), "dim text on the screen"
    for evidence in ["Serving HTTP on port", "Hello, World!", "(curl took"]:
        assert any(evidence in line and line.startswith(bold) for line in lines), f"{evidence!r} is not bold"
    explanations = [line for line in lines if "→ " in line]
    assert explanations and all("\033[" not in line for line in explanations), explanations


def test_on_a_narrow_terminal_a_double_enter_skips_no_pause_and_words_wrap_at_the_edge():
    # A presenter presses Enter twice, quickly: the second press must not start
    # the next lesson unasked (the tour forgets keys typed before its prompt).
    # And on a 60-column window the tour's own words break between words.
    main, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 60, 0, 0))
    env = {key: value for key, value in os.environ.items() if key != "NO_COLOR"}
    tour = subprocess.Popen([*TOUR, "--pause", "a", "a"], stdin=terminal, stdout=terminal, stderr=subprocess.PIPE,
                            process_group=0, env={**env, "TERM": "xterm"})
    os.close(terminal)
    screen = b""

    def read_until(text: str, count: int, timeout: float) -> bool:
        nonlocal screen
        deadline = time.monotonic() + timeout
        while screen.decode(errors="replace").count(text) < count:
            if time.monotonic() > deadline or not select.select([main], [], [], 0.2)[0] and tour.poll() is not None:
                return False
            if select.select([main], [], [], 0.2)[0]:
                try:
                    screen += os.read(main, 65536)
                except OSError:  # EIO: the tour has closed the terminal.
                    return False
        return True

    try:
        assert read_until("Press Enter for step a", 1, 30), screen.decode(errors="replace")
        os.write(main, b"\n\n")
        assert read_until("Press Enter for step a", 2, 30), screen.decode(errors="replace")
        time.sleep(1.0)
        read_until("━━ Step a", 2, 0.5)
        assert screen.decode(errors="replace").count("━━ Step a") == 1, \
            "a second Enter, typed before the prompt, skipped the pause (flush typed-ahead input: tcflush)"
        os.write(main, b"\n")
        assert read_until("Every lesson showed as expected", 1, 30), screen.decode(errors="replace")
        assert tour.wait(30) == 0, tour.stderr.read().decode()
    finally:
        end(tour)
        tour.stderr.close()
        os.close(main)
    plain = re.sub(r"\033\[[0-9;]*m", "", screen.decode(errors="replace"))
    words = [line for line in plain.splitlines() if line.startswith(("→ ", "  ("))]
    assert words, plain
    too_wide = [line for line in words if len(line) > 60]
    assert not too_wide, f"the tour's words are not wrapped to the 60-column window: {too_wide}"


def test_an_unknown_step():
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
