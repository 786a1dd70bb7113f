# The two commands of the README: `make demo` and `make test`. Each creates .venv/ when it is missing
# (ROS 2 Jazzy from PyPI, OpenCV < 5, NumPy, the project itself), then runs.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
ROS_PACKAGES := 'ros-jazzy-rclpy[fastrtps]' ros-jazzy-sensor-msgs ros-jazzy-std-msgs \
	ros-jazzy-diagnostic-msgs ros-jazzy-nav-msgs ros-jazzy-geometry-msgs \
	ros-jazzy-lifecycle-msgs
RUNTIME_STAMP := $(VENV)/.seg_ros-runtime
TEST_STAMP := $(VENV)/.seg_ros-test

.PHONY: demo test colcon-test lint bench gpu-check venv clean

venv: $(RUNTIME_STAMP)

$(RUNTIME_STAMP): setup.py package.xml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install $(ROS_PACKAGES) 'opencv-python<5' numpy onnxruntime openvino onnx
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
	rm -rf $(VENV) .venv-gpu build *.egg-info demo_output .pytest_cache .hypothesis
