"""The room (issue 21): participants' checks report their verdicts to the
instructor's page (tools/room.py, tools/room_client.py, make room / join / leave).

Every room here is a real `tools/room.py` on port 0 in its own process group,
with its state file in the test's temporary folder; every participant is a
checkout of its own (a temporary folder with the join file `make join`
writes). The browser tests drive Debian's headless Chromium through Selenium.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

import harness
import steps

TOOLS = harness.REPO / "tools"
sys.path.insert(0, str(TOOLS))

import room as room_server  # noqa: E402
import room_client  # noqa: E402

# send_verdict's budget is half a second (room_client.BUDGET; its own deadline
# is a tenth less). A wall time measured here also holds the time a busy
# machine takes to run the client's thread, and this one, once the deadline has
# passed (0.55 s seen beside three other suites and two busy loops): twice the
# budget is allowed. A client without a deadline of its own waits for a socket
# timeout (seconds), and one that gives each verdict a budget of its own takes
# half a second per verdict: both are far over it.
WITHIN = 2 * room_client.BUDGET


def over_budget(seconds: float) -> str:
    return (f"send_verdict took {seconds:.2f} s, over twice its budget of {room_client.BUDGET} s: does the client "
            "still stop waiting at its own deadline, one for the whole call?")

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


# ---------------------------------------------------------------------------
# A room, and its participants' checkouts.


class Room:
    """tools/room.py on port 0 (or the port given), in its own process group, its state in `state`."""

    def __init__(self, state: Path, *options: str, port: int = 0):
        self.state, self.options, self.port = state, options, port
        self.proc = None

    def start(self) -> "Room":
        self.proc = subprocess.Popen(
            [sys.executable, str(TOOLS / "room.py"), "--port", str(self.port), "--host", "127.0.0.1",
             "--state", str(self.state), *self.options],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, process_group=0)
        self.output = harness.Stream(self.proc.stdout)
        join = self.output.wait_for(r"ROOM=(http://localhost:(\d+)/([A-Za-z0-9_-]+)) ", timeout=20)
        assert join, f"the room did not print its join line within 20 s: {self.output.text()!r}"
        self.url, self.port, self.code = join[1], int(join[2]), join[3]
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        os.killpg(self.proc.pid, sig)
        self.proc.wait(timeout=10)
        harness.reap_group(self.proc.pid)
        self.output.join()

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
                timeout: float = 10) -> tuple[int, dict, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body, headers or {})
            answer = connection.getresponse()
            return answer.status, dict(answer.getheaders()), answer.read()
        finally:
            connection.close()

    def state_json(self, path: str = "/state.json") -> dict:
        status, _, body = self.request("GET", path)
        assert status == 200, f"GET {path} answered {status}: {body!r}"
        return json.loads(body)

    def post(self, verdict, code: str | None = None, raw: bytes | None = None) -> tuple[int, dict]:
        body = raw if raw is not None else json.dumps(verdict).encode()
        status, headers, text = self.request("POST", f"/{self.code if code is None else code}/verdict", body,
                                             {"Content-Type": "application/json"})
        return status, {"headers": headers, "body": json.loads(text) if text else None}


@pytest.fixture
def rooms(tmp_path):
    """rooms(*options, state=None, port=0) starts a room, its state in
    tmp_path/.room/state.json unless given; every one is killed after the test."""
    started = []

    def _start(*options: str, state: Path | None = None, port: int = 0) -> Room:
        room = Room(state or tmp_path / ".room" / "state.json", *options, port=port).start()
        started.append(room)
        return room

    yield _start
    for room in started:
        if room.proc.poll() is None:
            room.kill()


def checkout(parent: Path, name: str, room: Room, join: bool = True) -> Path:
    """A participant's checkout: a folder with the tools; joined to `room` as
    `make join` does (the real join, which asks the room)."""
    folder = parent / f"checkout-{len(list(parent.glob('checkout-*')))}"
    (folder / "tools").mkdir(parents=True)
    for file in ("room.py", "room_client.py"):
        shutil.copy(TOOLS / file, folder / "tools" / file)
    if join:
        assert room_client.cmd_join(room.url, name, checkout=folder) == 0
    return folder


def verdict_of(room: Room, folder: Path, step: str) -> dict | None:
    """What the room shows for this checkout's participant at `step` (None: not
    started). For a test that runs a real `make check` in the checkout."""
    name = json.loads((folder / room_client.JOIN_FILE).read_text())["name"]
    for participant in room.state_json()["participants"]:
        if participant["name"] == name:
            return participant["steps"].get(step)
    return None


def send(folder: Path, step: str, passed: bool, checks: tuple[int, int], failing: str | None = None,
         hints: int = 0) -> str | None:
    """A verdict from this checkout, as `make check` sends it."""
    return room_client.send_verdict(step, passed, checks, failing, hints, checkout=folder)


def verdict(name="ada", step="c", passed=False, checks=(3, 7), failing="child_pids", hints=0, **changes) -> dict:
    body = {"name": name, "step": step, "passed": passed, "checks": list(checks), "failing": failing, "hints": hints}
    body.update(changes)
    return body


# ---------------------------------------------------------------------------
# What the room stores and shows.


def test_state_json_holds_each_participants_verdicts(rooms, tmp_path):
    room = rooms()
    ada, grace = checkout(tmp_path, "ada", room), checkout(tmp_path, "grace", room)
    before = datetime.now().astimezone()
    # Step a passed, then step c failing, as make check would send them.
    assert send(ada, "a", True, (3, 3)) is None
    assert send(ada, "c", False, (3, 7), "child_pids", hints=2) is None
    assert send(grace, "a", False, (1, 3), "answers", hints=1) is None
    assert send(grace, "a", True, (3, 3)) is None  # The latest verdict replaces the first.
    state = room.state_json()

    names = [participant["name"] for participant in state["participants"]]
    assert names == ["ada", "grace"], "one entry per participant, in order of their names"
    ada_steps = state["participants"][0]["steps"]
    assert set(ada_steps) == {"a", "c"}, "a step never checked is absent (not started)"
    assert {key: ada_steps["c"][key] for key in ("passed", "checks", "failing", "hints")} == \
        {"passed": False, "checks": [3, 7], "failing": "child_pids", "hints": 2}
    assert {key: ada_steps["a"][key] for key in ("passed", "checks", "failing", "hints")} == \
        {"passed": True, "checks": [3, 3], "failing": None, "hints": 0}
    grace_a = state["participants"][1]["steps"]["a"]
    assert grace_a["passed"] is True and grace_a["checks"] == [3, 3] and grace_a["failing"] is None
    for step in (ada_steps["a"], ada_steps["c"], grace_a):
        at = datetime.fromisoformat(step["at"])
        assert before - timedelta(seconds=2) <= at <= datetime.now().astimezone() + timedelta(seconds=2), \
            f"'at' is the time the verdict arrived, with its zone: {step['at']}"
    assert state["steps"] == room_server.steps() == list(steps.LETTERS)
    assert state["passed"]["a"] == 2 and state["passed"]["c"] == 0
    assert state["common"][0] == {"step": "c", "failing": "child_pids", "count": 1, "names": ["ada"]}
    assert verdict_of(room, ada, "c")["failing"] == "child_pids" and verdict_of(room, grace, "b") is None
    # The room's terminal shows each verdict as it arrives.
    assert room.output.wait_for(r"ada +step c +✗ 3/7 +child_pids", timeout=5)


def test_every_step_at_once_as_make_progress_sends_them(rooms, tmp_path, joined_to):
    room = rooms()
    ada = checkout(tmp_path, "ada", room)
    steps = room_server.steps()
    report = [(step, True, (3, 3), None, 0) for step in steps[:-1]] + [(steps[-1], False, (1, 3), "no_zombies", 2)]
    started = time.monotonic()
    assert room_client.send_verdicts(report, checkout=ada) is None
    seconds = time.monotonic() - started
    assert seconds < WITHIN, over_budget(seconds)
    shown = next(p for p in room.state_json()["participants"] if p["name"] == "ada")
    assert {step: verdict["passed"] for step, verdict in shown["steps"].items()} == \
        {step: step != steps[-1] for step in steps}
    assert shown["current"] == steps[-1], "the participant's current step is the last one sent"
    for step in steps:
        assert room.output.wait_for(rf"ada +step {step} ", timeout=5), f"step {step}'s line is not on the terminal"
    # A room that never answers costs half a second for all of them, not each.
    with socket.socket() as deaf:
        deaf.bind(("127.0.0.1", 0))
        deaf.listen(8)
        started = time.monotonic()
        note = room_client.send_verdicts(report, checkout=joined_to(f"127.0.0.1:{deaf.getsockname()[1]}"))
        seconds = time.monotonic() - started
        assert seconds < WITHIN, over_budget(seconds)
        assert note and "\n" not in note, note


def test_a_room_killed_and_started_again_has_lost_nothing(rooms, tmp_path):
    room = rooms()
    ada = checkout(tmp_path, "ada", room)
    assert send(ada, "b", False, (2, 3), "second_waits", hints=1) is None
    before = room.state_json()["participants"]
    room.kill(signal.SIGKILL)  # No chance to save anything on the way out.

    again = rooms(port=room.port)  # As make room does: the same port, the same state file.
    assert again.code == room.code, "the restarted room has a new code: every participant's join is lost"
    assert again.state_json()["participants"] == before
    # The participant's join still works, and the room goes on from where it was.
    assert send(ada, "b", True, (3, 3)) is None
    assert verdict_of(again, ada, "b")["passed"] is True
    again.kill(signal.SIGTERM)  # Ctrl-C's way out, too, keeps it.
    assert again.output.wait_for(r"The room is closed", timeout=5), again.output.text()
    third = rooms(port=room.port)
    assert third.code == room.code and verdict_of(third, ada, "b")["checks"] == [3, 3]


def test_the_code_is_long_random_and_secret(rooms, tmp_path):
    first = rooms(state=tmp_path / "one" / "state.json")
    second = rooms(state=tmp_path / "two" / "state.json")
    assert first.code != second.code, "two new rooms got the same code"
    for code in (first.code, second.code):
        assert len(code) >= 11, f"{code!r}: fewer than 64 bits in base64url"
    for path in ("/", "/state.json", "/room.js", "/room.css"):
        status, _, body = first.request("GET", path)
        assert status == 200 and first.code.encode() not in body, f"GET {path} (no code needed) shows the code"
    assert oct(os.stat(first.state).st_mode & 0o777) == "0o600", "the state file (with the code) is readable by all"


REFUSED = [
    # (what is wrong, path's code, body, expected status)
    ("no code", "", verdict(), 403),
    ("a wrong code", "wrong-code-wrong-code", verdict(), 403),
    ("the code with one character changed", "CHANGED", verdict(), 403),
    ("the code's first half", "HALF", verdict(), 403),
    ("the code and more", "LONGER", verdict(), 403),
    ("over 4 KB", None, json.dumps(verdict()).encode() + b" " * 4097, 413),
    ("malformed JSON", None, b'{"name": "ada", "step": "c",', 400),
    ("not UTF-8", None, b'{"name": "\xff"}', 400),
    ("a list of numbers, not verdicts", None, b"[1, 2]", 400),
    ("an empty list", None, [], 400),
    ("a list with one bad verdict among good ones", None, [verdict(step="a"), verdict(step="z")], 400),
    ("a list of two participants' verdicts", None, [verdict(step="a"), verdict(name="grace", step="b")], 400),
    ("a list with a step twice", None, [verdict(step="a"), verdict(step="a", checks=(4, 7))], 400),
    ("a list of more verdicts than steps", None, [verdict(step="a")] * (len(room_server.steps()) + 1), 400),
    ("a list over 4 KB a verdict", None, json.dumps([verdict(step="a")]).encode() + b" " * 4097, 413),
    ("an unknown step", None, verdict(step="z"), 400),
    ("a step letter in upper case", None, verdict(step="C"), 400),
    ("an empty name", None, verdict(name=""), 400),
    ("a name of 33 characters", None, verdict(name="x" * 33), 400),
    ("a name with a tab", None, verdict(name="ada\tlovelace"), 400),
    ("a name with an escape sequence", None, verdict(name="\x1b[2Jada"), 400),
    ("a name with a newline", None, verdict(name="ada\n"), 400),
    ("a name with a zero-width space (not printable)", None, verdict(name="ada\u200b"), 400),
    ("a name with a right-to-left override", None, verdict(name="\u202eada"), 400),
    ("a name of spaces", None, verdict(name="   "), 400),
    ("a name that is not a string", None, verdict(name=7), 400),
    ("a field more (the participant's code)", None, verdict(source="int main() {}"), 400),
    ("a field more (an environment)", None, verdict(env={"HOME": "/home/ada"}), 400),
    ("a field missing", None, {k: v for k, v in verdict().items() if k != "hints"}, 400),
    ("passed with a failing check", None, verdict(passed=True, checks=(7, 7)), 400),
    ("passed with checks failing", None, verdict(passed=True, failing=None), 400),
    ("more checks passed than exist", None, verdict(checks=(8, 7)), 400),
    ("checks as a string", None, verdict(checks="3/7"), 400),
    ("hints as true", None, verdict(hints=True), 400),
    ("negative hints", None, verdict(hints=-1), 400),
    ("a check's name with a control character", None, verdict(failing="child\x07pids"), 400),
    ("a check's name of 121 characters", None, verdict(failing="x" * 121), 400),
]


def test_every_bad_input_is_answered_and_nothing_stored(rooms, tmp_path):
    room = rooms()
    assert room.post(verdict(name="x" * 32))[0] == 200, "a name of 32 characters is refused"
    assert room.post(verdict(name="Zoë O'Brien <b>"))[0] == 200, "a name of printable characters is refused"
    stored_file, stored_state = room.state.read_bytes(), room.state_json()["participants"]
    problems = []
    for what, code, body, expected in REFUSED:
        if code == "CHANGED":
            code = room.code[:-1] + ("A" if room.code[-1] != "A" else "B")
        elif code == "HALF":
            code = room.code[:len(room.code) // 2]
        elif code == "LONGER":
            code = room.code + "A"
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        status, answer = room.post(None, code=code, raw=raw)
        if status != expected:
            problems.append(f"{what}: {status} (expected {expected}) {answer['body']}")
        elif not (isinstance(answer["body"], dict) and answer["body"].get("error")):
            problems.append(f"{what}: {status} without a reason in the answer")
    assert not problems, "\n".join(problems)
    # GET, not POST, and a verdict sent to a page's address: nothing stored either.
    for method, path in (("GET", f"/{room.code}/verdict"), ("POST", "/state.json"), ("POST", "/")):
        status, _, _ = room.request(method, path, json.dumps(verdict()).encode() if method == "POST" else None)
        assert status in (403, 404, 405, 501), f"{method} {path}: {status}"
    assert room.state.read_bytes() == stored_file, "a refused request changed the state file"
    assert room.state_json()["participants"] == stored_state, "a refused request changed the room's state"
    # Each refusal shows on the room's terminal, control characters escaped.
    assert room.output.wait_for(r"refused \(403\)", timeout=5)
    assert "\x1b" not in room.output.text(), "a name's escape sequence reached the instructor's terminal"


def test_a_body_that_never_comes_does_not_hold_the_room(rooms):
    room = rooms()
    with socket.create_connection(("127.0.0.1", room.port), timeout=5) as silent:
        silent.sendall(f"POST /{room.code}/verdict HTTP/1.1\r\nContent-Length: 100\r\n\r\n".encode())
        started = time.monotonic()
        assert room.post(verdict(name="grace"))[0] == 200
        assert time.monotonic() - started < 3, "one slow client held every other"


def wait_for_verdict(room: Room, name: str, step: str, checks: list[int], timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        shown = next((p["steps"].get(step) for p in room.state_json()["participants"] if p["name"] == name), None)
        if (shown and shown["checks"] == checks) or time.monotonic() > deadline:
            assert shown and shown["checks"] == checks, f"{name}'s step {step} shows {shown}, not checks {checks}"
            return shown
        time.sleep(0.1)


def test_a_participant_sending_too_fast_is_slowed_not_the_room(rooms, tmp_path):
    room = rooms()
    # A loop sending verdicts as fast as it can: beyond a burst, each is held
    # (202) and only the latest of the step is stored, when its turn comes.
    # How many go at once depends on how fast the loop sends (a busy machine
    # sends fewer a second, and more of them fit the rate): so the loop goes on
    # until 20 are held, and the bound for what went at once is its own time's.
    started, statuses = time.monotonic(), []
    while statuses.count(202) < 20 and len(statuses) < 200:
        statuses.append(room.post(verdict(name="loop", checks=(len(statuses) % 7, 7)))[0])
    sent = time.monotonic() - started
    at_once = room_server.BURST + room_server.RATE * sent + 1
    assert set(statuses) == {200, 202} and statuses.count(202) >= 20 and statuses.count(200) <= at_once, \
        (f"{len(statuses)} verdicts sent in {sent:.1f} s ({len(statuses) / sent:.0f} a second; the room's rate is "
         f"{room_server.RATE:g}, after a burst of {room_server.BURST}): {statuses.count(200)} answered 200 (at most "
         f"{at_once:.0f}), {statuses.count(202)} held (202, 20 wanted): {statuses}")
    wait_for_verdict(room, "loop", "c", [(len(statuses) - 1) % 7, 7])  # The last one sent is the one shown.
    seconds = time.monotonic() - started
    stored = len(room.output.matches(r"loop +step c"))
    allowed = room_server.BURST + room_server.RATE * seconds + 1
    assert stored <= allowed, \
        f"{stored} of {len(statuses)} verdicts stored in {seconds:.1f} s: not slowed (at most {allowed:.0f})"
    # A list, right after the loop: each of its verdicts counts; the ones over
    # the rate are held, and stored in their turn.
    status, answer = room.post([verdict(name="loop", step=step, checks=(2, 5)) for step in "efghi"])
    body = answer["body"]
    assert status == 202 and body["held"] >= 1 and body["stored"] + body["held"] == 5 and body["retry_after"] > 0, \
        f"a list of 5 right after 40 verdicts: {status} {body}"
    for step in "efghi":
        wait_for_verdict(room, "loop", step, [2, 5])

    # Meanwhile, everyone else is answered at once, on the same machine too.
    stop = threading.Event()

    def flood():
        while not stop.is_set():
            room.post(verdict(name="loop", step="d", checks=(1, 6), failing="zombies"))

    flooders = [threading.Thread(target=flood) for _ in range(3)]
    for thread in flooders:
        thread.start()
    try:
        ada = checkout(tmp_path, "ada", room)
        for i in range(3):
            started = time.monotonic()
            assert send(ada, "a", i == 2, (i + 1, 3), None if i == 2 else "escapes") is None
            seconds = time.monotonic() - started
            assert seconds < WITHIN, "beside a flood: " + over_budget(seconds)
        status, _, _ = room.request("GET", "/", timeout=5)
        assert status == 200
    finally:
        stop.set()
        for thread in flooders:
            thread.join(10)
    assert verdict_of(room, ada, "a")["passed"] is True

    # A make watch saving fast: every call returns at once and quietly, and
    # the room ends with its last verdict.
    grace = checkout(tmp_path, "grace", room)
    for i in range(24):
        started = time.monotonic()
        note = send(grace, "d", False, (i % 6, 6), "zombies")
        seconds = time.monotonic() - started
        assert seconds < WITHIN, over_budget(seconds)
        assert note is None, f"verdict {i}: {note}"
    wait_for_verdict(room, "grace", "d", [23 % 6, 6])


def test_a_held_verdicts_wait_is_never_told_as_zero():
    # A verdict held for the last microseconds before its participant's turn:
    # rounded to the hundredth, its wait must not read 0 ("not held").
    bucket = room_server.Bucket(room_server.BURST, room_server.RATE)
    bucket.tokens, bucket.time = 1 - 1e-3, time.monotonic()
    wait = bucket.wait()
    told = room_server.seconds_up(wait)
    assert 0 < wait < 0.001 and told == 0.01, f"a wait of {wait} s told as {told} s"
    assert room_server.seconds_up(0.25) == 0.25 and room_server.seconds_up(0.251) == 0.26


def test_a_list_is_stored_in_its_order_with_one_write(tmp_path, monkeypatch):
    """In-process: make progress's list is one write of the state file, and
    the participant's current step is the list's last even when the clock
    gives every verdict the same microsecond (a fast machine, or a coarse clock)."""
    room = room_server.Room(tmp_path / "state.json", ["a", "b", "c"])
    writes = []
    monkeypatch.setattr(room, "save", lambda participants: writes.append(participants))
    moment = room_server.now()
    monkeypatch.setattr(room_server, "now", lambda: moment)
    stored = room.add_all([verdict(step="c"), verdict(step="b", passed=True, checks=(3, 3), failing=None),
                           verdict(step="a", checks=(1, 2), failing="answers")])
    assert all(stored) and len(writes) == 1, f"{len(writes)} writes of the state file for one list"
    assert room.view(names=True)["participants"][0]["current"] == "a", \
        "the current step is not the list's last: each verdict's 'changed' must come after the one before"


def test_a_held_verdict_never_overwrites_a_newer_one(tmp_path):
    """In-process, the race the room must win: a participant's verdict A is
    held (too many a second); their next verdict B arrives after their turn has
    come and is stored at once; the room's release of A, already under way,
    must not store the older A over B."""
    room = room_server.Room(tmp_path / "state.json", ["a", "b"])
    older = verdict(name="ada", step="a", checks=(1, 3), failing="answers")
    newer = verdict(name="ada", step="a", passed=True, checks=(3, 3), failing=None)
    room.hold(older)
    assert room.add(newer) is not None
    assert room.add(older, held=True) is None, "a held verdict older than the stored one was stored"
    assert room.participants["ada"]["steps"]["a"]["passed"] is True and not room.held


def test_one_address_cannot_fill_the_room_with_names(rooms):
    room = rooms()
    answers = [(room.post(verdict(name=f"name {i}")), i) for i in range(room_server.NEW_NAMES_BURST + 10)]
    refused = [i for (status, _), i in answers if status == 429]
    assert refused, "a burst of new names from one address was not refused"
    status, answer = next(answer for answer, i in answers if i == refused[0])
    assert answer["body"]["retry_after"] > 0 and int(answer["headers"]["Retry-After"]) >= 1
    assert set(status for (status, _), _ in answers) == {200, 429}
    shown = {p["name"] for p in room.state_json()["participants"]}
    assert shown == {f"name {i}" for (status, _), i in answers if status == 200}, "a refused name was stored"
    # A name the room knows is not a new name: it is still taken.
    assert room.post(verdict(name="name 0", checks=(4, 7)))[0] == 200


# ---------------------------------------------------------------------------
# The participant's side: never slower than half a second, never an error.


@pytest.fixture
def joined_to(tmp_path):
    """joined_to(port): a checkout whose join file names a room at 127.0.0.1:port."""

    def _joined(host_port: str) -> Path:
        # An earlier test's verdict may still be on its way (its thread outlives send_verdict by up
        # to its deadline, longer on a busy machine), and this test's would then be refused for it.
        earlier = room_client._in_flight
        if earlier is not None:
            earlier.join(5)
            assert not earlier.is_alive(), "a verdict's thread still runs 5 s after its half second: no deadline?"
        folder = tmp_path / f"joined-{host_port.replace(':', '-')}"
        folder.mkdir()
        (folder / room_client.JOIN_FILE).write_text(json.dumps(
            {"room": f"http://{host_port}/abcdefghijklmnopqrstuv", "name": "ada"}))
        return folder

    return _joined


def timed_send(folder: Path) -> tuple[str | None, float]:
    """send_verdict's note and how long it took; on a thread, so that a
    send_verdict that blocks fails the test in 5 s rather than hanging it."""
    result = []

    def run():
        started = time.monotonic()
        note = send(folder, "c", False, (3, 7), "child_pids")
        result.append((note, time.monotonic() - started))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(5)
    assert result, "send_verdict did not return within 5 s"
    return result[0]


def test_a_room_that_accepts_but_never_answers_costs_half_a_second(joined_to):
    # Listening, with a backlog: the kernel completes the handshake, nobody reads.
    with socket.socket() as deaf:
        deaf.bind(("127.0.0.1", 0))
        deaf.listen(8)
        folder = joined_to(f"127.0.0.1:{deaf.getsockname()[1]}")
        for _ in range(2):  # And again while the first is still waiting on its thread.
            note, seconds = timed_send(folder)
            assert seconds < WITHIN, over_budget(seconds)
            assert note and "\n" not in note and note.startswith("room:"), note


def test_a_room_that_reads_but_never_answers_costs_half_a_second(joined_to):
    with socket.socket() as mute:
        mute.bind(("127.0.0.1", 0))
        mute.listen(8)
        folder = joined_to(f"127.0.0.1:{mute.getsockname()[1]}")

        def read_forever():
            connection, _ = mute.accept()
            with connection:
                connection.settimeout(3)
                try:
                    while connection.recv(4096):
                        pass
                except OSError:
                    pass

        reader = threading.Thread(target=read_forever, daemon=True)
        reader.start()
        note, seconds = timed_send(folder)
        assert seconds < WITHIN, over_budget(seconds)
        assert note and note.startswith("room:"), note
        reader.join(5)


def test_an_unreachable_room_is_one_line_of_note(joined_to):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # Bound, never listening: connect() is refused.
        folder = joined_to(f"127.0.0.1:{closed.getsockname()[1]}")
        note, seconds = timed_send(folder)
    assert seconds < WITHIN, over_budget(seconds)
    assert note and "\n" not in note and "does not answer" in note, note
    # An address nothing answers from at all (no reset, no answer: the SYN is
    # dropped or goes nowhere), and a name that does not resolve.
    for host in ("10.255.255.1:8800", "room.invalid:8800"):
        note, seconds = timed_send(joined_to(host))
        assert seconds < WITHIN, f"{host}: " + over_budget(seconds)
        assert note and "\n" not in note, (host, note)


def test_no_room_joined_sends_nothing_and_says_nothing(tmp_path):
    assert send(tmp_path, "a", True, (3, 3)) is None
    (tmp_path / room_client.JOIN_FILE).write_text("not json")
    note = send(tmp_path, "a", True, (3, 3))
    assert note and note.startswith("room:") and "\n" not in note, note


def test_only_the_verdict_is_sent(tmp_path):
    """What goes over the wire is the verdict's fields and the name: nothing
    of the participant's code, paths or environment. Several verdicts (make
    progress) go as one list in one request."""
    received = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        folder = tmp_path / "checkout"
        folder.mkdir()
        (folder / room_client.JOIN_FILE).write_text(json.dumps(
            {"room": f"http://127.0.0.1:{listener.getsockname()[1]}/abcdefghijklmnopqrstuv", "name": "ada"}))

        stop = threading.Event()

        def answer():
            """Answer every request that comes, until the sending is over."""
            listener.settimeout(0.05)
            while not stop.is_set():
                try:
                    connection, _ = listener.accept()
                except TimeoutError:
                    continue
                with connection:
                    connection.settimeout(5)
                    data = b""
                    while b"\r\n\r\n" not in data:
                        data += connection.recv(4096)
                    head, body = data.split(b"\r\n\r\n", 1)
                    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                                      if line.lower().startswith(b"content-length")))
                    while len(body) < length:
                        body += connection.recv(4096)
                    received.append((head, body))
                    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")

        server = threading.Thread(target=answer)
        server.start()
        try:
            notes = [send(folder, "e", False, (2, 8), "eintr", hints=3),
                     room_client.send_verdicts([("a", True, (3, 3), None, 0), ("b", False, (1, 4), "waits", 1)],
                                               checkout=folder)]
            time.sleep(0.2)  # A request more, if one is on its way, arrives meanwhile.
        finally:
            stop.set()
            server.join(10)
    assert notes == [None, None], notes
    assert len(received) == 2, (f"{len(received)} requests for one verdict and then a list of two: make progress's "
                                "verdicts must go as one list in one request")
    head, body = received[0]
    assert json.loads(body) == {"name": "ada", "step": "e", "passed": False, "checks": [2, 8],
                                "failing": "eintr", "hints": 3}
    assert json.loads(received[1][1]) == [
        {"name": "ada", "step": "a", "passed": True, "checks": [3, 3], "failing": None, "hints": 0},
        {"name": "ada", "step": "b", "passed": False, "checks": [1, 4], "failing": "waits", "hints": 1}]
    for head, body in received:
        assert head.startswith(b"POST /abcdefghijklmnopqrstuv/verdict HTTP/1.1\r\n")
        for secret in (str(folder).encode(), os.environ.get("HOME", "/nonexistent").encode(), b"User-Agent: Mozilla"):
            assert secret not in head + body


def make_in(folder: Path, *args: str) -> harness.Result:
    return harness.run_bounded(["make", "-s", "-C", str(folder), *args], timeout=30)


def with_makefile(folder: Path) -> Path:
    """The checkout with the Makefile and what its join and leave recipes run
    first (the install step, and the script that finds Python)."""
    shutil.copy(harness.REPO / "Makefile", folder / "Makefile")
    for file in ("install-deps.sh", "python.sh"):
        shutil.copy(TOOLS / file, folder / "tools" / file)
    return folder


def test_make_join_and_make_leave(rooms, tmp_path):
    room = rooms()
    folder = with_makefile(checkout(tmp_path, "unused", room, join=False))
    join_file = folder / room_client.JOIN_FILE

    for room_url, name, says in [
        (f"http://localhost:{room.port}/", "ada", "the code after the port"),
        (room.url[:-1] + ("x" if room.url[-1] != "x" else "y"), "ada", "refused the code"),
        (room.url, "", "needs the room and your name"),
        (room.url, "x" * 33, "at most 32"),
        (f"http://localhost:{closed_port()}/{room.code}", "ada", "No room answers"),
    ]:
        result = make_in(folder, "join", f"ROOM={room_url}", f"NAME={name}")
        assert result.returncode != 0 and says in result.stdout + result.stderr, (room_url, name, result)
        assert len((result.stdout + result.stderr).strip().splitlines()) <= 2, result.stdout + result.stderr
        assert not join_file.exists(), "a join that failed left a join file"

    result = make_in(folder, "join", f"ROOM={room.url}", "NAME=Zoë O'Brien")
    assert result.returncode == 0 and "Joined the room" in result.stdout, result
    assert json.loads(join_file.read_text()) == {"room": room.url, "name": "Zoë O'Brien"}
    assert oct(join_file.stat().st_mode & 0o777) == "0o600"
    assert send(folder, "a", True, (3, 3)) is None
    assert verdict_of(room, folder, "a")["passed"] is True
    # Joining again with a name the room knows says so (two people, one row?).
    other = with_makefile(checkout(tmp_path, "unused", room, join=False))
    result = make_in(other, "join", f"ROOM={room.url}", "NAME=Zoë O'Brien")
    assert result.returncode == 0 and "already has a participant named" in result.stdout, result

    result = make_in(folder, "leave")
    assert result.returncode == 0 and "Left the room" in result.stdout and not join_file.exists()
    assert send(folder, "b", True, (3, 3)) is None
    shown = next(p for p in room.state_json()["participants"] if p["name"] == "Zoë O'Brien")
    assert "b" not in shown["steps"], "a checkout that left the room still sends its verdicts"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_join_file_is_ignored_by_git(tmp_path):
    # The repository's .gitignore, as git reads it, in a repository of its own
    # (a copy of the working tree, as the container check makes, has no .git).
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True, timeout=30)
    shutil.copy(harness.REPO / ".gitignore", tmp_path / ".gitignore")
    for path in (room_client.JOIN_FILE, ".room/state.json"):
        result = subprocess.run(["git", "-C", str(tmp_path), "check-ignore", "-q", path], timeout=30)
        assert result.returncode == 0, f"git does not ignore {path}: a participant could commit the room's code"


# ---------------------------------------------------------------------------
# Who to walk to, and what to explain to everyone.


def seed(state: Path, participants: dict[str, dict[str, tuple]], code: str = "seededroomcode-0123456789") -> None:
    """Write a room's state file before the room starts: {name: {step:
    (passed, (p, t), failing, hints, minutes since it started failing)}}. The
    participant's current step is the last one given."""
    moment = datetime.now().astimezone()
    rows = {}
    for n, (name, verdicts) in enumerate(participants.items(), start=1):
        rows[name] = {"n": n, "steps": {}}
        for order, (step, (passed, checks, failing, hints, minutes)) in enumerate(verdicts.items()):
            since = moment - timedelta(minutes=minutes)
            rows[name]["steps"][step] = {
                "passed": passed, "checks": list(checks), "failing": failing, "hints": hints,
                "at": since.isoformat(timespec="seconds"), "since": None if passed else since.isoformat(),
                "changed": (since + timedelta(microseconds=order)).isoformat(timespec="microseconds")}
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text(json.dumps({"code": code, "participants": rows}))


