"""Learner mode: every participant writes each step, and the lesson's own checks judge it.

    python3 tools/exercises.py exercise STEP      create exercises/webserver3STEP.cpp, say what to do
    python3 tools/exercises.py check STEP [BIN]   build it (or take BIN), run step STEP's checks
    python3 tools/exercises.py hint STEP          the next hint
    python3 tools/exercises.py watch STEP         re-check on every save (Ctrl-C to stop)
    python3 tools/exercises.py progress           every step: passed, its first failing check, or not started

The Makefile's `make exercise|check|hint|watch STEP=X` call this. The checks
themselves are tools/checks/, the same ones the end-to-end tests run; each
step's task, hints and checks are its record in tools/steps.py.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import checks  # noqa: E402
import harness  # noqa: E402
import steps  # noqa: E402
from checks import code  # noqa: E402

REPO = harness.REPO
EXERCISES = Path(os.environ.get("WORKSHOP_EXERCISES", REPO / "exercises"))
BUILD = Path(os.environ.get("WORKSHOP_EXERCISE_BUILD", REPO / "build" / "exercises"))

def say(text: str = "") -> None:
    print(text, flush=True)


def wrapped(text: str, indent: str = "  ") -> str:
    import textwrap

    return textwrap.fill(text, width=100, initial_indent=indent, subsequent_indent=indent)


def exercise_path(step: str) -> Path:
    return EXERCISES / f"webserver3{step}.cpp"


def shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# ---------------------------------------------------------------------------
# make exercise


SKELETON_TODO = {
    "create_listen_socket": [
        "TODO(step a): create a TCP socket, let it reuse its address (SO_REUSEADDR), bind it to",
        "options.address and options.port, and listen with a queue of REQUEST_QUEUE_SIZE. With --port 0",
        "the kernel chooses the port: ask it which (getsockname). Then print",
        "\"Serving HTTP on port N ...\", flush stdout, and return the socket. Check every call",
        "against -1 and report a failure with fatal(\"call\").",
    ],
    "accept_connection": [
        "TODO(step a): wait for the next connection and return its descriptor; a failure is fatal.",
    ],
    "handle_request": [
        "TODO(step a): read the request (up to 1024 bytes); print it with one write() to standard",
        "output, escaped by escape_request() into a char array on the stack (4 bytes for each byte",
        "of the request, then a newline, with put()); and send HTTP_RESPONSE with send_all(). A",
        "failure here concerns this client only: warn(\"call\") and return.",
    ],
}

SKELETON_HELPERS = ["warn", "escape_request", "send_all"]


def skeleton() -> str:
    """Step a's server with the socket calls taken out: the three functions of
    SKELETON_TODO keep their signatures, and their bodies become a TODO. Made
    from the step's source each time, so it follows every change to it."""
    source = steps.STEPS["a"].source.read_text()
    for name, todo in SKELETON_TODO.items():
        pattern = re.compile(rf"^((?:\[\[noreturn\]\] )?static [^\n]*\b{name}\(([^)]*)\)\n)\{{\n.*?\n\}}\n",
                             re.MULTILINE | re.DOTALL)
        found = pattern.findall(source)
        if len(found) != 1:
            raise SystemExit(f"exercises.py: found {len(found)} definitions of {name}() in step a's source: "
                             "update SKELETON_TODO in tools/exercises.py")
        params = [p.split()[-1].lstrip("*&") for p in found[0][1].split(",") if p.strip()]
        body = [f"    // {line}" for line in todo]
        body += [f"    static_cast<void>({p});" for p in params]
        body += ["    errno = ENOSYS;  // Remove these two lines once the function is written.",
                 f"    fatal(\"{name} is not written yet\");"]
        source = pattern.sub(lambda m: m.group(1) + "{\n" + "\n".join(body) + "\n}\n", source, count=1)
    # The helpers that handle_request() is to call are unused until the participant writes it: mark them
    # [[maybe_unused]] (in the skeleton only), so that its first build is clean and the first verdict is
    # about behaviour, not about helpers the participant is meant to use.
    for name in SKELETON_HELPERS:
        pattern = re.compile(rf"^(static [^\n(]*\b{name}\([^)]*\);)$", re.MULTILINE)
        if len(pattern.findall(source)) != 1:
            raise SystemExit(f"exercises.py: found no single declaration of {name}() in step a's source: "
                             "update SKELETON_HELPERS in tools/exercises.py")
        source = pattern.sub(r"[[maybe_unused]] \1  // Unused until your handle_request() calls it.", source)
    return ("// The exercise for step a: the socket calls are yours to write (see TODO below).\n"
            "// make check STEP=a tells how far it works; make hint STEP=a gives a hint.\n" + source)


