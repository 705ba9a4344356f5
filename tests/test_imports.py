r"""No import cycle among the package's modules.

The import graph is read from the source with :mod:`ast`, never by
importing: an edge ``a -> b`` for every ``import`` or ``from ... import``
in module ``a`` (at any depth, inside functions too) that names package
module ``b``. ``from p import y`` is an edge to ``p.y`` when ``p.y`` is a
module and to ``p`` (its ``__init__``) otherwise; ``import p.q`` is an edge
to ``p.q``. So a package's ``__init__`` re-exporting its submodules has an
edge to each of them, and a submodule importing a sibling's name through
the package path (``from torch_geometric_ea.data import kg_pair``) has an
edge to the package's ``__init__``.
"""
import ast
import os
import os.path as osp
from typing import Dict, List, Set

import pytest

PACKAGE = 'torch_geometric_ea'
ROOT = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), PACKAGE)

Graph = Dict[str, Set[str]]
#: The modules on import cycles today, one set per strongly connected
#: component (issue 29 removed the last one, cli <-> entry: both now take
#: the Ctrl-C handling from ``interrupts``).
KNOWN_CYCLES: list = []


def module_files(root: str, package: str) -> Dict[str, str]:
    r"""``{module name: file}`` for every ``.py`` file under ``root`` (the
    folder of ``package``); a package's ``__init__.py`` is named as the
    package."""
    files = {}
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != '__pycache__')
        parts = [package] + osp.relpath(folder, root).split(os.sep)
        parts = [p for p in parts if p != '.']
        for name in sorted(names):
            if not name.endswith('.py'):
                continue
            stem = name[:-3]
            module = '.'.join(parts if stem == '__init__' else parts + [stem])
            files[module] = osp.join(folder, name)
    return files


def import_graph(root: str = ROOT, package: str = PACKAGE) -> Graph:
    r"""The edges between ``package``'s modules, as described above."""
    files = module_files(root, package)
    graph: Graph = {module: set() for module in files}
    for module, path in files.items():
        is_package = osp.basename(path) == '__init__.py'
        with open(path, encoding='utf-8') as f:
            tree = ast.parse(f.read(), path)
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ''
                if node.level:  # relative: from the module's own package
                    anchor = module.split('.')
                    anchor = anchor[:len(anchor) - node.level + is_package]
                    base = '.'.join(anchor + ([base] if base else []))
                for alias in node.names:
                    sub = f'{base}.{alias.name}'
                    targets.append(sub if sub in files else base)
            for target in targets:
                if target in files and target != module:
                    graph[module].add(target)
    return graph


def tangles(graph: Graph) -> List[Set[str]]:
    r"""The strongly connected components of ``graph`` with more than one
    module (each module on a cycle is in one), sorted by their first module."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found = []

    def connect(v):  # Tarjan's algorithm; the package is far below the recursion limit
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(component)

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return sorted(found, key=min)


def cycle(graph: Graph, component: Set[str]) -> List[str]:
    r"""A shortest cycle ``[a, b, ..., a]`` through the first module of
    ``component`` (a strongly connected component of ``graph``)."""
    start = min(component)
    previous = {start: None}
    queue = [start]
    while True:  # breadth first; start is reachable back within the component
        v = queue.pop(0)
        for w in sorted(graph[v] & component):
            if w == start:
                path = [v]
                while previous[path[-1]] is not None:
                    path.append(previous[path[-1]])
                return path[::-1] + [start]
            if w not in previous:
                previous[w] = v
                queue.append(w)


def cycles(graph: Graph) -> List[List[str]]:
    r"""One cycle through each of :func:`tangles`."""
    return [cycle(graph, component) for component in tangles(graph)]


def describe(graph: Graph, components: List[Set[str]]) -> str:
    r"""One line per component: a cycle, and the component's other modules."""
    lines = []
    for component in components:
        path = cycle(graph, component)
        rest = sorted(component - set(path))
        lines.append(' -> '.join(path) + (f" (and {', '.join(rest)} on other "
                                          f"cycles with them)" if rest else ''))
    return '\n'.join(lines)