def test_stuck_participants_and_the_most_common_failing_check(rooms, tmp_path):
    state = tmp_path / "state.json"
    seed(state, {
        "ada": {"a": (True, (3, 3), None, 0, 40), "d": (False, (2, 6), "zombies", 2, 14)},
        "grace": {"d": (False, (3, 6), "zombies", 0, 3)},
        "linus": {"d": (False, (1, 6), "curl_hangs", 1, 25), "c": (False, (5, 7), "lines_once", 0, 12)},
        "ken": {"c": (False, (5, 7), "lines_once", 0, 30), "b": (True, (3, 3), None, 0, 1)},
    })
    room = rooms(state=state)
    before = room.state_json()
    stuck = {item["name"]: item for item in before["stuck"]}
    # ada: 14 min on zombies. linus: moved from d (25 min ago) to c, 12 min.
    # grace: 3 min only. ken: c failed 30 min ago, but he has moved on to b.
    assert set(stuck) == {"ada", "linus"}, before["stuck"]
    assert stuck["ada"]["step"] == "d" and stuck["ada"]["failing"] == "zombies" and stuck["ada"]["minutes"] == 14
    assert stuck["linus"]["step"] == "c" and stuck["linus"]["failing"] == "lines_once"
    assert before["common"][0] == {"step": "d", "failing": "zombies", "count": 2, "names": ["ada", "grace"]}

    # The same failing check again keeps ada stuck; another failing check, or a pass, frees her.
    ada = tmp_path / "ada"
    ada.mkdir()
    (ada / room_client.JOIN_FILE).write_text(json.dumps({"room": room.url, "name": "ada"}))
    assert send(ada, "d", False, (3, 6), "zombies", hints=3) is None
    assert "ada" in {item["name"] for item in room.state_json()["stuck"]}, "a new try of the same check freed her"
    assert send(ada, "d", False, (4, 6), "emfile", hints=3) is None
    after = room.state_json()
    assert "ada" not in {item["name"] for item in after["stuck"]}, "a new failing check still counts as stuck"
    assert after["common"][0]["count"] == 1, after["common"]


