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
    r"""``from torch_geometric_ea... import _name`` lines of a module."""
    tree = ast.parse(open(path, encoding='utf-8').read())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level > 0 or (
                node.module or '').startswith('torch_geometric_ea')):
            for alias in node.names:
                if alias.name.startswith('_') and not alias.name.startswith('__'):
                    module = '.' * node.level + (node.module or '')
                    yield f'{module}.{alias.name} (line {node.lineno})'


def test_no_private_name_crosses_a_module_boundary():
    found = {name: list(private_imports(path)) for name, path in modules()}
    assert not {n: f for n, f in found.items() if f}


def test_the_check_finds_a_private_import(tmp_path):
    path = tmp_path / 'm.py'
    path.write_text('from torch_geometric_ea.train.gcn_align import _union_features\n'
                    'from .dual_amn import _row_mean_matrix\n')
    assert list(private_imports(path)) == [
        'torch_geometric_ea.train.gcn_align._union_features (line 1)',
        '.dual_amn._row_mean_matrix (line 2)']
