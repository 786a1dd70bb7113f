"""The committed ENet (models/enet-synth) with plain OpenCV: files, metadata, accuracy."""

import json
import os

import cv2
import numpy as np
import pytest

from seg_ros.data import synthetic

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL_DIR = os.path.join(REPO_ROOT, 'models', 'enet-synth')
MODEL = os.path.join(MODEL_DIR, 'enet-synth.onnx')
# Written by seg_ros.tools.train with the model; MODEL_CARD.md quotes it.
SUMMARY = os.path.join(MODEL_DIR, 'enet-synth.json')
CARD = os.path.join(MODEL_DIR, 'MODEL_CARD.md')
# Held-out frames (synthetic.held_out_rng) beyond the 200 the card's figures come from.
FIRST_FRESH_FRAME = 1000
FRESH_FRAMES = 30
# 30 frames estimate the mIoU less precisely than the card's 200.
MARGIN = 0.04
MAX_BYTES = 3_000_000


@pytest.fixture(scope='module')
def summary() -> dict:
    with open(SUMMARY, encoding='utf-8') as summary_file:
        return json.load(summary_file)


@pytest.fixture(scope='module')
def recommended(summary: dict) -> dict:
    """Return the evaluation at the recommended input size (the size recorded in the model)."""
    matches = [r for r in summary['evaluation'] if r['size'] == summary['export_size']]
    assert len(matches) == 1, f'no evaluation at {summary["export_size"]}'
    return matches[0]


def test_model_is_small_and_records_classes_size_and_form(summary):
    onnx = pytest.importorskip('onnx', reason='reads the model metadata (pip install onnx)')
    assert os.path.getsize(MODEL) < MAX_BYTES
    model = onnx.load(MODEL)
    metadata = {p.key: p.value for p in model.metadata_props}
    width, height = (int(v) for v in summary['export_size'].split('x'))
    assert metadata['seg_ros.num_classes'] == str(len(synthetic.CLASS_NAMES))
    assert (metadata['seg_ros.input_width'], metadata['seg_ros.input_height']) == (
        str(width), str(height))
    assert metadata['seg_ros.format'] == 'scores'


def test_label_files_are_the_cityscapes_classes():
    with open(os.path.join(MODEL_DIR, 'classes.txt'), encoding='utf-8') as names:
        assert tuple(line.strip() for line in names) == synthetic.CLASS_NAMES
    colors = np.loadtxt(os.path.join(MODEL_DIR, 'colors.txt'), delimiter=',', dtype=np.uint8)
    np.testing.assert_array_equal(colors, synthetic.CLASS_COLORS_RGB)


def test_label_files_match_the_real_enet_ones(enet_dir):
    for ours, theirs in (('classes.txt', 'enet-classes.txt'), ('colors.txt', 'enet-colors.txt')):
        with open(os.path.join(MODEL_DIR, ours), encoding='utf-8') as ours_file, \
                open(os.path.join(enet_dir, theirs), encoding='utf-8') as theirs_file:
            assert ours_file.read().split() == theirs_file.read().split()


def test_card_quotes_the_recorded_figures(summary, recommended):
    with open(CARD, encoding='utf-8') as card_file:
        card = card_file.read()
    assert summary['command'] in card
    assert f'Recommended input size: {summary["export_size"]}' in card
    for result in summary['evaluation']:
        assert f'{result["miou"]:.3f}' in card, result['size']


def test_model_reaches_its_recorded_miou_on_fresh_frames(recommended):
    width, height = (int(v) for v in recommended['size'].split('x'))
    net = cv2.dnn.readNet(MODEL)
    classes = len(synthetic.CLASS_NAMES)
    confusion = np.zeros((classes, classes), np.int64)
    for index in range(FIRST_FRESH_FRAME, FIRST_FRESH_FRAME + FRESH_FRAMES):
        bgr, truth = synthetic.render_scene(synthetic.held_out_rng(index), width, height)
        # The node's pre-processing for this model: RGB, 1/255, no mean.
        net.setInput(cv2.dnn.blobFromImage(bgr, 1 / 255, (width, height), (0, 0, 0),
                                           swapRB=True, crop=False))
        scores = net.forward()
        assert scores.shape == (1, classes, height, width)
        confusion += synthetic.class_confusion(truth, scores[0].argmax(axis=0), classes)
    iou = synthetic.class_iou(confusion)
    miou = float(np.nanmean(iou))
    assert miou >= recommended['miou'] - MARGIN, (
        f'mIoU {miou:.3f} on {FRESH_FRAMES} fresh frames at {width}x{height}, card says '
        f'{recommended["miou"]:.3f}')
