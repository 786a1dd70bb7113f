"""
Train seg_ros's embedded ENet on generated street scenes, evaluate it and export it to ONNX.

Offline tool (needs torch)::

    python -m seg_ros.tools.train --help
    python -m seg_ros.tools.train --workdir /tmp/enet-synth        # the committed model's run

Everything is counted in iterations, not time, and every random choice comes from ``--seed``,
so a command gives the same model again (on the same torch build and thread count).

Data: ``seg_ros.data.synthetic.render_scene`` draws scenes on the fly in a worker process.
Each stage keeps a ring of ``--fresh`` x ``--ring`` samples: every iteration the worker's
``--fresh`` new samples replace the oldest and the batch is drawn from the ring, so a sample
serves about batch / fresh times while rendering stays well below the network's cost. A
sample is a random 1/zoom window of a scene (zoom log-uniform in the stage's range) at the
stage's size, so objects appear at the pixel sizes a zoom-times larger input shows them.
Stages: the main one (``--size``, ``--iterations``) and an optional fine-tune at a larger
size (``--finetune-size``, ``--finetune-iterations``).

Loss: cross entropy weighted by ENet's 1 / ln(c + p_class) (p: class pixel share in the
first ring), AdamW, linear warm-up then cosine decay over all iterations.

Evaluation: mean IoU over the classes present in ``--eval-frames`` held-out frames
(``synthetic.held_out_rng``, never used by training) at each ``--eval-sizes``, with the
node's pre-processing (``cv2.dnn.blobFromImage``: RGB, 1/255, no mean, resize to the input).

Outputs: checkpoints in ``--workdir`` (``--resume`` continues from the latest one, exactly:
the ring is rebuilt from the samples that filled it), the scores-form ONNX (``--output``, in
the form OpenCV DNN 4.5.4 and 4.6 import: :mod:`seg_ros.tools.opencv_compat`) and
``<output stem>.json`` beside it with the command, the figures and the per-class IoU.
"""

import argparse
import dataclasses
import json
import math
import os
import sys
import time

import cv2
import numpy as np
import onnx
import torch
from torch import nn

from seg_ros.data import synthetic
from seg_ros.tools.enet import ENet
from seg_ros.tools.export import export_onnx
from seg_ros.tools.opencv_compat import make_opencv_compatible

NUM_CLASSES = len(synthetic.CLASS_NAMES)
# The real ENet's pre-processing, so the node's defaults fit both models.
SCALE = 1.0 / 255.0
# Batch index streams: entropy (seed, STREAM_*, stage, index); seeds are below 2**31 and
# held-out frames use synthetic.HELD_OUT_KEY, so the streams never meet.
STREAM_SAMPLES = 0
STREAM_BATCHES = 1
STREAM_WEIGHTS = 2


@dataclasses.dataclass(frozen=True)
class Stage:
    """One training stage: sample size, zoom range, iterations, batch and ring."""

    index: int
    width: int
    height: int
    zoom_min: float
    zoom_max: float
    iterations: int
    batch: int
    fresh: int
    ring: int


def parse_size(text: str) -> tuple[int, int]:
    """Parse ``WIDTHxHEIGHT`` (multiples of 8)."""
    try:
        width, height = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'size must be WIDTHxHEIGHT, got {text!r}') from None
    if width <= 0 or height <= 0 or width % 8 or height % 8:
        raise argparse.ArgumentTypeError(f'size must be positive multiples of 8, got {text!r}')
    return width, height


def parse_range(text: str) -> tuple[float, float]:
    """Parse ``LOW,HIGH`` zoom range (1 <= LOW <= HIGH)."""
    try:
        low, high = (float(v) for v in text.split(','))
    except ValueError:
        raise argparse.ArgumentTypeError(f'range must be LOW,HIGH, got {text!r}') from None
    if not 1.0 <= low <= high:
        raise argparse.ArgumentTypeError(f'zoom range must satisfy 1 <= LOW <= HIGH, '
                                         f'got {text!r}')
    return low, high


def make_sample(seed: int, stage: Stage, index: int) -> tuple[np.ndarray, np.ndarray]:
    """
    Render training sample ``index`` of ``stage``.

    :return: (RGB uint8 (3, H, W), uint8 (H, W) classes).
    """
    rng = np.random.default_rng((seed, STREAM_SAMPLES, stage.index, index))
    zoom = math.exp(rng.uniform(math.log(stage.zoom_min), math.log(stage.zoom_max)))
    bgr, labels = synthetic.render_scene(rng, stage.width, stage.height, zoom=zoom)
    if rng.random() < 0.5:
        bgr, labels = bgr[:, ::-1], labels[:, ::-1]
    return np.ascontiguousarray(bgr[:, :, ::-1].transpose(2, 0, 1)), np.ascontiguousarray(labels)


