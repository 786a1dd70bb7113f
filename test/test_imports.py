"""The package's import graph: no cycle among seg_ros modules; the core imports only the core."""

import ast
import os

import pytest

PACKAGE_ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            'seg_ros')
# What seg_ros/core/ may not take from: the rooms above it.
ABOVE_THE_CORE = ('seg_ros.data', 'seg_ros.ros', 'seg_ros.bag', 'seg_ros.cli',
                  'seg_ros.offline', 'seg_ros.tools', 'seg_ros.fleet')


def module_files() -> dict[str, str]:
    """Return every seg_ros module's dotted name -> its file."""
    modules = {}
    for folder, _, files in os.walk(PACKAGE_ROOT):
        for name in files:
            if not name.endswith('.py'):
                continue
            path = os.path.join(folder, name)
            parts = os.path.relpath(path, os.path.dirname(PACKAGE_ROOT))[:-3].split(os.sep)
            if parts[-1] == '__init__':
                parts = parts[:-1]
            modules['.'.join(parts)] = path
    return modules


def imported_modules(path: str, module: str, known: set[str]) -> set[str]:
    """
    Return the seg_ros modules a file imports, at its top or inside a function.

    ``from package import name`` counts as importing ``package.name`` where that is a module,
    else ``package``; relative imports are resolved against ``module``.
    """
    with open(path, encoding='utf-8') as source:
        tree = ast.parse(source.read(), path)
    package = module if path.endswith('__init__.py') else module.rpartition('.')[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                anchor = package.split('.')[:len(package.split('.')) - node.level + 1]
                base = '.'.join(anchor + ([base] if base else []))
            for alias in node.names:
                candidate = f'{base}.{alias.name}'
                found.add(candidate if candidate in known else base)
    return {name for name in found if name in known and name != module}


def import_graph() -> dict[str, set[str]]:
    modules = module_files()
    known = set(modules)
    return {name: imported_modules(path, name, known) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Return the strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_imports_inside_functions():
    graph = import_graph()
    # core/loading.py imports the Torch7 converter only when converting (inside a function).
    assert 'seg_ros.core.model.torch7_onnx' in graph['seg_ros.core.loading']
    # The bag command imports the model options' module, no longer the command line.
    assert 'seg_ros.offline.model_options' in graph['seg_ros.bag.segment_bag']
    assert 'seg_ros.cli' not in graph['seg_ros.bag.segment_bag']


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}) == [['a', 'b', 'c']]
    assert cycles({'a': {'b'}, 'b': set()}) == []


def test_no_import_cycle_among_seg_ros_modules():
    found = cycles(import_graph())
    assert not found, 'import cycles: ' + '; '.join(' <-> '.join(cycle) for cycle in found)


@pytest.mark.parametrize('room', ABOVE_THE_CORE)
def test_the_core_imports_nothing_from_the_rooms_above_it(room):
    graph = import_graph()
    offending = sorted(f'{module} imports {target}'
                       for module, targets in graph.items() if module.startswith('seg_ros.core')
                       for target in targets if target == room or target.startswith(room + '.'))
    assert not offending, '; '.join(offending)


def test_the_core_imports_no_rclpy():
    modules = module_files()
    for name, path in modules.items():
        if not name.startswith('seg_ros.core'):
            continue
        with open(path, encoding='utf-8') as source:
            tree = ast.parse(source.read(), path)
        for node in ast.walk(tree):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import) else
                     [node.module or ''] if isinstance(node, ast.ImportFrom) else [])
            assert not any(name.split('.')[0] in ('rclpy', 'rosbags') for name in names), name
