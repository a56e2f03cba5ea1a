# The workshop's front door.
#   make                  build every step, the client and the tests
#   make step_c_fork      build one step (any step folder's name)
#   make test             install what is missing, build, run every test (CTest)
#   make tour             show every lesson live; make tour STEP=d for one,
#                         make tour PAUSE=1 to wait for Enter before each lesson
#   make bench            measure step g against a minimal server and Python's,
#                         and the designs (steps a, g, h, i, j) against each other
#                         (make bench ROUNDS=15 for more rounds than 9)
#   make lint             clang-format, clang-tidy and cppcheck on the C++ code
#   make sanitize         build with ASan and UBSan and run the whole suite
#   make clean            remove the build folders
# Run it from this folder: inside build/ is CMake's own Makefile, which knows
# the programs and the steps' names but not tour, test's installing, and the rest.

BUILD    ?= build
JOBS     ?= 2
STEP     ?=
PAUSE    ?=
ROUNDS   ?=
RUNS     ?=
# The Python that runs the tools: tools/python.sh chooses Debian's python3 (the
# one python3-pytest installs for) when the command runs, not when make reads
# this file: make expands a whole recipe before its first line (the install
# step) runs, so a Python looked up here would be looked up before it exists.
PYTHON   ?= sh tools/python.sh
# The installer, run first by every entry point, in a recipe line of its own.
INSTALL  ?= sh tools/install-deps.sh
# Extra options for CMake's first configuration, e.g. -DBUILD_TESTING=OFF.
CMAKE_FLAGS ?=
# The steps are the step folders: step_a_iterative, step_b_sleeping, ...
STEPS    := $(sort $(patsubst %/,%,$(wildcard step_?_*/)))

# Keep the build's output to what matters (no "Entering directory" lines).
MAKEFLAGS += --no-print-directory

.PHONY: all deps configure tests-configured test tour bench lint sanitize clean client $(STEPS)

all:
	@$(INSTALL) build
	@$(MAKE) -s configure
	cmake --build $(BUILD) -j $(JOBS)

# CMakePresets.json's "default" preset, in $(BUILD).
$(BUILD)/CMakeCache.txt:
	cmake --preset default -B $(BUILD) $(CMAKE_FLAGS)

# The tests need GoogleTest and pytest, which a step's build does not: CMake
# configures them when it finds them. make test, having installed them,
# configures again if they were missing then, and requires them.
tests-configured: $(BUILD)/CMakeCache.txt
	@test -f $(BUILD)/tests/CTestTestfile.cmake || cmake -S . -B $(BUILD) -DWORKSHOP_REQUIRE_TESTS=ON

configure: $(BUILD)/CMakeCache.txt

deps:
	@$(INSTALL)

# A step, and the load client that its lessons use (CMake's target of the
# same name, which also works from inside build/).
$(STEPS):
	@$(INSTALL) build
	@$(MAKE) -s configure
	cmake --build $(BUILD) -j $(JOBS) --target $@

client:
	@$(INSTALL) build
	@$(MAKE) -s configure
	cmake --build $(BUILD) -j $(JOBS) --target client3

test: deps
	$(MAKE) tests-configured
	$(MAKE) all
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The tour needs what each step folder's target builds (its server, client3,
# and the programs of its lesson: step h's webserver3g_logging) and nothing
# else. It builds them quietly: one line, and the build's own output (without
# its progress lines) only when it fails. Two tours started together take
# turns to build (flock on the build folder), rather than writing the same
# files at once.
TOUR_PROGRAMS := $(STEPS)

tour:
	@$(INSTALL) tour
	@printf 'Building the servers and client3 in %s/ ... ' '$(BUILD)'; \
	mkdir -p '$(BUILD)'; \
	if log=$$(flock '$(BUILD)' sh -c '$(MAKE) -s configure && cmake --build "$$1" -j $(JOBS) --target $(TOUR_PROGRAMS)' sh '$(BUILD)' 2>&1); \
	then echo done; \
	else echo failed:; printf '%s\n' "$$log" | grep -v -e '^\[ *[0-9]*%\]' -e '^-- '; exit 1; fi
	@WORKSHOP_BIN='$(abspath $(BUILD))/bin' $(PYTHON) tools/tour.py $(if $(filter-out 0,$(PAUSE)),--pause) $(STEP)

bench:
	@$(INSTALL) bench
	$(MAKE) all
	$(PYTHON) bench/bench.py $(if $(ROUNDS),--rounds $(ROUNDS))

lint:
	@$(INSTALL) lint
	$(MAKE) configure
	sh tools/lint.sh

