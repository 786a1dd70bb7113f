"""
``seg-ros segment``: images, folders and videos to overlays, masks and class maps.

Everything that can be checked without the model is checked first (inputs, output folder,
options), one line each; then the model loads once and each input is segmented in turn. Every
output is written under a partial name and renamed when complete, so an interrupted run
(Ctrl-C: exit status 130) leaves no cut-off file under an output's name.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
import json
import os
import sys

import cv2
import numpy as np

from seg_ros import offline_depth
from seg_ros.core.decode.instances import class_name
from seg_ros.core.errors import FrameError
from seg_ros.core.render.legend import with_legend
from seg_ros.core.segmenter import Segmenter
from seg_ros.offline.inputs import (collect_inputs, IMAGE_SUFFIXES, Inputs, is_image,
                                    prepare_output_folder)
from seg_ros.offline.model_options import (check_model_arguments, flag_text, make_segmenter,
                                           print_model)
from seg_ros.offline.progress import Progress
from seg_ros.offline.video import FrameSelection, partial_path, run_video, VideoError

#: Exit statuses (``seg-ros --help`` lists them).
EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class InputError(Exception):
    """One input cannot be processed; the others still are."""


class ClassShares:
    """Pixel counts per class of one input (every frame of a video)."""

    def __init__(self, num_classes: int) -> None:
        """Start at zero for ``num_classes`` classes."""
        self.counts = np.zeros(num_classes, np.int64)

    def add(self, class_map: np.ndarray) -> None:
        """Count a class map's pixels."""
        counts = np.bincount(class_map.ravel(), minlength=len(self.counts))
        counts[:len(self.counts)] += self.counts  # an instance model's ids may go beyond
        self.counts = counts

    def lines(self, names: tuple[str, ...]) -> list[str]:
        """Return ``  <class> <share> %`` lines, largest share first."""
        total = max(int(self.counts.sum()), 1)
        order = np.argsort(-self.counts, kind='stable')
        return [f'  {class_name(names, int(i)):<16} {100.0 * self.counts[i] / total:6.2f} %'
                for i in order if self.counts[i]]


def write_file(path: str, write: Callable[[str], bool | None]) -> None:
    """
    Write one output under its partial name with ``write(partial_path)``, then rename it.

    :param write: writes the file it is given; returns False (``cv2.imwrite``) when it could not.
    :raises InputError: it cannot be written (nothing is left under either name).
    """
    partial = partial_path(path)
    try:
        if write(partial) is False:
            raise InputError(f'{path}: cannot be written')
        os.replace(partial, path)
    except OSError as error:
        raise InputError(f'{path}: cannot be written ({error.strerror})') from None
    finally:
        if os.path.exists(partial):
            os.remove(partial)


def write_json(data: dict) -> Callable[[str], None]:
    """Return a writer of ``data`` as indented JSON, for :func:`write_file`."""
    def write(path: str) -> None:
        with open(path, 'w', encoding='utf-8') as json_file:
            json.dump(data, json_file, indent=1)
    return write


def segment_image(segmenter: Segmenter, path: str, stem: str, args: argparse.Namespace,
                  shares: ClassShares) -> list[str]:
    """Segment one image; return the files written."""
    frame = cv2.imread(path, cv2.IMREAD_COLOR)
    if frame is None:
        raise InputError(f'{path}: not a readable image')
    try:
        result = segmenter.run(frame, encoding='bgr8', alpha=args.alpha, full_resolution=True,
                               confidence=True)
    except FrameError as error:
        raise InputError(f'{path}: {error}') from error
    shares.add(result.class_map_full)
    overlay = result.overlay
    if args.legend:
        overlay = with_legend(overlay, segmenter.labels, result.class_map_full)
    outputs = [(stem + '_overlay.png', overlay), (stem + '_mask.png', result.color_mask),
               (stem + '_classmap.png', result.class_map_full)]
    if result.confidence_full is not None:  # round(255 p), p the class's softmax probability
        outputs.append((stem + '_confidence.png', result.confidence_full))
    if result.instances is not None:  # 16-bit: 0 = none, else the instance id
        outputs.append((stem + '_instances.png', result.instance_map))
    written = []
    for file_name, image in outputs:
        write_file(file_name, lambda partial, image=image: cv2.imwrite(partial, image))
        written.append(file_name)
    if result.instances is not None:
        data = result.instances.to_json(segmenter.labels.names)
        write_file(stem + '_instances.json', write_json(data))
        written.append(stem + '_instances.json')
    depth_path = offline_depth.depth_files(args, IMAGE_SUFFIXES).get(path)
    if depth_path:
        written.append(offline_depth.write_points(result, segmenter.labels, depth_path, stem,
                                                  args))
    return written


