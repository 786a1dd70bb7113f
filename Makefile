# The two commands of the README: `make demo` and `make test`. Each creates .venv/ when it is missing
# (ROS 2 Jazzy from PyPI, OpenCV < 5, NumPy, the project itself), then runs.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
ROS_PACKAGES := 'ros-jazzy-rclpy[fastrtps]' ros-jazzy-sensor-msgs ros-jazzy-std-msgs \
	ros-jazzy-diagnostic-msgs ros-jazzy-nav-msgs ros-jazzy-geometry-msgs \
	ros-jazzy-lifecycle-msgs
# What package.xml's exec_depends give a robot (OpenCV, NumPy, Pillow, PyYAML, rosbags), plus the
# optional runtimes and onnx.
RUNTIME_PIP := 'opencv-python<5' numpy Pillow pyyaml 'rosbags>=0.10' onnxruntime openvino onnx
RUNTIME_STAMP := $(VENV)/.seg_ros-runtime
TEST_STAMP := $(VENV)/.seg_ros-test

.PHONY: demo test robot-test colcon-test lint bench gpu-check venv clean

venv: $(RUNTIME_STAMP)

$(RUNTIME_STAMP): setup.py package.xml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install $(ROS_PACKAGES) $(RUNTIME_PIP)
	$(PIP) install --no-deps -e .
	touch $@

# Test tools, plus torch/onnx for the converter and training tools (never needed by the node).
$(TEST_STAMP): $(RUNTIME_STAMP)
	$(PIP) install -e '.[test,tools]'
	touch $@

demo: $(RUNTIME_STAMP)
	$(PY) -m seg_ros.demo

# Where ../shared/ros2-extra exists: build it into ~/.cache/seg_ros/ros2-extra (about 95 s once,
# a second after) and make its vision_msgs, tf2_ros and sensor_msgs_py importable from the venv
# (test/ros2_extra.py).
test: $(TEST_STAMP)
	$(PY) test/ros2_extra.py --link-venv
	$(PY) -m pytest test

# The suite on a robot's Python stack: Debian's python3-opencv 4.6, python3-numpy 1.24, python3-pil
# and python3-yaml (apt; installed when missing and run as root), a venv made with
# /usr/bin/python3 -m venv --system-site-packages holding the ROS 2 wheels, rosbags and the test
# tools, no ONNX Runtime, OpenVINO, onnx or torch (test/robot_stack.py checks all that); the tests
# that need those skip, saying why.
ROBOT_VENV := .venv-robot
ROBOT_STAMP := $(ROBOT_VENV)/.seg_ros-robot
ROBOT_TEST_TOOLS := pytest hypothesis flake8 flake8-quotes flake8-import-order flake8-builtins \
	flake8-comprehensions flake8-docstrings pep257 pydocstyle

$(ROBOT_STAMP): setup.py package.xml Makefile test/robot_stack.py
	/usr/bin/python3 test/robot_stack.py $(ROBOT_VENV)
	touch $@

# test_ros2_launch.py builds and runs in ros2-extra's own Python and test_lint.py reads files: both
# give here what they give in make test, so they are left to it (5 of the 11 minutes measured).
robot-test: $(ROBOT_STAMP)
	$(ROBOT_VENV)/bin/python test/ros2_extra.py --link-venv
	$(ROBOT_VENV)/bin/python -m pytest test -rs --ignore=test/test_ros2_launch.py \
		--ignore=test/test_lint.py

# The whole suite as a robot's CI runs it: colcon build and colcon test of a copy of this checkout
# in a fresh workspace, against ../shared/ros2-extra; 0 failures and 0 errors or it fails.
colcon-test: $(TEST_STAMP)
	$(PY) test/run_colcon_suite.py --with-tools

bench: $(TEST_STAMP)
	$(PY) bench/segmentation_bench.py

# On a machine with an NVIDIA GPU: its own .venv-gpu (onnxruntime-gpu for the driver's CUDA), then
# the embedded and real ENet through the CUDA and TensorRT providers; exits 2 without a GPU.
gpu-check:
	$(PYTHON) bench/gpu_check.py

clean:
	rm -rf $(VENV) $(ROBOT_VENV) .venv-gpu build *.egg-info demo_output .pytest_cache .hypothesis
