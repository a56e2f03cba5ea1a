"""Learner mode: every participant writes each step, and the lesson's own checks judge it.

    python3 tools/exercises.py exercise STEP      create exercises/webserver3STEP.cpp, say what to do
    python3 tools/exercises.py check STEP [BIN]   build it (or take BIN), run step STEP's checks
    python3 tools/exercises.py hint STEP          the next hint
    python3 tools/exercises.py watch STEP         re-check on every save (Ctrl-C to stop)

The Makefile's `make exercise|check|hint|watch STEP=X` call this. The checks
themselves are tools/checks/, the same ones the end-to-end tests run; each
step's task, hints and checks are its record in tools/steps.py.
"""

from __future__ import annotations

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

REPO = harness.REPO
EXERCISES = Path(os.environ.get("WORKSHOP_EXERCISES", REPO / "exercises"))
BUILD = Path(os.environ.get("WORKSHOP_EXERCISE_BUILD", REPO / "build" / "exercises"))
# The steps' own warnings (their CMakeLists.txt), for the participant's file too.
CXXFLAGS = ["-std=c++17", "-Wall", "-Wextra", "-Wpedantic", "-O1", "-g"]

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


def starting_point(step: str) -> str:
    previous = steps.STEPS[step].previous
    return skeleton() if previous is None else previous.source.read_text()


def cmd_exercise(step: str) -> int:
    path = exercise_path(step)
    task = steps.STEPS[step]
    if path.exists():
        say(f"{shown(path)} exists already: it was not touched.")
        say(f"To start over: rm {shown(path)} && make exercise STEP={step}")
        say(f"To check it:   make check STEP={step}")
        return 0
    EXERCISES.mkdir(parents=True, exist_ok=True)
    path.write_text(starting_point(step))
    previous = task.previous
    origin = f"a skeleton of step {step}" if previous is None else f"step {previous.letter}'s server"
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


def build(step: str) -> tuple[Path | None, list[str]]:
    """Compile the participant's file. Returns the binary (None if the build
    failed) and the warnings the compiler printed."""
    source = exercise_path(step)
    if not source.exists():
        say(f"{shown(source)} does not exist yet: run   make exercise STEP={step}")
        return None, []
    BUILD.mkdir(parents=True, exist_ok=True)
    binary = BUILD / f"webserver3{step}"
    command = [os.environ.get("CXX", "c++"), *CXXFLAGS, "-o", str(binary), str(source)]
    say(f"Building {shown(source)}: {' '.join(command[:-3])} ...")
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if result.stdout:
        sys.stdout.write(result.stdout)  # Exactly as the compiler printed it.
        sys.stdout.flush()
    if result.returncode != 0:
        return None, []
    warnings = [line for line in result.stdout.splitlines() if ": warning:" in line]
    return binary, warnings


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


def cmd_check(step: str, server: str | None, only: str | None = None) -> int:
    harness.prepare_process()
    try:
        total = passed = 0
        source = None
        if server:
            program = str(Path(server).resolve())
            if not os.access(program, os.X_OK):
                say(f"{server} is not an executable program")
                return 1
            say(f"Checking {server} against step {step}'s checks:")
        else:
            binary, warnings = build(step)
            if binary is None:
                say(f"make check STEP={step}: the build failed (the compiler's messages are above).")
                return 1
            program = str(binary)
            source = exercise_path(step)
            total, passed = 1, int(not warnings)
            say(f"Checking step {step}:")
            say(f"  {'PASS' if not warnings else 'FAIL'}  builds without warnings (-Wall -Wextra -Wpedantic)")
            if warnings:
                say(f"        seen:     {warnings[0]}")
                say("        hint:     the steps build clean; read the compiler's warning above and fix it.")
        shown_program = shown(Path(program))
        keys = [only] if only else None
        for outcome in checks.run_step(step, program, lambda o: report(o, shown_program), source, keys):
            if outcome.skipped:
                continue
            total += 1
            passed += outcome.passed
        say(f"{passed} of {total} checks passed" + (f": step {step} works." if passed == total else
                                                   f". make hint STEP={step} shows the next hint."))
        return 0 if passed == total else 1
    except KeyboardInterrupt:
        say("\ninterrupted: stopping everything the check started")
        return 130
    finally:
        harness.kill_and_reap_children(timeout=5)


# ---------------------------------------------------------------------------
# make hint, make watch


def cmd_hint(step: str) -> int:
    hints = steps.STEPS[step].hints
    state = EXERCISES / f".hints-{step}"
    shown_before = int(state.read_text()) if state.exists() else 0
    if shown_before >= len(hints):
        say(f"That was the last hint for step {step} (all {len(hints)} shown). The step's README, "
            f"{steps.STEPS[step].folder}/README.md, explains the lesson. To see the hints again: rm {shown(state)}")
        return 0
    say(f"Hint {shown_before + 1} of {len(hints)} for step {step}:")
    say(wrapped(hints[shown_before]))
    EXERCISES.mkdir(parents=True, exist_ok=True)
    state.write_text(str(shown_before + 1))
    return 0


def cmd_watch(step: str) -> int:
    path = exercise_path(step)
    if not path.exists():
        say(f"{shown(path)} does not exist yet: run   make exercise STEP={step}")
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


def main(argv: list[str]) -> int:
    if len(argv) < 1 or argv[0] not in ("exercise", "check", "hint", "watch"):
        say(__doc__.strip())
        return 2
    command = argv[0]
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
