"""
``seg-ros fleet IN... -o OUTDIR``: every bag of the inputs segmented on Ray into OUTDIR/<bag>/.

Each output is the bag ``seg-ros bag`` writes for its input with the same options. This process
(the driver) reads the bags and cuts the frames to segment into chunks of ``--chunk-frames``;
Ray actors (:class:`seg_ros.fleet.worker.FrameWorker`, the model loaded once a worker) segment
the chunks, two queued on each so that none waits for the driver (with tracking, a bag's chunks
one after another, each handed the tracks where the one before left them, as many bags at once
as workers, so that track ids are those of ``seg-ros bag``), and keep each finished chunk
in a file (:mod:`seg_ros.fleet.parts`; a worker on another machine sends it back and the driver
writes it); a thread of the driver writes each output bag from its input and its chunks as they
come (:mod:`seg_ros.fleet.merge`), under a temporary name, renamed when complete. Only the
driver reads bags and writes output bags: the workers of a cluster need the package and the
model, not the bags.

Resuming: a bag whose output exists is kept (unless ``--overwrite``), a chunk whose file exists
is not segmented again. A worker that dies is restarted by Ray, and its chunks are run again
(``TASK_RETRIES`` times); a bag that cannot be read, lacks a topic or whose chunk fails is named
in the summary with the reason and the exit status is 1; the other bags complete.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
import json
import logging
import os
from pathlib import Path
import queue
import shutil
import signal
import sys
import threading
import time
import uuid

import numpy as np
from rosbags.rosbag2 import WriterError

from seg_ros.bag.reading import BagError, open_bag
from seg_ros.bag.segment_bag import (BagCommandError, cameras_of, expected_frames,
                                     selected_frames)
from seg_ros.core.backends.base import cpu_threads
from seg_ros.fleet import parts
from seg_ros.fleet.inputs import find_bags, FleetBag, FleetInputError
from seg_ros.fleet.merge import merge_bag, MergeError, Stopped
from seg_ros.fleet.report import previous_report, summary_table, write_report
from seg_ros.fleet.worker import FrameWorker
from seg_ros.offline.model_options import check_model_arguments

RAY_MISSING = ("seg-ros fleet needs Ray: pip install 'ray>=2.10' (or, in the source tree, "
               "pip install -e '.[fleet]')")
NAMESPACE = 'seg_ros_fleet'
TASK_RETRIES = 3  # a chunk whose worker dies runs again on the restarted worker, this many times
IN_FLIGHT = 2  # chunks queued on a worker: the next one is there when it finishes one
PROGRESS_PERIOD_S = {True: 2.0, False: 10.0}  # on a terminal, in a log
#: Options that do not change what a bag's output holds (the rest are in a chunk's plan).
RUN_ONLY = ('command', 'inputs', 'output_dir', 'overwrite', 'address', 'num_cpus', 'threads',
            'workers', 'quiet')


@dataclass
class BagJob:
    """One bag of the fleet and what happened to it."""

    bag: FleetBag
    status: str = 'pending'  # pending, segmenting, done, kept, failed, interrupted
    expected: int = 0  # frames to segment, as the bag's metadata gives them (0: not known)
    frames: int = 0  # frames to segment, counted while reading
    read: bool = False  # every chunk cut
    chunks: int = 0
    finished: set = field(default_factory=set)  # chunk numbers with a file
    kept_frames: int = 0  # in chunk files of an earlier run
    in_flight: int = 0  # chunks on workers
    tracks: dict = field(default_factory=dict)  # camera topic: tracks after the last chunk
    new_frames: int = 0  # segmented by this run
    worker_s: float = 0.0
    messages: int = 0
    cameras: dict = field(default_factory=dict)
    failures: list = field(default_factory=list)  # frames that could not be used
    error: str = ''  # why the bag has no output, or why reading stopped early

    def total(self) -> int:
        """Return the frames to segment: counted once read, else the metadata's estimate."""
        return self.frames if self.read else max(self.expected, self.frames)

    def summary(self) -> dict:
        """Return the bag's entry of ``fleet.json``."""
        fps = self.new_frames / self.worker_s if self.worker_s else None
        return {'name': self.bag.name, 'input': str(self.bag.path),
                'output': str(self.bag.output), 'status': self.status, 'frames': self.frames,
                'segmented_now': self.new_frames, 'kept_frames': self.kept_frames,
                'chunks': self.chunks, 'worker_s': round(self.worker_s, 3),
                'fps_a_worker': round(fps, 2) if fps else None, 'messages': self.messages,
                'cameras': self.cameras, 'failed_frames': self.failures, 'error': self.error}