def segment_video(segmenter: Segmenter, path: str, stem: str, args: argparse.Namespace,
                  shares: ClassShares) -> list[str]:
    """Segment a video's selected frames into ``<stem>_overlay.mp4``; return it."""
    selection = FrameSelection.from_args(args)
    skipped, reason = 0, ''

    def segment(frame: np.ndarray) -> np.ndarray | None:
        nonlocal skipped, reason
        try:
            result = segmenter.run(frame, encoding='bgr8', alpha=args.alpha,
                                   full_resolution=True, confidence=False)
        except FrameError as error:  # this frame's output is unusable; the next may not be
            skipped, reason = skipped + 1, str(error)
            return None
        shares.add(result.class_map_full)
        if args.legend:
            return with_legend(result.overlay, segmenter.labels, result.class_map_full)
        return result.overlay

    out_path = stem + '_overlay.mp4'
    try:
        written, _ = run_video(path, out_path, selection, args.fps, segment,
                               Progress(0, args.quiet))
    except VideoError as error:
        raise InputError(str(error)) from None
    if skipped:
        print(f'seg-ros: {path}: {skipped} frames skipped, the last because {reason}',
              file=sys.stderr)
    if not written:
        raise InputError(f'{path}: no frame could be segmented ({reason})')
    return [out_path]


def check_before_loading(args: argparse.Namespace) -> tuple[Inputs | None, list[str]]:
    """
    Check what can be checked without the model: inputs, frame selection, depth, output.

    :return: the inputs (None when the run cannot start) and the lines to print.
    """
    inputs = collect_inputs(args.inputs)
    lines = inputs.problems + inputs.notes
    if not inputs.files:
        return None, lines + ['nothing to segment: no image or video among the inputs']
    args.inputs = inputs.files  # --depth pairs with the images in this order
    fps = f"--fps {args.fps:g} is below 0 (0: the input's rate)" if args.fps < 0 else None
    for reason in (FrameSelection.from_args(args).problem(), fps,
                   offline_depth.check_depth_arguments(args, IMAGE_SUFFIXES),
                   check_model_arguments(args), prepare_output_folder(args.output_dir)):
        if reason:
            return None, lines + [reason]
    return inputs, lines


def run_segment(args: argparse.Namespace) -> int:
    """Run ``seg-ros segment``; return the exit status (see the module's EXIT_*)."""
    inputs, lines = check_before_loading(args)
    for line in lines:
        print(f'seg-ros: {line}', file=sys.stderr)
    if inputs is None:
        return EXIT_USAGE
    args.confidence = any(is_image(path) for path in inputs.files)  # <stem>_confidence.png
    try:
        segmenter = make_segmenter(args)
    except ValueError as error:
        print(f'seg-ros: {error}', file=sys.stderr)
        return EXIT_USAGE
    print_model(segmenter)
    if args.confidence and segmenter.confidence_reason:
        print(f'no <name>_confidence.png: {flag_text(segmenter.confidence_reason)}')
    path = ''
    try:
        failures = len(inputs.problems)
        for path in inputs.files:
            failures += not segment_one(segmenter, path, inputs.stems[path], args)
    except KeyboardInterrupt:
        print(f'seg-ros: interrupted at {path}: every file written so far is complete, no '
              'partial file is left', file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_SOME_FAILED if failures else EXIT_OK


def segment_one(segmenter: Segmenter, path: str, stem: str, args: argparse.Namespace) -> bool:
    """Segment one input, print what was written and its class shares; return success."""
    shares = ClassShares(len(segmenter.labels.names))
    segment = segment_image if is_image(path) else segment_video
    try:
        written = segment(segmenter, path, os.path.join(args.output_dir, stem), args, shares)
    except (InputError, offline_depth.DepthInputError) as error:
        print(f'seg-ros: {error}', file=sys.stderr)
        return False
    for file_name in written:
        print(f'wrote {file_name}')
    if shares.counts.any():
        print(f'class shares of {path} (% of pixels):')
        print('\n'.join(shares.lines(segmenter.labels.names)))
    return True
