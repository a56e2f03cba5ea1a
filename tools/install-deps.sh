#!/bin/sh
# Install what the workshop needs and a fresh Debian or Ubuntu machine lacks.
#   tools/install-deps.sh          the build and test tools (make test)
#   tools/install-deps.sh build    the compiler and cmake only (make, make step_X)
#   tools/install-deps.sh exercise what the exercises need (make exercise, check, hint, watch, progress)
#   tools/install-deps.sh python   python3 only (make room, join, leave)
#   tools/install-deps.sh tour     what the tour needs (make tour): no test tools
#   tools/install-deps.sh bench    also the load generator (make bench)
#   tools/install-deps.sh lint     also clang-format, clang-tidy, cppcheck (make lint)
# Every make entry point runs it first, in its own recipe line, so that what
# it installs is there when the next line runs.
# As root it runs apt-get; otherwise it uses sudo when sudo needs no password,
# or prints the exact command to run, on one line, and fails. For the tour,
# strace is optional: without it the tour shows the signal lessons without the
# kernel's trace, so a missing strace alone is only reported.
set -eu

target="${1:-test}"
# strace: the tour (and its test) show what the kernel saw in the signal lessons.
# chromium, chromium-driver, python3-selenium: the room's page, tested in a real
# (headless) browser that needs nothing downloaded.
# iproute2 (ss): the checks read a listener's backlog; strace: the checks see a default sleep, the
# tour shows what the kernel saw; chromium, its driver and selenium: the room's browser test; git:
# the house and docs tests read the repository as git sees it (what is tracked, what is ignored).
packages="cmake g++ make libgtest-dev python3 python3-pytest curl procps util-linux iproute2 strace chromium chromium-driver python3-selenium git"
optional=""
case "$target" in
    build) packages="cmake g++ make" ;;
    exercise) packages="cmake g++ make python3 curl procps util-linux iproute2 strace" ;;
    python) packages="python3" ;;
    tour) packages="cmake g++ make python3 curl procps util-linux" optional="strace" ;;
    bench) packages="$packages apache2-utils" ;;
    lint) packages="$packages clang-format clang-tidy cppcheck" ;;
esac

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "install-deps: not a Debian-like system; make sure these are installed: $packages" >&2
    exit 0
fi

missing=""
required_missing=""
for package in $packages $optional; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $package"
        case " $optional " in *" $package "*) ;; *) required_missing="$required_missing $package" ;; esac
    fi
done
[ -z "$missing" ] && exit 0

# Wait for apt's lock rather than fail: another install may be running (two
# tours started together on a fresh machine, say).
wait="-o DPkg::Lock::Timeout=300"
install="apt-get $wait update && DEBIAN_FRONTEND=noninteractive apt-get $wait install -y --no-install-recommends$missing"
# What a person types instead: the same, without the lock's patience.
typed="sudo sh -c 'apt-get update && apt-get install -y --no-install-recommends$missing'"
if [ "$(id -u)" -eq 0 ]; then
    echo "install-deps: installing$missing"
    sh -c "$install"
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    echo "install-deps: installing$missing (through sudo)"
    sudo sh -c "$install"
elif [ -z "$required_missing" ]; then
    echo "install-deps: not installed:$missing (optional: the tour goes on without it); to add it: $typed" >&2
else
    echo "install-deps: missing$missing; install them (as root, or with sudo), then run the same make command again: $typed" >&2
    exit 1
fi
