r"""Machine-translated entity names (issue 18, deliverable 1): the reader,
its errors, and the verified fetch."""
import hashlib
import json
import os.path as osp

import pytest
import torch

from torch_geometric_ea.data import download, translated
from torch_geometric_ea.data.download import MIRROR_ENV
from torch_geometric_ea.data.translated import (
    TRANSLATED_NAMES,
    read_translated_names,
    translated_names,
)


def write(tmp_path, text, name='names.json', encoding='utf-8'):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return str(path)


def test_names_are_tokens_joined_and_nfc_normalised(tmp_path):
    path = write(tmp_path, json.dumps([[0, ["kim", "dae", "jung"]],
                                       [2, ["cafe\u0301", "paris"]], [1, []]]))
    assert read_translated_names(path) == {0: 'kim dae jung', 2: 'caf\u00e9 paris',
                                           1: ''}


@pytest.mark.parametrize('text, match', [
    ('{"0": ["a"]}', r'expected a JSON list'),
    ('[[0, ["a"]], [0, ["b"]]]', r'entry 1: duplicate id 0'),
    ('[[0, "a b"]]', r'entry 0: expected \[id, \[token, \.\.\.\]\]'),
    ('[[-1, ["a"]]]', r'entry 0: expected .* non-negative integer id'),
    ('[[true, ["a"]]]', r'entry 0: expected'),
    ('[[0, ["a"]], [1, ["b", 2]]]', r'entry 1 \(id 1\): every token must be a string'),
    ('[[0, ["a"]],\n [1, ["b"]', r'names.json:2: invalid JSON'),
])
def test_bad_files_name_the_file_and_the_entry(tmp_path, text, match):
    with pytest.raises(ValueError, match=match):
        read_translated_names(write(tmp_path, text))


def test_invalid_utf8_is_an_error(tmp_path):
    path = write(tmp_path, b'[[0, ["caf\xe9"]]]')
    with pytest.raises(ValueError, match=r'names.json: invalid UTF-8 at byte 10'):
        read_translated_names(path)


def fake_server(monkeypatch, tmp_path, text):
    r"""Serves every download with ``text``; returns the requested URLs."""
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    requested = []

    def serve(url, folder, log=True, filename=None):
        requested.append(url)
        return write(tmp_path / folder, text, filename)
    monkeypatch.setattr(download, 'download_url', serve)
    return requested


def test_download_is_verified_and_a_changed_file_refused(tmp_path, monkeypatch):
    text = '[[0, ["a"]], [1, ["b"]]]'
    digest = hashlib.sha256(text.encode()).hexdigest()
    monkeypatch.setitem(TRANSLATED_NAMES, ('dbp15k', 'zh_en'),
                        ('dbp_zh_en.json', digest))
    requested = fake_server(monkeypatch, tmp_path, text)
    folder = str(tmp_path / 'names')
    assert translated_names('DBP15K', 'zh_en', folder) == {0: 'a', 1: 'b'}
    assert requested == [translated._URL.format('dbp_zh_en.json')]
    assert translated_names('dbp15k', 'zh_en', folder) == {0: 'a', 1: 'b'}
    assert len(requested) == 1  # read from the folder the second time
    write(tmp_path / 'names', '[[0, ["x"]], [1, ["b"]]]', 'dbp_zh_en.json')
    with pytest.raises(ValueError, match='does not match the expected'):
        translated_names('dbp15k', 'zh_en', folder)
    assert not osp.exists(osp.join(folder, 'dbp_zh_en.json'))  # removed


def test_a_changed_download_is_refused(tmp_path, monkeypatch):
    fake_server(monkeypatch, tmp_path, '[[0, ["tampered"]]]')
    with pytest.raises(ValueError, match='does not match the expected d187deeb'):
        translated_names('dbp15k', 'zh_en', str(tmp_path / 'names'))


def test_pairs_without_translations_have_none(tmp_path):
    assert translated_names('dwy100k', 'dbp_wd', str(tmp_path)) is None


@pytest.mark.parametrize('pair, num', [('zh_en', 38960), ('ja_en', 39594),
                                       ('fr_en', 39654)])
def test_real_names_cover_every_dbp15k_entity(mirror, tmp_path, pair, num):
    names = translated_names('dbp15k', pair, str(tmp_path))
    assert sorted(names) == list(range(num))
    assert sum(1 for name in names.values() if not name) <= 1


def test_token_bigrams_are_counted_within_tokens_by_hand():
    from torch_geometric_ea.data.names import token_bigram_features
    x = token_bigram_features(['Abc ab', 'bc_x', 'a', ''])
    # vocabulary in order of appearance: 'ab', 'bc'; no 'ca' across tokens
    expected = torch.tensor([[2.0, 1.0], [0.0, 1.0], [0.0, 0.0], [0.0, 0.0]])
    assert torch.allclose(x, torch.nn.functional.normalize(expected, dim=1))
    assert torch.allclose(x[0], torch.tensor([2.0, 1.0]) / 5 ** 0.5)


def test_pair_names_follow_the_published_ids():
    from torch_geometric_ea.data import kg_pair
    from torch_geometric_ea.data.pair import SRC, TGT
    from torch_geometric_ea.data.translated import pair_names
    edges = torch.tensor([[0], [1]])
    data = kg_pair(num_nodes=(2, 2), edge_index=(edges, edges),
                   edge_type=(torch.zeros(1, dtype=torch.long),) * 2,
                   link_index=torch.tensor([[0], [0]]),
                   train_mask=torch.tensor([True]), test_mask=torch.tensor([False]))
    data[SRC].raw_id, data[TGT].raw_id = torch.tensor([7, 3]), torch.tensor([10, 11])
    assert pair_names(data, {3: 'c', 7: 'g', 10: 'k'}) == (['g', 'c'], ['k', ''])
