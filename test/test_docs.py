"""
The README and the pages under docs/ name only things that exist.

Every relative link and image (and its ``#anchor``), every repository path (``bench/...``,
``seg_ros/core/...``, ``config/...``), every ``seg_ros.`` module (and the function or class named
after it) and every ``make`` target named in README.md, docs/*.md and bench/README.md exists in
this tree, and the README stays at most 200 lines. No ROS needed.
"""

from pathlib import Path
import re

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
README_MAX_LINES = 200
# Top-level folders whose paths the docs name; a path under one of them must exist.
PATH_ROOTS = ('seg_ros', 'bench', 'config', 'launch', 'test', 'models', 'rviz', 'docs', '.ci')
# Written by the tools, never in the tree (git-ignored outputs).
GENERATED = ('bench/results/',)
# Dotted names that look like modules but are ONNX metadata keys.
NOT_MODULES = {'seg_ros.description'}

LINK = re.compile(r'!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)')
# A path starts a token: not after a word character, '.', '/', '~', '$' or '-' (so
# '~/.cache/seg_ros/x' and 'share/seg_ros/' are not taken for repository paths).
PATH = re.compile(r'(?<![\w./~$<-])((?:%s)/[\w./-]*)' % '|'.join(re.escape(r) for r in PATH_ROOTS))
MODULE = re.compile(r'(?<![\w./<-])(seg_ros(?:\.\w+)+)')
MAKE = re.compile(r'\bmake ([a-z][\w-]*)')


def documents() -> list[Path]:
    return [REPO_ROOT / 'README.md', *sorted((REPO_ROOT / 'docs').glob('*.md')),
            REPO_ROOT / 'bench' / 'README.md']


def slug(heading: str) -> str:
    """Return GitHub's anchor for a heading: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r'[^\w\- ]', '', heading.strip().lower())
    return text.replace(' ', '-')


def anchors(path: Path) -> set[str]:
    text = re.sub(r'```.*?```', '', path.read_text(), flags=re.S)
    return {slug(m.group(1)) for m in re.finditer(r'^#{1,6} (.+)$', text, flags=re.M)}


def make_targets() -> set[str]:
    text = (REPO_ROOT / 'Makefile').read_text()
    return set(re.findall(r'^([a-z][\w-]*):', text, flags=re.M))


def broken_links(text: str, document: Path) -> list[str]:
    problems = []
    for target in LINK.findall(text):
        if re.match(r'[a-z]+:', target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition('#')
        linked = (document.parent / file_part).resolve() if file_part else document
        if not linked.exists():
            problems.append(f'link {target!r}: {file_part} does not exist')
        elif anchor and linked.suffix == '.md' and anchor not in anchors(linked):
            problems.append(f'link {target!r}: no heading #{anchor} in {linked.name}')
    return problems


def missing_paths(text: str) -> list[str]:
    problems = []
    for path in set(PATH.findall(text)):
        path = path.rstrip('.')
        if path.startswith(GENERATED):
            continue
        if not (REPO_ROOT / path).exists():
            problems.append(f'path {path!r} does not exist')
    return problems


def _defines(source: str, name: str) -> bool:
    """Return whether a module defines or imports ``name`` (a re-export counts)."""
    defined = r'^\s*(?:def|class) %s\b|^%s\s*[:=]|^from \S+ import [^(\n]*\b%s\b' % ((name,) * 3)
    imported = r'^from \S+ import \([^)]*\b%s\b' % name
    return (re.search(defined, source, flags=re.M) is not None
            or re.search(imported, source, flags=re.M | re.S) is not None)


def missing_modules(text: str) -> list[str]:
    problems = []
    for dotted in set(MODULE.findall(text)) - NOT_MODULES:
        parts = dotted.split('.')
        # The longest prefix that is a module file or a package; the rest are names in it.
        for split in range(len(parts), 0, -1):
            base = REPO_ROOT.joinpath(*parts[:split])
            for candidate in (base.with_suffix('.py'), base / '__init__.py'):
                if candidate.is_file():
                    break
            else:
                continue
            break
        else:
            problems.append(f'module {dotted!r} does not exist')
            continue
        rest = parts[split:]
        if rest and not _defines(candidate.read_text(), rest[0]):
            problems.append(f'{dotted!r}: {rest[0]!r} is not defined in '
                            f'{candidate.relative_to(REPO_ROOT)}')
    return problems


def missing_make_targets(text: str) -> list[str]:
    targets = make_targets()
    return [f'make target {name!r} is not in the Makefile'
            for name in sorted(set(MAKE.findall(text))) if name not in targets]


def problems_of(document: Path, text: str) -> list[str]:
    return (broken_links(text, document) + missing_paths(text) + missing_modules(text)
            + missing_make_targets(text))


@pytest.mark.parametrize('document', documents(), ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_everything_named_exists(document: Path) -> None:
    problems = problems_of(document, document.read_text())
    assert not problems, f'{document.relative_to(REPO_ROOT)}:\n' + '\n'.join(problems)


def test_readme_is_short() -> None:
    lines = (REPO_ROOT / 'README.md').read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f'README.md has {len(lines)} lines'


def test_docs_pages_are_in_the_map() -> None:
    readme = (REPO_ROOT / 'README.md').read_text()
    unlisted = [page.name for page in sorted((REPO_ROOT / 'docs').glob('*.md'))
                if f'(docs/{page.name})' not in readme]
    assert not unlisted, f'docs pages the README does not link: {unlisted}'


def test_the_checks_find_what_is_broken() -> None:
    """Each check reports a broken name in a document that is otherwise the real README."""
    readme = REPO_ROOT / 'README.md'
    text = readme.read_text()
    assert problems_of(readme, text) == []
    broken = {
        '[models](docs/no-such-page.md)': 'does not exist',
        '![picture](docs/no_such_picture.jpg)': 'does not exist',
        '[models](docs/models.md#no-such-heading)': 'no heading',
        '[top](#no-such-heading)': 'no heading',
        '`bench/no_such_bench.py`': "path 'bench/no_such_bench.py'",
        '`seg_ros/core/model_cache.py`': "path 'seg_ros/core/model_cache.py'",
        '`seg_ros.core.model_cache`': "'seg_ros.core.model_cache'",
        '`seg_ros.core.backends.no_such_function`': 'is not defined',
        '`make no-such-target`': "make target 'no-such-target'",
    }
    for snippet, expected in broken.items():
        problems = problems_of(readme, text + '\n' + snippet + '\n')
        assert any(expected in problem for problem in problems), (snippet, problems)
