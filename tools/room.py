"""The room: the instructor's live view of every participant's checks.

    python3 tools/room.py [--port 8800] [--host 0.0.0.0] [--state .room/state.json]
                          [--hide-names] [--steps LETTERS] [--stuck-after SECONDS]

`make room` runs this. It serves, with Python's standard library only:

    GET  /                the page for the projector (tools/room/), updating itself
    GET  /state.json      the same state for scripts
    GET  /CODE/           the instructor's page: names shown even with --hide-names,
                          and the participants' join line at the top
    GET  /CODE/state.json the same state, names shown, and the join line
    GET  /CODE/check      what `make join` asks: is this the room, and is the code right?
    POST /CODE/verdict    one step's verdict from a participant's `make check`, or a
                          list of one participant's verdicts, each step once (`make progress`)

The participants' side is tools/room_client.py. A verdict is only a verdict:
name, step, passed, checks [passed, total], the first failing check's name and
the number of hints shown; the room stamps it with its own clock. Anything else
is refused (403 without the code, 413 over 4 KB a verdict, 400 for the rest),
and nothing refused is stored: a list with one bad verdict is refused whole.
A participant sending more than a few verdicts a second is slowed (202: the
latest verdict of each step is stored when their turn comes).
The state (the code included) is written to the state file, atomically, before
a verdict is answered 200, so that a room killed and started again has lost nothing.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import signal
import socket
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

REPO = Path(__file__).resolve().parent.parent
PAGE = Path(__file__).resolve().parent / "room"
STATIC = {"/room.js": "text/javascript; charset=utf-8", "/room.css": "text/css; charset=utf-8"}

MAX_BODY = 4096          # bytes of one verdict's JSON (a list: this per verdict); more is refused with 413
MAX_NAME = 32            # characters of a participant's name
MAX_FAILING = 120        # characters of a check's name
MAX_PARTICIPANTS = 300   # a room that fills up refuses new names, not its memory
STUCK_AFTER = 600.0      # seconds on the same failing check before "walk to them"
# A participant's verdicts: a burst of BURST (make progress sends every step at
# once), then RATE a second. Beyond that they are slowed: the room holds the
# latest verdict of each step and stores it when the participant's turn comes.
BURST, RATE = 12, 4.0
# New names from one address (a machine the whole room may share): a room's
# worth at once, then one every two seconds. More is refused (429).
NEW_NAMES_BURST, NEW_NAMES_RATE = 40, 0.5
PRINTING = threading.Lock()
VERDICT_FIELDS = {"name", "step", "passed", "checks", "failing", "hints"}


def steps(repo: Path = REPO) -> list[str]:
    """The workshop's steps, by letter, from the step folders (step_a_iterative, ...):
    a step added to the repository is a step of the room, with nothing else to change."""
    return sorted({folder.name[5] for folder in repo.glob("step_?_*") if folder.is_dir()})


def now() -> datetime:
    return datetime.now().astimezone()


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


# ---------------------------------------------------------------------------
# What a participant may send.


class Refused(Exception):
    """A request the room does not store: its HTTP status and the reason."""

    def __init__(self, status: int, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.status, self.reason, self.retry_after = status, reason, retry_after


def valid_name(name) -> str | None:
    """Why `name` cannot be a participant's name, or None when it can."""
    if not isinstance(name, str) or not name:
        return "a name is 1 to 32 printable characters"
    if len(name) > MAX_NAME:
        return f"a name is at most {MAX_NAME} characters"
    if not name.isprintable() or name != name.strip():
        return "a name is printable characters only, with no space at either end"
    return None