# ---------------------------------------------------------------------------
# Verdicts: what make check last said of each step, kept beside the exercises.


JUDGE_FILES = [REPO / "tools" / "steps.py", *sorted((REPO / "tools" / "checks").glob("*.py")),
               REPO / "tools" / "checks" / "shim.cpp"]


def fingerprint(path: Path) -> str:
    """The participant's file and the judge's own code: a verdict holds while neither has changed."""
    digest = hashlib.sha256(path.read_bytes() if path.exists() else b"")
    for judge in JUDGE_FILES:
        digest.update(judge.read_bytes())
    return digest.hexdigest()


def verdict_path(step: str) -> Path:
    return EXERCISES / f".verdict-{step}.json"


def load_verdict(step: str) -> dict | None:
    try:
        return json.loads(verdict_path(step).read_text())
    except (OSError, ValueError):
        return None


def fresh_verdict(step: str) -> dict | None:
    """The last verdict of the participant's file as it is now, if there is one."""
    verdict = load_verdict(step)
    if verdict and verdict.get("fingerprint") == fingerprint(exercise_path(step)):
        return verdict
    return None


def save_verdict(step: str, passed: int, total: int, failing: checks.Outcome | None, send: bool = True) -> dict:
    verdict = {
        "step": step,
        "passed": passed == total,
        "checks": [passed, total],
        "failing": failing.check.key if failing else None,
        "failing_title": failing.check.title if failing else None,
        "hint": failing.hint if failing else None,
        "at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "fingerprint": fingerprint(exercise_path(step)),
    }
    EXERCISES.mkdir(parents=True, exist_ok=True)
    verdict_path(step).write_text(json.dumps(verdict, indent=1) + "\n")
    if send:
        send_to_room([verdict])
    return verdict


def hints_shown(step: str) -> dict:
    try:
        return json.loads((EXERCISES / f".hints-{step}.json").read_text())
    except (OSError, ValueError):
        return {"evidence": None, "next": 0, "count": 0}


def send_to_room(verdicts: list[dict]) -> None:
    """Tell the room (make join) these verdicts, all within half a second: only the verdicts, never the
    code; whatever the room does, the verdicts and the exit status stay as they are (room_client)."""
    import room_client

    note = room_client.send_verdicts([(v["step"], v["passed"], tuple(v["checks"]), v["failing"],
                                       hints_shown(v["step"])["count"]) for v in verdicts],
                                     checkout=EXERCISES.parent)
    if note:
        say(note)


# ---------------------------------------------------------------------------
# make exercise


def starting_point(step: str) -> tuple[str, str]:
    """The text a step's exercise starts from, and where it comes from, in words: the participant's own
    previous step when it passes its checks, else the previous step's reference (a skeleton for the
    first step)."""
    record = steps.STEPS[step]
    previous = record.previous
    if previous is None:
        return skeleton(), f"a skeleton of step {step}"
    own = exercise_path(previous.letter)
    if own.exists():
        verdict = fresh_verdict(previous.letter)
        if verdict is None:
            say(f"Checking your step {previous.letter} first ({shown(own)}), to start from it if it passes ...")
            quietly_check(previous.letter)
            verdict = fresh_verdict(previous.letter)
        if verdict and verdict["passed"]:
            return own.read_text(), f"your own step {previous.letter}, which passes its checks"
        failing = f" (its first failing check: {verdict['failing']})" if verdict and verdict["failing"] else ""
        return (previous.source.read_text(),
                f"step {previous.letter}'s reference server: your {shown(own)} does not pass its checks yet"
                f"{failing}, and stays as it is")
    return previous.source.read_text(), f"step {previous.letter}'s reference server"


