r"""The metrics package's layout (issue 29): one idea per module, each under
400 lines (the package-wide rule on private names: tests/test_package_shape.py),
and the names that moved out of ``decoding`` and ``ranking`` still importable from
there (the same objects)."""
import importlib
import os
import os.path as osp

import pytest

import torch_geometric_ea.metrics as metrics

FOLDER = osp.dirname(metrics.__file__)
MODULES = sorted(name[:-3] for name in os.listdir(FOLDER) if name.endswith('.py'))


@pytest.mark.parametrize('module', MODULES)
def test_module_is_short(module):
    with open(osp.join(FOLDER, f'{module}.py')) as f:
        assert len(f.read().splitlines()) <= 400


@pytest.mark.parametrize('old, new, names', [
    ('decoding', 'sinkhorn', ['sinkhorn_potentials', 'sinkhorn_radii', 'sparse_sinkhorn',
                              'sparse_sinkhorn_pairs', 'sparse_sinkhorn_ranks']),
    ('decoding', 'topk', ['GatheredRows', 'few_of_many', 'topk_inner_products',
                          'topk_both_ways']),
    ('decoding', 'ranks', ['candidate_ranks']),
    ('ranking', 'ranks', ['rank_metrics', 'expected_rank_metrics', 'duplicate_rows',
                          'no_links_metrics', 'DEFAULT_TIE_ATOL']),
])
def test_moved_names_stay_importable(old, new, names):
    old = importlib.import_module(f'torch_geometric_ea.metrics.{old}')
    new = importlib.import_module(f'torch_geometric_ea.metrics.{new}')
    for name in names:
        assert name in old.__all__ and name in new.__all__, name
        assert getattr(old, name) is getattr(new, name), name