def whole(value, low: int, high: int) -> bool:
    # bool is an int in Python; true is not a count.
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def parse_verdicts(body: bytes, known_steps: list[str]) -> list[dict]:
    """The verdicts in a request's body (one verdict, or a list of one
    participant's verdicts, each step at most once), or Refused(400) saying
    what is wrong: one bad verdict refuses the whole list."""
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise Refused(400, f"the body is not JSON: {error}") from None
    if isinstance(value, dict):
        if len(body) > MAX_BODY:
            raise Refused(413, f"a verdict is at most {MAX_BODY} bytes")
        return [checked_verdict(value, known_steps)]
    if not isinstance(value, list) or not 1 <= len(value) <= len(known_steps):
        raise Refused(400, "the body is a verdict (a JSON object), or a list of 1 to "
                      f"{len(known_steps)} verdicts")
    if len(body) > MAX_BODY * len(value):
        raise Refused(413, f"a verdict is at most {MAX_BODY} bytes")
    verdicts = []
    for number, verdict in enumerate(value, 1):
        try:
            verdicts.append(checked_verdict(verdict, known_steps))
        except Refused as refusal:
            raise Refused(refusal.status, f"verdict {number} of the list: {refusal.reason}") from None
    if len({verdict["name"] for verdict in verdicts}) > 1:
        raise Refused(400, "a list holds one participant's verdicts (one name)")
    if len({verdict["step"] for verdict in verdicts}) < len(verdicts):
        raise Refused(400, "a list holds each step's verdict once")
    return verdicts


def checked_verdict(verdict, known_steps: list[str]) -> dict:
    """The verdict, or Refused(400) saying what is wrong with it."""
    if not isinstance(verdict, dict):
        raise Refused(400, "a verdict is a JSON object")
    if set(verdict) != VERDICT_FIELDS:
        extra, missing = set(verdict) - VERDICT_FIELDS, VERDICT_FIELDS - set(verdict)
        raise Refused(400, "a verdict has exactly the fields " + ", ".join(sorted(VERDICT_FIELDS))
                      + (f"; unknown: {', '.join(sorted(extra))}" if extra else "")
                      + (f"; missing: {', '.join(sorted(missing))}" if missing else ""))
    problem = valid_name(verdict["name"])
    if problem:
        raise Refused(400, problem)
    if verdict["step"] not in known_steps:
        raise Refused(400, f"unknown step: this room's steps are {', '.join(known_steps)}")
    passed, checks, failing = verdict["passed"], verdict["checks"], verdict["failing"]
    if not isinstance(passed, bool):
        raise Refused(400, "passed is true or false")
    if not (isinstance(checks, list) and len(checks) == 2 and whole(checks[1], 1, 1000)
            and whole(checks[0], 0, checks[1])):
        raise Refused(400, "checks is [passed, total], 0 <= passed <= total, 1 <= total <= 1000")
    if passed != (checks[0] == checks[1]):
        raise Refused(400, "passed is true exactly when every check passed")
    if passed and failing is not None:
        raise Refused(400, "a passed step has no failing check (null)")
    if failing is not None and not (isinstance(failing, str) and 0 < len(failing) <= MAX_FAILING
                                    and failing.isprintable()):
        raise Refused(400, f"failing is null or a check's name, 1 to {MAX_FAILING} printable characters")
    if not whole(verdict["hints"], 0, 1000):
        raise Refused(400, "hints is a count, 0 to 1000")
    return verdict


class Bucket:
    """A token bucket: `burst` requests at once, then `rate` a second."""

    def __init__(self, burst: float, rate: float):
        self.burst, self.rate = burst, rate
        self.tokens, self.time = float(burst), time.monotonic()

    def wait(self) -> float:
        """0 when a request may go now (and takes its token); else the seconds until one may."""
        moment = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (moment - self.time) * self.rate)
        self.time = moment
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


def seconds_up(wait: float) -> float:
    """A wait in seconds for an answer, to the hundredth, rounded up: a wait of
    a few microseconds is 0.01, never 0 (which would tell a client it was not held)."""
    return math.ceil(wait * 100) / 100


