"""
``make demo``'s program end to end: real camera_source and segmentation_node processes.

Run for a short recording, it must exit by itself with status 0, write the overlay video and
PNGs, and print counts that agree with each other (the node's own report counts every overlay
the demo received).
"""

import os
import re
import subprocess
import sys

import cv2

from ros_env import module_domain, ros_environment

DOMAIN_ID = module_domain(15)


def test_demo_runs_the_pipeline_and_reports_consistent_counts(tmp_path):
    output_dir = tmp_path / 'demo_output'
    result = subprocess.run(
        [sys.executable, '-m', 'seg_ros.demo', '--seconds', '2', '--output-dir', str(output_dir),
         '--domain-id', str(DOMAIN_ID)],
        env=ros_environment(DOMAIN_ID), capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output

    counts = re.search(r'frames into segmentation_node: (\d+), processed: (\d+), '
                       r'dropped while busy: (\d+)', output)
    received = re.search(r'overlays received here: (\d+)', output)
    assert counts and received, output
    frames_in, processed, dropped = (int(value) for value in counts.groups())
    overlays = int(received.group(1))
    assert overlays > 0, output
    assert processed >= overlays, output
    assert processed + dropped <= frames_in, output
    assert 'backend: ' in output and 'latency camera stamp -> overlay received: p50' in output

    assert os.path.getsize(output_dir / 'overlay.mp4') > 0
    pngs = sorted(output_dir.glob('overlay_*.png'))
    assert pngs, output
    image = cv2.imread(str(pngs[0]))
    # 960x540 overlay plus the legend panel beside or below it.
    assert image is not None and image.shape[0] >= 540 and image.shape[1] >= 960
