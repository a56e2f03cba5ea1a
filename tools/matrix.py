"""The matrix: every step's checks against every step's reference server.

    python3 tools/matrix.py            print it (about a minute)
    python3 tools/matrix.py --write    rewrite tests/check-matrix.txt

Column X shows step X's checks passing on its reference (the lesson) and the
previous step's lesson failing on it (the fix); tests/e2e/test_matrix.py
regenerates each column and compares it with the committed file.
"""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

import checks  # noqa: E402
import harness  # noqa: E402
import steps  # noqa: E402
from checks import code  # noqa: E402

COMMITTED = steps.REPO / "tests" / "check-matrix.txt"


def _signature(key: str, step: str) -> tuple:
    """What of its step a check's run depends on: runs with the same
    signature against the same server are one run, shared by the steps."""
    record = steps.STEPS[step]
    # A check reads its step's record: what the server may print on stderr, the lines it prints, its
    # sleep (whether it must take --sleep, and its default), its backlog and its options.
    return (key, record.lesson_stderr, record.prints, record.sleep, record.backlog, record.options)


def reference_program(letter: str) -> str:
    """Step `letter`'s reference, built as make check builds a participant's file."""
    return str(code.reference_build(steps.STEPS[letter].source))


def matrix(program_of: Callable[[str], str], jobs: int = 3,
           servers: str = steps.LETTERS) -> dict[tuple[str, str, str], checks.Outcome]:
    """{(check step, check key, server step): outcome} for every step's checks
    against every step's server in `servers` (program_of(letter) is its
    binary). Each distinct run happens once, `jobs` at a time."""
    runs = {}
    for step in steps.LETTERS:
        for key in steps.STEPS[step].checks:
            for server in servers:
                runs.setdefault((_signature(key, step), server), (key, step, server))
    # The longest runs (bursts of clients) start first, so that a column takes
    # about as long as its longest check, not that plus the tail of a queue.
    runs = dict(sorted(runs.items(), key=lambda item: not checks.CHECKS[item[1][0]].long))
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {sig: pool.submit(checks.run, checks.CHECKS[key], program_of(server), step,
                                    steps.STEPS[server].source)
                   for sig, (key, step, server) in runs.items()}
        done = {sig: future.result() for sig, future in futures.items()}
    return {(step, key, server): done[(_signature(key, step), server)]
            for step in steps.LETTERS for key in steps.STEPS[step].checks for server in servers}


def matrix_text(results: dict[tuple[str, str, str], checks.Outcome]) -> str:
    """The matrix as the committed file shows it: one row per step's check,
    one column per reference server, + passed, . failed, - not applicable."""
    lines = [
        "# Which checks pass on which reference server: + passed, . failed, - not applicable",
        "# (the check needs what that server has not: step h's SA_RESTART check, a SIGCHLD handler).",
        f"# Rows: `make check STEP=X`'s checks, step by step. Columns: build/bin/webserver3{steps.LETTERS[0]} "
        f"... 3{steps.LETTERS[-1]}.",
        "# Regenerate: python3 tools/matrix.py --write (tests/e2e/test_matrix.py compares).",
        "",
        f"{'step check':<22} " + " ".join(steps.LETTERS),
    ]
    for step in steps.LETTERS:
        for key in steps.STEPS[step].checks:
            marks = " ".join(mark(results[(step, key, server)]) for server in steps.LETTERS)
            lines.append(f"{step}    {key:<17} {marks}")
    return "\n".join(lines) + "\n"


def mark(outcome: checks.Outcome) -> str:
    return "-" if outcome.skipped else "+" if outcome.passed else "."


def committed_rows() -> dict[tuple[str, str], list[str]]:
    """{(step, check key): ['+', '.', ...]} as tests/check-matrix.txt has them."""
    return {tuple(line.split()[:2]): line.split()[2:] for line in COMMITTED.read_text().splitlines()
            if line[:1] in steps.LETTERS and len(line.split()) == 2 + len(steps.LETTERS)}


def main(argv: list[str]) -> int:
    harness.prepare_process()
    started = time.monotonic()
    try:
        results = matrix(reference_program, jobs=int(os.environ.get("JOBS", 6)))
    finally:
        harness.kill_and_reap_children(timeout=5)
    text = matrix_text(results)
    if argv[:1] == ["--write"]:
        COMMITTED.write_text(text)
        print(f"wrote {COMMITTED.relative_to(steps.REPO)} ({time.monotonic() - started:.0f} s)")
    else:
        sys.stdout.write(text)
        print(f"({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
