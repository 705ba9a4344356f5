r"""A pair as PyG users handle it: ``to_homogeneous()`` keeps the link
masks aligned with the links, and the printout holds no nested report."""
import pytest
import torch
from torch_geometric.data import HeteroData

from torch_geometric_ea.data import DBP15K, synthetic_pair, translated
from torch_geometric_ea.data.pair import (
    LINK,
    SPLITS,
    SRC,
    SRC_TRIPLE,
    TGT,
    TGT_TRIPLE,
    KGPair,
    links,
    pair_to_homogeneous,
)

MIRROR_ENV = 'TORCH_GEOMETRIC_EA_MIRROR'
FILES = {
    'ent_ids_1': '0\thttp://x/A\n1\thttp://x/B\n2\thttp://x/C\n3\thttp://x/D\n',
    'ent_ids_2': '10\thttp://y/a\n11\thttp://y/b\n12\thttp://y/c\n',
    'triples_1': '0\t5\t1\n1\t6\t2\n2\t5\t3\n',
    'triples_2': '10\t7\t11\n11\t7\t12\n',
    'ref_ent_ids': '0\t10\n1\t11\n2\t12\n',
}


def assert_homogeneous_keeps_links(data, h):
    n1 = data[SRC].num_nodes
    assert h.node_type.tolist() == [0] * n1 + [1] * data[TGT].num_nodes
    for split in SPLITS:
        mask = h[f'{split}_mask']
        assert mask.shape == (h.edge_label_index.size(1),)
        expected = links(data, split) + torch.tensor([[0], [n1]])
        assert torch.equal(h.edge_label_index[:, mask], expected)
    relation = torch.cat([data[SRC_TRIPLE].relation, data[TGT_TRIPLE].relation])
    assert torch.equal(h.relation, relation)
    assert 'report' not in h


@pytest.mark.parametrize('seed', [0, 1])
def test_to_homogeneous_keeps_masks_aligned_with_links(seed):
    data = synthetic_pair(60, seed=seed)
    assert isinstance(data, KGPair) and isinstance(data, HeteroData)
    assert bool(data[LINK].train_mask.any()) and bool(data[LINK].test_mask.any())
    h = data.to_homogeneous()
    train = h.edge_label_index[:, h.train_mask]  # an IndexError before
    assert train.size(1) == int(data[LINK].train_mask.sum())
    assert_homogeneous_keeps_links(data, h)
    assert h.edge_index.size(1) == (data[SRC_TRIPLE].edge_index.size(1)
                                    + data[TGT_TRIPLE].edge_index.size(1))
    for split in SPLITS:  # the pair itself is untouched
        assert data[LINK][f'{split}_mask'].numel() == data[LINK].edge_label_index.size(1)


def test_pair_to_homogeneous_on_a_plain_hetero_data():
    data = synthetic_pair(40)
    plain = HeteroData.from_dict(data.to_dict())
    assert type(plain) is HeteroData
    assert_homogeneous_keeps_links(data, pair_to_homogeneous(plain))
    assert plain[LINK].train_mask.numel() == plain[LINK].edge_label_index.size(1)


def test_repr_holds_no_nested_report():
    data = synthetic_pair(30)
    data.report = {'triples_1': {'rows': 3, 'duplicates': 0}}
    text = repr(data)
    assert 'report' not in text and 'rows' not in text
    assert 'edge_label_index=[2, ' in text and 'train_mask=' in text
    assert data.report['triples_1']['rows'] == 3  # still there
    assert data.clone().report == data.report


def test_dataset_pair_is_a_kg_pair(tmp_path, monkeypatch):
    monkeypatch.setattr(translated, 'TRANSLATED_NAMES', {})
    monkeypatch.setattr(DBP15K, 'checksums', {})  # tiny files, not the real ones
    folder = tmp_path / 'mirror' / 'dbp15k' / 'zh_en'
    folder.mkdir(parents=True)
    for name, text in FILES.items():
        (folder / name).write_text(text, encoding='utf-8')
    monkeypatch.setenv(MIRROR_ENV, str(tmp_path / 'mirror'))
    for _ in range(2):  # processed, then read back from the processed file
        data = DBP15K(str(tmp_path / 'root'), 'zh_en', train_ratio=0.34)[0]
        assert isinstance(data, KGPair)
        assert data.report['ref_ent_ids']['rows'] == 3
        assert 'report' not in repr(data)
        h = data.to_homogeneous()
        assert_homogeneous_keeps_links(data, h)
        assert h.edge_label_index[:, h.train_mask].size(1) == 1
