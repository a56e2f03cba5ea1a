"""The participant's side of the room (tools/room.py, `make room`).

    python3 tools/room_client.py join http://HOST:PORT/CODE NAME   make join ROOM=... NAME=...
    python3 tools/room_client.py leave                             make leave
    python3 tools/room_client.py status                            which room this checkout is in

Joining writes .room.json at the top of the checkout (git ignores it): the
room's address with its code, and the participant's name. From then on the
judge calls send_verdict() with each step's verdict (make check, make watch),
or send_verdicts() with several (make progress). Only the verdict goes, and the
name: never the participant's code, paths or environment. Sending takes half a
second at most, never raises and never changes the check's result: a room that
cannot be reached costs one line of note.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

REPO = Path(__file__).resolve().parent.parent
JOIN_FILE = ".room.json"
BUDGET = 0.5  # Seconds a check may wait for the room, all included.
MAX_FAILING = 120
# The code: at least 11 base64url characters (66 bits); tools/room.py makes 22.
ROOM_URL = re.compile(r"http://(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::(?P<port>\d{1,5}))?/(?P<code>[A-Za-z0-9_-]{11,})/?")

_in_flight: threading.Thread | None = None  # make watch: one verdict on its way at a time.


def join_file(checkout: Path | None = None) -> Path:
    return Path(checkout or REPO) / JOIN_FILE


def joined(checkout: Path | None = None) -> dict | None:
    """{"room": "http://HOST:PORT/CODE", "name": ...} when this checkout has joined a room, else None."""
    try:
        text = join_file(checkout).read_text()
    except FileNotFoundError:
        return None
    room = json.loads(text)
    if not (isinstance(room, dict) and isinstance(room.get("name"), str) and isinstance(room.get("room"), str)
            and ROOM_URL.fullmatch(room["room"])):
        raise ValueError(f"{JOIN_FILE} is not a joined room's file")
    return room


def printable(text: str, limit: int) -> str:
    text = "".join(c if c.isprintable() else "?" for c in str(text))
    return text if len(text) <= limit else text[:limit - 1] + "…"


Verdict = tuple  # (step, passed, (checks passed, checks in all), first failing check or None, hints)


def send_verdict(step: str, passed: bool, checks: tuple[int, int], failing: str | None, hints: int,
                 checkout: Path | None = None) -> str | None:
    """Send one step's verdict to the room this checkout has joined.

    step: the step's letter ("a"); passed: whether every check passed;
    checks: (checks passed, checks in all); failing: the first failing check's
    name, None when passed; hints: how many hints were shown for this step.
    checkout: the checkout whose .room.json to read (default: this one).

    Returns None when there is nothing to say (not joined, or sent and
    taken), else a one-line note for the participant. Never raises, and
    returns within half a second whatever the room or the network does."""
    return send_verdicts([(step, passed, checks, failing, hints)], checkout)


def send_verdicts(verdicts: list[Verdict], checkout: Path | None = None) -> str | None:
    """Several steps' verdicts (make progress), each a tuple of
    send_verdict's first five arguments, in one request within the same
    half second; at most one note, as send_verdict."""
    global _in_flight
    started = time.monotonic()
    try:
        room = joined(checkout)
        if room is None or not verdicts:
            return None
        if _in_flight is not None and _in_flight.is_alive():
            return "room: not sent: the previous verdict is still on its way (the room is slow to answer)"
        sent = [{"name": room["name"], "step": str(step), "passed": bool(passed),
                 "checks": [int(checks[0]), int(checks[1])],
                 "failing": None if failing is None else printable(failing, MAX_FAILING),
                 "hints": int(hints)}
                for step, passed, checks, failing, hints in verdicts]
        # Several go as one list in one request: the room stores them with one
        # write of its file, and a busy room answers one request sooner than ten.
        body = json.dumps(sent[0] if len(sent) == 1 else sent).encode()
        outcome: list[str | None] = []
        # A tenth of a second to spare: on a busy machine, this thread may wait
        # that long to run again once the deadline has passed.
        deadline = started + BUDGET - 0.1
        what = "this verdict" if len(sent) == 1 else "these verdicts"
        _in_flight = threading.Thread(target=_post, args=(room["room"], body, what, deadline, outcome),
                                      daemon=True)
        _in_flight.start()
        _in_flight.join(max(0.0, deadline - time.monotonic()))
        if not outcome:
            return (f"room: {_address(room['room'])} did not answer within {BUDGET} s; "
                    + f"{what} may be missing from the room (your check is unchanged)")
        return outcome[0]
    except Exception as error:  # noqa: BLE001 (a check must never fail because of the room)
        return f"room: not sent ({printable(error, 100)}); make join again, or make leave"


def _address(url: str) -> str:
    """The room's address without its code, for the participant's screen."""
    match = ROOM_URL.fullmatch(url)
    return f"http://{match['host']}" + (f":{match['port']}" if match["port"] else "") if match else "the room"


def _post(url: str, body: bytes, what: str, deadline: float, outcome: list) -> None:
    """POST the verdict (or the list of them, `what` says which); put the note
    for the participant (or None) in outcome."""
    match = ROOM_URL.fullmatch(url)
    host, port = match["host"].strip("[]"), int(match["port"] or 80)
    try:
        connection = http.client.HTTPConnection(host, port, timeout=max(0.01, deadline - time.monotonic()))
        try:
            connection.request("POST", f"/{match['code']}/verdict", body,
                               {"Content-Type": "application/json", "Connection": "close"})
            answer = connection.getresponse()
            status, text = answer.status, answer.read(4096)
        finally:
            connection.close()
    except (OSError, http.client.HTTPException) as error:
        why = "no answer in time" if isinstance(error, TimeoutError) else \
            printable(getattr(error, "strerror", None) or error, 60)
        outcome.append(f"room: not sent: {_address(url)} does not answer ({why}); your check is unchanged")
        return
    if status in (200, 202):  # 202: more than a few a second; the room stores them in a moment.
        outcome.append(None)
        return
    try:
        reason = json.loads(text)
    except ValueError:
        reason = {}
    error = printable(reason.get("error", ""), 100) if isinstance(reason, dict) else ""
    if status == 403 and "full" not in error:
        outcome.append(f"room: {_address(url)} refused the code (a new room?): make join again "
                       "with the line on the instructor's screen")
    else:
        outcome.append(f"room: the room did not take {what} ({status}: {error})")


# ---------------------------------------------------------------------------
# make join, make leave


def cmd_join(url: str, name: str, checkout: Path | None = None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from room import valid_name  # The room's own rule for names.

    url, name = url.strip(), name.strip()
    if not url or not name:
        print("make join needs the room and your name: make join ROOM=http://HOST:PORT/CODE NAME=yourname "
              "(the instructor's screen shows the line)")
        return 2
    match = ROOM_URL.fullmatch(url)
    if not match:
        page = re.fullmatch(r"https?://[^/]+/?", url)
        print(f"ROOM={url} is not a room's join address: it is http://HOST:PORT/CODE, "
              + ("the code after the port (this is the page's address)" if page else
                 "exactly as the instructor's screen shows it"))
        return 2
    problem = valid_name(name)
    if problem:
        print(f"NAME={printable(name, 40)!r}: {problem}")
        return 2
    room = f"http://{match['host']}" + (f":{match['port']}" if match["port"] else "") + f"/{match['code']}"
    host, port = match["host"].strip("[]"), int(match["port"] or 80)
    try:
        connection = http.client.HTTPConnection(host, port, timeout=5)
        try:
            connection.request("GET", f"/{match['code']}/check?name={quote(name)}")
            answer = connection.getresponse()
            status, text = answer.status, answer.read(4096)
        finally:
            connection.close()
    except (OSError, http.client.HTTPException) as error:
        print(f"No room answers at {_address(room)} ({getattr(error, 'strerror', None) or error}): "
              "is the address right, and is make room running? Not joined.")
        return 1
    try:
        answer_json = json.loads(text) if status == 200 else {}
    except ValueError:
        answer_json = {}
    if status == 403:
        print(f"The room at {_address(room)} refused the code: copy the join line exactly as the "
              "instructor's screen shows it. Not joined.")
        return 1
    if status != 200 or answer_json.get("room") != "ok":
        print(f"{_address(room)} answered, but not as a room does (HTTP {status}). Not joined.")
        return 1
    path = join_file(checkout)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".room-", suffix=".tmp")
    with os.fdopen(handle, "w") as file:  # Mode 0600: the room's code is in it.
        json.dump({"room": room, "name": name}, file)
        file.write("\n")
    os.replace(temporary, path)
    print(f"Joined the room at {_address(room)} as {name}: make check, make watch and make progress now "
          f"send their verdicts there (only the verdicts). make leave stops.")
    if answer_json.get("known"):
        print(f"The room already has a participant named {name}: if that is not you, make join again "
              "with another NAME.")
    return 0


def cmd_leave(checkout: Path | None = None) -> int:
    path = join_file(checkout)
    try:
        path.unlink()
    except FileNotFoundError:
        print("This checkout has not joined a room (nothing to leave).")
        return 0
    print("Left the room: your checks no longer send their verdicts.")
    return 0


def cmd_status(checkout: Path | None = None) -> int:
    try:
        room = joined(checkout)
    except ValueError as error:
        print(f"{join_file(checkout)}: {error}; make leave, then make join again")
        return 1
    if room is None:
        print("This checkout has not joined a room (make join ROOM=... NAME=...).")
    else:
        print(f"Joined the room at {_address(room['room'])} as {room['name']}.")
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["join"] and len(argv) == 3:
        return cmd_join(argv[1], argv[2])
    if argv == ["leave"]:
        return cmd_leave()
    if argv == ["status"]:
        return cmd_status()
    print(__doc__.strip().split("\n\n")[0])
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
