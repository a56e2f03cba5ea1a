"""Copy each step's README.md into the main README.md, one level deeper.

Each step folder's README.md is the source of that step's section; the main
README.md holds a copy between markers:

    <!-- begin step_c_fork/README.md ... -->
    <!-- end step_c_fork/README.md -->

    python3 tools/sync_readme.py           rewrite README.md
    python3 tools/sync_readme.py --check   exit 1 if README.md is out of date
"""

import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MARKED = re.compile(r"(<!-- begin (\S+/README\.md)[^\n]*-->\n)(.*?)(<!-- end \2 -->)", re.DOTALL)


def demoted(markdown: str) -> str:
    """Headings one level deeper (# becomes ##), except inside code blocks."""
    lines, in_code = [], False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if not in_code and line.startswith("#"):
            line = "#" + line
        lines.append(line)
    return "\n".join(lines) + "\n"


def synced(readme: str) -> str:
    return MARKED.sub(lambda m: m.group(1) + demoted((REPO / m.group(2)).read_text()) + m.group(4), readme)


def main(argv: list[str]) -> int:
    path = REPO / "README.md"
    current = path.read_text()
    wanted = synced(current)
    if "--check" in argv:
        if current != wanted:
            print("README.md is out of date: run python3 tools/sync_readme.py", file=sys.stderr)
            return 1
        return 0
    path.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
