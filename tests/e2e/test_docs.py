"""The guide: README.md is a landing page that links every step folder, each
text lives in one place, and every command a page tells a participant to
type names things that exist."""

import pathlib
import re

import harness
import steps

PAGES = ["README.md", "docs/setup.md", "docs/instructor.md", "docs/room.md", "docs/from-python.md", "tests/README.md",
         "bench/README.md", "client/README.md", *(f"{s.folder}/README.md" for s in steps.STEPS.values())]


def test_readme_is_a_landing_page_that_links_every_step_folder():
    readme = (harness.REPO / "README.md").read_text()
    lines = readme.count("\n")
    assert lines <= 300, f"README.md has {lines} lines: at most 300 (step text lives in its folder)"
    assert readme.index("make tour") < readme.index("make test")
    for record in steps.STEPS.values():
        assert f"]({record.folder}/README.md)" in readme, f"README.md does not link {record.folder}"
    for link in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme):
        if not link.startswith("http"):
            assert (harness.REPO / link).exists(), f"README.md links {link}, which does not exist"


def paragraphs(text: str) -> list[str]:
    """The paragraphs of a page worth comparing: prose of some length, code blocks and tables aside."""
    found, in_code = [], False
    for block in re.split(r"\n\s*\n", text):
        if block.lstrip().startswith("```"):
            in_code = block.count("```") % 2 == 1 if not in_code else block.count("```") % 2 == 0
            continue
        if in_code or block.lstrip().startswith(("|", "#")):
            continue
        words = " ".join(block.split())
        if len(words) >= 120:
            found.append(words)
    return found


def test_no_paragraph_stands_in_two_places():
    seen = {}
    for page in PAGES:
        path = harness.REPO / page
        assert path.exists(), page
        for paragraph in paragraphs(path.read_text()):
            assert paragraph not in seen, f"the same paragraph in {seen[paragraph]} and {page}: {paragraph[:100]}..."
            seen[paragraph] = page


def test_each_step_readme_names_its_test_label_and_a_real_diff():
    for letter, record in steps.STEPS.items():
        folder = record.folder
        text = record.readme.read_text()
        assert f"make {folder}" in text
        assert f"./build/bin/webserver3{letter}" in text
        assert f"ctest -L step_{letter}" in text
        assert f"make exercise STEP={letter}" in text and f"make check STEP={letter}" in text
        for path in re.findall(r"diff (\S+) (\S+)", text):
            for name in path:
                assert (harness.REPO / name).exists(), name
        if record.previous:
            assert f"diff {record.previous.folder}/" in text, "the diff against the previous step"


def test_every_make_target_a_page_names_exists():
    targets = set()
    for page in PAGES:
        targets |= set(re.findall(r"`make ([a-z_-]*[a-z])\b", (harness.REPO / page).read_text()))
    makefile = (harness.REPO / "Makefile").read_text()
    declared = set(re.findall(r"^([a-z_-]+(?: [a-z_-]+)*):", makefile, re.M))
    declared = {name for line in declared for name in line.split()} | {s.folder for s in steps.STEPS.values()}
    missing = sorted(t for t in targets if t not in declared)
    assert not missing, f"the pages name make targets that do not exist: {missing}"


def test_tools_named_in_the_pages_exist():
    for page in PAGES:
        for name in re.findall(r"`((?:tools|tests|bench|docs)/[\w./-]+)`", (harness.REPO / page).read_text()):
            if (harness.REPO / name.rstrip("/")).exists() or harness.git("ls-files", name).stdout:
                continue
            # A git-ignored name is an output (bench/results/...): some program
            # of the project must write it, under that file name.
            ignored = harness.git("check-ignore", "-q", "--no-index", name).returncode == 0
            writers = harness.git("grep", "-l", "-F", pathlib.PurePath(name).name,
                                  "--", "*.py", "*.sh", "Makefile").stdout
            assert ignored and writers, (
                f"{page} names {name}, which does not exist"
                + (" (it is git-ignored, but no program of the project names the file it would write)" if ignored else ""))
