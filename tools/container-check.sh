#!/bin/sh
# make container-check: the maintainers' check of the dev container (.devcontainer/). It builds the
# image, starts it as devcontainer.json says (its init process, its run arguments), with a copy of
# this working tree (tracked and new files, no build folders) mounted as the only volume, and runs
# `make doctor`, `make test` and `make tour` inside, first as root and then as the container's
# ordinary user. One line per result; the full output of each in a log file. Takes minutes: run it
# after changing .devcontainer/, tools/install-deps.sh or what the tests and the tour need, and
# before a workshop. CONTAINER_ENGINE=docker or podman chooses the engine (else the first that runs).
set -u

repo=$(cd "$(dirname "$0")/.." && pwd -P)
image=lsbaws-workshop-check
say() { echo "container-check: $*"; }

engine=${CONTAINER_ENGINE:-}
if [ -z "$engine" ]; then
    for candidate in docker podman; do
        if command -v "$candidate" >/dev/null 2>&1 && "$candidate" info >/dev/null 2>&1; then
            engine=$candidate
            break
        fi
    done
fi
if [ -z "$engine" ]; then
    say "neither docker nor podman is installed and running: install one (Docker Desktop, or podman)"
    exit 1
fi
if ! command -v python3 >/dev/null 2>&1 || ! command -v git >/dev/null 2>&1; then
    say "needs python3 (to read devcontainer.json) and git (to copy the working tree)"
    exit 1
fi

# What devcontainer.json asks for: the ordinary user, the init process and the run arguments, one
# a line. (devcontainer.json may hold // comments, which JSON does not.)
settings=$(python3 - "$repo/.devcontainer/devcontainer.json" <<'PYTHON'
import json, re, sys
text = re.sub(r"^\s*//.*$", "", open(sys.argv[1]).read(), flags=re.MULTILINE)
config = json.loads(text)
print(config.get("remoteUser") or config.get("containerUser") or "root")
print("--init" if config.get("init") else "")
for argument in config.get("runArgs", []):
    print(argument)
PYTHON
) || {
    say "cannot read .devcontainer/devcontainer.json"
    exit 1
}
user=$(echo "$settings" | sed -n 1p)
init=$(echo "$settings" | sed -n 2p)
run_args=$(echo "$settings" | sed -n '3,$p')

logs=$(mktemp -d "${TMPDIR:-/tmp}/container-check-XXXXXX")
work="$logs/lsbaws"
container=""
cleanup() {
    if [ -n "$container" ]; then
        # The builds belong to the container's users: remove them from inside, then the container.
        "$engine" exec -u root "$container" rm -rf /workspaces/lsbaws/build >/dev/null 2>&1
        "$engine" rm -f "$container" >/dev/null 2>&1
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

seconds() { echo $(($(date +%s) - $1)); }
# result NAME LOG START STATUS [DETAIL]: one line; on failure, the end of the log.
result() {
    if [ "$4" -eq 0 ]; then
        say "$1: ok ($(seconds "$3") s)${5:+, $5}"
    else
        say "$1: FAILED ($(seconds "$3") s), log $2; its end:"
        tail -n 15 "$2" | sed 's/^/    /'
        failed=$((failed + 1))
    fi
}
failed=0

start=$(date +%s)
"$engine" build -t "$image" -f "$repo/.devcontainer/Dockerfile" "$repo/.devcontainer" >"$logs/build.log" 2>&1
status=$?
result "build $image with $engine" "$logs/build.log" "$start" "$status"
[ "$status" -eq 0 ] || exit 1

# A copy of the working tree, writable by the container's ordinary user whatever uid owns it here.
mkdir "$work"
(cd "$repo" && git ls-files -z --cached --others --exclude-standard | xargs -0 tar -cf - 2>/dev/null) | tar -C "$work" -xf -
chmod -R a+rwX "$work"

# shellcheck disable=SC2086 # The run arguments are one a line, none with spaces.
container=$("$engine" run -d $init $run_args -v "$work:/workspaces/lsbaws:z" -w /workspaces/lsbaws \
    "$image" sleep infinity 2>"$logs/run.log") || {
    say "could not start the container with: $init $run_args (see $logs/run.log)"
    exit 1
}
say "container $(echo "$container" | cut -c1-12) started ($init $(echo $run_args)), PID 1 is $("$engine" exec "$container" cat /proc/1/comm)"

for who in root "$user"; do
    for target in doctor test tour; do
        log="$logs/$who-$target.log"
        start=$(date +%s)
        "$engine" exec -u "$who" "$container" make "$target" >"$log" 2>&1
        status=$?
        detail=""
        case $target in
        test) detail=$(grep -E 'tests passed|tests failed' "$log" | tail -n 1) ;;
        tour)
            detail=$(grep -E 'Every lesson showed|did not show' "$log" | tail -n 1)
            # The process-limit lesson, which needs the limit to bind in the container.
            grep -q 'fork: Resource temporarily unavailable' "$log" || {
                status=1
                echo "container-check: the process-limit lesson did not show" >>"$log"
            }
            ;;
        doctor) detail=$(tail -n 1 "$log") ;;
        esac
        result "$who: make $target" "$log" "$start" "$status" "$detail"
    done
    # The next user builds afresh.
    "$engine" exec -u root "$container" rm -rf /workspaces/lsbaws/build
done

if [ "$failed" -eq 0 ]; then
    say "all passed (logs in $logs)"
    exit 0
fi
say "$failed failed (logs in $logs)"
exit 1
