"""The house: the steps are written down once, and the steps' copies of the
plumbing stay alike.

Each step folder is paired with its record in tools/steps.py, and nothing
else lists the steps. Each step's server repeats the same plumbing (error
reports, escaping, the listening socket, the command line) after the marker
"// The plumbing.", on purpose: every file stands alone and diffs cleanly
against the previous step. Nothing but this test keeps the copies alike: a fix
made in one step's plumbing alone fails it, unless the difference is one of
DIFFERENCES below, each named, with the steps that have it."""

import difflib
import re
from dataclasses import dataclass

import harness
import steps

MARKER = "// The plumbing."


def test_every_step_folder_has_a_record_and_every_record_a_folder():
    assert not steps.FOLDERS_WITHOUT_RECORD, \
        f"step folders without a record in tools/steps.py: {steps.FOLDERS_WITHOUT_RECORD}"
    assert not steps.RECORDS_WITHOUT_FOLDER, \
        f"records in tools/steps.py without a step folder: {steps.RECORDS_WITHOUT_FOLDER}"
    assert steps.LETTERS == "".join(sorted(steps.LETTERS)), "the records are not in the folders' order"
    for record in steps.STEPS.values():
        assert record.source.exists(), f"{record.folder} has no {record.program}.cpp"
        assert record.readme.exists(), f"{record.folder} has no README.md"
        assert (harness.REPO / record.folder / "CMakeLists.txt").exists()
        assert (harness.REPO / "tests" / "unit" / f"step_{record.letter}_test.cpp").exists(), \
            f"step {record.letter} has no unit test"
        assert set(record.checks) <= set(__import__("checks").CHECKS), f"step {record.letter} names unknown checks"


def test_the_list_of_steps_is_written_only_in_tools_steps_py():
    """A literal list of the steps anywhere else would have to be updated by hand for a new step."""
    letters = steps.LETTERS
    written = [letters, " ".join(letters), ", ".join(letters), f"[{letters[0]}-{letters[-1]}]",
               f"step_{letters[0]}_iterative step_{letters[1]}"]
    listed = harness.git("ls-files", "*.py", "*.sh", "*.txt", "*.cmake", "Makefile", "*.json")
    assert listed.returncode == 0, f"git ls-files: {listed.stderr}"
    files = listed.stdout.split()
    found = []
    for name in files:
        if name in ("tools/steps.py", "tests/check-matrix.txt"):
            continue
        text = (harness.REPO / name).read_text(errors="replace")
        # Whole words only: "abcdefghijklmnopqrstuv" (a room's code in a test) is not a list of the steps.
        found += [f"{name}: {w!r}" for w in written if re.search(rf"(?<![a-z]){re.escape(w)}(?![a-z])", text)]
    assert not found, "the list of steps written out by hand (derive it from tools/steps.py or the step " \
                      "folders):\n" + "\n".join(found)


@dataclass(frozen=True)
class Difference:
    """A named difference between the steps' plumbing: `pattern` (a regular
    expression, multi-line) matches exactly once in the plumbing of each step
    of `where`, and nowhere else; it is replaced by `same` before the copies
    are compared."""

    name: str
    where: str  # The letters of the steps that have it.
    pattern: str
    same: str = ""


DIFFERENCES = [
    Difference("the --sleep option: its line in --help", "bce", r'\n *"  --sleep SECONDS[^\n]*'),
    Difference("the --sleep option: its code", "bce", r"HELP, SLEEP \}", "HELP }"),
    Difference("the --sleep option: its entry in getopt_long's table", "bce",
               r"\n *\{\"sleep\", required_argument, nullptr, SLEEP\},"),
    Difference("the --sleep option: its case in the switch", "bce",
               r"\n *break;\n *case SLEEP:\n[^\n]*sleep_seconds = [^\n]*"),
    Difference("put_number(): the digits of the 'Child PID' lines, from step c on", "cdefghij",
               r"\n// Write number \(a PID.*?\n}\n"),
    Difference("report_child(): the SIGCHLD handler's line, written with write(), in steps e to g (h and i "
               "print it with printf() outside any handler)", "efg",
               r"\n// Write \"Child PID terminated.*?\n}\n"),
    Difference("the backlog: 5 in steps a to e, 1024 from f on", steps.LETTERS,
               r"REQUEST_QUEUE_SIZE = \d+;[^\n]*", "REQUEST_QUEUE_SIZE = N;"),
    Difference("fatal(): what exit() does in a child, in the steps that have children (c to i)", "cdefghi",
               r"\n// \(In a child, exit\(\) flushes the stdio buffers it inherited: harmless,\n// [^\n]*"),
    Difference("the --workers option: its line in --help", "i", r'\n *"  --workers N[^\n]*'),
    Difference("the --workers option: its limit, MAX_WORKERS", "i",
               r"\n// The most workers that --workers allows\..*?MAX_WORKERS = \d+;\n"),
    Difference("the --workers option: its code", "i", r"HELP, WORKERS \}", "HELP }"),
    Difference("the --workers option: its entry in getopt_long's table", "i",
               r"\n *\{\"workers\", required_argument, nullptr, WORKERS\},"),
    Difference("the --workers option: its case in the switch, from 1 to MAX_WORKERS", "i",
               r"\n *case WORKERS:\n.*?\n *break;"),
]


def plumbing(record) -> str:
    text = record.source.read_text()
    assert text.count(MARKER) == 1, f"{record.source.name} must have the marker {MARKER!r} once"
    return text[text.index(MARKER):]


def test_the_plumbing_is_the_same_in_every_step_but_for_named_differences():
    normalised = {}
    for letter, record in steps.STEPS.items():
        text = plumbing(record)
        for difference in DIFFERENCES:
            count = len(re.findall(difference.pattern, text, re.DOTALL))
            wanted = 1 if letter in difference.where else 0
            assert count == wanted, (f"step {letter}'s plumbing has {count} of {difference.name!r} (wanted "
                                     f"{wanted}): tests/e2e/test_house.py's DIFFERENCES say which steps have it")
            text = re.sub(difference.pattern, difference.same, text, flags=re.DOTALL)
        normalised[letter] = text
    first = steps.LETTERS[0]
    for letter, text in normalised.items():
        if text != normalised[first]:
            diff = "".join(difflib.unified_diff(normalised[first].splitlines(True), text.splitlines(True),
                                                f"step {first}", f"step {letter}", n=1))
            raise AssertionError(
                f"step {letter}'s plumbing differs from step {first}'s: a fix made in one step must be made in "
                f"every step (or, if the difference is meant, named in DIFFERENCES):\n{diff}")