def test_names_can_be_hidden_from_the_page(rooms, tmp_path):
    room = rooms("--hide-names")
    assert room.post(verdict(name="ada"))[0] == 200
    assert room.post(verdict(name="grace", step="a", passed=True, checks=(3, 3), failing=None))[0] == 200
    public = room.state_json()
    assert [p["name"] for p in public["participants"]] == ["participant 1", "participant 2"]
    assert public["names_hidden"] is True
    status, _, body = room.request("GET", "/state.json")
    assert b"ada" not in body and b"grace" not in body
    # The instructor's own page (with the code) shows them, and the join line.
    mine = room.state_json(f"/{room.code}/state.json")
    assert [p["name"] for p in mine["participants"]] == ["ada", "grace"]
    assert mine["join"].endswith(f"/{room.code} NAME=yourname")
    status, headers, _ = room.request("GET", f"/{room.code}")
    assert status == 301 and headers["Location"] == f"/{room.code}/"


# ---------------------------------------------------------------------------
# The page, in a real browser.


class Browser:
    """Debian's Chromium, headless, through Debian's chromedriver: nothing is
    downloaded and nothing leaves the machine."""

    def __init__(self, width: int, height: int):
        missing = [f"{path} (Debian package {package})" for path, package in
                   ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")) if not path.exists()]
        try:
            from selenium import webdriver
            from selenium.webdriver.chrome.service import Service
        except ImportError:
            missing.append("selenium (Debian package python3-selenium)")
        if missing:
            pytest.fail("the browser tests need " + ", ".join(missing) + ": make test installs them", pytrace=False)
        self.profile = tempfile.mkdtemp(prefix="room-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for argument in ("--headless=new", "--disable-dev-shm-usage", "--disable-gpu", "--hide-scrollbars",
                         "--disable-background-networking", "--disable-component-update", "--disable-sync",
                         "--no-first-run", "--no-default-browser-check", f"--user-data-dir={self.profile}",
                         "--lang=en-US", f"--window-size={width},{height}"):
            options.add_argument(argument)
        # Without its sandbox: the only page it opens is the room's own, and the
        # sandbox will not start as root, nor in a container without user namespaces.
        options.add_argument("--no-sandbox")
        # The driver in a process group of its own, so that the whole browser can be reaped.
        self.service = Service(str(CHROMEDRIVER), popen_kw={"process_group": 0})
        self.driver = webdriver.Chrome(service=self.service, options=options)
        self.driver.set_page_load_timeout(30)
        self.resize(width, height)

    def resize(self, width: int, height: int) -> None:
        """The page's own size, as a projector of width x height shows it."""
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                    {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})

    def close(self) -> None:
        pid = self.service.process.pid if self.service.process else None
        try:
            self.driver.quit()
        finally:
            if pid:
                harness.reap_group(pid)
            self.collect_orphans()
            shutil.rmtree(self.profile, ignore_errors=True)

    @staticmethod
    def collect_orphans(timeout: float = 10) -> None:
        """Chromium's crash handlers start sessions of their own, outside the
        driver's process group, and outlive the browser a moment; orphans, they
        come to this process (the harness makes it their subreaper): collect them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            left = [proc for proc in harness.children_of(os.getpid()) if proc.comm.startswith("chrom")]
            if not left:
                return
            for proc in left:
                try:
                    os.kill(proc.pid, signal.SIGKILL)
                    os.waitpid(proc.pid, os.WNOHANG)
                except (ProcessLookupError, ChildProcessError):
                    pass
            time.sleep(0.05)

    def script(self, code: str, *args):
        return self.driver.execute_script(code, *args)

    def wait(self, what: str, code: str, *args, timeout: float = 20):
        """Wait until the page's `code` returns something true; return it."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.script(code, *args)
            if value or time.monotonic() > deadline:
                assert value, f"the page did not show {what} within {timeout} s"
                return value
            time.sleep(0.1)


