"""The summary of ``seg-ros fleet``: its table, ``OUTDIR/fleet.json`` and an earlier run's."""

from __future__ import annotations

import json
import os
from pathlib import Path

REPORT = 'fleet.json'


def previous_report(output_dir: Path) -> dict[str, dict]:
    """Return the bags of an earlier run's ``fleet.json`` by name (none where there is none)."""
    try:
        report = json.loads((output_dir / REPORT).read_text())
        return {entry['name']: entry for entry in report['bags']}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def summary_table(jobs: list, wall_s: float, new_frames: int) -> list[str]:
    """Return the summary as Markdown table lines."""
    lines = ['| bag | status | frames | segmented now | frames/s a worker | skipped frames | '
             'note |', '|---|---|---|---|---|---|---|']
    for job in jobs:
        fps = f'{job.new_frames / job.worker_s:.1f}' if job.worker_s else '-'
        note = job.error or ('output kept from an earlier run' if job.status == 'kept' else '')
        lines.append(f'| {job.bag.name} | {job.status} | {job.frames} | {job.new_frames} | '
                     f'{fps} | {len(job.failures)} | {note} |')
    failed = sum(job.status == 'failed' for job in jobs)
    fps = new_frames / wall_s if wall_s > 0 else 0.0
    lines.append(f'| all {len(jobs)} bags | {failed} failed | '
                 f'{sum(job.frames for job in jobs)} | {new_frames} | {fps:.1f} (the fleet, '
                 f'{wall_s:.1f} s) | {sum(len(job.failures) for job in jobs)} | |')
    return lines


def write_report(output_dir: Path, jobs: list, run: dict) -> Path:
    """Write ``fleet.json`` (under a temporary name first); return its path."""
    path = output_dir / REPORT
    temporary = output_dir / f'.{REPORT}.tmp'
    temporary.write_text(json.dumps({**run, 'bags': [job.summary() for job in jobs]}, indent=1))
    os.replace(temporary, path)
    return path
