"""A catalogue of wrong solutions a participant plausibly writes, each a small
mutation of a step's reference source, the check that catches it, and the
words its hint must contain (tests/e2e/test_wrong_solutions.py runs
`tools/exercises.py check`, what `make check` runs, on each).

Each mutation finds its target with a regular expression and says how many
times it must match: if a step's source changes so that a mutation no longer
applies, the test fails loudly instead of checking an unchanged file."""

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class WrongSolution:
    name: str
    step: str
    what: str  # The mistake, in words.
    pattern: str  # A regular expression (MULTILINE) on the step's source.
    replacement: str
    matches: int  # How many times `pattern` matches the reference source.
    check: str  # The key of the check that must fail (tools/checks/behaviours.py).
    hint: str  # A regular expression the failure's output must contain.
    which: tuple[int, ...] | None = None  # Replace only these matches (0-based, -1 the last); None: all.

    def apply(self, source: str) -> str:
        found = list(re.finditer(self.pattern, source, re.MULTILINE))
        if len(found) != self.matches:
            raise AssertionError(f"wrong solution {self.name}: {self.pattern!r} matches {len(found)} times in "
                                 f"step {self.step}'s source, not {self.matches}: update tests/wrong_solutions.py")
        targets = found if self.which is None else [found[i] for i in self.which]
        for match in reversed(targets):
            source = source[:match.start()] + match.expand(self.replacement) + source[match.end():]
        return source


CATALOGUE = [
    WrongSolution(
        "signal_instead_of_sigaction", "e",
        "the SIGCHLD handler installed with signal(), which sets SA_RESTART on Linux",
        r"sigaction\(SIGCHLD, &(\w+), nullptr\) == -1", r"(static_cast<void>(\1), signal(SIGCHLD, grim_reaper)) == SIG_ERR",
        1, "eintr", r"SA_RESTART"),
    WrongSolution(
        "waitpid_without_wnohang", "g",
        "the handler's waitpid() loop without WNOHANG",
        r"waitpid\(-1, &status, WNOHANG\)", r"waitpid(-1, &status, 0)",
        1, "keeps_accepting", r"WNOHANG"),
    WrongSolution(
        "parent_keeps_its_copy", "g",
        "the parent does not close its copy of the connection",
        r"^(\s*)if \(close\(client_connection\) == -1\)\n\s*fatal\(\"close\"\);\n", r"",
        2, "curl_ends", r"parent must close its copy", which=(-1,)),
    WrongSolution(
        "child_never_exits", "c",
        "the child does not end with _exit(): it runs on into the parent's loop",
        r"^\s*_exit\(EXIT_SUCCESS\);\n", r"",
        1, "answers", r"_exit\(\)"),
    WrongSolution(
        "printf_in_handler", "g",
        "the SIGCHLD handler prints with printf and fflush",
        r"report_child\(pid, status\);",
        r'{ std::printf("Child %ld terminated with status %d\\n", static_cast<long>(pid), status); '
        r"std::fflush(stdout); }",
        1, "handler_safe", r"async-signal-safe"),
    WrongSolution(
        "request_printed_raw", "d",
        "step d prints the request raw, without escape_request()",
        r"escape_request\((std::string_view\(request, static_cast<std::size_t>\(n\)\)), end\)", r"put(end, \1)",
        1, "escapes", r"escape_request\(\)"),
    WrongSolution(
        "unflushed_at_fork", "g",
        "step g does not flush the parent's PID line, so the line is still in stdout's buffer at fork()",
        r"^\s*std::fflush\(stdout\);\n(?=\s*install_grim_reaper\(\);)", r"",
        1, "lines_once", r"fflush\(stdout\)"),
    WrongSolution(
        "wait_in_loop_no_handler", "e",
        "the handler is written but never installed (no sigaction() call); the parent wait()s in its loop",
        r"(?s)^    if \(sigaction\(SIGCHLD, &action, nullptr\) == -1\)\n\s*fatal\(\"sigaction\"\);\n"
        r"(.*_exit\(EXIT_SUCCESS\);\n.*?if \(close\(client_connection\) == -1\)\n\s*fatal\(\"close\"\);\n)",
        r"    static_cast<void>(action);\n\1        int status;\n        pid_t done = wait(&status);\n"
        r"        if (done != -1)\n            report_child(done, status);\n",
        1, "eintr", r"No SIGCHLD handler is installed"),
    WrongSolution(
        "child_does_not_sleep", "e",
        "the child exits at once after answering, without its --sleep pause",
        r"^\s*std::this_thread::sleep_for\(std::chrono::duration<double>\(options\.sleep_seconds\)\);\n", r"",
        1, "eintr", r"sleeps --sleep"),
]