@dataclass
class Chunk:
    """A chunk of one bag's frames on its way to a worker."""

    job: BagJob
    number: int
    cameras: dict
    frames: list
    data: list  # each frame's bytes as an array (Ray passes arrays without copying them again)


def file_stamps(paths: list[Path]) -> list[list]:
    """Return each file's path, size and modification time."""
    return [[str(path), path.stat().st_size, path.stat().st_mtime_ns] for path in paths]


def plan_of(job: BagJob, args: argparse.Namespace) -> dict:
    """
    Return what a bag's chunks depend on.

    That is the bag's files, the options that shape outputs and the files they name (a model
    retrained in place starts the chunks over).
    """
    path = job.bag.path.resolve()
    files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.is_file())
    options = {key: value for key, value in sorted(vars(args).items()) if key not in RUN_ONLY}
    named = [Path(value).resolve() for value in (
        getattr(args, name, '') for name in ('model_path', 'config_path', 'classes_path',
                                             'colors_path')) if value and Path(value).is_file()]
    return json.loads(json.dumps({
        'input': str(path), 'files': file_stamps(files), 'options': options,
        'option_files': file_stamps(named)}, default=str))


class Fleet:
    """The driver: reads bags into chunks, keeps workers busy, writes chunks and bags."""

    def __init__(self, ray, actors: list, jobs: list[BagJob], args: argparse.Namespace) -> None:
        """Keep the actors and the jobs; start the thread that writes output bags."""
        self.ray = ray
        self.actors = actors
        self.jobs = jobs
        self.args = args
        self.in_flight: dict = {}  # object ref: (actor number, chunk)
        self.node = ray.get_runtime_context().get_node_id()  # workers here write chunk files
        self.load = [0] * len(actors)
        self.to_read = iter(jobs)
        # With tracking a bag's chunks run one after another, each taking the tracks where the
        # one before left them: bags are read side by side to keep every worker busy.
        self.open_bags: list = []  # (job, its chunks) being read
        self.most_open = len(actors) if args.tracking else 1
        self.reading = True
        self.stop = threading.Event()
        self.to_merge: queue.Queue = queue.Queue()
        self.merged: queue.Queue = queue.Queue()
        self.changed = threading.Condition()  # a chunk finished, a bag read or failed
        self.merger = threading.Thread(target=self._merge_work, name='merge', daemon=True)
        self.started = time.monotonic()
        self.new_frames = 0
        self.terminal = sys.stderr.isatty()
        self.last_progress = time.monotonic()

    # ---- reading --------------------------------------------------------------------------
    def _next_chunk(self) -> Chunk | None:
        """
        Return the next chunk to segment, or None where none can go now.

        Without tracking that is the next chunk of the bag being read, bag after bag; with
        tracking, the next chunk of an open bag that has none on a worker (a bag is opened
        when every open one waits, up to a bag a worker).
        """
        while True:
            for opened in list(self.open_bags):
                job, chunks = opened
                if self.args.tracking and job.in_flight:
                    continue  # its tracks are not back yet
                chunk = next(chunks, None)
                if chunk is not None:
                    return chunk
                self.open_bags.remove(opened)
            if len(self.open_bags) >= self.most_open:
                return None
            job = next(self.to_read, None)
            if job is None:
                self.reading = bool(self.open_bags)
                return None
            if job.status == 'pending':
                self.open_bags.append((job, self._bag_chunks(job)))

    def _bag_chunks(self, job: BagJob):
        """Yield the chunks of one bag to segment; count the frames of finished ones."""
        try:
            source = open_bag(job.bag.path)
            cameras = cameras_of(source, self.args)
            if self.args.overwrite:  # everything again, from the chunks on
                shutil.rmtree(job.bag.parts, ignore_errors=True)
            kept = parts.prepare(job.bag.parts, plan_of(job, self.args))
        except (BagError, BagCommandError, OSError) as error:
            self._fail(job, str(error))
            return
        job.status = 'segmenting'
        self.to_merge.put(job)  # its bag is written as its chunks come, in order
        topics = {topic: (camera.compressed, camera.prefix) for topic, camera in cameras.items()}
        batch: list = []
        try:
            for topic, timestamp, data, camera, index in selected_frames(source, cameras,
                                                                         self.args):
                if job.status == 'failed':
                    break
                if camera is None:
                    continue
                job.frames += 1
                batch.append((topic.topic, topic.msgtype, index, timestamp, data))
                if len(batch) == self.args.chunk_frames:
                    yield from self._chunk(job, topics, batch, kept)
                    batch = []
            if batch and job.status != 'failed':
                yield from self._chunk(job, topics, batch, kept)
        finally:
            source.close()
        if source.stopped:
            job.error = source.stopped
        with self.changed:
            job.read = True
            self.changed.notify_all()

    def _chunk(self, job: BagJob, topics: dict, batch: list, kept: dict[int, int]):
        number = job.chunks
        job.chunks += 1
        if kept.get(number) == len(batch):
            job.kept_frames += len(batch)
            if self.args.tracking:  # the next chunk carries on from this one's tracks
                job.tracks = parts.chunk_tracks(parts.chunk_path(job.bag.parts, number))
            with self.changed:
                job.finished.add(number)
                self.changed.notify_all()
            return
        yield Chunk(job, number, topics, [frame[:4] for frame in batch],
                    [np.frombuffer(frame[4], np.uint8) for frame in batch])

    # ---- workers --------------------------------------------------------------------------
    def _dispatch(self) -> None:
        """Give chunks to the workers until each has ``IN_FLIGHT`` or there are no more."""
        while self.reading:
            actor = min(range(len(self.actors)), key=self.load.__getitem__)
            if self.load[actor] >= IN_FLIGHT:
                return
            chunk = self._next_chunk()
            if chunk is None:
                return
            path = parts.chunk_path(chunk.job.bag.parts, chunk.number).resolve()
            ref = self.actors[actor].segment.remote(chunk.cameras, chunk.frames, chunk.data,
                                                    str(path), self.node, chunk.job.tracks)
            self.in_flight[ref] = (actor, chunk)
            self.load[actor] += 1
            chunk.job.in_flight += 1

    def _collect(self, timeout: float) -> None:
        """Wait for a finished chunk; keep it in its file."""
        ready, _ = self.ray.wait(list(self.in_flight), num_returns=1, timeout=timeout)
        for ref in ready:
            actor, chunk = self.in_flight.pop(ref)
            self.load[actor] -= 1
            job = chunk.job
            job.in_flight -= 1
            try:
                count, frames, data, seconds, tracks = self.ray.get(ref)
            except self.ray.exceptions.RayError as error:
                self._fail(job, f'chunk {chunk.number} (frames from {chunk.frames[0][2]} of '
                                f'{chunk.frames[0][0]}): {short_ray_error(error)}')
                continue
            if frames is not None:  # a worker on another machine: the outputs came back
                parts.write_chunk(parts.chunk_path(job.bag.parts, chunk.number), frames, [data],
                                  tracks)
            job.tracks = tracks
            job.new_frames += count
            job.worker_s += seconds
            self.new_frames += count
            with self.changed:
                job.finished.add(chunk.number)
                self.changed.notify_all()

    # ---- output bags ----------------------------------------------------------------------
    def _chunk_ready(self, job: BagJob, number: int) -> bool:
        """
        Wait until chunk ``number`` of a bag is in its file (the merge thread).

        :return: False where the bag has no such chunk.
        :raises Stopped: the run is interrupted, or the bag failed.
        """
        with self.changed:
            while True:
                if self.stop.is_set() or job.status == 'failed':
                    raise Stopped()
                if number in job.finished:
                    return True
                if job.read and number >= job.chunks:
                    return False
                self.changed.wait(timeout=1.0)

    def _merge_work(self) -> None:
        """Write the output bags in turn, each as its chunks come (the merge thread)."""
        while True:
            job = self.to_merge.get()
            if job is None:
                return
            try:
                result = merge_bag(job.bag.path, job.bag.output, job.bag.parts,
                                   lambda number, job=job: self._chunk_ready(job, number),
                                   self.args, self.stop)
                shutil.rmtree(job.bag.parts, ignore_errors=True)
                self.merged.put((job, result, ''))
            except Stopped:
                if self.stop.is_set():
                    return
                self.merged.put((job, None, ''))  # the bag failed: said where it failed
            except (MergeError, BagError, BagCommandError, OSError, WriterError,
                    ValueError) as error:
                self.merged.put((job, None, f'{job.bag.output}: cannot be written: {error}'))
            except Exception as error:  # noqa: BLE001 - the bag fails, the run goes on
                self.merged.put((job, None, f'{job.bag.output}: cannot be written: {error!r}'))

    def _finish_merges(self) -> None:
        while True:
            try:
                job, result, error = self.merged.get_nowait()
            except queue.Empty:
                return
            if result is None:
                if error:
                    self._fail(job, error)
                continue
            job.status = 'done'
            job.messages = result.messages
            job.cameras = {topic: {'prefix': prefix, 'segmented': segmented}
                           for topic, (prefix, segmented) in result.cameras.items()}
            job.failures = result.failures
            job.error = result.stopped
            self._bag_line(job)

    def _fail(self, job: BagJob, reason: str) -> None:
        if job.status in ('failed', 'done'):
            return
        with self.changed:
            job.status = 'failed'
            job.error = reason
            self.changed.notify_all()
        print(f'seg-ros fleet: {job.bag.name}: failed: {reason}', file=sys.stderr, flush=True)

    # ---- progress -------------------------------------------------------------------------
    def counts(self) -> tuple[int, int, float]:
        """Return the fleet's frames done and to do, and its frames/s in this run."""
        active = [job for job in self.jobs if job.status not in ('kept', 'failed')]
        done = sum(job.kept_frames + job.new_frames for job in active)
        total = sum(job.total() for job in active)
        elapsed = time.monotonic() - self.started
        return done, max(total, done), self.new_frames / elapsed if elapsed > 0 else 0.0

    def progress_text(self) -> str:
        """Return e.g. ``fleet: 120/240 frames, 9.8 frames/s, 12 s left, 2/4 bags done``."""
        done, total, fps = self.counts()
        left = f', {(total - done) / fps:.0f} s left' if fps > 0 else ''
        finished = sum(job.status in ('done', 'kept', 'failed') for job in self.jobs)
        return (f'fleet: {done}/{total} frames, {fps:.1f} frames/s{left}, {finished}/'
                f'{len(self.jobs)} bags done')

    def _bag_line(self, job: BagJob) -> None:
        skipped = f', {len(job.failures)} frames skipped' if job.failures else ''
        stopped = ', the bag stops early' if job.error else ''
        print(f'{job.bag.name}: {job.frames} frames -> {job.bag.output} ({job.messages} '
              f'messages{skipped}{stopped}); {self.progress_text()}', flush=True)

    def _progress(self) -> None:
        now = time.monotonic()
        if self.args.quiet or now - self.last_progress < PROGRESS_PERIOD_S[self.terminal]:
            return
        self.last_progress = now
        print(f'  {self.progress_text()}', file=sys.stderr, flush=True)

    # ---- the run --------------------------------------------------------------------------
    def run(self, release_workers) -> None:
        """
        Segment and write every pending bag; raise KeyboardInterrupt on Ctrl-C.

        :param release_workers: called once the last chunk is segmented, while the last bags
            are still being written.
        """
        self.merger.start()
        try:
            while True:
                self._dispatch()
                self._finish_merges()
                if not self.in_flight and not self.reading:
                    if release_workers is not None:
                        release_workers()
                        release_workers = None
                    if not any(job.status == 'segmenting' for job in self.jobs):
                        break
                if self.in_flight:
                    self._collect(timeout=0.5)
                else:
                    time.sleep(0.05)
                self._progress()
        except BaseException:
            with self.changed:
                self.stop.set()
                self.changed.notify_all()
            raise
        finally:
            self.to_merge.put(None)
            self.merger.join()
            self._finish_merges()


