"""The catalogue of solutions a participant plausibly writes, each a small
change to a step's reference source, and what `make check` must say of it
(tests/e2e/test_wrong_solutions.py runs `tools/exercises.py check`, what
`make check` runs, on each).

Two kinds of entries:
- a wrong solution names the check that must catch it and words its hint
  must contain (a regular expression);
- a correct one, written another way (a lambda handler, sa_sigaction with
  SA_SIGINFO, printf and fflush, other names), must pass every check.

Most entries are diffs in tests/wrong_solutions/NAME.diff, written by someone
who had read only the README, the step folders and the article, never the
checks; the first few are regular-expression mutations. A diff is applied
hunk by hunk wherever its old lines stand (not at their line numbers), so a
change elsewhere in the reference does not disturb it; if a step's source
changes so that an entry no longer applies, the test fails loudly rather than
check an unchanged file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

FOLDER = Path(__file__).resolve().parent / "wrong_solutions"


def apply_diff(source: str, diff: str) -> str:
    """Apply a unified diff's hunks to `source`, each where its old lines stand, exactly once."""
    hunks = re.split(r"^@@[^\n]*@@[^\n]*\n", diff, flags=re.M)[1:]
    assert hunks, "the diff has no hunk"
    for hunk in hunks:
        old, new = [], []
        for line in hunk.splitlines(True):
            if line.startswith("\\"):  # "\ No newline at end of file"
                continue
            tag, text = line[:1], line[1:]
            if tag in (" ", "-"):
                old.append(text)
            if tag in (" ", "+"):
                new.append(text)
        before, after = "".join(old), "".join(new)
        count = source.count(before)
        assert count == 1, f"a hunk's old lines stand {count} times in the reference, not once:\n{before}"
        source = source.replace(before, after)
    return source


@dataclass(frozen=True)
class WrongSolution:
    name: str
    step: str
    what: str  # The mistake, in words (for a correct entry: how it is written).
    check: str | None  # The key of the check that must fail; None: a correct solution, every check passes.
    hint: str = ""  # A regular expression the failure's output must contain.
    pattern: str = ""  # A regular expression (MULTILINE) on the step's source ...
    replacement: str = ""  # ... and what replaces it,
    matches: int = 0  # ... and how many times it must match.
    which: tuple[int, ...] | None = None  # Replace only these matches (0-based, -1 the last); None: all.
    diff: str = ""  # Or a unified diff against the step's reference.

    @property
    def correct(self) -> bool:
        return self.check is None

    def apply(self, source: str) -> str:
        if self.diff:
            return apply_diff(source, self.diff)
        found = list(re.finditer(self.pattern, source, re.MULTILINE))
        if len(found) != self.matches:
            raise AssertionError(f"wrong solution {self.name}: {self.pattern!r} matches {len(found)} times in "
                                 f"step {self.step}'s source, not {self.matches}: update tests/wrong_solutions.py")
        targets = found if self.which is None else [found[i] for i in self.which]
        for match in reversed(targets):
            source = source[:match.start()] + match.expand(self.replacement) + source[match.end():]
        return source


MUTATIONS = [
    WrongSolution(
        "signal_instead_of_sigaction", "e",
        "the SIGCHLD handler installed with signal(), which glibc makes set SA_RESTART",
        "eintr", r"signal\(\).*SA_RESTART",
        r"sigaction\(SIGCHLD, &(\w+), nullptr\) == -1", r"(static_cast<void>(\1), signal(SIGCHLD, grim_reaper)) == SIG_ERR",
        1),
    WrongSolution(
        "waitpid_without_wnohang", "g", "the handler's waitpid() loop without WNOHANG",
        "keeps_accepting", r"WNOHANG",
        r"waitpid\(-1, &status, WNOHANG\)", r"waitpid(-1, &status, 0)", 1),
    WrongSolution(
        "parent_keeps_its_copy", "g", "the parent does not close its copy of the connection",
        "curl_ends", r"parent must close its copy",
        r"^(\s*)if \(close\(client_connection\) == -1\)\n\s*fatal\(\"close\"\);\n", r"", 2, which=(-1,)),
    WrongSolution(
        "child_never_exits", "c", "the child does not end with _exit(): it runs on into the parent's loop",
        "answers", r"_exit\(\)",
        r"^\s*_exit\(EXIT_SUCCESS\);\n", r"", 1),
    WrongSolution(
        "printf_in_handler", "g", "the SIGCHLD handler prints with printf and fflush",
        "handler_safe", r"async-signal-safe",
        r"report_child\(pid, status\);",
        r'{ std::printf("Child %ld terminated with status %d\\n", static_cast<long>(pid), status); '
        r"std::fflush(stdout); }", 1),
    WrongSolution(
        "request_printed_raw", "d", "step d prints the request raw, without escape_request()",
        "escapes", r"untrusted input",
        r"escape_request\((std::string_view\(request, static_cast<std::size_t>\(n\)\)), end\)", r"put(end, \1)", 1),
    WrongSolution(
        "unflushed_at_fork", "g",
        "step g does not flush the parent's PID line, so the line is still in stdout's buffer at fork()",
        "lines_once", r"fflush\(stdout\)",
        r"^\s*std::fflush\(stdout\);\n(?=\s*install_grim_reaper\(\);)", r"", 1),
    WrongSolution(
        "child_does_not_sleep", "e", "the child exits at once after answering, without its --sleep pause",
        "eintr", r"sleeps --sleep",
        r"^\s*std::this_thread::sleep_for\(std::chrono::duration<double>\(options\.sleep_seconds\)\);\n", r"", 1),
]


def _from_file(path: Path) -> WrongSolution:
    """An entry from tests/wrong_solutions/NAME.diff: its header, then the diff."""
    header, fields = [], {}
    lines = path.read_text().splitlines(True)
    while lines and lines[0].startswith("#"):
        line = lines.pop(0)[1:].strip()
        key, _, value = line.partition(": ")
        if key in ("step", "verdict", "check", "hint"):
            fields[key] = value
        else:
            header.append(line)
    correct = fields.get("verdict") == "CORRECT"
    return WrongSolution(path.stem, fields["step"], " ".join(header), None if correct else fields["check"],
                         fields.get("hint", ""), diff="".join(lines))


CATALOGUE = MUTATIONS + [_from_file(path) for path in sorted(FOLDER.glob("*.diff"))]
