"""The harness itself: what a test leaves behind is killed and collected."""

import os
import subprocess
import time

import harness


def alive(pid):
    """Is pid still a process (a zombie counts)?"""
    return os.path.exists(f"/proc/{pid}")


def test_leftovers_are_killed_and_collected_with_their_groups_and_orphans():
    # A server-like leader with a child in its group, a plain child, and an
    # orphan (its shell exits at once), handed to this process, the subreaper.
    leader = subprocess.Popen(["sh", "-c", "sleep 60 & exec sleep 60"], process_group=0)
    plain = subprocess.Popen(["sleep", "60"])
    orphan_parent = subprocess.Popen(["sh", "-c", "sleep 60 & echo $!"], stdout=subprocess.PIPE, process_group=0)
    orphan = int(orphan_parent.stdout.readline())
    orphan_parent.stdout.close()
    deadline = time.monotonic() + 5
    while orphan not in {p.pid for p in harness.children_of(os.getpid())} and time.monotonic() < deadline:
        time.sleep(0.01)  # The shell has exited; its child is handed to us.

    found = {p.pid for p in harness.kill_and_reap_children()}

    assert {leader.pid, plain.pid, orphan} <= found
    assert harness.children_of(os.getpid()) == []
    for pid in (leader.pid, plain.pid, orphan):
        assert not alive(pid), f"{pid} is still there"
    for proc in (leader, plain, orphan_parent):
        proc.returncode = -9  # Collected already; keep Popen from waiting again.
