"""make bench's instruments, not its figures: what bench/bench.py counts for
a server's process group is what that group did. Nothing here is timed: the
figures themselves belong to the benchmark (speed is never a test's verdict)."""

import ctypes
import errno
import os
import platform
import signal
import subprocess
import struct
import sys
import time

import harness

sys.path.insert(0, str(harness.REPO / "bench"))

import bench  # noqa: E402

REQUESTS = 20
BURN = 0.5  # Seconds of CPU time that each child of the synthetic group spends.


def perf_allowed() -> bool:
    """Whether the kernel lets this process open a perf event on itself here,
    asked with the simplest event there is (a task clock, user space only), not
    with the fork counter's: an ordinary user needs perf_event_paranoid at most 2
    (Linux's default; Debian's own kernels set 3), and a container's seccomp
    filter may refuse perf_event_open() even to root (podman's and docker's
    default profiles do, without CAP_PERFMON)."""
    attr = struct.pack("<IIQQQQQIIQ", 1, 64, 1, 0, 0, 0, 1 << 5 | 1 << 6, 0, 0, 0)  # SOFTWARE, TASK_CLOCK
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    fd = libc.syscall(ctypes.c_long(bench.ForkCounter.SYSCALL[platform.machine()]), ctypes.c_char_p(attr),
                      ctypes.c_long(0), ctypes.c_long(-1), ctypes.c_long(-1), ctypes.c_long(0))
    if fd >= 0:
        os.close(fd)
        return True
    code = ctypes.get_errno()
    assert code in (errno.EACCES, errno.EPERM, errno.ENOSYS), f"the perf probe itself is wrong: {os.strerror(code)}"
    return False


def get(server, count):
    for _ in range(count):
        data, closed = harness.http_get(server.port, timeout=10)
        assert closed and data.endswith(harness.BODY), f"{server.step} did not answer: {data!r}"


def others_fork(count):
    """Processes created outside the server's group meanwhile, as a busy machine has."""
    for _ in range(count):
        subprocess.run(["true"], check=True)


def test_the_fork_counter_counts_the_processes_that_the_server_creates_and_no_others(start):
    g = start("g")
    counter = bench.fork_counter(g.pid, 1000)
    try:
        if not perf_allowed():
            assert isinstance(counter, bench.MachineForkCounter)
            bench.settle(g)
            counter.take()
            get(g, REQUESTS)
            others_fork(5)
            bench.settle(g)
            assert counter.take() >= REQUESTS + 5, "the machine-wide count missed forks"
            return
        assert isinstance(counter, bench.ForkCounter), "perf_event_open() is allowed here, yet refused"
        bench.settle(g)
        counter.take()
        get(g, REQUESTS)
        others_fork(5)
        bench.settle(g)
        created = counter.take()
        assert created == REQUESTS, (
            f"{created} processes counted for {REQUESTS} requests to step g (a child each): more means other"
            " programs' forks or threads were counted, fewer that records were missed or misread")
        assert counter.take() == 0, "records counted twice (data_tail not advanced)"
    finally:
        counter.close()


def test_the_fork_counter_counts_no_process_for_a_pools_requests_and_one_for_a_replaced_worker(start):
    if not perf_allowed():
        return  # The machine-wide fallback is checked above; it cannot tell a group's forks.
    pool = start("i", "--workers", "2")
    counter = bench.fork_counter(pool.pid, 1000)
    try:
        bench.settle(pool)
        counter.take()
        get(pool, REQUESTS)
        others_fork(5)
        bench.settle(pool)
        assert counter.take() == 0, "a pool's requests create no process: the count includes other programs'"
        victim = pool.children()[0].pid
        os.kill(victim, signal.SIGKILL)
        assert pool.out.wait_for(rf"^Child {victim} terminated", timeout=10), "the killed worker was not reported"
        bench.settle(pool)
        assert len(pool.children()) == 2, "the killed worker was not replaced"
        assert counter.take() == 1, "the replacement worker is the one process the pool created"
    finally:
        counter.close()


# A group like a pool's: its leader forks a child that spends BURN seconds of
# CPU and exits, and reaps it (its time goes to the leader's cutime and cstime);
# then a child that spends as much and lives on, never reaped, as a worker does.
GROUP = f"""
import os, time

def burn():
    while time.process_time() < {BURN}:
        pass

child = os.fork()
if child == 0:
    burn()
    os._exit(0)
os.waitpid(child, 0)
done, told = os.pipe()
if os.fork() == 0:
    burn()
    os.write(told, b"x")
    time.sleep(60)
    os._exit(0)
os.read(done, 1)
print("ready", flush=True)
time.sleep(60)
"""


def test_a_groups_cpu_time_counts_its_live_children_and_its_reaped_ones_once():
    leader = subprocess.Popen(["/usr/bin/python3", "-c", GROUP], stdout=subprocess.PIPE, process_group=0)
    try:
        assert leader.stdout.readline() == b"ready\n", "the synthetic group did not start"
        deadline = time.monotonic() + 10
        while True:
            members = bench.group(leader.pid)
            if len(members) == 2 and all(m.state == "S" for m in members.values()):
                break
            assert time.monotonic() < deadline, f"the group never settled: {members}"
            time.sleep(0.02)
        seconds = bench.counters(members, leader.pid).cpu_seconds
        # The leader itself spends a little starting Python; each child BURN.
        assert seconds >= 2 * BURN * 0.9, (
            f"{seconds:.2f} s for two children of {BURN} s each: the live child (its own utime and stime)"
            " or the reaped one (its reaper's cutime and cstime) was left out")
        assert seconds <= 2 * BURN + 0.4, f"{seconds:.2f} s for two children of {BURN} s each: counted twice"
    finally:
        os.killpg(leader.pid, signal.SIGKILL)
        leader.wait()
        harness.reap_group(leader.pid)
        leader.stdout.close()
