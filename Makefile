# The workshop's front door.
#   make                  build every step, the client and the tests
#   make step_c_fork      build one step (any step folder's name)
#   make test             install what is missing, build, run every test (CTest)
#   make tour             show every lesson live; make tour STEP=d for one
#   make bench            measure step g against a minimal server and Python's
#                         (make bench ROUNDS=15 for more rounds than 9)
#   make lint             clang-format, clang-tidy and cppcheck on the C++ code
#   make sanitize         build with ASan and UBSan and run the whole suite
#   make clean            remove the build folders

BUILD    ?= build
JOBS     ?= 2
STEP     ?=
ROUNDS   ?=
# Debian's python3 (the one python3-pytest installs for), not a pyenv one first on PATH.
PYTHON   ?= $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || command -v python3)
STEPS    := step_a_iterative step_b_sleeping step_c_fork step_d_no_close step_e_sigchld step_f_eintr step_g_waitpid

# Keep the build's output to what matters (no "Entering directory" lines).
MAKEFLAGS += --no-print-directory

.PHONY: all deps configure test tour bench lint sanitize clean client $(STEPS)

all: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

configure: $(BUILD)/CMakeCache.txt

deps:
	@sh tools/install-deps.sh

# A step, and the load client that its lessons use.
$(STEPS): $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS) --target webserver3$(word 2,$(subst _, ,$@)) client3

client: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS) --target client3

test: deps
	$(MAKE) all
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

tour: deps
	$(MAKE) all
	$(PYTHON) tools/tour.py $(STEP)

bench:
	@sh tools/install-deps.sh bench
	$(MAKE) all
	cmake --build $(BUILD) -j $(JOBS) --target bench_webserver3g_static
	$(PYTHON) bench/bench.py $(if $(ROUNDS),--rounds $(ROUNDS))

lint:
	@sh tools/install-deps.sh lint
	$(MAKE) configure
	sh tools/lint.sh

sanitize: deps
	cmake -S . -B $(BUILD)-sanitize -DCMAKE_BUILD_TYPE=Debug -DWORKSHOP_SANITIZE=ON
	cmake --build $(BUILD)-sanitize -j $(JOBS)
	cd $(BUILD)-sanitize && ctest --output-on-failure -j $(JOBS)

clean:
	rm -rf $(BUILD) $(BUILD)-sanitize
