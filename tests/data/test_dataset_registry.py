import os.path as osp
import warnings

import pytest
import torch

import torch_geometric_ea.data.registry as registry
from torch_geometric_ea.data import (
    DATASET_NAMES,
    DATASETS,
    DBP15K,
    SRC,
    DatasetError,
    DatasetInfo,
    dataset_pairs,
    get_pair,
    synthetic_pair,
)


def old_load_pair(*args, **kwargs):
    r"""The command line's ``load_pair``, which :func:`get_pair` replaces."""
    from torch_geometric_ea.cli import load_pair
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        return load_pair(*args, **kwargs)


def assert_identical(a, b):
    r"""``a`` and ``b`` hold the same stores, attributes, dtypes and values."""
    a, b = a.to_dict(), b.to_dict()
    assert a.keys() == b.keys()
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, dict):
            assert x.keys() == y.keys(), key
            pairs = [((key, k), x[k], y[k]) for k in x]
        else:
            pairs = [(key, x, y)]
        for where, u, v in pairs:
            assert type(u) is type(v), where
            if isinstance(u, torch.Tensor):
                assert u.dtype == v.dtype and torch.equal(u, v), where
            else:
                assert u == v, where


def test_the_names_and_their_order():
    assert DATASET_NAMES == ('synthetic', 'dbp15k', 'srprs', 'dwy100k', 'openea', 'ogb')
    assert tuple(DATASETS) == DATASET_NAMES
    assert all(isinstance(info, DatasetInfo) and info.name == name
               for name, info in DATASETS.items())
    assert dataset_pairs('dbp15k') == ('zh_en', 'ja_en', 'fr_en') == DBP15K.pairs
    assert dataset_pairs('synthetic') == ()
    assert dataset_pairs('ogb') == ('ogbl-wikikg2',)
    assert [name for name, info in DATASETS.items() if info.needs_pair] == [
        'dbp15k', 'srprs', 'dwy100k', 'openea']


@pytest.mark.parametrize('seed, num_entities', [(0, 2000), (3, 120)])
def test_synthetic_is_the_command_lines_pair(seed, num_entities, tmp_path):
    new = get_pair('synthetic', None, str(tmp_path), seed=seed,
                   num_entities=num_entities)
    assert_identical(new, old_load_pair('synthetic', None, str(tmp_path), seed,
                                        num_entities=num_entities))
    assert_identical(new, synthetic_pair(num_entities, seed=seed))
    assert new[SRC].num_nodes == num_entities
    assert not list(tmp_path.iterdir())  # no files


def message(call) -> str:
    try:
        call()
    except (SystemExit, ValueError) as e:
        text = str(e)
        return text[len('error: '):] if text.startswith('error: ') else text
    raise AssertionError('no error')


@pytest.mark.parametrize('name, pair, expected', [
    ('nope', 'zh_en', "unknown dataset 'nope'; choose from synthetic, dbp15k, "
                      "srprs, dwy100k, openea, ogb"),
    ('DBP15K', None, "unknown dataset 'DBP15K'; choose from synthetic, dbp15k, "
                     "srprs, dwy100k, openea, ogb"),
    ('dbp15k', None, "--pair is required for dbp15k (one of zh_en, ja_en, fr_en)"),
    ('dwy100k', None, "--pair is required for dwy100k (one of dbp_wd, dbp_yg)"),
])
def test_errors_are_the_command_lines_in_one_line(name, pair, expected, tmp_path):
    with pytest.raises(ValueError) as info:
        get_pair(name, pair, str(tmp_path))
    assert type(info.value) is ValueError and str(info.value) == expected
    assert message(lambda: old_load_pair(name, pair, str(tmp_path), 0)) == expected
    assert not list(tmp_path.iterdir())


def test_pairs_of_an_unknown_dataset():
    with pytest.raises(ValueError, match=r"^unknown dataset 'nope'; choose from "
                                         r"synthetic, dbp15k, srprs, dwy100k, "
                                         r"openea, ogb$"):
        dataset_pairs('nope')


def test_an_unknown_pair_is_the_datasets_error(tmp_path):
    with pytest.raises(DatasetError, match=r"^SRPRS: unknown pair 'zh_en', "
                       r"expected one of en_fr, en_de"):
        get_pair('srprs', 'zh_en', str(tmp_path))


R = osp.join('R', '')  # the root, and the separator before the dataset's folder


class Recorder:
    r"""Stands in for a loader: notes its arguments."""
    calls = []

    def __init__(self, *args, **kwargs):
        Recorder.calls.append((args, kwargs))

    def __getitem__(self, index):
        return index


@pytest.mark.parametrize('name, pair, call', [
    ('synthetic', 'zh_en', ((7,), dict(seed=5))),
    ('dbp15k', 'zh_en', ((R + 'dbp15k', 'zh_en'), dict(seed=5, names='uri'))),
    ('srprs', 'en_de', ((R + 'srprs', 'en_de'), dict(names='uri'))),
    ('dwy100k', 'dbp_yg', ((R + 'dwy100k', 'dbp_yg'), {})),
    ('openea', 'D_W_15K_V1', ((R + 'openea', 'D_W_15K_V1'), {})),
    ('ogb', None, ((R + 'ogb', 7), dict(name='ogbl-wikikg2', seed=5, download=True))),
    ('ogb', '', ((R + 'ogb', 7), dict(name='ogbl-wikikg2', seed=5, download=True))),
    ('ogb', 'ogbl-x', ((R + 'ogb', 7), dict(name='ogbl-x', seed=5, download=True))),
])
def test_each_loader_gets_what_it_takes(name, pair, call, monkeypatch):
    for attr in ('synthetic_pair', 'ogb_pair', 'DBP15K', 'SRPRS', 'DWY100K', 'OpenEA'):
        monkeypatch.setattr(registry, attr, Recorder)
    monkeypatch.setattr(Recorder, 'calls', [])
    get_pair(name, pair, 'R', seed=5, num_entities=7, names='uri')
    args, kwargs = call
    assert Recorder.calls == [(tuple(osp.join(*a.split('/')) if isinstance(a, str)
                                     and a.startswith(R + '') else a for a in args),
                               kwargs)]


def test_the_registry_takes_a_dataset_of_ones_own(monkeypatch, tmp_path):
    seen = []

    def load(folder, pair, *, seed, num_entities, names):
        seen.append((folder, pair, seed))
        return synthetic_pair(50, seed=seed)

    monkeypatch.setitem(DATASETS, 'mine', DatasetInfo('mine', load, ('a', 'b'),
                                                      folder='my'))
    assert dataset_pairs('mine') == ('a', 'b')
    assert get_pair('mine', 'b', str(tmp_path), seed=2)[SRC].num_nodes == 50
    assert seen == [(str(tmp_path / 'my'), 'b', 2)]
    with pytest.raises(ValueError,
                       match=r"^--pair is required for mine \(one of a, b\)$"):
        get_pair('mine', root=str(tmp_path))


@pytest.mark.real_data
@pytest.mark.parametrize('seed, names', [(0, 'translated'), (1, 'uri')])
def test_dbp15k_is_the_command_lines_pair(mirror, seed, names, tmp_path):
    new = get_pair('dbp15k', 'zh_en', str(tmp_path / 'new'), seed=seed, names=names)
    old = old_load_pair('dbp15k', 'zh_en', str(tmp_path / 'old'), seed, names=names)
    assert_identical(new, old)
    assert getattr(new, 'name_source', 'uri') == names  # translated: attached
    assert osp.isdir(tmp_path / 'new' / 'dbp15k' / 'zh_en' / 'processed')