@pytest.fixture
def browser():
    opened = []

    def _open(width: int = 1280, height: int = 720) -> Browser:
        opened.append(Browser(width, height))
        return opened[-1]

    yield _open
    for each in opened:
        each.close()


# The page's cell of participant arguments[0] at step arguments[1] (as `cell`), and then a condition.
CELL = """
const [name, step] = arguments;
const row = [...document.querySelectorAll('#grid tbody tr')].find(r => r.dataset.name === name);
const td = row && row.querySelector(`td[data-step="${step}"]`);
const cell = td && {verdict: td.dataset.verdict, text: td.textContent, name: row.querySelector('td.name').textContent};
"""


def test_the_page_updates_itself_in_a_browser(rooms, tmp_path, browser):
    room = rooms()
    ada = checkout(tmp_path, "ada", room)
    hacker = checkout(tmp_path, "<script>alert(1)</script>", room)
    assert send(ada, "c", False, (3, 7), "child_pids", hints=1) is None
    assert send(hacker, "a", False, (0, 3), "<img src=x onerror=alert(2)>") is None

    page = browser()
    page.driver.get(f"http://127.0.0.1:{room.port}/")
    cell = page.wait("ada's step c failing", CELL + "return cell && cell.verdict === 'failing' && cell;", "ada", "c")
    assert cell["text"] == "✗child_pids", f"a failing cell shows ✗ and the check's name: {cell['text']!r}"
    page.script("window.notReloaded = true;")

    # The participant's next check passes: the cell changes by itself.
    assert send(ada, "c", True, (7, 7)) is None
    cell = page.wait("ada's step c passed", CELL + "return cell && cell.verdict === 'passed' && cell;", "ada", "c")
    assert cell["text"] == "✓"
    assert page.script("return window.notReloaded === true;"), "the page was reloaded to show the change"
    assert page.script(CELL + "return cell;", "ada", "d")["text"] == "·", "a step not started shows ·"

    # A name and a check's name that are HTML show as text, and run nothing.
    hacked = page.script(CELL + "return cell;", "<script>alert(1)</script>", "a")
    assert hacked and hacked["name"] == "<script>alert(1)</script>", hacked
    assert hacked["text"] == "✗<img src=x onerror=alert(2)>", hacked
    assert page.script("return document.querySelectorAll('script').length === 1 && "
                       "document.querySelectorAll('#grid img').length === 0;")
    from selenium.common.exceptions import NoAlertPresentException
    with pytest.raises(NoAlertPresentException):
        page.driver.switch_to.alert.text  # noqa: B018 (the property raises when no alert is open)

    # The room stops: the page says so rather than showing old news as live. The page goes on asking the
    # room's port every second: hold that port meanwhile, resetting each connection, so that no other test's
    # server is given it (seen: a check of step j beside this test printing the page's 'GET /state.json').
    room.kill()
    with PortHolder(room.port):
        page.wait("that the room does not answer", "return document.getElementById('live').textContent"
                  ".includes('does not answer');")
        page.driver.get("about:blank")  # The page, and its asking, end here.


