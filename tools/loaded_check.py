"""make loaded-check: the judge on a busy machine, as a room shares one.

    python3 tools/loaded_check.py [--runs N] [--parallel P] [--busy B] [STEP...]

Every reference server, written into a participant's exercises folder, is
checked exactly as `make check STEP=X` checks a participant's file (built,
run with the shim, its code read). First once per step on the machine as it
is ("quiet"), then --runs times in all (default 56), --parallel at once
(default 4, four participants checking together), with --busy busy loops
running beside them (default 2: `sh -c 'while :; do :; done'`). A correct
server must pass every time. It prints each step's time, quiet and loaded,
the number of runs and of failures, and the failures themselves; it exits 0
only if none failed. Not a test: a measurement, run by maintainers before a
workshop and after changing the checks.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import steps  # noqa: E402

TOOL = Path(__file__).resolve().parent / "exercises.py"


def check(letter: str, folder: Path) -> tuple[str, int, float, str]:
    """make check STEP=letter on the reference, as a participant's file in a folder of its own."""
    exercises = folder / f"{letter}-{time.monotonic_ns()}"
    (exercises / "exercises").mkdir(parents=True)
    shutil.copy(steps.STEPS[letter].source, exercises / "exercises" / f"webserver3{letter}.cpp")
    env = dict(os.environ, WORKSHOP_EXERCISES=str(exercises / "exercises"),
               WORKSHOP_EXERCISE_BUILD=str(exercises / "build"))
    started = time.monotonic()
    result = subprocess.run([sys.executable, str(TOOL), "check", letter], env=env, cwd=exercises,
                            capture_output=True, text=True, timeout=600)
    seconds = time.monotonic() - started
    shutil.rmtree(exercises, ignore_errors=True)
    failures = "\n".join(line for line in result.stdout.splitlines()
                         if line.startswith(("  FAIL", "        expected", "        seen")))
    return letter, result.returncode, seconds, failures or result.stderr[-500:]


def load_average() -> str:
    return " ".join(open("/proc/loadavg").read().split()[:3])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=56)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--busy", type=int, default=2)
    parser.add_argument("steps", nargs="*")
    options = parser.parse_args(argv)
    letters = [steps.step(s).letter for s in options.steps] or list(steps.LETTERS)
    folder = Path(tempfile.mkdtemp(prefix="workshop-loaded-"))
    subprocess.run(["make", "-s", "client"], cwd=steps.REPO, stdout=subprocess.DEVNULL, check=True)
    print(f"loaded-check: steps {' '.join(letters)}; load average {load_average()} before starting", flush=True)

    quiet, quiet_failed = {}, 0
    for letter in letters:
        _, status, seconds, failures = check(letter, folder)
        quiet[letter] = seconds
        quiet_failed += bool(status)
        print(f"  quiet  step {letter}: {seconds:5.1f} s  {'passed' if status == 0 else 'FAILED'}", flush=True)
        if status:
            print("    " + failures.replace("\n", "\n    "))

    busy = [subprocess.Popen(["sh", "-c", "while :; do :; done"], process_group=0) for _ in range(options.busy)]
    results = []
    try:
        order = [letters[i % len(letters)] for i in range(options.runs)]
        print(f"loaded: {options.runs} runs, {options.parallel} at once, {options.busy} busy loops beside them",
              flush=True)
        with ThreadPoolExecutor(options.parallel) as pool:
            for letter, status, seconds, failures in pool.map(lambda s: check(s, folder), order):
                results.append((letter, status, seconds, failures))
                if status:
                    print(f"  FAILED step {letter} ({seconds:.1f} s, load {load_average()}):\n    "
                          + failures.replace("\n", "\n    "), flush=True)
    finally:
        for loop in busy:
            os.killpg(loop.pid, signal.SIGKILL)
            loop.wait()
        shutil.rmtree(folder, ignore_errors=True)

    print(f"\n{'step':<6}{'quiet':>8}{'loaded median':>16}{'loaded max':>13}{'runs':>7}{'failed':>8}")
    for letter in letters:
        mine = [r for r in results if r[0] == letter]
        times = [r[2] for r in mine]
        print(f"{letter:<6}{quiet[letter]:>7.1f}s{statistics.median(times) if times else 0:>15.1f}s"
              f"{max(times) if times else 0:>12.1f}s{len(mine):>7}{sum(1 for r in mine if r[1]):>8}")
    failed = sum(1 for r in results if r[1])
    print(f"loaded-check: {len(results)} loaded runs, {failed} failed; {len(quiet)} quiet runs, {quiet_failed} "
          f"failed; load average {load_average()} at the end")
    failed += quiet_failed
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