# CMakePresets.json's "sanitize" preset (cmake --preset sanitize does the same), in $(BUILD)-sanitize.
sanitize: deps
	cmake --preset sanitize -B $(BUILD)-sanitize
	cmake --build $(BUILD)-sanitize -j $(JOBS)
	cd $(BUILD)-sanitize && ctest --output-on-failure -j $(JOBS)

clean:
	rm -rf $(BUILD) $(BUILD)-sanitize

# ---------------------------------------------------------------------------
# Learner mode: write each step yourself (tools/exercises.py, checks in tools/checks.py).
#   make exercise STEP=e    create exercises/webserver3e.cpp from step d's server, say what to do
#   make check STEP=e       build it, run step e's checks (SERVER=path checks any binary instead)
#   make hint STEP=e        the next hint
#   make watch STEP=e       re-check on every save
SERVER ?=
#   make progress          every step: passed, its first failing check, or not started
.PHONY: exercise check hint watch progress
exercise hint:
	@$(INSTALL) exercise
	@$(PYTHON) tools/exercises.py $@ $(STEP)
# What runs checks builds client3 first: the burst checks use it.
watch progress:
	@$(INSTALL) exercise
	@$(MAKE) client >/dev/null
	@$(PYTHON) tools/exercises.py $@ $(STEP)
check:
	@$(INSTALL) exercise
	@$(MAKE) client >/dev/null
	@$(PYTHON) tools/exercises.py check $(STEP) $(SERVER)

# ---------------------------------------------------------------------------
# The room: the instructor sees every participant's checks live (tools/room.py).
#   make room [PORT=8800]    the instructor: open the room, print the page's address
#                            and the line participants type (HIDE_NAMES=1: no names on the page)
#   make join ROOM=http://HOST:PORT/CODE NAME=yourname
#                            a participant: make check, watch and progress send their verdicts there
#   make leave               stop sending them
#   make room-screenshot     docs/room.png, taken by the room's browser test
PORT       ?= 8800
ROOM       ?=
NAME       ?=
HIDE_NAMES ?=
.PHONY: room join leave room-screenshot
room:
	@$(INSTALL) python
	@$(PYTHON) tools/room.py --port $(PORT) $(if $(filter-out 0,$(HIDE_NAMES)),--hide-names)
# ROOM and NAME reach the program through the environment (make exports the
# command line's variables), so that a name with a quote in it stays whole.
join:
	@$(INSTALL) python
	@$(PYTHON) tools/room_client.py join "$$ROOM" "$$NAME"
leave:
	@$(INSTALL) python
	@$(PYTHON) tools/room_client.py leave
room-screenshot: deps
	@mkdir -p docs
	@ROOM_SCREENSHOT='$(CURDIR)/docs/room.png' $$(test -x /usr/bin/pytest && echo /usr/bin/pytest || echo pytest) \
		-q -p no:cacheprovider tests/e2e/test_room.py -k test_the_page_on_a_projector
	@echo "docs/room.png written"

# Before the workshop (see the README's "Before the workshop").
#   make doctor            is this machine ready? one line per item, and what to do
#   make container-check   maintainers: build the dev container, run make test and make tour
#                          inside it as root and as its ordinary user (minutes; not part of make test)
#   make loaded-check      maintainers: every reference judged by make check, 56 times, 4 at once, beside
#                          2 busy loops (tools/loaded_check.py; RUNS=N for more or fewer)
#   make fresh-check       maintainers: every entry point above in a bare debian:bookworm container of
#                          its own, as root and as an ordinary user without sudo (many minutes)
.PHONY: doctor container-check fresh-check loaded-check
doctor:
	@sh tools/doctor.sh

container-check:
	@sh tools/container-check.sh

fresh-check:
	@sh tools/fresh-check.sh $(ENTRIES)

loaded-check:
	@$(INSTALL) exercise
	@$(MAKE) client >/dev/null
	@$(PYTHON) tools/loaded_check.py $(if $(RUNS),--runs $(RUNS)) $(STEP)

# Wrong turns: a target that does not exist, but looks like a step or a
# program, names the right one; anything else lists the targets.
letter_of = $(if $(filter step_%,$(1)),$(word 2,$(subst _, ,$(1))),$(patsubst webserver3%,%,$(filter webserver3%,$(1))))
step_for = $(filter step_$(call letter_of,$(1))_%,$(STEPS))
suggestion = $(if $(call step_for,$(1)),that step is built by 'make $(call step_for,$(1))',$(if $(filter client%,$(1)),client3 is built by 'make client',the targets are: make, $(STEPS:%=make %,) make client, make test, make tour, make bench, make lint, make sanitize, make clean, make doctor, make exercise STEP=a, make progress, make room))

Makefile: ;
.DEFAULT:
	$(error there is no target '$@': $(call suggestion,$@))
