r"""The data package's layout (issue 29): one idea per module, each under
400 lines, no private name imported across a module boundary (nor reached
through an imported module), and the names that moved out of ``io`` and
``datasets`` still importable from there (the same objects)."""
import ast
import importlib
import os
import os.path as osp

import pytest

import torch_geometric_ea.data as data

FOLDER = osp.dirname(data.__file__)
MODULES = sorted(name[:-3] for name in os.listdir(FOLDER) if name.endswith('.py'))


@pytest.mark.parametrize('module', MODULES)
def test_module_is_short(module):
    with open(osp.join(FOLDER, f'{module}.py')) as f:
        assert len(f.read().splitlines()) <= 400


def private_names(path):
    r"""The private names ``path`` imports from another module, or reads
    through a module of the package it imports."""
    with open(path) as f:
        tree = ast.parse(f.read())
    imported = [node for node in ast.walk(tree)
                if isinstance(node, (ast.Import, ast.ImportFrom))]
    private = [f'{node.module}.{alias.name}' for node in imported
               if isinstance(node, ast.ImportFrom)
               for alias in node.names if alias.name.startswith('_')]
    # a package module imported whole (``from torch_geometric_ea.data import
    # translated``) and one of its private names read through it
    modules = {alias.asname or alias.name for node in imported
               for alias in node.names
               if (getattr(node, 'module', None) or alias.name).startswith(
                   'torch_geometric_ea')}
    private += [f'{node.value.id}.{node.attr}' for node in ast.walk(tree)
                if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in modules and node.attr.startswith('_')
                and not node.attr.startswith('__')]
    return private


@pytest.mark.parametrize('module', MODULES)
def test_no_private_name_crosses_a_module_boundary(module):
    assert not private_names(osp.join(FOLDER, f'{module}.py'))


def test_the_private_name_check_can_fail(tmp_path):
    path = tmp_path / 'bad.py'
    path.write_text('from torch_geometric_ea.data import translated\n'
                    'from torch_geometric_ea.data.tsv import _row_codes\n'
                    'URL = translated._URL\n')
    assert private_names(path) == ['torch_geometric_ea.data.tsv._row_codes',
                                   'translated._URL']


@pytest.mark.parametrize('old, new, names', [
    ('io', 'tsv', ['IdMap', 'Records']),
    ('io', 'link_files', ['read_int_links', 'read_str_links', 'concat_links']),
    ('datasets', 'pair_dataset', ['PAIR_FORMAT', 'NAMES']),
])
def test_moved_names_stay_importable(old, new, names):
    old = importlib.import_module(f'torch_geometric_ea.data.{old}')
    new = importlib.import_module(f'torch_geometric_ea.data.{new}')
    for name in names:
        assert getattr(old, name) is getattr(new, name), name


@pytest.mark.parametrize('module, names', [
    ('io', ['IdMap', 'Records', 'read_id_map', 'read_int_triples', 'read_int_links',
            'read_str_triples', 'read_str_links', 'read_entity_names', 'concat_links']),
    ('datasets', ['MIRROR_ENV', 'DatasetError', 'DBP15K', 'SRPRS', 'DWY100K',
                  'OpenEA']),
])
def test_the_split_modules_keep_their_public_names(module, names):
    module = importlib.import_module(f'torch_geometric_ea.data.{module}')
    assert module.__all__ == names
    for name in names:
        assert getattr(data, name) is getattr(module, name), name
