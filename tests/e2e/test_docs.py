"""The guide matches the repository: README.md holds each step's README, and
every command it tells a participant to type names things that exist."""

import re
import subprocess
import sys

import harness
import steps


def test_readme_holds_each_steps_readme():
    result = subprocess.run([sys.executable, str(harness.REPO / "tools" / "sync_readme.py"), "--check"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


def test_readme_opens_with_the_two_commands():
    readme = (harness.REPO / "README.md").read_text()
    assert readme.index("make tour") < readme.index("make test") < readme.index("## Step a")


def test_each_step_readme_names_its_test_label_and_a_real_diff():
    for letter, record in steps.STEPS.items():
        folder = record.folder
        text = (harness.REPO / folder / "README.md").read_text()
        assert f"make {folder}" in text
        assert f"./build/bin/webserver3{letter}" in text
        assert f"ctest -L step_{letter}" in text
        assert f"make exercise STEP={letter}" in text and f"make check STEP={letter}" in text
        for path in re.findall(r"diff (\S+) (\S+)", text):
            for name in path:
                assert (harness.REPO / name).exists(), name
        if record.previous:
            assert f"diff {record.previous.folder}/" in text, "the diff against the previous step"