def short_ray_error(error: Exception) -> str:
    """Return the last line of a Ray error: its cause, without Ray's traceback."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


def prepare_jobs(bags: list[FleetBag], args: argparse.Namespace) -> list[BagJob]:
    """Return a job a bag: kept where its output exists, failed where it cannot be read."""
    earlier = previous_report(Path(args.output_dir))
    jobs = []
    for bag in bags:
        job = BagJob(bag)
        jobs.append(job)
        if os.path.lexists(bag.output) and not args.overwrite:
            job.status = 'kept'
            entry = earlier.get(bag.name, {})
            job.frames = entry.get('frames', 0)
            job.messages = entry.get('messages', 0)
            job.cameras = entry.get('cameras', {})
            job.failures = entry.get('failed_frames', [])
            job.error = entry.get('error', '') if entry.get('status') in ('done', 'kept') else ''
            continue
        try:
            source = open_bag(bag.path)
            try:
                job.expected = expected_frames(source, cameras_of(source, args), args)
            finally:
                source.close()
        except (BagError, BagCommandError) as error:
            job.status = 'failed'
            job.error = str(error)
    return jobs


def start_ray(ray, args: argparse.Namespace) -> tuple[bool, int, str]:
    """
    Start Ray on this machine, or join ``--address``'s cluster.

    :return: whether this run started (and so stops) it, its CPUs, and where it runs.
    """
    if ray.is_initialized():  # a caller that runs Ray already (a notebook, a test)
        return False, int(ray.cluster_resources().get('CPU', 0)), 'the Ray of this process'
    if args.address:
        ray.init(address=args.address, namespace=NAMESPACE, logging_level=logging.WARNING)
        return True, int(ray.cluster_resources().get('CPU', 0)), f'Ray cluster {args.address}'
    os.environ.setdefault('RAY_USAGE_STATS_ENABLED', '0')  # no usage report from a local run
    # Ray turns token authentication on for a Ray of its own and says so on every start: the
    # default we keep, without the line (RAY_AUTH_MODE must not be set after Ray's import).
    logging.getLogger('ray._private.authentication.authentication_token_setup').setLevel(
        logging.ERROR)
    cpus = args.num_cpus or cpu_threads()
    # 'local': a Ray of this run's own, even where `ray start` runs one on this machine.
    ray.init(address='local', num_cpus=cpus, include_dashboard=False, namespace=NAMESPACE,
             logging_level=logging.WARNING)
    return True, cpus, 'Ray on this machine'


def start_workers(ray, args: argparse.Namespace, workers: int) -> list:
    """Create the actors (``--threads`` CPUs each), restarted when they die."""
    actor_class = ray.remote(FrameWorker)
    run_id = uuid.uuid4().hex[:8]
    return [actor_class.options(
        num_cpus=args.threads, max_restarts=-1, max_task_retries=TASK_RETRIES,
        name=f'seg_ros_fleet_{run_id}_{number}', namespace=NAMESPACE).remote(args, args.threads)
        for number in range(workers)]


def run_fleet(args: argparse.Namespace) -> int:
    """Run ``seg-ros fleet``; return the exit status."""
    try:
        import ray
    except ImportError:
        print(RAY_MISSING, file=sys.stderr)
        return 2
    if args.end is not None and args.end <= args.start:
        print(f'seg-ros fleet: --end {args.end} is not after --start {args.start}',
              file=sys.stderr)
        return 2
    if args.depth_topic:
        print('seg-ros fleet: --depth-topic: a worker gets only the image frames of its chunk; '
              'points and objects from depth: seg-ros bag', file=sys.stderr)
        return 2
    # Here where the workers run here too (a cluster's workers check their own files).
    problem = '' if args.address else check_model_arguments(args)
    if problem:
        print(f'seg-ros fleet: {problem}', file=sys.stderr)
        return 2
    try:
        bags = find_bags(args.inputs, args.output_dir)
        output_dir = Path(args.output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
    except (FleetInputError, OSError) as error:
        print(f'seg-ros fleet: {error}', file=sys.stderr)
        return 2
    started = time.monotonic()
    jobs = prepare_jobs(bags, args)
    for job in jobs:
        if job.status == 'failed':
            print(f'seg-ros fleet: {job.bag.name}: failed: {job.error}', file=sys.stderr)
    pending = [job for job in jobs if job.status == 'pending']
    kept = sum(job.status == 'kept' for job in jobs)
    print(f'{len(jobs)} bags: {len(pending)} to segment, {kept} already in {output_dir}',
          flush=True)
    run = {'command': 'seg-ros fleet', 'ray': None, 'workers': 0, 'threads': args.threads}
    status, new_frames = 0, 0
    previous_term = signal.signal(signal.SIGTERM, _interrupt)
    try:
        if pending:
            status, new_frames = segment(ray, args, jobs, run)
    finally:
        signal.signal(signal.SIGTERM, previous_term)
    if status == 2:  # nothing done: a bad option, a model that does not load, no Ray
        return status
    wall_s = time.monotonic() - started
    run.update(wall_s=round(wall_s, 3), frames_segmented=new_frames,
               fps=round(new_frames / wall_s, 3) if wall_s > 0 else None,
               driver_cpu_s=round(time.process_time(), 3), interrupted=status == 130)
    print('\n'.join(summary_table(jobs, wall_s, new_frames)))
    print(f'summary: {write_report(output_dir, jobs, run)}')
    if status:
        return status
    troubled = [job for job in jobs if job.status == 'failed' or job.failures or job.error]
    for job in troubled:
        reason = job.error or f'{len(job.failures)} frames could not be used'
        print(f'seg-ros fleet: {job.bag.name}: {reason}', file=sys.stderr)
    return 1 if troubled else 0


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt()


def segment(ray, args: argparse.Namespace, jobs: list[BagJob], run: dict) -> tuple[int, int]:
    """Start Ray and the workers, segment the pending bags; return (status, frames segmented)."""
    started_ray, actors, fleet = False, [], None
    try:
        local_cpus = args.num_cpus or cpu_threads()
        if args.workers * args.threads > local_cpus and not args.address:
            print(f'seg-ros fleet: {args.workers} workers of {args.threads} threads need '
                  f'{args.workers * args.threads} CPUs; --num-cpus is {local_cpus}',
                  file=sys.stderr)
            return 2, 0
        try:
            started_ray, cpus, where = start_ray(ray, args)
        except (ConnectionError, RuntimeError, ValueError) as error:
            print(f'seg-ros fleet: Ray did not start: {short_ray_error(error)}', file=sys.stderr)
            return 2, 0
        workers = args.workers or max(1, cpus // args.threads)
        print(f'starting {workers} workers x {args.threads} thread'
              f'{"s" if args.threads > 1 else ""} on {where} ({cpus} CPUs)', flush=True)
        actors = start_workers(ray, args, workers)
        ready = ray.get([actor.ready.remote() for actor in actors])
        errors = sorted({error for _, error in ready if error})
        if errors:
            print(f'seg-ros fleet: {errors[0]}', file=sys.stderr)
            return 2, 0
        run.update(ray=where, cpus=cpus, workers=len(actors), model=ready[0][0])
        print(f'model: {ready[0][0]}', flush=True)
        fleet = Fleet(ray, actors, jobs, args)

        def release_workers() -> None:  # Ray stops while the last bags are written
            nonlocal actors, started_ray
            stop_ray(ray, started_ray, actors)
            actors, started_ray = [], False

        fleet.run(release_workers)
        return 0, fleet.new_frames
    except KeyboardInterrupt:
        for job in jobs:
            if job.status in ('pending', 'segmenting'):
                job.status = 'interrupted'
        print('seg-ros fleet: interrupted; finished chunks are kept: the same command again '
              'does only what is missing', file=sys.stderr)
        return 130, fleet.new_frames if fleet else 0
    finally:
        stop_ray(ray, started_ray, actors)


def stop_ray(ray, started_ray: bool, actors: list) -> None:
    """Stop the Ray this run started, or end its workers on a Ray it joined."""
    if started_ray:
        ray.shutdown()
    elif ray.is_initialized():
        for actor in actors:
            ray.kill(actor)
