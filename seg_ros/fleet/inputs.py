"""
Which bags the inputs of ``seg-ros fleet`` are, and what each one's output is called.

An input is a bag (a folder with ``metadata.yaml``, one ``.mcap`` / ``.db3`` file, or a folder
whose recording stopped before ``metadata.yaml`` was written: its storage file named after it,
``<folder>_0.mcap`` as rosbag2 names them) or a folder holding bags, searched recursively; a
storage file loose in such a folder is a bag of its own. Hidden entries and OUTDIR are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
import os
from pathlib import Path
import re

STORAGE_SUFFIXES = ('.mcap', '.db3')


class FleetInputError(Exception):
    """An input does not exist, holds no bag, or two bags would write one output."""


@dataclass(frozen=True)
class FleetBag:
    """One input bag and where its output and its chunks go."""

    path: Path
    name: str
    output: Path

    @property
    def parts(self) -> Path:
        """Return the folder of the bag's finished chunks (removed once the bag is written)."""
        return self.output.parent / f'.{self.name}.fleet'


def is_bag_folder(path: Path) -> bool:
    """Return whether a folder is one bag (rather than a folder holding bags)."""
    if (path / 'metadata.yaml').is_file():
        return True
    storage = [entry for entry in path.iterdir()
               if entry.suffix in STORAGE_SUFFIXES and entry.is_file()]
    pattern = re.escape(path.name) + r'(_\d+)?'
    return bool(storage) and all(re.fullmatch(pattern, entry.stem) for entry in storage)


def bags_under(path: Path, skip: Path) -> list[Path]:
    """Return the bags a folder holds, sorted, outside ``skip`` (OUTDIR)."""
    found = []
    for entry in sorted(path.iterdir()):
        if entry.name.startswith('.') or entry.resolve() == skip:
            continue
        if entry.is_dir():
            found += [entry] if is_bag_folder(entry) else bags_under(entry, skip)
        elif entry.suffix in STORAGE_SUFFIXES:
            found.append(entry)
    return found


def bag_name(path: Path) -> str:
    """Return a bag's name: its folder's, or its storage file's without the suffix."""
    return path.stem if path.is_file() else path.name


def find_bags(inputs: list[str], output_dir: str) -> list[FleetBag]:
    """
    Return the bags of the inputs, in order, each once.

    :raises FleetInputError: an input that does not exist, a folder without a bag, two bags of
        one name (they would write one output).
    """
    outdir = Path(output_dir).resolve()
    paths: list[Path] = []
    for text in inputs:
        path = Path(text)
        if not path.exists():
            raise FleetInputError(f'{path}: no such bag or folder')
        if path.is_file() or is_bag_folder(path):
            paths.append(path)
            continue
        found = bags_under(path, outdir)
        if not found:
            raise FleetInputError(f'{path}: no bag in it (a folder with metadata.yaml, or a '
                                  '.mcap or .db3 file)')
        paths += found
    bags: dict[str, FleetBag] = {}
    seen: set[str] = set()
    for path in paths:
        real = os.path.realpath(path)
        if real in seen:
            continue
        seen.add(real)
        name = bag_name(path)
        if name in bags:
            raise FleetInputError(f'{bags[name].path} and {path} would both write '
                                  f'{outdir / name}: give bags of other names (or run them '
                                  'with different -o)')
        bags[name] = FleetBag(path, name, Path(output_dir) / name)
    return list(bags.values())