class PortHolder:
    """Listens on a port that a stopped server left, and resets every connection at once: to a client, a
    server that does not answer; to the kernel, a port in use, which it gives no other socket (a port 0 bind,
    as every test's server makes)."""

    def __init__(self, port: int):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # The stopped server's TIME_WAITs.
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._reset_each, daemon=True)

    def _reset_each(self) -> None:
        while not self.stopping.is_set():
            try:
                connection, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # A reset.
            connection.close()

    def __enter__(self) -> "PortHolder":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self.thread.join(5)
        self.sock.close()


def a_busy_room(count: int, steps: list[str]) -> dict[str, dict[str, tuple]]:
    """`count` participants spread over the steps the way a room is, an hour
    in: most near the middle, a few ahead, two stuck, five on the same check."""
    names = ["ada", "alan", "barbara", "brian", "dennis", "donald", "edsger", "frances", "grace", "guido",
             "hedy", "ivan", "john", "ken", "leslie", "linus", "margaret", "niklaus", "radia", "rob",
             "ruth", "shafi", "sophie", "tim", "tony", "ward", "whitfield", "xavier", "yukihiro", "zhang"]
    checks = {"a": ["answers", "escapes"], "b": ["answers", "escapes", "second_waits"],
              "c": ["both_at_once", "child_pids", "lines_once", "child_exits", "parent_closes"],
              "d": ["curl_hangs", "zombies", "emfile", "lines_once"],
              "e": ["curl_ends", "reports_child", "eintr", "handler_safe"],
              "f": ["survives", "burst_zombies", "handler_safe"], "g": ["no_zombies", "keeps_accepting", "low_nofile"]}
    room = {}
    for i in range(count):
        name = names[i % len(names)] + ("" if i < len(names) else str(i))
        reached = min(len(steps) - 1, [2, 3, 3, 4, 3, 2, 5, 3, 4, 1, 6, 3][i % 12] + (i % 5 == 0))
        row = {}
        for index, step in enumerate(steps[:reached + 1]):
            total = len(checks.get(step, ["answers", "escapes", "lines_once", "workers", "epoll_wait"]))
            if index < reached or i % 7 == 3:
                row[step] = (True, (total, total), None, i % 3 if index == reached else 0, 60)
            else:
                failing = "zombies" if step == "d" and i % 4 != 1 else \
                    checks.get(step, ["workers"])[(i // 3) % len(checks.get(step, ["workers"]))]
                minutes = 14 + i % 9 if i in (2, 13) else i % 8
                row[step] = (False, (max(0, total - 2), total), failing, i % 4, minutes)
        room[name] = row
    return room


LAYOUT = """
const grid = document.getElementById('grid');
const cell = grid.querySelector('td.cell');
return {scrollHeight: document.documentElement.scrollHeight, scrollWidth: document.documentElement.scrollWidth,
        gridBottom: grid.getBoundingClientRect().bottom, gridRight: grid.getBoundingClientRect().right,
        font: parseFloat(getComputedStyle(cell).fontSize),
        stuck: document.querySelectorAll('#grid tr.stuck').length,
        stuckList: document.getElementById('stuck-list').textContent,
        common: document.querySelector('#common-list li').textContent,
        commonFont: parseFloat(getComputedStyle(document.querySelector('#common-list li')).fontSize)};
"""


def test_the_page_on_a_projector(rooms, tmp_path, browser):
    """What a room's projector shows: thirty participants by ten steps fit
    the screen without scrolling (1280x720 and 1920x1080), in type large
    enough for the back of the room, with the stuck and the most common
    failing check beside. ROOM_SCREENSHOTS=DIR keeps a screenshot of each size
    there, to look at. Then the instructor's guide's picture (docs/room.png):
    sixteen participants at the workshop's own steps, written where
    ROOM_SCREENSHOT says (make room-screenshot), else only taken."""
    steps = [chr(ord("a") + i) for i in range(10)]  # Ten columns: a to j, whatever the steps are now.
    seed(tmp_path / "busy" / "state.json", a_busy_room(30, steps))
    room = rooms("--steps", "".join(steps), state=tmp_path / "busy" / "state.json")
    page = browser()
    for width, height in ((1280, 720), (1920, 1080)):
        page.resize(width, height)
        page.driver.get(f"http://127.0.0.1:{room.port}/")
        page.wait("thirty rows", "return document.querySelectorAll('#grid tbody tr').length === 30;")
        layout = page.script(LAYOUT)
        if os.environ.get("ROOM_SCREENSHOTS"):
            page.driver.save_screenshot(str(Path(os.environ["ROOM_SCREENSHOTS"]) / f"room-{width}x{height}.png"))
        assert layout["scrollHeight"] <= height and layout["scrollWidth"] <= width, f"the page scrolls: {layout}"
        assert layout["gridBottom"] <= height and layout["gridRight"] <= width, layout
        assert layout["font"] >= height / 720 * 14, f"the grid's type is too small for a projector: {layout}"
        assert layout["commonFont"] >= height / 720 * 20, layout
        assert layout["stuck"] == 2 and layout["stuckList"].count("⚠") == 2, layout
        assert layout["common"].startswith("step d: zombies"), layout

    seed(tmp_path / "guide" / "state.json", a_busy_room(16, room_server.steps()))
    guide = rooms(state=tmp_path / "guide" / "state.json")
    page.resize(1280, 720)
    page.driver.get(f"http://127.0.0.1:{guide.port}/")
    page.wait("sixteen rows", "return document.querySelectorAll('#grid tbody tr').length === 16;")
    picture = page.driver.get_screenshot_as_png()
    assert picture.startswith(b"\x89PNG") and len(picture) > 10_000
    if os.environ.get("ROOM_SCREENSHOT"):
        Path(os.environ["ROOM_SCREENSHOT"]).write_bytes(picture)


# ---------------------------------------------------------------------------
# Real checks: make check and make progress in two participants' checkouts.


def real_check(folder: Path, step: str, source: str, *command: str) -> subprocess.CompletedProcess:
    """tools/exercises.py (what make check runs) in a participant's checkout, on `source` as their file."""
    exercises = folder / "exercises"
    exercises.mkdir(exist_ok=True)
    (exercises / f"webserver3{step}.cpp").write_text(source)
    env = dict(os.environ, WORKSHOP_EXERCISES=str(exercises), WORKSHOP_EXERCISE_BUILD=str(folder / "build"))
    return subprocess.run([sys.executable, str(TOOLS / "exercises.py"), *(command or ("check", step))],
                          env=env, capture_output=True, text=True, timeout=300, cwd=folder)


def test_real_checks_of_two_participants_reach_the_room(rooms, tmp_path, browser):

    room = rooms()
    ada, alan = checkout(tmp_path, "ada", room), checkout(tmp_path, "alan", room)
    reference_a = steps.STEPS["a"].source.read_text()
    # ada's step a prints the whole buffer, not the n bytes received: the escaping check fails.
    wrong_a = reference_a.replace("escape_request(std::string_view(request, static_cast<std::size_t>(n)), end)",
                                  "escape_request(std::string_view(request, sizeof request), end)")
    assert wrong_a != reference_a
    failing = real_check(ada, "a", wrong_a)
    assert failing.returncode == 1, failing.stdout
    passing = real_check(alan, "a", reference_a)
    assert passing.returncode == 0, passing.stdout
    assert "room:" not in failing.stdout + passing.stdout, "the room took the verdicts, with nothing to say"

    shown = verdict_of(room, ada, "a")
    assert shown["passed"] is False and shown["failing"] == "escapes", shown
    total = shown["checks"][1]
    assert verdict_of(room, alan, "a")["checks"] == [total, total]

    # In a browser: ada fixes it, checks again, and her cell turns from failing to passed by itself.
    page = browser()
    page.driver.get(f"http://127.0.0.1:{room.port}/")
    page.wait("ada's step a failing", CELL + "return cell && cell.verdict === 'failing' && cell;", "ada", "a")
    page.script("window.notReloaded = true;")
    assert real_check(ada, "a", reference_a).returncode == 0
    page.wait("ada's step a passed", CELL + "return cell && cell.verdict === 'passed' && cell;", "ada", "a")
    assert page.script("return window.notReloaded === true;"), "the page was reloaded to show the change"

    # make progress sends every step it shows, at once: alan's b is not started, ada's a passes.
    progress = real_check(alan, "b", steps.STEPS["a"].source.read_text(), "progress")
    assert progress.returncode == 0, progress.stdout
    assert verdict_of(room, alan, "b")["passed"] is False
    assert verdict_of(room, alan, "c") is None