def write(root, files):
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_graph_follows_the_resolution_rules(tmp_path):
    write(tmp_path, {
        '__init__.py': '',
        'a.py': 'import os\nfrom pkg.sub import b\n',
        'c.py': 'def f():\n    from pkg.sub import name\n',
        'd.py': 'import pkg.sub.b\nfrom . import a\nfrom .sub.b import thing\n',
        'sub/__init__.py': 'from pkg.sub.b import thing\n',
        'sub/b.py': 'from .. import c\nfrom ..a import x\nthing = 1\n',
    })
    assert import_graph(str(tmp_path), 'pkg') == {
        'pkg': set(),
        'pkg.a': {'pkg.sub.b'},  # a submodule named through its package
        'pkg.c': {'pkg.sub'},  # a name through the package: its __init__
        'pkg.d': {'pkg.sub.b', 'pkg.a'},
        'pkg.sub': {'pkg.sub.b'},  # a package re-exporting its submodule
        'pkg.sub.b': {'pkg.c', 'pkg.a'},
    }


def test_cycles_are_found_and_printed(tmp_path):
    write(tmp_path, {
        '__init__.py': '',
        'a.py': 'from pkg import b\n',
        'b.py': 'def late():\n    from pkg.c import x\n',  # inside a function
        'c.py': 'import pkg.a\n',
        'd.py': 'from pkg.e import y\n',
        'e.py': 'from pkg.d import z\nfrom pkg.g import v\n',
        'f.py': 'from pkg.a import w\n',  # into a cycle, on none
        'g.py': 'from pkg import e\n',
    })
    graph = import_graph(str(tmp_path), 'pkg')
    assert tangles(graph) == [{'pkg.a', 'pkg.b', 'pkg.c'}, {'pkg.d', 'pkg.e', 'pkg.g'}]
    assert cycles(graph) == [['pkg.a', 'pkg.b', 'pkg.c', 'pkg.a'],
                             ['pkg.d', 'pkg.e', 'pkg.d']]
    assert describe(graph, tangles(graph)) == (
        'pkg.a -> pkg.b -> pkg.c -> pkg.a\n'
        'pkg.d -> pkg.e -> pkg.d (and pkg.g on other cycles with them)')
    assert tangles({'x': {'y'}, 'y': set()}) == []


def test_the_package_is_read_whole():
    graph = import_graph()
    assert 'torch_geometric_ea.data' in graph  # data/__init__.py
    assert 'torch_geometric_ea.data.registry' in graph['torch_geometric_ea.data']
    assert 'torch_geometric_ea.data.download' in graph[
        'torch_geometric_ea.data.translated']


def test_the_data_package_has_no_import_cycle():
    graph = import_graph()
    data = f'{PACKAGE}.data'
    # the download helpers are their own module: datasets (through their
    # base, pair_dataset) and translated names use them and do not import
    # each other back
    assert f'{data}.translated' in graph[f'{data}.pair_dataset']
    assert f'{data}.pair_dataset' in graph[f'{data}.datasets']
    assert {f'{data}.datasets', f'{data}.pair_dataset', data} \
        & graph[f'{data}.translated'] == set()
    assert graph[f'{data}.download'] == set()
    inside = [c for c in tangles(graph)
              if any(m == data or m.startswith(f'{data}.') for m in c)]
    assert not inside, describe(graph, inside)


def test_no_import_cycle_beyond_the_known_ones():
    graph = import_graph()
    found = tangles(graph)
    new = [c for c in found if c not in KNOWN_CYCLES]
    gone = [c for c in KNOWN_CYCLES if c not in found]
    assert not new, (f"import cycles among {PACKAGE}'s modules:\n"
                     f"{describe(graph, new)}")
    assert not gone, (f"no longer a cycle, remove it from KNOWN_CYCLES: "
                      f"{[sorted(c) for c in gone]}")


@pytest.mark.xfail(bool(KNOWN_CYCLES), strict=True,
                   reason='the import cycles in KNOWN_CYCLES are being removed')
def test_no_import_cycle():
    graph = import_graph()
    found = tangles(graph)
    assert not found, (f"import cycles among {PACKAGE}'s modules:\n"
                       f"{describe(graph, found)}")
