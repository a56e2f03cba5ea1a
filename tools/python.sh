#!/bin/sh
# Run a Python program of the workshop's: sh tools/python.sh tools/tour.py ARGS...
#
# Debian's python3 first (/usr/bin/python3: the one that python3-pytest
# installs for), else the first python3 on PATH. The Makefile calls this
# script rather than naming a Python itself, so that the choice is made when
# the command runs, after the recipe's install step: GNU make expands a whole
# recipe before it runs its first line, so a Python looked up in the Makefile
# (with $(shell ...)) is looked up before tools/install-deps.sh has installed it.
if [ -x /usr/bin/python3 ]; then
    exec /usr/bin/python3 "$@"
fi
if command -v python3 >/dev/null 2>&1; then
    exec python3 "$@"
fi
echo "python3 is not installed: install it (sudo apt-get install python3), then run the same make command again" >&2
exit 1