def cmd_exercise(step: str) -> int:
    path = exercise_path(step)
    task = steps.STEPS[step]
    if path.exists():
        say(f"{shown(path)} exists already: it was not touched.")
        say(f"To start over: rm {shown(path)} && make exercise STEP={step}")
        say(f"To check it:   make check STEP={step}")
        return 0
    text, origin = starting_point(step)
    EXERCISES.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    say(f"Created {shown(path)} (it starts as {origin}).")
    say()
    say(f"Step {step}'s goal:")
    say(wrapped(task.goal))
    say()
    say("What to change:")
    say(wrapped(task.change))
    say()
    say(f"Next: edit {shown(path)}, then run   make check STEP={step}")
    say(f"      (make hint STEP={step} for a hint, make watch STEP={step} to re-check on every save)")
    return 0


# ---------------------------------------------------------------------------
# make check


def build(step: str, quiet: bool = False) -> tuple[Path | None, list[str], str]:
    """Compile the participant's file as the checks need it (tools/checks/code.py: the steps'
    warnings, linked dynamically, with the compiler's call graph beside it). Returns the binary
    (None if the build failed), the warnings, and what the compiler printed."""
    source = exercise_path(step)
    binary = BUILD / f"webserver3{step}"
    if not quiet:
        say(f"Building {shown(source)}: {os.environ.get('CXX', 'c++')} {' '.join(code.CXXFLAGS)} ...")
    result = code.compile_server(source, binary)
    if result.output and not quiet:
        sys.stdout.write(result.output)  # Exactly as the compiler printed it.
        sys.stdout.flush()
    return result.binary, result.warnings, result.output


def report(outcome: checks.Outcome, program: str) -> None:
    if outcome.skipped:
        say(f"  SKIP  {outcome.check.title} ({outcome.skipped})")
        return
    mark = "PASS" if outcome.passed else "FAIL"
    say(f"  {mark}  {outcome.check.title}")
    if not outcome.passed:
        say(f"        expected: {outcome.expected}")
        say(f"        seen:     {outcome.seen}")
        say(f"        by hand:  {outcome.reproduce(program)}")
        say(f"        hint:     {outcome.hint}")


def client3_ready() -> bool:
    """The burst checks use client3: say so plainly when it is not built (make check builds it)."""
    try:
        harness.binary("client3")
        return True
    except FileNotFoundError:
        say(f"client3 is not built ({harness.BIN}/client3): run   make client   (make check and make watch "
            "build it themselves)")
        return False


def run_checks(step: str, program: str, source: Path | None, on_outcome=None, keys=None) -> list[checks.Outcome]:
    harness.prepare_process()
    try:
        return checks.run_step(step, program, on_outcome, source, keys)
    finally:
        harness.kill_and_reap_children(timeout=5)


BUILD_CHECK = checks.Check("builds", "builds without warnings (-Wall -Wextra -Wpedantic)", lambda ctx: None,
                           "The steps build clean: read the compiler's warning above and fix it.", "make check")