class Limits:
    """Token buckets by (kind, key): a participant's verdicts, an address's new names."""

    def __init__(self):
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], Bucket] = {}

    def wait(self, kind: str, key: str, burst: float, rate: float) -> float:
        """0 when one more may go now (and it is counted); else the seconds until one may."""
        with self._lock:
            if len(self._buckets) > 10 * MAX_PARTICIPANTS:
                # Forget the buckets that would be full again by now.
                moment = time.monotonic()
                self._buckets = {k: b for k, b in self._buckets.items()
                                 if b.tokens + (moment - b.time) * b.rate < b.burst}
            bucket = self._buckets.setdefault((kind, key), Bucket(burst, rate))
            return bucket.wait()


# ---------------------------------------------------------------------------
# The room's state, and its file.


class Room:
    """Every participant's latest verdict for each step.

    The state file holds {"code": ..., "participants": {name: {"n": 1, 2, ...
    in the order of their first verdicts, "steps": {step: verdict}}}}, where a verdict is what the
    participant sent (without the name) plus the room's times: "at" (when it
    arrived), "changed" (when that step's verdict last changed) and "since"
    (when its failing check started failing, that check unchanged since)."""

    def __init__(self, path: Path, known_steps: list[str], stuck_after: float = STUCK_AFTER,
                 hide_names: bool = False):
        self.path, self.steps = path, known_steps
        self.stuck_after, self.hide_names = stuck_after, hide_names
        self.lock = threading.Lock()
        # Verdicts slowed down: the latest of each (name, step), stored when the
        # participant's turn comes (release()), unless a newer one is stored first.
        self.held: dict[tuple[str, str], dict] = {}
        # Changes with every verdict stored, and between two runs of the room.
        self.run, self.version = secrets.token_hex(4), 0
        for leftover in path.parent.glob(f".{path.name}-*.tmp"):
            leftover.unlink()  # A room killed while writing: the state file itself is whole.
        if path.exists():
            try:
                state = json.loads(path.read_text())
                self.code = state["code"]
                self.participants = state["participants"]
                assert isinstance(self.code, str) and len(self.code) >= 16 and isinstance(self.participants, dict)
            except (OSError, ValueError, KeyError, TypeError, AssertionError) as error:
                raise SystemExit(f"room: {path} is not a room's state ({error!r}); move it away, "
                                 "or give another file with --state") from None
        else:
            # 16 random bytes (128 bits) from the operating system's generator,
            # in letters, digits, '-' and '_': nobody guesses it.
            self.code = secrets.token_urlsafe(16)
            self.participants = {}
            self.save(self.participants)

    def save(self, participants: dict) -> None:
        """Write the state to a new file and rename it over the old one: a room
        killed at any moment leaves the old state or the new, never half of one.
        (Written, not fsync'd: what a kill must not lose is in the kernel's page
        cache already; only a power cut could lose the last verdicts.)"""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        state = {"code": self.code, "participants": participants}
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}-", suffix=".tmp")
        try:
            with os.fdopen(handle, "w") as file:
                json.dump(state, file, ensure_ascii=False, indent=1)
            os.replace(temporary, self.path)  # Mode 0600 from mkstemp: the code is in it.
        except BaseException:
            os.unlink(temporary)
            raise

    def add(self, verdict: dict, held: bool = False) -> dict | None:
        """Store one verdict (already checked) in the file, then in memory;
        returns the stored step. A verdict the file did not take is not stored.
        held=True: `verdict` was held; store it only if it is still the latest."""
        return self.add_all([verdict], held)[0]

    def add_all(self, verdicts: list[dict], held: bool = False) -> list[dict | None]:
        """add() for several verdicts of one participant, written to the file
        once (make progress sends every step at once): each one's stored step,
        or None for a held one that a newer verdict of its step replaced."""
        moment = iso(now())
        with self.lock:
            participants, result, last = self.participants, [], None
            for verdict in verdicts:
                name, step = verdict["name"], verdict["step"]
                if held and self.held.get((name, step)) is not verdict:
                    result.append(None)  # A newer verdict of that step came since.
                    continue
                participant = participants.get(name)
                if participant is None:
                    if len(participants) >= MAX_PARTICIPANTS:
                        raise Refused(403, f"the room is full ({MAX_PARTICIPANTS} participants)")
                    participant = {"n": len(participants) + 1, "steps": {}}
                old = participant["steps"].get(step)
                new = {key: verdict[key] for key in ("passed", "checks", "failing", "hints")}
                same = old is not None and all(old[key] == new[key] for key in new)
                still_failing = (old is not None and not old["passed"] and not new["passed"]
                                 and old["failing"] == new["failing"])
                new["at"] = moment
                # To the microsecond, and later for each in the list: the
                # participant's current step is the one that changed last.
                if same:
                    new["changed"] = old["changed"]
                else:
                    changed = now()
                    last = changed if last is None or changed > last else last + timedelta(microseconds=1)
                    new["changed"] = last.isoformat(timespec="microseconds")
                new["since"] = None if new["passed"] else (old["since"] if still_failing else moment)
                participants = {**participants,
                                name: {"n": participant["n"], "steps": {**participant["steps"], step: new}}}
                result.append(new)
            if any(result):
                self.save(participants)
                self.participants = participants
                self.version += 1
            for verdict, new in zip(verdicts, result):
                if new is not None:
                    self.held.pop((verdict["name"], verdict["step"]), None)  # Older than this one.
            return result

    def hold(self, verdict: dict) -> None:
        with self.lock:
            self.held[(verdict["name"], verdict["step"])] = verdict

    def release(self, limits: "Limits", stored) -> None:
        """Store each held verdict whose participant's turn has come; stored(verdict, step) for each."""
        with self.lock:
            waiting = list(self.held.values())
        for verdict in waiting:
            if limits.wait("participant", verdict["name"], BURST, RATE) == 0:
                try:
                    step = self.add(verdict, held=True)
                except Refused:  # The room filled up meanwhile: it will never be stored.
                    with self.lock:
                        if self.held.get((verdict["name"], verdict["step"])) is verdict:
                            del self.held[(verdict["name"], verdict["step"])]
                    continue
                if step is not None:
                    stored(verdict, step)

    def admits(self, name: str) -> bool:
        with self.lock:
            return name in self.participants or len(self.participants) < MAX_PARTICIPANTS

    def knows(self, name: str) -> bool:
        with self.lock:
            return name in self.participants

    def view(self, names: bool) -> dict:
        """The state as GET /state.json shows it. names=False shows
        "participant N" (N in the order of first verdicts) instead of each name."""
        moment = now()
        with self.lock:
            # add() replaces self.participants rather than changing it: this is a snapshot.
            participants, version = self.participants, f"{self.run}-{self.version}"
        shown = []
        for name, participant in participants.items():
            label = name if names else f"participant {participant['n']}"
            steps_seen = {step: verdict for step, verdict in participant["steps"].items() if step in self.steps}
            current = max(steps_seen, key=lambda step: (steps_seen[step]["changed"], step), default=None)
            entry = {"name": label, "n": participant["n"], "current": current, "stuck": None, "steps": {}}
            for step, verdict in steps_seen.items():
                entry["steps"][step] = {"passed": verdict["passed"], "checks": verdict["checks"],
                                        "failing": verdict["failing"], "hints": verdict["hints"],
                                        "at": verdict["at"], "failing_since": verdict["since"]}
            verdict = steps_seen.get(current)
            if verdict and not verdict["passed"]:
                seconds = (moment - datetime.fromisoformat(verdict["since"])).total_seconds()
                if seconds >= self.stuck_after:
                    entry["stuck"] = {"step": current, "failing": verdict["failing"],
                                      "since": verdict["since"], "minutes": int(seconds // 60)}
            shown.append(entry)
        if names:
            shown.sort(key=lambda entry: (entry["name"].casefold(), entry["name"]))
        else:
            shown.sort(key=lambda entry: entry["n"])
        # What the room is failing right now: each participant's current step, if failing.
        counts: dict[tuple[str, str | None], list[str]] = {}
        for entry in shown:
            verdict = entry["steps"].get(entry["current"])
            if verdict and not verdict["passed"]:
                counts.setdefault((entry["current"], verdict["failing"]), []).append(entry["name"])
        common = sorted(counts.items(), key=lambda item: (-len(item[1]), item[0][0], item[0][1] or ""))
        return {
            "participants": shown,
            "steps": self.steps,
            "passed": {step: sum(1 for entry in shown if entry["steps"].get(step, {}).get("passed"))
                       for step in self.steps},
            "stuck": sorted(({"name": entry["name"], **entry["stuck"]} for entry in shown if entry["stuck"]),
                            key=lambda stuck: stuck["since"]),
            "common": [{"step": step, "failing": failing, "count": len(who), "names": who}
                       for (step, failing), who in common[:3]],
            "stuck_after": self.stuck_after,
            "names_hidden": not names,
            "now": iso(moment),
            "version": version,
        }


# ---------------------------------------------------------------------------
# HTTP.


class Handler(BaseHTTPRequestHandler):
    server_version = "room"
    protocol_version = "HTTP/1.1"  # Keep-alive: a client may send several verdicts on one connection.
    timeout = 10  # A client that stops half-way through a request holds its thread this long at most.
    room: Room
    limits: Limits
    join_line: str
    pages: dict[str, bytes]

    @staticmethod
    def say(line: str) -> None:
        """One whole line on the room's terminal (threads print at once)."""
        with PRINTING:
            try:
                sys.stdout.write(line + "\n")
                sys.stdout.flush()
            except (OSError, ValueError):
                pass  # The terminal is gone; the room goes on.

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass  # The page asks every second; the room's terminal shows verdicts only.

    def send(self, status: int, body: bytes, content_type: str = "application/json; charset=utf-8",
             headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        # No script but the room's own file runs in the page, inline or injected.
        self.send_header("Content-Security-Policy",
                         "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                         "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status: int, value) -> None:
        self.send(status, json.dumps(value, ensure_ascii=False).encode("utf-8"))

    def refuse(self, refusal: Refused) -> None:
        body = {"error": refusal.reason}
        headers = {}
        if refusal.retry_after is not None:
            body["retry_after"] = refusal.retry_after
            headers["Retry-After"] = str(max(1, round(refusal.retry_after + 0.5)))  # whole seconds in HTTP
        self.send(refusal.status, json.dumps(body).encode("utf-8"), headers=headers)

    def coded(self, path: str) -> tuple[bool, str]:
        """Whether the path starts with the room's code, and the rest of the path."""
        head, _, rest = path.lstrip("/").partition("/")
        right = secrets.compare_digest(head.encode("utf-8", "surrogateescape"), self.room.code.encode())
        return right, rest

    def do_GET(self):  # noqa: N802 (the base class's name)
        path = urlsplit(self.path).path
        if path == "/":
            return self.send(200, self.pages["index.html"], "text/html; charset=utf-8")
        if path in STATIC:
            return self.send(200, self.pages[path.lstrip("/")], STATIC[path])
        if path == "/state.json":
            return self.send_json(200, self.room.view(names=not self.room.hide_names))
        right, rest = self.coded(path)
        if not right:
            return self.send_json(404 if path.count("/") < 2 else 403, {"error": "no such page"})
        if rest == "":
            if not path.endswith("/"):
                return self.send(301, b"", headers={"Location": path + "/"})
            return self.send(200, self.pages["index.html"], "text/html; charset=utf-8")
        if rest == "state.json":
            view = self.room.view(names=True)
            view["join"] = self.join_line
            return self.send_json(200, view)
        if rest == "check":
            name = parse_qs(urlsplit(self.path).query).get("name", [""])[0]
            return self.send_json(200, {"room": "ok", "steps": self.room.steps,
                                        "known": bool(name) and self.room.knows(name)})
        return self.send_json(404, {"error": "no such page"})

    do_HEAD = do_GET

    def do_POST(self):  # noqa: N802
        try:
            self.take_verdict()
        except Refused as refusal:
            if refusal.status != 429:  # A flood would flood the instructor's terminal too.
                self.say(shown(f"{datetime.now():%H:%M:%S}  refused ({refusal.status}) from "
                               f"{self.client_address[0]}: {refusal.reason}"))
            self.refuse(refusal)

    def take_verdict(self) -> None:
        """Refused(...) unless the request is a verdict (or a list of them) the
        room takes; the checks in the order the contract lists them, the cheap
        ones first."""
        right, rest = self.coded(urlsplit(self.path).path)
        if not right or rest != "verdict":
            self.close_connection = True  # Its body, if any, is not read.
            raise Refused(403, "verdicts go to /CODE/verdict, with the room's code")
        length = self.headers.get("Content-Length", "")
        if not length.isascii() or not length.isdigit():
            self.close_connection = True
            raise Refused(411, "a verdict comes with its Content-Length")
        limit = MAX_BODY * len(self.room.steps)  # A list of every step's verdict; one alone: MAX_BODY.
        if int(length) > limit:
            self.close_connection = True
            if int(length) <= 4 * limit:
                # Read what came, so that closing the connection does not reset it
                # (and the answer with it) before the client reads the answer.
                self.rfile.read(int(length))
            raise Refused(413, f"a verdict is at most {MAX_BODY} bytes")
        verdicts = parse_verdicts(self.rfile.read(int(length)), self.room.steps)
        name = verdicts[0]["name"]  # A list's verdicts are all one participant's.
        if not self.room.knows(name):
            if not self.room.admits(name):
                raise Refused(403, f"the room is full ({MAX_PARTICIPANTS} participants)")
            wait = self.limits.wait("address", self.client_address[0], NEW_NAMES_BURST, NEW_NAMES_RATE)
            if wait:
                raise Refused(429, f"too many new names from this address: try again in {wait:.1f} s",
                              retry_after=round(wait + 0.05, 2))
        at_once, held = [], 0.0
        for verdict in verdicts:
            wait = self.limits.wait("participant", name, BURST, RATE)
            if wait:
                # More than a few a second: slowed. The latest verdict of this step
                # waits its turn (release(), a few times a second); older ones are dropped.
                self.room.hold(verdict)
                held = max(held, wait)
            else:
                at_once.append(verdict)
        try:
            stored = self.room.add_all(at_once) if at_once else []
        except OSError as error:  # Not in the file, so not stored at all.
            raise Refused(500, f"the room could not write its state file: {error.strerror or error}") from None
        for verdict, step in zip(at_once, stored):
            self.report(verdict, step)
        # The same answer for one verdict as for a list: how many were stored,
        # how many held, and (when some are) the seconds until the participant's next turn.
        answer = {"stored": len(at_once), "held": len(verdicts) - len(at_once)}
        if held:
            answer["retry_after"] = seconds_up(held)
        self.send_json(202 if held else 200, answer)

    @classmethod
    def report(cls, verdict: dict, stored: dict) -> None:
        """The verdict's line on the room's terminal."""
        passed, total = stored["checks"]
        cls.say(shown(f"{datetime.now():%H:%M:%S}  {verdict['name']:<16} step {verdict['step']}  "
                      f"{'✓' if stored['passed'] else '✗'} {passed}/{total}"
                      + (f"  {stored['failing']}" if stored["failing"] else "")))


class Server(ThreadingHTTPServer):
    daemon_threads = True  # Ctrl-C does not wait for a client that is slow to finish.

    def handle_error(self, request, client_address):
        """A participant's client gives up after half a second, and may close
        before the room answers: not worth a traceback on the room's terminal."""
        error = sys.exc_info()[1]
        if not isinstance(error, (ConnectionError, TimeoutError)):
            Handler.say(shown(f"{datetime.now():%H:%M:%S}  error answering {client_address[0]}: {error!r}"))


def shown(text: str) -> str:
    """What the instructor's terminal may print: a request is untrusted, and its
    control characters must not drive the terminal."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def lan_address() -> str | None:
    """This machine's address on the room's network: the one the default
    route would send from. Connecting a UDP socket only chooses the route; no
    packet leaves (192.0.2.1 is TEST-NET-1, reserved for documentation)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))
            address = probe.getsockname()[0]
    except OSError:
        return None  # No route at all: a machine alone.
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def step_letters(text: str) -> list[str]:
    if not (text.isascii() and text.isalpha() and text.islower()):
        raise argparse.ArgumentTypeError("the steps are lowercase letters, e.g. abc")
    return sorted(set(text))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="room", description="The instructor's live view of the room's checks.")
    parser.add_argument("--port", type=int, default=8800, help="TCP port; 0 lets the kernel choose (default 8800)")
    parser.add_argument("--host", default="0.0.0.0",
                        help="address to listen on (default 0.0.0.0: every interface, so the room's network reaches it)")
    parser.add_argument("--state", type=Path, default=REPO / ".room" / "state.json",
                        help="the room's state file (default .room/state.json); another file is another room")
    parser.add_argument("--hide-names", action="store_true",
                        help="the page and /state.json show 'participant N', not names (the instructor's "
                             "/CODE/ page still shows them)")
    parser.add_argument("--steps", metavar="LETTERS", type=step_letters,
                        help="the steps, e.g. abc (default: the step folders, now " + "".join(steps()) + ")")
    parser.add_argument("--stuck-after", type=float, default=STUCK_AFTER, metavar="SECONDS",
                        help="how long on the same failing check before 'walk to them' (default 600)")
    options = parser.parse_args(argv)
    if not 0 <= options.port <= 65535:
        parser.error("--port is 0 to 65535")
    sys.stdout.reconfigure(errors="backslashreplace", line_buffering=True)

    room = Room(options.state, options.steps or steps(), options.stuck_after, options.hide_names)
    try:
        server = Server((options.host, options.port), Handler)
    except OSError as error:
        print(f"room: cannot listen on {options.host} port {options.port}: {error.strerror}"
              + (" (make room PORT=8801 tries another)" if error.errno == 98 else ""), file=sys.stderr)
        return 1
    port = server.server_address[1]
    if options.host in ("0.0.0.0", ""):
        host = lan_address() or "localhost"
    elif options.host.startswith("127."):
        host = "localhost"
    else:
        host = options.host
    Handler.room, Handler.limits = room, Limits()
    Handler.join_line = f"make join ROOM=http://{host}:{port}/{room.code} NAME=yourname"
    Handler.pages = {name: (PAGE / name).read_bytes() for name in ("index.html", "room.js", "room.css")}

    try:
        shown_state = options.state.resolve().relative_to(Path.cwd())
    except ValueError:
        shown_state = options.state
    print(f"The room is open on port {port} (Ctrl-C closes it; its state stays in {shown_state}).")
    print(f"  On the projector:   http://{host}:{port}/")
    print(f"  Participants type:  {Handler.join_line}")
    if host != "localhost":
        print(f"  On this machine:    make join ROOM=http://localhost:{port}/{room.code} NAME=yourname"
              f"   (page: http://localhost:{port}/)")
    if room.hide_names:
        print(f"  Names are hidden on the page; yours, with names: http://localhost:{port}/{room.code}/")
    print(f"  {len(room.participants)} participants so far; each verdict shows below as it arrives.")

    def stop(signum, frame):
        raise KeyboardInterrupt

    def release_held() -> None:
        said = None
        while True:
            time.sleep(0.1)
            try:
                room.release(Handler.limits, Handler.report)
            except Exception as error:  # noqa: BLE001 (the room goes on; the next round tries again)
                if repr(error) != said:  # Once, not ten times a second.
                    said = repr(error)
                    Handler.say(shown(f"{datetime.now():%H:%M:%S}  could not store a held verdict: {said}"))

    threading.Thread(target=release_held, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        print(f"\nThe room is closed. make room opens it again as it was (same code); "
              f"to start a new room, remove {shown_state}.")
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
