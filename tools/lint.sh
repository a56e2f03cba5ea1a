#!/bin/sh
# make lint: clang-format, clang-tidy and cppcheck on the workshop's C++ code
# (the step servers, the client, the unit tests and bench/ when present).
# Every tool runs, and the lint fails if any of them reports anything.
#
#   sh tools/lint.sh            from anywhere in the repository
#   BUILD=other sh tools/lint.sh  use other/compile_commands.json instead of build/
#
# The configurations are .clang-format and .clang-tidy at the repository root
# (tests/unit/.clang-tidy adjusts the latter for GoogleTest); cppcheck's
# suppressions are below, each with its reason.
set -u

cd "$(dirname "$0")/.." || exit 2
ROOT=$(pwd)
BUILD=${BUILD:-build}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}

# Debian installs versioned names too; take the plain one when it exists.
find_tool()
{
    for name in "$@"; do
        if command -v "$name" >/dev/null 2>&1; then
            echo "$name"
            return 0
        fi
    done
    echo "lint: none of $* is installed (apt-get install clang-format clang-tidy cppcheck)" >&2
    return 1
}
CLANG_FORMAT=$(find_tool clang-format clang-format-14) || exit 2
CLANG_TIDY=$(find_tool clang-tidy clang-tidy-14) || exit 2
CPPCHECK=$(find_tool cppcheck) || exit 2

# The project's C++ sources, in a stable order. bench/ is linted when present.
DIRS=$(for d in step_* client tests/unit bench; do [ -d "$d" ] && echo "$d"; done)
# shellcheck disable=SC2086 # DIRS is a list of folder names without spaces.
SOURCES=$(find $DIRS -type f \( -name '*.cpp' -o -name '*.hpp' \) | LC_ALL=C sort)
CPP_FILES=$(echo "$SOURCES" | grep '\.cpp$')

failed=""

# --- clang-format: nothing to change ---------------------------------------
echo "lint: $CLANG_FORMAT on $(echo "$SOURCES" | wc -l) files"
# shellcheck disable=SC2086
if ! "$CLANG_FORMAT" --dry-run --Werror $SOURCES; then
    echo "lint: clang-format would change the files above; apply with: $CLANG_FORMAT -i FILE" >&2
    echo "      (a change to one step's server must land in all seven steps alike)" >&2
    failed="$failed clang-format"
fi

# --- clang-tidy: no finding, with the build's compile commands --------------
# Every .cpp must be in the compile database, or clang-tidy would guess its
# flags. Configure the build when the database is missing or out of date (a
# folder added since the last configure).
in_database()
{
    missing=""
    for f in $CPP_FILES; do
        grep -q "\"file\": \"$ROOT/$f\"" "$BUILD/compile_commands.json" 2>/dev/null || missing="$missing $f"
    done
    [ -z "$missing" ]
}
if ! in_database; then
    echo "lint: configuring $BUILD for its compile_commands.json"
    cmake -S . -B "$BUILD" >/dev/null || exit 2
    if ! in_database; then
        echo "lint: not in $BUILD/compile_commands.json:$missing" >&2
        failed="$failed clang-tidy"
    fi
fi
echo "lint: $CLANG_TIDY on $(echo "$CPP_FILES" | wc -l) files ($JOBS at a time)"
tidy_log=$(mktemp)
trap 'rm -f "$tidy_log"' EXIT
# One clang-tidy per file, in parallel. A finding is an error (WarningsAsErrors
# in .clang-tidy), so any non-zero exit fails xargs; the log is checked too.
# shellcheck disable=SC2086
if ! printf '%s\n' $CPP_FILES | xargs -P "$JOBS" -n 1 "$CLANG_TIDY" -p "$BUILD" --quiet >"$tidy_log" 2>&1 \
    || grep -qE '(warning|error):' "$tidy_log"; then
    # Drop clang-tidy's "N warnings generated." chatter; keep the findings.
    grep -vE '^[0-9]+ (warnings?|warnings? and [0-9]+ errors?|errors?) generated\.$' "$tidy_log" >&2
    failed="$failed clang-tidy"
fi

# --- cppcheck: no finding -----------------------------------------------------
# Each program is checked on its own: the seven servers and the client are
# separate programs that each define their own Options, which cppcheck, given
# them together, would call a violation of the one definition rule.
# Suppressions, each intentional:
#   useStlAlgorithm: suggests std::transform/std::accumulate for short plain
#     loops; the loops read more plainly to the workshop's audience.
#   redundantContinue in bench/floor_server.cpp: `while (waitpid(...) > 0)
#     continue;` spells out an empty loop body on purpose.
CPPCHECK_OPTIONS="--enable=warning,style,performance,portability --error-exitcode=1 --inline-suppr
    --std=c++17 --language=c++ --quiet
    --suppress=useStlAlgorithm
    --suppress=redundantContinue:bench/floor_server.cpp"
echo "lint: $CPPCHECK on $(echo "$CPP_FILES" | wc -l) files"
cppcheck_failed=0
for f in $CPP_FILES; do
    # The unit tests include their step's source by its path from the root.
    # shellcheck disable=SC2086
    "$CPPCHECK" $CPPCHECK_OPTIONS -I . -I tests/unit "$f" || cppcheck_failed=1
done
[ "$cppcheck_failed" -eq 0 ] || failed="$failed cppcheck"

if [ -n "$failed" ]; then
    echo "lint: FAILED:$failed" >&2
    exit 1
fi
echo "lint: clean (clang-format, clang-tidy, cppcheck)"
