"""
What ``seg-ros segment`` reads and where it writes, all checked before the model loads.

Inputs are image and video files and folders (their images and videos, not their subfolders);
each input's outputs are named after it, made unique where two inputs share a name; the output
folder is made (or refused) up front.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import os

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp', '.ppm', '.pgm')
VIDEO_SUFFIXES = ('.mp4', '.avi', '.mov', '.mkv', '.webm', '.m4v', '.mpg', '.mpeg', '.wmv',
                  '.flv', '.ts', '.mts', '.3gp', '.ogv')
_SHOWN_SKIPPED = 5


@dataclass
class Inputs:
    """
    The files to segment, each with the stem of its outputs, and what was left out.

    :ivar files: the image and video files, in the order given (a folder's sorted by name).
    :ivar stems: file -> the output name stem (``out/<stem>_overlay.png``), unique.
    :ivar problems: one line for each input that cannot be read at all (missing).
    :ivar notes: one line for each folder's skipped entries and each renamed output.
    """

    files: list[str] = field(default_factory=list)
    stems: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def is_image(path: str) -> bool:
    """Return whether ``path`` is read as an image (by its suffix; anything else: a video)."""
    return path.lower().endswith(IMAGE_SUFFIXES)


def collect_inputs(paths: list[str]) -> Inputs:
    """
    Expand folders, drop repeats, report what is missing and name every output uniquely.

    A file given as such is tried whatever its suffix (an image by its suffix, else a video);
    in a folder only image and video suffixes are taken and the rest is named as skipped.
    """
    found = Inputs()
    seen: set[str] = set()
    for path in paths:
        if os.path.isdir(path):
            members = _folder_files(path, found.notes)
        elif os.path.isfile(path):
            members = [path]
        else:
            found.problems.append(f'{path}: no such file or folder')
            continue
        for member in members:
            real = os.path.realpath(member)
            if real in seen:
                found.notes.append(f'{member}: given twice, segmented once')
                continue
            seen.add(real)
            found.files.append(member)
    found.stems = unique_stems(found.files, found.notes)
    return found


def _folder_files(folder: str, notes: list[str]) -> list[str]:
    try:
        names = sorted(os.listdir(folder))
    except OSError as error:
        notes.append(f'{folder}: cannot be listed ({error.strerror})')
        return []
    files, skipped = [], []
    for name in names:
        path = os.path.join(folder, name)
        if os.path.isfile(path) and name.lower().endswith(IMAGE_SUFFIXES + VIDEO_SUFFIXES):
            files.append(path)
        elif not name.startswith('.'):
            skipped.append(name + ('/' if os.path.isdir(path) else ''))
    if skipped:
        shown = ', '.join(skipped[:_SHOWN_SKIPPED])
        more = f' and {len(skipped) - _SHOWN_SKIPPED} more' if len(skipped) > _SHOWN_SKIPPED \
            else ''
        notes.append(f'{folder}: skipped {len(skipped)} that are neither images nor videos '
                     f'(subfolders are not read): {shown}{more}')
    if not files:
        notes.append(f'{folder}: no image or video in it')
    return files


def unique_stems(files: list[str], notes: list[str]) -> dict[str, str]:
    """
    Return each file's output stem: its name without the suffix, made unique where shared.

    Files whose names clash get their folders' names in front, as many as tell them apart
    (``a/frame.png`` -> ``a_frame``, ``b/frame.png`` -> ``b_frame``), and their suffix after
    where that is all that differs (``frame.png`` -> ``frame_png``); each renaming is noted.
    """
    stems = {path: os.path.splitext(os.path.basename(path))[0] for path in files}
    by_stem: dict[str, list[str]] = {}
    for path, stem in stems.items():
        by_stem.setdefault(stem, []).append(path)
    for stem, clashing in by_stem.items():
        if len(clashing) < 2:
            continue
        renamed = _distinct_stems(clashing)
        for path in clashing:
            stems[path] = renamed[path]
        notes.append(f'{len(clashing)} inputs are named {stem}: their outputs are named '
                     + ', '.join(f'{renamed[path]}_* ({path})' for path in clashing))
    taken: set[str] = set()
    for path in files:  # a renamed stem may be another input's own name
        stem, number = stems[path], 2
        while stems[path] in taken:
            stems[path] = f'{stem}-{number}'
            number += 1
        if stems[path] != stem:
            notes.append(f'{path}: its outputs are named {stems[path]}_* ({stem} is taken)')
        taken.add(stems[path])
    return stems


def _distinct_stems(paths: list[str]) -> dict[str, str]:
    parts = {path: os.path.normpath(os.path.abspath(path)).split(os.sep) for path in paths}
    depth = max(len(split) for split in parts.values())
    # Folders in front first (a_frame), then the suffix too where only that differs.
    for keep_suffix, first in ((False, 1), (True, 0)):
        for folders in range(first, depth):
            names = {}
            for path, split in parts.items():
                name = split[-1].replace('.', '_') if keep_suffix else \
                    os.path.splitext(split[-1])[0]
                names[path] = '_'.join([folder for folder in split[-1 - folders:-1] if folder]
                                       + [name])
            if len(set(names.values())) == len(paths):
                return names
    return {path: f'{os.path.splitext(os.path.basename(path))[0]}-{index}'
            for index, path in enumerate(paths, 1)}


def prepare_output_folder(folder: str) -> str | None:
    """Make the output folder if needed; return why it cannot be used, or None."""
    if os.path.exists(folder) and not os.path.isdir(folder):
        return f'-o {folder}: is a file, not a folder'
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as error:
        return f'-o {folder}: cannot be made ({error.strerror})'
    if not os.access(folder, os.W_OK | os.X_OK):
        return f'-o {folder}: cannot be written to (permission denied)'
    return None
