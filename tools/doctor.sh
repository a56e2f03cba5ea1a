#!/bin/sh
# make doctor: is this machine ready for the workshop? One line per item; for each problem, the
# one thing to do. Run it first, on the machine (or in the container) you will work in.
#   ok   the item is ready
#   note works, with a remark (for example macOS: servers and client only)
#   FIX  the lessons or the tests will not work until you do what the line says
# Exits 1 when any item needs a fix. It changes nothing: it only looks, compiles a one-line
# program, traces `true`, and forks a few processes that wait and exit.
set -u

failures=0
missing_packages=""
line() { printf '%-4s  %-15s %s\n' "$1" "$2" "$3"; }
ok() { line ok "$1" "$2"; }
note() { line note "$1" "$2"; }
fix() { line FIX "$1" "$2"; failures=$((failures + 1)); }
have() { command -v "$1" >/dev/null 2>&1; }

repo=$(cd "$(dirname "$0")/.." && pwd -P)
system=$(uname -s)
linux=no
[ "$system" = Linux ] && linux=yes

# How to install a package here (Debian and Ubuntu; macOS uses Homebrew).
install_hint() {
    if [ "$linux" = no ]; then
        echo "brew install $1"
    elif [ "$(id -u)" -eq 0 ]; then
        echo "apt-get install -y $1 (or: make deps)"
    else
        echo "sudo apt-get install -y $1 (or, as root: make deps)"
    fi
}
# A program the workshop runs: found on PATH, or a FIX line naming its package.
need() { # need ITEM PROGRAM PACKAGE [what it is for]
    if have "$2"; then
        return 0
    fi
    fix "$1" "$2 not found${4:+ ($4)}: $(install_hint "$3")"
    missing_packages="$missing_packages $3"
    return 1
}
# Is signal 17 (SIGCHLD on Linux) set in a /proc status mask (SigIgn, SigBlk)?
has_sigchld() { # has_sigchld PID FIELD
    mask=$(sed -n "s/^$2:[[:space:]]*//p" "/proc/$1/status" 2>/dev/null)
    [ -n "$mask" ] && [ $((0x$mask & 0x10000)) -ne 0 ]
}

# --- The system. ---------------------------------------------------------------------------------
wsl=no
if [ "$linux" = yes ]; then
    if grep -qi microsoft /proc/version 2>/dev/null || [ -n "${WSL_DISTRO_NAME:-}" ]; then
        wsl=yes
    fi
    where=""
    if [ -f /.dockerenv ] || [ -f /run/.containerenv ] || [ -n "${CODESPACES:-}" ]; then
        where=", in a container"
    fi
    if [ "$wsl" = yes ] && ! grep -qi wsl2 /proc/version 2>/dev/null && uname -r | grep -qi -- '-Microsoft$'; then
        fix system "WSL 1 ($(uname -r)): it gets EINTR and ptrace wrong; in PowerShell: wsl --set-version ${WSL_DISTRO_NAME:-<distro>} 2"
    elif [ "$wsl" = yes ]; then
        ok system "Linux $(uname -r) (WSL 2)$where"
    else
        ok system "Linux $(uname -r)$where"
    fi
elif [ "$system" = Darwin ]; then
    note system "macOS: build and run the servers and the client here (make, curl, ps); the tests and the tour need Linux: use the dev container (README, Before the workshop)"
else
    note system "$system: the servers and the client are plain POSIX; the tests and the tour need Linux: use the dev container"
fi

