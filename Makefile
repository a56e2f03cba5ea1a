# The workshop's front door.
#   make                  build every step, the client and the tests
#   make step_c_fork      build one step (any step folder's name)
#   make test             install what is missing, build, run every test (CTest)
#   make tour             show every lesson live; make tour STEP=d for one,
#                         make tour PAUSE=1 to wait for Enter before each lesson
#   make bench            measure step g against a minimal server and Python's
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
# Debian's python3 (the one python3-pytest installs for), not a pyenv one first on PATH.
PYTHON   ?= $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || command -v python3)
# Extra options for CMake's first configuration, e.g. -DWORKSHOP_TESTS=OFF.
CMAKE_FLAGS ?=
STEPS    := step_a_iterative step_b_sleeping step_c_fork step_d_no_close step_e_sigchld step_f_eintr step_g_waitpid \
            step_h_selfpipe step_i_prefork step_j_epoll

# Keep the build's output to what matters (no "Entering directory" lines).
MAKEFLAGS += --no-print-directory

.PHONY: all deps configure tests-configured test tour bench lint sanitize clean client $(STEPS)

all: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS)

# The tests need GoogleTest and pytest, which a step's build does not: CMake
# configures them when they are installed (WORKSHOP_TESTS=AUTO), and make test,
# having installed them, turns them on for good in the same build folder.
tests-configured: $(BUILD)/CMakeCache.txt
	@grep -qx 'WORKSHOP_TESTS:[A-Z]*=ON' $(BUILD)/CMakeCache.txt || cmake -S . -B $(BUILD) -DWORKSHOP_TESTS=ON

configure: $(BUILD)/CMakeCache.txt

deps:
	@sh tools/install-deps.sh

# A step, and the load client that its lessons use (CMake's target of the
# same name, which also works from inside build/).
$(STEPS): $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS) --target $@

client: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS) --target client3

test: deps
	$(MAKE) tests-configured
	$(MAKE) all
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The tour needs the servers and client3 only. It builds them quietly: one
# line, and the build's own output (without its progress lines) only when it
# fails. Two tours started together take turns to build (flock on the build
# folder), rather than writing the same files at once.
TOUR_PROGRAMS := $(foreach step,$(STEPS),webserver3$(word 2,$(subst _, ,$(step)))) client3

tour:
	@sh tools/install-deps.sh tour
	@printf 'Building the servers and client3 in %s/ ... ' '$(BUILD)'; \
	mkdir -p '$(BUILD)'; \
	if log=$$(flock '$(BUILD)' sh -c '$(MAKE) -s configure && cmake --build "$$1" -j $(JOBS) --target $(TOUR_PROGRAMS)' sh '$(BUILD)' 2>&1); \
	then echo done; \
	else echo failed:; printf '%s\n' "$$log" | grep -v -e '^\[ *[0-9]*%\]' -e '^-- '; exit 1; fi
	@WORKSHOP_BIN='$(abspath $(BUILD))/bin' $(PYTHON) tools/tour.py $(if $(filter-out 0,$(PAUSE)),--pause) $(STEP)

bench:
	@sh tools/install-deps.sh bench
	$(MAKE) all
	$(PYTHON) bench/bench.py $(if $(ROUNDS),--rounds $(ROUNDS))

lint:
	@sh tools/install-deps.sh lint
	$(MAKE) configure
	sh tools/lint.sh

sanitize: deps
	cmake -S . -B $(BUILD)-sanitize -DCMAKE_BUILD_TYPE=Debug -DWORKSHOP_SANITIZE=ON -DWORKSHOP_TESTS=ON
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
.PHONY: exercise check hint watch
exercise hint watch:
	@$(PYTHON) tools/exercises.py $@ $(STEP)
check:
	@$(MAKE) client >/dev/null
	@$(PYTHON) tools/exercises.py check $(STEP) $(SERVER)

# Before the workshop (see the README's "Before the workshop").
#   make doctor            is this machine ready? one line per item, and what to do
#   make container-check   maintainers: build the dev container, run make test and make tour
#                          inside it as root and as its ordinary user (minutes; not part of make test)
.PHONY: doctor container-check
doctor:
	@sh tools/doctor.sh

container-check:
	@sh tools/container-check.sh

# Wrong turns: a target that does not exist, but looks like a step or a
# program, names the right one; anything else lists the targets.
letter_of = $(if $(filter step_%,$(1)),$(word 2,$(subst _, ,$(1))),$(patsubst webserver3%,%,$(filter webserver3%,$(1))))
step_for = $(filter step_$(call letter_of,$(1))_%,$(STEPS))
suggestion = $(if $(call step_for,$(1)),that step is built by 'make $(call step_for,$(1))',$(if $(filter client%,$(1)),client3 is built by 'make client',the targets are: make, $(STEPS:%=make %,) make client, make test, make tour, make bench, make lint, make sanitize, make clean, make doctor, make exercise STEP=a))

Makefile: ;
.DEFAULT:
	$(error there is no target '$@': $(call suggestion,$@))