class FreshSamples(torch.utils.data.Dataset):
    """Chunk ``i``: the ``stage.fresh`` samples that enter the ring at step ``i - ring``."""

    def __init__(self, seed: int, stage: Stage, first_chunk: int) -> None:
        self.seed = seed
        self.stage = stage
        self.first_chunk = first_chunk

    def __len__(self) -> int:
        # The chunk fetched after the last step would never be used.
        return self.stage.ring + self.stage.iterations - 1 - self.first_chunk

    def __getitem__(self, position: int) -> tuple[torch.Tensor, torch.Tensor]:
        chunk = self.first_chunk + position
        samples = [make_sample(self.seed, self.stage, chunk * self.stage.fresh + k)
                   for k in range(self.stage.fresh)]
        images = torch.from_numpy(np.stack([s[0] for s in samples]))
        labels = torch.from_numpy(np.stack([s[1] for s in samples]))
        return images, labels


def quiet_worker(_: int) -> None:
    """Keep the data worker on one thread: the network's threads need the cores."""
    torch.set_num_threads(1)
    cv2.setNumThreads(1)


def class_weights(labels: torch.Tensor, c: float) -> torch.Tensor:
    """Return ENet's class weights 1 / ln(c + share), shares of the pixels in ``labels``."""
    counts = torch.bincount(labels.reshape(-1).long(), minlength=NUM_CLASSES).double()
    share = counts / counts.sum()
    return (1.0 / torch.log(c + share)).float()


