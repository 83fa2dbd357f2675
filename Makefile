# hand_object_pose developer and CI entry points. A fresh machine needs only `make demo` and `make test`:
# both create the venv and build the messages first. See docs/build.md for what each step does.

PYTHON ?= python3
VENV := .venv
VENV_ABS := $(abspath $(VENV))
VPY := $(VENV)/bin/python
# What to test and how, e.g. `make test PYTEST_ARGS="test/msgs -x" PYTEST_WORKERS=0`.
PYTEST_ARGS ?= test
# pytest-xdist processes (0 = none). Two on the 2-core CI machine: many tests wait on subprocesses and
# DDS discovery, and --dist loadfile keeps each file's module fixtures (e.g. the colcon build) in one worker.
PYTEST_WORKERS ?= 2

# --- venv: reused while the requirement files and the interpreter version stay the same -------------
REQ_INSTALL := $(sort $(filter-out requirements/constraints.txt,$(wildcard requirements/*.txt)))
PY_VERSION := $(shell $(PYTHON) -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')
VENV_KEY := $(shell cat requirements/constraints.txt $(REQ_INSTALL) | sha256sum | cut -c1-16)-py$(PY_VERSION)
VENV_STAMP := $(VENV)/.stamp-$(VENV_KEY)

# --- messages: our package and tf2_msgs into the venv prefix; tf2_msgs also into a test-only prefix ----
# tf2_msgs is not on PyPI: test/fixtures/tf2_msgs defines TFMessage exactly as the real package (same type
# hash), so the node publishes /tf from a pip venv too. A ROS install has the real one (nothing of this is
# installed by CMakeLists.txt). The test-only prefix keeps a copy that tests put on or leave off the paths.
MSGS_STAMP := build/msgs/.installed
TEST_PREFIX := build/test_prefix
TEST_PREFIX_ABS := $(abspath $(TEST_PREFIX))
TF2_FIXTURE_STAMP := build/tf2_msgs/.installed
TF2_VENV_STAMP := build/tf2_msgs_venv/.installed
TF2_SOURCES := $(wildcard test/fixtures/tf2_msgs/* test/fixtures/tf2_msgs/msg/*) cmake/fix_pypi_wheel_includes.cmake
PY_MM := $(basename $(PY_VERSION))
# What cmake needs to find the ROS build wheels in the venv (nothing has to be sourced).
ROS_BUILD_ENV := VIRTUAL_ENV=$(VENV_ABS) PATH=$(VENV_ABS)/bin:$$PATH \
	AMENT_PREFIX_PATH=$(VENV_ABS) CMAKE_PREFIX_PATH=$(VENV_ABS)
CMAKE_COMMON := -DBUILD_TESTING=OFF -DPython3_EXECUTABLE=$(VENV_ABS)/bin/python

# --- tests: the process sees the tf2_msgs fixture; ros_test_helpers builds envs with and without it ----
TEST_ENV := ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST \
	HAND_OBJECT_POSE_TEST_PREFIX=$(TEST_PREFIX_ABS) \
	PYTHONPATH=$(TEST_PREFIX_ABS)/lib/python$(PY_MM)/site-packages$${PYTHONPATH:+:$$PYTHONPATH} \
	LD_LIBRARY_PATH=$(TEST_PREFIX_ABS)/lib$${LD_LIBRARY_PATH:+:$$LD_LIBRARY_PATH}

.PHONY: venv msgs test demo bench colcon-check clean
.DEFAULT_GOAL := test

venv: $(VENV_STAMP)

$(VENV_STAMP):
	@if [ -x $(VPY) ] && [ "$$($(VPY) -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')" = "$(PY_VERSION)" ]; then \
		echo "== venv: updating $(VENV) (requirement files changed)"; \
	else \
		echo "== venv: creating $(VENV) with $(PYTHON) $(PY_VERSION)"; \
		$(PYTHON) -m venv --clear $(VENV); \
	fi
	$(VPY) -m pip install --no-input -q -c requirements/constraints.txt $(addprefix -r ,$(REQ_INSTALL))
	@# colcon must never crawl the venv or the build trees (they hold generated package.xml/setup.py files).
	touch $(VENV)/COLCON_IGNORE
	rm -f $(VENV)/.stamp-*
	touch $@

msgs: $(MSGS_STAMP) $(TF2_VENV_STAMP) $(TF2_FIXTURE_STAMP)

$(MSGS_STAMP): $(VENV_STAMP) CMakeLists.txt package.xml cmake/fix_pypi_wheel_includes.cmake $(wildcard msg/*.msg)
	@mkdir -p build && touch build/COLCON_IGNORE
	@echo "== msgs: building hand_object_pose messages into $(VENV)"
	@$(ROS_BUILD_ENV) cmake -S . -B build/msgs -DCMAKE_INSTALL_PREFIX=$(VENV_ABS) $(CMAKE_COMMON) \
		-DINSTALL_PYTHON_SOURCES=OFF > build/msgs.log 2>&1 || { tail -40 build/msgs.log; exit 1; }
	@$(ROS_BUILD_ENV) cmake --build build/msgs -j2 >> build/msgs.log 2>&1 || { tail -40 build/msgs.log; exit 1; }
	@$(ROS_BUILD_ENV) cmake --install build/msgs >> build/msgs.log 2>&1 || { tail -40 build/msgs.log; exit 1; }
	touch $@

$(TF2_VENV_STAMP): $(VENV_STAMP) $(TF2_SOURCES)
	@mkdir -p build && touch build/COLCON_IGNORE
	@echo "== msgs: building tf2_msgs (TFMessage, same type as ROS's) into $(VENV)"
	@$(ROS_BUILD_ENV) cmake -S test/fixtures/tf2_msgs -B build/tf2_msgs_venv -DCMAKE_INSTALL_PREFIX=$(VENV_ABS) \
		$(CMAKE_COMMON) > build/tf2_msgs_venv.log 2>&1 || { tail -40 build/tf2_msgs_venv.log; exit 1; }
	@$(ROS_BUILD_ENV) cmake --build build/tf2_msgs_venv -j2 >> build/tf2_msgs_venv.log 2>&1 || { tail -40 build/tf2_msgs_venv.log; exit 1; }
	@$(ROS_BUILD_ENV) cmake --install build/tf2_msgs_venv >> build/tf2_msgs_venv.log 2>&1 || { tail -40 build/tf2_msgs_venv.log; exit 1; }
	touch $@

$(TF2_FIXTURE_STAMP): $(VENV_STAMP) $(TF2_SOURCES)
	@mkdir -p build && touch build/COLCON_IGNORE
	@echo "== msgs: building the test-only tf2_msgs fixture into $(TEST_PREFIX)"
	@$(ROS_BUILD_ENV) cmake -S test/fixtures/tf2_msgs -B build/tf2_msgs -DCMAKE_INSTALL_PREFIX=$(TEST_PREFIX_ABS) \
		$(CMAKE_COMMON) > build/tf2_msgs.log 2>&1 || { tail -40 build/tf2_msgs.log; exit 1; }
	@$(ROS_BUILD_ENV) cmake --build build/tf2_msgs -j2 >> build/tf2_msgs.log 2>&1 || { tail -40 build/tf2_msgs.log; exit 1; }
	@$(ROS_BUILD_ENV) cmake --install build/tf2_msgs >> build/tf2_msgs.log 2>&1 || { tail -40 build/tf2_msgs.log; exit 1; }
	touch $@

# pytest exits 5 when it collected no test; make fails on any non-zero status, so that counts as failure.
test: venv msgs
	@# Remove shared-memory segments left by crashed DDS participants (only unused ones are touched).
	-@$(VENV)/bin/fastdds shm clean > /dev/null 2>&1
	$(TEST_ENV) $(VPY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile --durations=10 $(PYTEST_ARGS)

colcon-check: venv msgs
	$(TEST_ENV) $(VPY) -m pytest -n 0 test/build/test_colcon_build.py

demo: venv msgs
	@# Synthetic camera -> pose node -> recorder (docs/demo.md). INPUT=<video or image folder>, MODEL=<.onnx>
	@# (PRESET=<name> unless a metadata file beside it names one), DEMO_ARGS="--frames 30 --rate 10 ...".
	-@$(VENV)/bin/fastdds shm clean > /dev/null 2>&1
	$(VPY) -m hand_object_pose.tools.demo $(if $(INPUT),--input "$(INPUT)") $(if $(MODEL),--model "$(MODEL)") \
		$(if $(PRESET),--preset "$(PRESET)") $(DEMO_ARGS)

bench: venv msgs
	@set -e; found=0; for script in bench/*.py; do \
		[ -f "$$script" ] || continue; found=1; \
		echo "== bench: $$script"; $(TEST_ENV) $(VPY) "$$script"; \
	done; [ $$found = 1 ] || echo "bench: no bench/*.py scripts yet"

clean:
	rm -rf build
