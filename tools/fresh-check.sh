#!/bin/sh
# make fresh-check: the maintainers' check that every make entry point the README shows works the
# first time on a fresh Debian machine with nothing but make and the repository.
#
# Each entry point runs in a fresh, bare debian:bookworm container of its own (host network, so that
# Debian's mirror is reachable), with a copy of this working tree (tracked and new files, no build
# folders), twice: as root, who must get a working command (the recipe installs what it needs), and
# as an ordinary user without sudo, who must get one line that says what to run, and never a
# "Permission denied" or "No such file" from a tool that was not there yet. One line per run; the
# full output of each in a log file, kept. Takes many minutes (every root run installs packages).
#
#   sh tools/fresh-check.sh [ENTRY...]     all entry points, or those named (tour test check ...)
#   CONTAINER_ENGINE=docker|podman         the engine (else the first that runs)
#   FRESH_JOBS=N                           containers at once (default 2)
set -u

repo=$(cd "$(dirname "$0")/.." && pwd -P)
image=docker.io/library/debian:bookworm
say() { echo "fresh-check: $*"; }

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
    say "neither docker nor podman is installed and running: install one"
    exit 1
fi
if ! "$engine" image exists "$image" 2>/dev/null && ! "$engine" pull -q "$image" >/dev/null 2>&1; then
    say "no $image image, and it cannot be pulled: build one (see ../shared/tools/container-base.sh)"
    exit 1
fi

# Each entry point: its name, the commands as the README shows them, and what root's output must
# show (an extended regular expression). The ordinary user's run must instead show the install
# line (make doctor, which installs nothing, names what is missing instead).
entries="
all|make|Built target
step|make step_a_iterative|Built target webserver3a
tour|make tour|Every lesson showed as expected
test|make test|100% tests passed
exercise|make exercise STEP=a|Created exercises/webserver3a.cpp
check|make exercise STEP=a && make check STEP=a|of [0-9]+ checks passed
hint|make hint STEP=a|Hint 1 of
watch|make exercise STEP=a && timeout -s INT 300 make watch STEP=a|of [0-9]+ checks passed
progress|make progress|step +result
bench|make bench|CPU us/request
doctor|make doctor|^(ok|FIX|note) 
room|timeout -s INT 20 make room PORT=0|make join ROOM=http
join|make join ROOM=http://localhost:1/abcdefghijklmnop NAME=ada|No room answers at
leave|make leave|has not joined a room
"
wanted="$*"
jobs=${FRESH_JOBS:-2}

logs=$(mktemp -d "${TMPDIR:-/tmp}/fresh-check-XXXXXX")
# The working tree as a participant's clone holds it: tracked files and new ones, not what git ignores.
(cd "$repo" && git ls-files -z --cached --others --exclude-standard | xargs -0 tar -cf "$logs/repo.tar" 2>/dev/null) || {
    say "cannot copy the working tree (git and tar are needed)"
    exit 1
}
say "logs in $logs"

# run NAME USER COMMAND PATTERN: one fresh container, one entry point, one user; one line of verdict.
run() {
    name=$1 user=$2 command=$3 pattern=$4
    log="$logs/$name.$user.log"
    started=$(date +%s)
    # As root: install make (the one thing a fresh machine is assumed to have), unpack the
    # repository, and for the ordinary user make it theirs; then the entry point, as typed.
    "$engine" run --rm -i --network host -v "$logs/repo.tar:/repo.tar:ro" "$image" sh -s >"$log" 2>&1 <<SCRIPT
set -e
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends make >/dev/null
useradd --create-home --shell /bin/sh learner
mkdir /work && tar -C /work -xf /repo.tar
[ "$user" = root ] || chown -R learner:learner /work
set +e
echo "--- as $user: $command"
if [ "$user" = root ]; then
    cd /work && sh -c '$command'
else
    runuser -u learner -- sh -c 'cd /work && $command'
fi
echo "--- exit status \$?"
SCRIPT
    seconds=$(($(date +%s) - started))
    verdict=ok
    status=$(sed -n 's/^--- exit status //p' "$log" | tail -1)
    if grep -Eq 'Permission denied|No such file or directory|command not found|: not found' "$log"; then
        verdict="FAIL: $(grep -Em1 'Permission denied|No such file or directory|command not found|: not found' "$log")"
    elif [ "$user" = root ]; then
        grep -Eq "$pattern" "$log" || verdict="FAIL: no '$pattern' in the output (exit status ${status:-none})"
    elif [ "$name" = doctor ]; then
        grep -q "FIX" "$log" && grep -q "apt-get install" "$log" || verdict="FAIL: the doctor named no package to install"
    else
        lines=$(grep -c "^install-deps: missing.*sudo sh -c 'apt-get update && apt-get install" "$log")
        if [ "$lines" -ne 1 ] || [ "${status:-0}" -eq 0 ]; then
            verdict="FAIL: expected one install line and a failure, saw $lines line(s), exit status ${status:-none}"
        fi
    fi
    printf 'fresh-check: %-9s %-8s %-60s %s (%ss)\n' "$name" "$user" "$command" "$verdict" "$seconds" | tee "$log.verdict"
}

running=0
for entry in $(echo "$entries" | tr ' ' '\a'); do
    entry=$(echo "$entry" | tr '\a' ' ')
    name=${entry%%|*} rest=${entry#*|}
    command=${rest%%|*} pattern=${rest#*|}
    case " $wanted " in "  " | *" $name "*) ;; *) continue ;; esac
    for user in root learner; do
        run "$name" "$user" "$command" "$pattern" &
        running=$((running + 1))
        if [ "$running" -ge "$jobs" ]; then
            wait
            running=0
        fi
    done
done
wait
if cat "$logs"/*.verdict 2>/dev/null | grep -q FAIL; then
    say "some entry points failed on a fresh machine (logs in $logs)"
    exit 1
fi
say "every entry point works on a fresh machine, as root and as an ordinary user (logs in $logs)"