def learning_rate(step: int, total: int, peak: float, warmup: int) -> float:
    """Linear warm-up to ``peak`` then cosine decay to 1 % of it at ``total``."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * progress)))


def checkpoint_path(workdir: str) -> str:
    return os.path.join(workdir, 'checkpoint.pt')


def save_checkpoint(workdir: str, state: dict) -> None:
    """Write atomically, so a cut mid-write leaves the previous checkpoint intact."""
    path = checkpoint_path(workdir)
    torch.save(state, path + '.tmp')
    os.replace(path + '.tmp', path)


def log(message: str) -> None:
    print(time.strftime('%H:%M:%S'), message, flush=True)


def train_stage(model: nn.Module, optimizer: torch.optim.Optimizer, args: argparse.Namespace,
                stage: Stage, weights: torch.Tensor | None, done: int, total: int,
                state: dict) -> torch.Tensor:
    """
    Run ``stage`` from its step ``state['step'][stage.index]``.

    :param done: optimiser steps of the stages before this one (for the schedule).
    :param total: optimiser steps of all stages.
    :return: the class weights (computed from this stage's first ring when None).
    """
    start = state['steps'][stage.index]
    if start >= stage.iterations:
        return weights
    # Rebuild the ring exactly: it holds the chunks of steps start - ring .. start - 1.
    dataset = FreshSamples(args.seed, stage, start)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=None, shuffle=False, num_workers=args.workers,
        worker_init_fn=quiet_worker, prefetch_factor=4 if args.workers else None,
        persistent_workers=False, generator=torch.Generator().manual_seed(args.seed))
    chunks = iter(loader)
    ring_images = torch.empty(stage.ring * stage.fresh, 3, stage.height, stage.width,
                              dtype=torch.uint8)
    ring_labels = torch.empty(stage.ring * stage.fresh, stage.height, stage.width,
                              dtype=torch.uint8)
    fill_started = time.monotonic()
    for chunk in range(start, start + stage.ring):
        images, labels = next(chunks)
        slot = (chunk % stage.ring) * stage.fresh
        ring_images[slot:slot + stage.fresh] = images
        ring_labels[slot:slot + stage.fresh] = labels
    log(f'stage {stage.index}: ring of {len(ring_images)} samples at '
        f'{stage.width}x{stage.height} filled in {time.monotonic() - fill_started:.0f} s')
    if weights is None:
        weights = class_weights(ring_labels, args.class_weight_c)
        log('class weights: ' + ' '.join(f'{w:.1f}' for w in weights.tolist()))
    criterion = nn.CrossEntropyLoss(weight=weights)
    model.train()
    started, losses = time.monotonic(), []
    for step in range(start, stage.iterations):
        rng = np.random.default_rng((args.seed, STREAM_BATCHES, stage.index, step))
        picks = torch.from_numpy(rng.integers(0, len(ring_images), stage.batch))
        lr = learning_rate(done + step, total, args.lr, args.warmup)
        for group in optimizer.param_groups:
            group['lr'] = lr
        images = ring_images[picks].float() * SCALE
        loss = criterion(model(images), ring_labels[picks].long())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        # The chunk of step + ring replaces the oldest one (that of this step).
        if step + 1 < stage.iterations:
            images, labels = next(chunks)
            slot = (step % stage.ring) * stage.fresh
            ring_images[slot:slot + stage.fresh] = images
            ring_labels[slot:slot + stage.fresh] = labels
        if (step + 1) % args.log_every == 0 or step + 1 == stage.iterations:
            rate = (time.monotonic() - started) / (step + 1 - start)
            log(f'stage {stage.index} step {step + 1}/{stage.iterations} lr {lr:.2e} '
                f'loss {np.mean(losses):.4f} ({rate:.2f} s/step)')
            losses = []
        if (step + 1) % args.checkpoint_every == 0 or step + 1 == stage.iterations:
            state['steps'][stage.index] = step + 1
            state['elapsed_s'] += time.monotonic() - state.pop('_since')
            state['_since'] = time.monotonic()
            save_checkpoint(args.workdir, {
                'model': model.state_dict(), 'optimizer': optimizer.state_dict(),
                'weights': weights, 'steps': state['steps'], 'elapsed_s': state['elapsed_s'],
                'torch_rng': torch.get_rng_state()})
    return weights


def predict(model: nn.Module, bgr: np.ndarray, width: int, height: int) -> np.ndarray:
    """Class map at the input size, pre-processed as the node does."""
    blob = cv2.dnn.blobFromImage(bgr, SCALE, (width, height), (0, 0, 0), swapRB=True,
                                 crop=False)
    with torch.no_grad():
        scores = model(torch.from_numpy(blob))
    return scores[0].argmax(0).numpy().astype(np.uint8)


def evaluate(model: nn.Module, width: int, height: int, frames: int) -> dict:
    """Mean IoU over the classes present in ``frames`` held-out frames at width x height."""
    model.eval()
    confusion = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    for index in range(frames):
        bgr, truth = synthetic.render_scene(synthetic.held_out_rng(index), width, height)
        confusion += synthetic.class_confusion(truth, predict(model, bgr, width, height),
                                               NUM_CLASSES)
    iou = synthetic.class_iou(confusion)
    present = ~np.isnan(iou)
    return {'size': f'{width}x{height}', 'frames': frames,
            'miou': round(float(iou[present].mean()), 4),
            'pixel_accuracy': round(float(np.diag(confusion).sum() / confusion.sum()), 4),
            'iou': {synthetic.CLASS_NAMES[c]: round(float(iou[c]), 4)
                    for c in np.flatnonzero(present)}}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='python -m seg_ros.tools.train',
        description='Train the embedded ENet on generated street scenes, evaluate it on '
                    'held-out frames and export it to ONNX (scores form).')
    parser.add_argument('--seed', type=int, default=0, help='seed of everything (0..2**31-1)')
    parser.add_argument('--iterations', type=int, default=2700, help='main-stage steps')
    parser.add_argument('--size', type=parse_size, default=(256, 128),
                        help='main-stage sample size WxH')
    parser.add_argument('--zoom', type=parse_range, default=(1.0, 2.5),
                        help='main-stage zoom range LOW,HIGH (log-uniform)')
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--finetune-iterations', type=int, default=400,
                        help='steps of the fine-tune stage (0: none)')
    parser.add_argument('--finetune-size', type=parse_size, default=(512, 256))
    parser.add_argument('--finetune-zoom', type=parse_range, default=(1.0, 2.0))
    parser.add_argument('--finetune-batch', type=int, default=4)
    parser.add_argument('--fresh', type=int, default=4,
                        help='new samples rendered per step (main stage; half for fine-tune)')
    parser.add_argument('--ring', type=int, default=128,
                        help='steps a sample stays in the ring (ring = fresh x this)')
    parser.add_argument('--lr', type=float, default=3e-3, help='peak AdamW learning rate')
    parser.add_argument('--weight-decay', type=float, default=1e-4)
    parser.add_argument('--warmup', type=int, default=100, help='warm-up steps')
    parser.add_argument('--class-weight-c', type=float, default=1.02,
                        help='c of the class weights 1/ln(c + p) (ENet used 1.02)')
    parser.add_argument('--threads', type=int, default=2, help='torch threads')
    parser.add_argument('--workers', type=int, default=1, help='data worker processes')
    parser.add_argument('--eval-frames', type=int, default=200)
    parser.add_argument('--eval-sizes', type=lambda t: [parse_size(s) for s in t.split(',')],
                        default=[(256, 128), (512, 256), (1024, 512)])
    parser.add_argument('--export-size', type=parse_size, default=(512, 256),
                        help='input size recorded in the ONNX file (the recommended size)')
    parser.add_argument('--output', default=os.path.join('models', 'enet-synth',
                                                         'enet-synth.onnx'))
    parser.add_argument('--workdir', required=True, help='checkpoints go here')
    parser.add_argument('--resume', action='store_true',
                        help='continue from the checkpoint in --workdir')
    parser.add_argument('--log-every', type=int, default=50)
    parser.add_argument('--checkpoint-every', type=int, default=250)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not 0 <= args.seed < 2 ** 31:
        raise SystemExit(f'--seed must be in 0..2**31-1, got {args.seed}')
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    os.makedirs(args.workdir, exist_ok=True)
    stages = [Stage(0, *args.size, *args.zoom, args.iterations, args.batch, args.fresh,
                    args.ring)]
    if args.finetune_iterations > 0:
        stages.append(Stage(1, *args.finetune_size, *args.finetune_zoom,
                            args.finetune_iterations, args.finetune_batch,
                            max(1, args.fresh // 2), args.ring))
    total = sum(s.iterations for s in stages)
    model = ENet(NUM_CLASSES)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr,
                                  weight_decay=args.weight_decay)
    state = {'steps': [0] * len(stages), 'elapsed_s': 0.0}
    weights = None
    if args.resume and os.path.exists(checkpoint_path(args.workdir)):
        saved = torch.load(checkpoint_path(args.workdir), weights_only=False)
        model.load_state_dict(saved['model'])
        optimizer.load_state_dict(saved['optimizer'])
        torch.set_rng_state(saved['torch_rng'])
        weights = saved['weights']
        state = {'steps': saved['steps'], 'elapsed_s': saved['elapsed_s']}
        log(f'resumed at steps {state["steps"]}')
    state['_since'] = time.monotonic()
    done = 0
    for stage in stages:
        weights = train_stage(model, optimizer, args, stage, weights, done, total, state)
        done += stage.iterations
    train_s = state['elapsed_s'] + time.monotonic() - state.pop('_since')
    log(f'training done: {total} steps in {train_s / 60:.1f} min')
    model.eval()
    results = []
    for width, height in args.eval_sizes:
        started = time.monotonic()
        result = evaluate(model, width, height, args.eval_frames)
        results.append(result)
        log(f'mIoU {result["miou"]:.4f} at {width}x{height} '
            f'({time.monotonic() - started:.0f} s)')
    width, height = args.export_size
    exported = export_onnx(
        model, args.output, width, height, fused=False, swap_rb=True, scale=SCALE,
        mean=(0, 0, 0), num_classes=NUM_CLASSES, dynamic=True,
        metadata={'seg_ros.model': 'enet-synth', 'seg_ros.preprocess':
                  'RGB, scale 1/255, mean 0', 'seg_ros.trained_on':
                  'seg_ros.data.synthetic street scenes'})
    # The unpooling's Equal and 1 - mask, exactly, in ops OpenCV 4.5.4 (Humble's) imports.
    make_opencv_compatible(exported)
    onnx.checker.check_model(exported)
    onnx.save(exported, args.output)
    summary = {
        'command': 'python -m seg_ros.tools.train ' + ' '.join(
            a for a in (argv if argv is not None else sys.argv[1:])),
        'seed': args.seed, 'steps': [s.iterations for s in stages],
        'stages': [dataclasses.asdict(s) for s in stages],
        'train_minutes': round(train_s / 60, 1), 'torch': torch.__version__,
        'threads': args.threads, 'export_size': f'{width}x{height}',
        'evaluation': results}
    with open(os.path.splitext(args.output)[0] + '.json', 'w', encoding='utf-8') as out:
        json.dump(summary, out, indent=2)
        out.write('\n')
    log(f'wrote {args.output} ({os.path.getsize(args.output) / 1e6:.2f} MB)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
