"""The tour (make tour): every lesson shown, in plain text when piped, exit 0,
nothing left running (also when interrupted); two tours at once both pass; the
kernel's evidence (strace) for steps e, f and h, or one line saying why not;
kill -9 on a zombie; the process limit set with `ulimit -u` and its number
explained; step g's logging printing lines twice; step i's five processes, its
killed worker replaced and its silent clients; step j's descriptors and its one
process; a presenter's pause; a one-line build."""

import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time

import pytest

import harness

TOUR = [sys.executable, str(harness.REPO / "tools" / "tour.py")]
# `make tour` on the build these tests run against (build/, or build-sanitize/).
MAKE_TOUR = ["make", "-s", "-C", str(harness.REPO), "tour", f"BUILD={harness.BIN.parent}"]


def end(proc: subprocess.Popen, others: tuple[int, ...] = ()) -> None:
    """Stop a tour that is still running as Ctrl-C would (it stops its
    servers), then by force; collect any server it left behind (any other
    child of this process but the `others`, tours still running)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    harness.reap_group(proc.pid)
    for orphan in harness.children_of(os.getpid()):  # Each server has a process group of its own.
        if orphan.pid not in others:
            harness.reap_group(orphan.pid)


def run_together(commands: list[list[str]], timeout: float) -> list[harness.Result]:
    """Start every command at once; wait for all of them (bounded)."""
    started = time.monotonic()
    procs = [harness.run_in_background(argv) for argv in commands]
    results = []
    others = tuple(proc.pid for proc in procs)
    for argv, proc in zip(commands, procs):
        try:
            stdout, stderr = proc.communicate(timeout=max(1.0, timeout - (time.monotonic() - started)))
            returncode = proc.returncode
        except subprocess.TimeoutExpired:
            end(proc, others)
            stdout, stderr = proc.communicate()
            returncode = None
        end(proc, others)
        results.append(harness.Result(argv, returncode, stdout.decode("utf-8", "backslashreplace"),
                                      stderr.decode("utf-8", "backslashreplace"), time.monotonic() - started))
    return results


@pytest.fixture(scope="module")
def two_tours():
    """Two whole tours started together, as two people at one machine would:
    everything a lesson measures must be its own server's, or one of them
    fails (the process limit counted the other's processes, say)."""
    return run_together([MAKE_TOUR, MAKE_TOUR], timeout=240)


def test_two_tours_at_once_both_show_every_lesson_in_plain_text(two_tours):
    for result in two_tours:
        assert result.returncode == 0, missed_lessons(result) + result.stderr
        assert "\033[" not in result.stdout, "colour codes in a pipe"
        for evidence in ["Hello, World!", "<defunct>", "accept: Too many open files",
                         "fork: Resource temporarily unavailable", "accept: Interrupted system call",
                         "Every lesson showed as expected"]:
            assert evidence in result.stdout, evidence


def missed_lessons(result: harness.Result) -> str:
    """The sections of the lessons that did not show (their steps' whole output), else the output's end."""
    missed = sorted(set(re.findall(r"^  - (\w+): ", result.stdout, re.M)))
    if not missed:
        return result.stdout[-3000:]
    return "\n".join(section(result.stdout, step)[:6000] for step in missed) + "\n" + result.stdout[-500:]


def test_the_build_prints_one_line_before_the_first_lesson(two_tours):
    for result in two_tours:
        before = result.stdout[: result.stdout.index("The workshop tour")].splitlines()
        assert len(before) == 1 and re.fullmatch(r"Building .* \.\.\. done", before[0]), before


def test_a_failed_build_shows_its_errors_without_its_progress_lines(tmp_path):
    fake = tmp_path / "cmake"
    fake.write_text("#!/bin/sh\necho '[ 50%] Building CXX object x.o'\necho 'x.cpp:1:1: error: boom'\nexit 1\n")
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    result = subprocess.run(MAKE_TOUR, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "failed:" in result.stdout and "x.cpp:1:1: error: boom" in result.stdout, result.stdout
    assert "[ 50%]" not in result.stdout, "the build's progress lines were shown"
    assert "The workshop tour" not in result.stdout, "the tour ran after a failed build"


def test_d_runs_kill_9_on_a_zombie_and_ps_still_lists_it(two_tours):
    for result in two_tours:
        killed = re.search(r"^\$ kill -9 (\d+)$", result.stdout, re.M)
        assert killed, "no kill -9 on the zombie"
        after = result.stdout[killed.end():]
        assert re.search(rf"^\s+{killed.group(1)}\s+\d+\s+Z\s.*<defunct>$", after.split("$ ", 2)[1], re.M), \
            "the ps after kill -9 does not list the zombie"


def test_d_sets_the_process_limit_with_ulimit_u_and_shows_how_it_was_chosen(two_tours):
    for result in two_tours:
        chosen = re.findall(r"the limit: (\d+) processes now \+ a margin of (\d+) = ulimit -u (\d+)", result.stdout)
        assert chosen, "the tour does not show how the limit was chosen"
        count, margin, limit = (int(n) for n in chosen[-1])
        assert count + margin == limit
        assert f"ulimit -u {limit} && exec" in result.stdout, "the server was not started under ulimit -u"
        assert "prlimit" not in result.stdout


def section(text: str, step: str) -> str:
    """One step's section of the tour's output."""
    part = text[text.index(f"━━ Step {step}"):]
    return part[: part.find("━━ Step", 10)] if "━━ Step" in part[10:] else part


def strace_evidence(text: str, step: str) -> str:
    """The strace lines of one step's section of the tour."""
    return "\n".join(line.split("│ ", 1)[1] for line in section(text, step).splitlines()
                     if line.startswith("  strace│ "))


def ps_tables(text: str) -> list[list[tuple[int, int]]]:
    """Each `ps -o pid,ppid,stat,cmd` the text shows: its rows' PID and PPID."""
    tables = []
    for table in re.findall(r"^\$ ps -o pid,ppid,stat,cmd .*\n +PID +PPID STAT CMD\n((?: +\d+ +\d+ .*\n)*)",
                            text, re.M):
        tables.append([(int(pid), int(ppid)) for pid, ppid in re.findall(r"^ +(\d+) +(\d+) ", table, re.M)])
    return tables


needs_strace = pytest.mark.skipif(harness.strace_problem() is not None,
                                  reason=f"strace cannot trace here: {harness.strace_problem()}")


@needs_strace
def test_e_strace_shows_accept_interrupted_sigchld_delivered_and_the_exit(two_tours):
    for result in two_tours:
        trace = strace_evidence(result.stdout, "e")
        server = re.search(r"^(\d+) +<\.\.\. accept resumed>\) = \? ERESTARTSYS", trace, re.M)
        assert server, "no interrupted accept in step e's trace:\n" + trace
        pid = server.group(1)
        assert re.search(rf"^{pid} +--- SIGCHLD {{si_signo=SIGCHLD, si_code=CLD_EXITED", trace, re.M), trace
        assert re.search(rf"^{pid} +wait4\(", trace, re.M), trace
        assert re.search(rf"^{pid} +\+\+\+ exited with 1 \+\+\+$", trace, re.M), "the server's exit:\n" + trace


@needs_strace
def test_f_strace_shows_accept_restarted_and_fewer_sigchld_than_children(two_tours):
    for result in two_tours:
        trace = strace_evidence(result.stdout, "f").splitlines()
        # ... accept interrupted, SIGCHLD, the handler's wait4, accept again.
        assert any("ERESTARTSYS" in trace[i - 2] and " --- SIGCHLD " in trace[i - 1] and " wait4(" in trace[i]
                   and re.match(r"\d+ +accept\(", trace[i + 1]) for i in range(2, len(trace) - 1)), \
            "no interrupted accept() called again in step f's trace:\n" + "\n".join(trace)
        counts = re.search(r"\((\d+) children exited: 128 from the burst and (\d+) from curl; the server received "
                           r"(\d+) SIGCHLD; \d+ - \d+ = (\d+), the zombies ps shows: (\d+)\)", result.stdout)
        assert counts, "no count of SIGCHLD deliveries against children"
        exited, curls, deliveries, short, zombies = (int(n) for n in counts.groups())
        assert exited == 128 + curls
        assert deliveries < exited and short == exited - deliveries == zombies > 0


@pytest.mark.parametrize("step, lesson", [("e", "accept: Interrupted system call"),
                                          ("h", "(the main loop reported 129 of 129 children; 0 left")])
def test_without_ptrace_the_tour_says_so_in_one_line_and_shows_the_lesson(tmp_path, step, lesson):
    # A strace that cannot trace, as in a container that forbids ptrace.
    fake = tmp_path / "strace"
    fake.write_text("#!/bin/sh\necho 'strace: PTRACE_TRACEME: Operation not permitted' >&2\nexit 1\n")
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    result = subprocess.run([*TOUR, step], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr
    said = [line for line in result.stdout.splitlines() if "strace cannot trace here" in line]
    assert len(said) == 1 and "Operation not permitted" in said[0], result.stdout
    assert lesson in result.stdout and "strace│" not in result.stdout, result.stdout
    assert f"Step {step}" in result.stdout and "Step d" not in result.stdout, f"STEP={step} shows step {step} alone"


def test_h_shows_step_gs_logging_printing_a_line_twice(two_tours):
    for result in two_tours:
        text = section(result.stdout, "h")
        count = re.search(r"^\$ sort \S+/log\.txt \| uniq -d \| grep -c started\n +(\d+)$", text, re.M)
        assert count and int(count.group(1)) > 0, "no count of the lines printed twice:\n" + text[:3000]
        # grep -n -A1 -x LINE: each line that matches, numbered (N:), and the line after it (N-).
        shown = re.search(r"^\$ grep -n -A1 -x '(Child \d+ started)' \S+/log\.txt\n((?: +\d+[:-].*\n|  --\n)*)",
                          text, re.M)
        assert shown and len(re.findall(rf"^ +\d+:{shown.group(1)}$", shown.group(2), re.M)) == 2, \
            "no line shown printed twice:\n" + text[:3000]


@needs_strace
def test_h_when_no_burst_shows_it_strace_makes_the_moment_come(monkeypatch, capsys):
    # The lines printed twice come by themselves in most bursts, not in every
    # one (a CI run of two tours at once, under the sanitizers, saw none in ten).
    # Here no burst is tried, as if none had shown it: strace must bring it.
    import tour
    monkeypatch.setattr(tour.Tour, "BURSTS", 0)
    shown = tour.Tour()
    shown.step = "h"
    try:
        shown.step_h()
    finally:
        shown.stop_all()
    text = capsys.readouterr().out
    assert "strace makes it come" in text, text[:3000]
    count = re.search(r"^\$ sort \S+/log\.txt \| uniq -d \| grep -c started\n +(\d+)$", text, re.M)
    assert count and int(count.group(1)) > 0, "no line printed twice under strace:\n" + text[:3000]
    assert "in 1 burst of 128, with each write() held by strace; the server is alive" in text, text[:3000]
    assert shown.missed == [], f"lessons that did not show: {shown.missed}\n" + text[:3000]


@needs_strace
def test_h_strace_shows_the_handler_writing_one_byte_and_wait4_in_the_main_loop(two_tours):
    for result in two_tours:
        trace = [line.split(None, 1) for line in strace_evidence(result.stdout, "h").splitlines()]
        calls = [call for _, call in trace]
        signal_at = next((i for i, call in enumerate(calls) if call.startswith("--- SIGCHLD ")), None)
        assert signal_at is not None, "no SIGCHLD in step h's trace:\n" + "\n".join(calls)
        note = re.fullmatch(r'write\((\d+), "x", 1\) = 1', calls[signal_at + 1])
        assert note and note.group(1) != "1" and calls[signal_at + 2].startswith("rt_sigreturn("), \
            "the handler's run is not one one-byte write() and its return:\n" + "\n".join(calls[signal_at:])
        after = calls[signal_at + 3:]
        reaped = next((i for i, call in enumerate(after) if re.match(r"wait4\(-1, .*\) = [1-9]", call)), None)
        assert reaped is not None and any(call.startswith("poll(") and "revents=POLLIN" in call
                                          for call in after[:reaped]), \
            "no wait4() in the main loop after poll():\n" + "\n".join(after)
        burst = re.search(r"\(in the trace: (\d+) runs of the handler, each one write\(\) of one byte into "
                          r"descriptor (\d+) and nothing else; (\d+) children collected by wait4\(\) in the main "
                          r"loop\)", result.stdout)
        assert burst and int(burst.group(1)) > 0 and burst.group(2) == note.group(1) and burst.group(3) == "129", \
            "no count of the burst's handler runs and wait4() calls"


def test_i_shows_five_processes_through_a_burst_a_killed_worker_replaced_and_silent_clients(two_tours):
    for result in two_tours:
        text = section(result.stdout, "i")
        tables = ps_tables(text)
        assert len(tables) == 3, text[:3000]
        before, after, replaced = tables
        server = before[0][0]
        assert len(before) == 5 and all(ppid == server for _, ppid in before[1:]), "not the server and 4 workers"
        assert after == before, "ps after the burst differs from ps before it"
        answered = re.search(r"\(requests answered, by worker: (.*?); ", text)
        assert answered and {int(p) for p in re.findall(r"\d+ by (\d+)", answered.group(1))} <= \
            {pid for pid, _ in before[1:]}, "requests answered by processes that are not the workers"
        victim = re.search(r"^\$ kill -9 (\d+)$", text, re.M)
        assert victim and f"Child {victim.group(1)} terminated with status 9" in text
        workers = {pid for pid, _ in replaced[1:]}
        assert len(replaced) == 5 and int(victim.group(1)) not in workers and \
            len(workers - {pid for pid, _ in before}) == 1, "the killed worker was not replaced by one new one"
        limit = text[text.index("clients that send nothing"):]
        assert re.search(r"^\$ curl --max-time 2 .*\n +curl: \(28\) ", limit, re.M), "the curl did not time out"
        assert re.search(r"^\$ kill \d+   # one silent client leaves\n +Hello, World!$", limit, re.M), \
            "the waiting curl was not answered once a silent client left"


def test_j_shows_the_descriptors_of_hundreds_of_silent_clients_and_one_process(two_tours):
    for result in two_tours:
        text = section(result.stdout, "j")
        counts = [int(n) for n in re.findall(r"^\$ ls /proc/\d+/fd \| wc -l\n +(\d+)$", text, re.M)]
        clients = re.search(r"# (\d+) clients that send nothing", text)
        assert clients and int(clients.group(1)) >= 200, "not hundreds of silent clients"
        base = counts[0] if counts else 0
        assert counts == [base, base + int(clients.group(1)), base, base], \
            f"descriptors before, during, after the silent clients, and after the burst: {counts}"
        answered = re.search(r"^\$ curl --max-time 2 .*\n(?:  server.*\n)* +Hello, World!\n +\(curl took (\d+\.\d) s, "
                             r"exit status 0\)$", text, re.M)
        assert answered and float(answered.group(1)) < 2, "the curl beside the silent clients was not answered"
        tables = ps_tables(text)
        assert len(tables) == 2 and all(len(table) == 1 for table in tables), "step j's server has children"
        server = tables[0][0][0]
        assert re.search(rf"\(requests answered since the start: 129, by PID {server}; children seen during the "
                         rf"burst, sampled every 5 ms: 0\)", text), "the burst was not answered by the server alone"


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


def test_pause_at_end_of_input_goes_on_and_no_pause_never_waits():
    # make tour PAUSE=1 with no terminal (input at its end): it goes on.
    paused = subprocess.run([*MAKE_TOUR, "PAUSE=1", "STEP=a"], stdin=subprocess.DEVNULL, capture_output=True,
                            text=True, timeout=60)
    assert paused.returncode == 0, paused.stdout + paused.stderr
    assert "Press Enter for step a" in paused.stdout and "no more input" in paused.stdout
    # Without PAUSE, input that never comes (stdin open, nothing written) is never waited for.
    quick = subprocess.Popen(TOUR + ["a"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             process_group=0)
    out = harness.Stream(quick.stdout)
    err = harness.Stream(quick.stderr)
    try:
        assert quick.wait(30) == 0, out.text() + err.text()
    except subprocess.TimeoutExpired:
        raise AssertionError("the tour waited for input without PAUSE") from None
    finally:
        end(quick)
        quick.stdin.close()
        out.join()
        err.join()
        quick.stdout.close()
        quick.stderr.close()
    assert "Press Enter" not in out.text()


def test_on_a_terminal_the_evidence_is_bold_never_dim_and_the_explanations_plain():
    main, terminal = pty.openpty()
    env = {key: value for key, value in os.environ.items() if key != "NO_COLOR"}
    tour = subprocess.Popen([*TOUR, "a"], stdin=subprocess.DEVNULL, stdout=terminal, stderr=subprocess.PIPE,
                            process_group=0, env={**env, "TERM": "xterm"})
    os.close(terminal)
    screen = b""
    try:
        # Read until the tour closes the terminal: a pause in its output (a slow start of the server
        # on a busy machine) is not its end.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if not select.select([main], [], [], 1)[0]:
                if tour.poll() is not None:
                    break
                continue
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