def quietly_check(step: str, send: bool = True) -> dict | None:
    """Check the participant's file without printing the details (for make progress and make
    exercise); keep and return the verdict."""
    binary, warnings, output = build(step, quiet=True)
    if binary is None:
        failing = checks.Outcome(BUILD_CHECK, False, seen=(output.splitlines() or ["the build failed"])[0],
                                 hint="The build failed: run make check STEP=" + step + " to see the compiler's messages.")
        return save_verdict(step, 0, 1, failing, send)
    outcomes = [o for o in run_checks(step, str(binary), exercise_path(step)) if not o.skipped]
    failing = next((o for o in outcomes if not o.passed), None)
    if warnings and failing is None:
        failing = checks.Outcome(BUILD_CHECK, False, seen=warnings[0], hint=BUILD_CHECK.hint)
    passed = sum(o.passed for o in outcomes) + int(not warnings)
    return save_verdict(step, passed, len(outcomes) + 1, failing, send)


def cmd_check(step: str, server: str | None, only: str | None = None) -> int:
    if not client3_ready():
        return 1
    try:
        total = passed = 0
        source = None
        failing = None
        if server:
            program = str(Path(server).resolve())
            if not os.access(program, os.X_OK):
                say(f"{server} is not an executable program")
                return 1
            say(f"Checking {server} against step {step}'s checks:")
        else:
            if not exercise_path(step).exists():
                say(f"{shown(exercise_path(step))} does not exist yet: run   make exercise STEP={step}")
                return 1
            binary, warnings, output = build(step)
            if binary is None:
                say(f"make check STEP={step}: the build failed (the compiler's messages are above).")
                save_verdict(step, 0, 1, checks.Outcome(
                    BUILD_CHECK, False, seen=(output.splitlines() or ["the build failed"])[0],
                    hint="The build failed: read the compiler's first error above, and fix it first."))
                return 1
            program = str(binary)
            source = exercise_path(step)
            total, passed = 1, int(not warnings)
            say(f"Checking step {step}:")
            say(f"  {'PASS' if not warnings else 'FAIL'}  {BUILD_CHECK.title}")
            if warnings:
                failing = checks.Outcome(BUILD_CHECK, False, seen=warnings[0], hint=BUILD_CHECK.hint)
                say(f"        seen:     {warnings[0]}")
                say(f"        hint:     {BUILD_CHECK.hint}")
        shown_program = shown(Path(program))
        keys = [only] if only else None
        for outcome in run_checks(step, program, source, lambda o: report(o, shown_program), keys):
            if outcome.skipped:
                continue
            total += 1
            passed += outcome.passed
            if not outcome.passed and failing is None:
                failing = outcome
        say(f"{passed} of {total} checks passed" + (f": step {step} works." if passed == total else
                                                   f". make hint STEP={step} shows a hint for the first failure."))
        if not server and not only:
            save_verdict(step, passed, total, failing)
        return 0 if passed == total else 1
    except KeyboardInterrupt:
        say("\ninterrupted: stopping everything the check started")
        harness.kill_and_reap_children(timeout=5)
        return 130


# ---------------------------------------------------------------------------
# make hint, make watch, make progress


def cmd_hint(step: str) -> int:
    """First the hint for the check that failed last (chosen from what it saw), once per failure;
    then the step's own hints, in order."""
    record = steps.STEPS[step]
    state = hints_shown(step)
    verdict = load_verdict(step)
    EXERCISES.mkdir(parents=True, exist_ok=True)
    if verdict and not verdict["passed"] and verdict.get("hint") and state.get("evidence") != verdict["at"]:
        state["evidence"] = verdict["at"]
        state["count"] = state.get("count", 0) + 1
        (EXERCISES / f".hints-{step}.json").write_text(json.dumps(state))
        say(f"Your last make check STEP={step} failed on: {verdict['failing_title']}")
        say(wrapped(verdict["hint"]))
        if state["next"] < len(record.hints):
            say(f"(make hint STEP={step} again for the step's other hints)")
        return 0
    if state["next"] >= len(record.hints):
        say(f"That was the last hint for step {step} (all {len(record.hints)} shown). The step's README, "
            f"{record.folder}/README.md, explains the lesson. To see the hints again: "
            f"rm {shown(EXERCISES / f'.hints-{step}.json')}")
        return 0
    say(f"Hint {state['next'] + 1} of {len(record.hints)} for step {step}:")
    say(wrapped(record.hints[state["next"]]))
    state["next"] += 1
    state["count"] = state.get("count", 0) + 1
    (EXERCISES / f".hints-{step}.json").write_text(json.dumps(state))
    return 0


