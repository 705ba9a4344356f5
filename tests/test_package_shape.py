r"""The package's shape (issue 29): no module above 450 lines, the command
line under 300, and no private name imported across a module boundary
(``align`` above all: a facade over public names)."""
import ast
import os
import os.path as osp

import torch_geometric_ea

ROOT = osp.dirname(torch_geometric_ea.__file__)


def modules():
    for folder, _, files in os.walk(ROOT):
        for file in sorted(files):
            if file.endswith('.py'):
                path = osp.join(folder, file)
                yield osp.relpath(path, ROOT), path


def test_no_module_above_450_lines_and_the_cli_under_300():
    sizes = {name: sum(1 for _ in open(path, encoding='utf-8'))
             for name, path in modules()}
    assert not {n: s for n, s in sizes.items() if s > 450}
    assert sizes['cli.py'] < 300


def private_imports(path):
    r"""The private names a module of the package imports from another one
    (absolute or relative imports), or reads through a package module it
    imported whole (``from torch_geometric_ea.data import translated``,
    then ``translated._URL``)."""
    tree = ast.parse(open(path, encoding='utf-8').read())
    modules = set()  # the package's modules this one imports whole
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level > 0 or (
                node.module or '').startswith('torch_geometric_ea')):
            for alias in node.names:
                modules.add(alias.asname or alias.name)
                if alias.name.startswith('_') and not alias.name.startswith('__'):
                    module = '.' * node.level + (node.module or '')
                    yield f'{module}.{alias.name} (line {node.lineno})'
        elif isinstance(node, ast.Import):
            modules.update(alias.asname or alias.name for alias in node.names
                           if alias.name.startswith('torch_geometric_ea'))
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in modules and node.attr.startswith('_')
                and not node.attr.startswith('__')):
            yield f'{node.value.id}.{node.attr} (line {node.lineno})'


def test_no_private_name_crosses_a_module_boundary():
    found = {name: list(private_imports(path)) for name, path in modules()}
    assert not {n: f for n, f in found.items() if f}


def test_the_check_finds_a_private_import(tmp_path):
    path = tmp_path / 'm.py'
    path.write_text('from torch_geometric_ea.train.gcn_align import _union_features\n'
                    'from .dual_amn import _row_mean_matrix\n'
                    'from torch_geometric_ea.data import translated\n'
                    'URL = translated._URL\n')
    assert list(private_imports(path)) == [
        'torch_geometric_ea.train.gcn_align._union_features (line 1)',
        '.dual_amn._row_mean_matrix (line 2)', 'translated._URL (line 4)']