# The repository on a Windows drive (WSL's /mnt/c): slow, and its permissions and file
# notifications are not Linux's.
case "$repo" in
/mnt/[a-zA-Z] | /mnt/[a-zA-Z]/*)
    if [ "$wsl" = yes ]; then
        fix repository "$repo is on a Windows drive: clone it into your Linux home instead: cd ~ && git clone $(git -C "$repo" remote get-url origin 2>/dev/null || echo '<repository URL>')"
    else
        ok repository "$repo"
    fi
    ;;
*) ok repository "$repo" ;;
esac

# --- The tools. ----------------------------------------------------------------------------------
cxx=""
for candidate in g++ c++ clang++; do
    if have "$candidate"; then
        cxx=$candidate
        break
    fi
done
if [ -z "$cxx" ]; then
    if [ "$linux" = yes ]; then need compiler g++ g++; else fix compiler "no C++ compiler: xcode-select --install"; fi
elif printf 'int main() { if constexpr (true) return 0; }\n' | "$cxx" -std=c++17 -x c++ -o /dev/null - >/dev/null 2>&1; then
    ok compiler "$cxx $("$cxx" -dumpversion 2>/dev/null), C++17"
else
    fix compiler "$cxx cannot compile C++17: $(install_hint g++)"
fi

# The steps link statically where they can (step_*/CMakeLists.txt): fewer pages for each fork()
# to copy. Without the static libraries they link dynamically: they work, each request costs more.
if [ "$linux" = yes ] && [ -n "$cxx" ]; then
    if printf 'int main() { return 0; }\n' | "$cxx" -static -x c++ -o /dev/null - >/dev/null 2>&1; then
        ok "static link" "available: the servers are linked statically (fewer pages to copy at each fork)"
    else
        note "static link" "no static C/C++ libraries: the servers will be linked dynamically, and each request costs more CPU (make bench); Fedora: sudo dnf install glibc-static libstdc++-static"
    fi
fi

if [ "$linux" = no ] && ! have cmake; then
    note cmake "not found; not needed to build a server alone (README, Before the workshop); brew install cmake"
elif need cmake cmake cmake; then
    version=$(cmake --version 2>/dev/null | sed -n 's/^cmake version \([0-9][0-9.]*\).*/\1/p')
    major=${version%%.*} rest=${version#*.}
    minor=${rest%%.*}
    if [ "${major:-0}" -gt 3 ] || { [ "${major:-0}" -eq 3 ] && [ "${minor:-0}" -ge 16 ]; }; then
        ok cmake "cmake $version"
    else
        fix cmake "cmake ${version:-of unknown version} is older than 3.16: $(install_hint cmake)"
    fi
fi

need make make make && ok make "$(make --version 2>/dev/null | sed -n 1p)"

if [ "$linux" = yes ]; then
    gtest_header=""
    for dir in /usr/include /usr/local/include; do
        [ -f "$dir/gtest/gtest.h" ] && gtest_header="$dir/gtest/gtest.h"
    done
    gtest_library=""
    for file in /usr/lib/*/libgtest.* /usr/lib/libgtest.* /usr/local/lib/libgtest.*; do
        [ -e "$file" ] && gtest_library=$file
    done
    if [ -n "$gtest_header" ] && [ -n "$gtest_library" ]; then
        ok GoogleTest "$gtest_header, $gtest_library"
    else
        fix GoogleTest "not found (for the unit tests): $(install_hint libgtest-dev)"
        missing_packages="$missing_packages libgtest-dev"
    fi

    if need python3 python3 python3 "the tests and the tour"; then
        ok python3 "$(python3 --version 2>&1)"
    fi
    pytest=""
    for candidate in pytest pytest-3; do
        have "$candidate" && pytest=$candidate && break
    done
    if [ -n "$pytest" ]; then
        ok pytest "$("$pytest" --version 2>&1 | sed -n '$p')"
    else
        need pytest pytest python3-pytest "the end-to-end tests"
    fi
fi

need curl curl curl "the client of every lesson" && ok curl "$(curl --version 2>/dev/null | sed -n 's/^\(curl [^ ]*\).*/\1/p')"

if [ "$linux" = yes ]; then
    found=yes
    need "ps, prlimit" ps procps "the evidence" || found=no
    for program in prlimit setpriv; do
        need "ps, prlimit" "$program" util-linux "the limits lessons" || found=no
    done
    [ "$found" = yes ] && ok "ps, prlimit" "procps and util-linux"

    # strace, and whether this machine lets it trace (containers often block ptrace).
    if need "strace, ptrace" strace strace "the kernel's evidence in the tour"; then
        if error=$(strace -f -o /dev/null true 2>&1); then
            ok "strace, ptrace" "strace $(strace -V 2>/dev/null | sed -n 's/^strace -- version //p'): tracing works"
        elif error=$(echo "$error" | sed -n 1p) && [ "$where" ]; then
            fix "strace, ptrace" "ptrace is blocked in this container ($error): start it with --cap-add=SYS_PTRACE (the dev container does; if that is not enough, also --security-opt seccomp=unconfined)"
        elif [ "$(cat /proc/sys/kernel/yama/ptrace_scope 2>/dev/null)" = 3 ]; then
            fix "strace, ptrace" "kernel.yama.ptrace_scope is 3 (no tracing until reboot): set it to 1 in /etc/sysctl.d and reboot"
        else
            fix "strace, ptrace" "strace cannot trace here: $error"
        fi
    fi
fi

# --- The limits. ---------------------------------------------------------------------------------
# The lessons lower the open-files limit themselves (to 32 or 64); the other tests hold up to a few
# hundred connections at once.
files=$(ulimit -n)
if [ "$files" = unlimited ] || [ "$files" -ge 1024 ]; then
    ok "open files" "limit $files"
elif [ "$linux" = no ]; then
    note "open files" "limit $files (the servers run fine; step d's lesson sets its own limit)"
else
    hard=$(ulimit -H -n)
    if [ "$hard" = unlimited ] || [ "$hard" -ge 1024 ]; then
        fix "open files" "limit $files is below the 1024 the tests need: run ulimit -n 1024 in this shell first"
    else
        fix "open files" "limit $files, at most $hard: raise the hard limit (/etc/security/limits.conf, or the container's --ulimit nofile=1024)"
    fi
fi

# The process limit (RLIMIT_NPROC) matters twice: the burst lessons need a few hundred processes
# at once, and step d's lesson needs the limit to bind. Root is not bound by it, so as root the
# lesson runs the server under an unused uid (setpriv), and that is what is tried here. Processes of
# the same uid outside this machine's view (a container sharing a uid with its host) count too.
if [ "$linux" = yes ] && have python3; then
    verdict=$(python3 "$(dirname "$0")/doctor_limits.py" 2>&1)
    case "$verdict" in
    ok\|*) ok processes "${verdict#ok|}" ;;
    FIX\|*) fix processes "${verdict#FIX|}" ;;
    *) fix processes "could not check: $verdict" ;;
    esac