def cmd_watch(step: str) -> int:
    path = exercise_path(step)
    if not path.exists():
        say(f"{shown(path)} does not exist yet: run   make exercise STEP={step}")
        return 1
    if not client3_ready():
        return 1
    say(f"Watching {shown(path)}: every save runs make check STEP={step}. Ctrl-C to stop.")
    last = None
    try:
        while True:
            stamp = path.stat().st_mtime_ns if path.exists() else None
            if stamp != last:
                last = stamp
                say(f"\n--- {time.strftime('%H:%M:%S')} ---")
                subprocess.run([sys.executable, __file__, "check", step])
            time.sleep(0.5)
    except KeyboardInterrupt:
        say("\nstopped watching")
        return 0


def cmd_progress() -> int:
    """The report card: every step, passed, its first failing check, or not started."""
    if not client3_ready():
        return 1
    rows, counts, verdicts = [], {"passed": 0, "failing": 0, "not started": 0}, []
    for letter, record in steps.STEPS.items():
        path = exercise_path(letter)
        if not path.exists():
            rows.append((letter, record.title, "not started", ""))
            counts["not started"] += 1
            continue
        verdict = fresh_verdict(letter)
        if verdict is None:
            why = "not checked yet" if load_verdict(letter) is None else "changed since its last check"
            say(f"checking step {letter} ({shown(path)}: {why}) ...")
            verdict = quietly_check(letter, send=False)
        verdicts.append(verdict)
        passed, total = verdict["checks"]
        if verdict["passed"]:
            rows.append((letter, record.title, "passed", f"{passed} of {total}"))
            counts["passed"] += 1
        else:
            rows.append((letter, record.title, f"failing: {verdict['failing']}", f"{passed} of {total}"))
            counts["failing"] += 1
    say()
    say(f"{'step':<5} {'':<48} {'result':<28} checks")
    for letter, title, result, numbers in rows:
        say(f"{letter:<5} {title:<48} {result:<28} {numbers}")
    if verdicts:
        send_to_room(verdicts)
    say(f"{counts['passed']} of {len(rows)} steps passed, {counts['failing']} failing, "
        f"{counts['not started']} not started." + (" make check STEP=X for the details of a failing step."
                                                    if counts["failing"] else ""))
    return 0


def main(argv: list[str]) -> int:
    if len(argv) < 1 or argv[0] not in ("exercise", "check", "hint", "watch", "progress"):
        say(__doc__.strip())
        return 2
    command = argv[0]
    if command == "progress" or (command == "check" and len(argv) == 1):
        return cmd_progress()
    typed = (argv[1] if len(argv) > 1 else "").strip()
    record = steps.step(typed) if typed else None
    first, last = steps.LETTERS[0], steps.LETTERS[-1]
    if record is None:
        if typed:
            say(f"There is no step {typed}: steps are {first} to {last}. For example:   make {command} STEP=e")
        else:
            say(f"Which step? Say STEP={first} ... STEP={last}, for example:   make {command} STEP=e")
        return 2
    step = record.letter
    if command == "exercise":
        return cmd_exercise(step)
    if command == "check":
        # check STEP [BINARY] [--only KEY]: --only runs one check (the catalogue's test uses it).
        rest = argv[2:]
        only = None
        if "--only" in rest:
            index = rest.index("--only")
            only = rest[index + 1]
            del rest[index:index + 2]
            if only not in record.checks:
                say(f"step {step} has no check {only!r}: {', '.join(record.checks)}")
                return 2
        return cmd_check(step, rest[0] if rest and rest[0] else None, only)
    if command == "hint":
        return cmd_hint(step)
    return cmd_watch(step)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
