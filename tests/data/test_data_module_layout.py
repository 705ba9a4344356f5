r"""The data package's layout (issue 29): one idea per module, each under
400 lines (the package-wide rule on private names: tests/test_package_shape.py),
and the names that moved out of ``io`` and
``datasets`` still importable from there (the same objects)."""
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