elif [ "$linux" = yes ]; then
    fix processes "cannot check without python3: $(install_hint python3)"
else
    note processes "limit $(ulimit -u 2>/dev/null || echo unknown) (step d's process lesson needs Linux)"
fi

# --- SIGCHLD. ------------------------------------------------------------------------------------
# An ignored SIGCHLD is inherited across fork and exec, and then the kernel reaps every child at once:
# step d shows no zombie, step e no interrupted accept(). Look at this shell, at a program it
# starts, and at every process above it (the terminal, an editor, a launcher). GNU make resets
# SIGCHLD for what it runs, so `make test` and `make tour` are safe; what you type by hand is not.
if [ "$linux" = yes ]; then
    culprit=""
    if has_sigchld $$ SigIgn; then
        culprit="this shell (pid $$)"
    elif [ $((0x$(sed -n 's/^SigIgn:[[:space:]]*//p' /proc/self/status) & 0x10000)) -ne 0 ]; then
        culprit="the programs this shell starts"
    else
        pid=$PPID
        while [ "${pid:-0}" -gt 1 ]; do
            if has_sigchld "$pid" SigIgn; then
                culprit="$(cat "/proc/$pid/comm" 2>/dev/null) (pid $pid), which started this one"
                break
            fi
            pid=$(sed -n 's/^PPid:[[:space:]]*//p' "/proc/$pid/status" 2>/dev/null)
        done
    fi
    if [ -n "$culprit" ]; then
        fix SIGCHLD "ignored by $culprit: children are reaped at once, so no zombie will show: start your shell with it at its default: exec env --default-signal=CHLD bash (or trap - CHLD in an interactive bash)"
    elif has_sigchld $$ SigBlk; then
        fix SIGCHLD "blocked in this shell: a server started here never runs its handler: exec env --default-signal=CHLD bash"
    else
        ok SIGCHLD "default: children stay zombies until collected, as the lessons need"
    fi
fi

# --- Verdict. ------------------------------------------------------------------------------------
if [ "$failures" -eq 0 ]; then
    if [ "$linux" = yes ]; then
        echo "doctor: ready. Next: make tour (or make test)"
    else
        echo "doctor: ready for the servers and the client; for the tests and the tour, the dev container"
    fi
    exit 0
fi
if [ -n "$missing_packages" ] && [ "$linux" = yes ]; then
    echo "doctor: $failures to fix; the missing packages all at once:$( [ "$(id -u)" -eq 0 ] || echo ' sudo') apt-get install -y$missing_packages (or make deps)"
else
    echo "doctor: $failures to fix (the FIX lines above)"
fi
exit 1
