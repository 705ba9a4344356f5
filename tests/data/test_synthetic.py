import pytest
import torch
from torch_geometric.utils import degree

from torch_geometric_ea.data import (
    LINK,
    SRC,
    SRC_TRIPLE,
    TGT,
    TGT_TRIPLE,
    from_union,
    links,
    synthetic_pair,
    to_union,
)


def tensors(data):
    return [data[SRC_TRIPLE].edge_index, data[SRC_TRIPLE].edge_type,
            data[TGT_TRIPLE].edge_index, data[TGT_TRIPLE].edge_type,
            data[LINK].edge_label_index, data[LINK].train_mask, data[LINK].test_mask]


def test_deterministic_per_seed():
    a, b = synthetic_pair(2000, seed=7), synthetic_pair(2000, seed=7)
    c = synthetic_pair(2000, seed=8)
    assert all(torch.equal(x, y) for x, y in zip(tensors(a), tensors(b)))
    assert not torch.equal(a[LINK].edge_label_index, c[LINK].edge_label_index)


def test_shapes_and_names():
    data = synthetic_pair(1000, num_relations=20, num_triples=5000,
                          unique_fraction=0.2, relation_merge=0.25,
                          train_ratio=0.4)
    assert data[SRC].num_nodes == data[TGT].num_nodes == 1000
    assert data[LINK].edge_label_index.shape == (2, 800)
    assert int(data[LINK].train_mask.sum()) == 320
    assert int(data[LINK].test_mask.sum()) == 480
    assert data[SRC_TRIPLE].num_relations == data[TGT_TRIPLE].num_relations == 15
    assert data[SRC].uri[3] == 'http://kg1.example.org/entity/ent3'
    assert data[TGT].uri[3] == 'http://kg2.example.org/entity/ent3'
    assert data[TGT_TRIPLE].relation_uri[0] == 'http://kg2.example.org/relation/rel0'
    for store in (SRC_TRIPLE, TGT_TRIPLE):
        ei = data[store].edge_index
        assert ei.size(1) == data[store].edge_type.numel() > 0
        assert not (ei[0] == ei[1]).any()  # no self-loops
        triples = torch.stack([ei[0], data[store].edge_type, ei[1]])
        assert torch.unique(triples, dim=1).size(1) == ei.size(1)  # no repeats
    # 200 entities per side have no counterpart
    assert torch.unique(data[LINK].edge_label_index[0]).numel() == 800


def relation_sets(index, edge_type, num_relations):
    r"""For every relation, the set of its (head, tail) pairs."""
    return [frozenset(map(tuple, index[:, edge_type == r].t().tolist()))
            for r in range(num_relations)]


def test_links_are_the_true_alignment():
    # Without noise the two views are isomorphic under the links and some
    # relation permutation: check it exactly.
    data = synthetic_pair(500, num_relations=12, num_triples=3000,
                          unique_fraction=0.0, edge_dropout=0.0,
                          relation_merge=0.0, seed=3)
    src, tgt = data[LINK].edge_label_index
    to_tgt = torch.full((500,), -1, dtype=torch.long)
    to_tgt[src] = tgt
    mapped = to_tgt[data[SRC_TRIPLE].edge_index]
    sets_src = relation_sets(mapped, data[SRC_TRIPLE].edge_type, 12)
    sets_tgt = relation_sets(data[TGT_TRIPLE].edge_index,
                             data[TGT_TRIPLE].edge_type, 12)
    assert sorted(map(sorted, sets_src)) == sorted(map(sorted, sets_tgt))
    assert data[SRC_TRIPLE].edge_index.size(1) == data[TGT_TRIPLE].edge_index.size(1)


def test_edge_dropout_keeps_the_expected_overlap():
    data = synthetic_pair(3000, unique_fraction=0.0, edge_dropout=0.3, seed=1)
    src, tgt = data[LINK].edge_label_index
    to_tgt = torch.full((3000,), -1, dtype=torch.long)
    to_tgt[src] = tgt
    mapped = to_tgt[data[SRC_TRIPLE].edge_index]
    tgt_pairs = set(map(tuple, data[TGT_TRIPLE].edge_index.t().tolist()))
    kept = sum(p in tgt_pairs for p in map(tuple, mapped.t().tolist()))
    # a src triple survives in tgt with probability 0.7 (a bit more through
    # parallel edges with other relations)
    assert 0.65 < kept / mapped.size(1) < 0.85


def test_ids_do_not_leak_the_alignment():
    data = synthetic_pair(5000, seed=2)
    src, tgt = data[LINK].edge_label_index.double()
    assert (src == tgt).double().mean() < 0.01
    assert abs(torch.corrcoef(torch.stack([src, tgt]))[0, 1]) < 0.05
    # train links are a random subset, not a block of ids
    train = links(data, 'train')[0].double()
    assert abs(train.mean() / 5000 - 0.5) < 0.05


def test_density_and_power_law_degrees():
    data = synthetic_pair(20000, seed=0)
    for store in (SRC_TRIPLE, TGT_TRIPLE):
        per_entity = data[store].edge_index.size(1) / 20000
        assert 4.0 < per_entity < 5.0  # DWY100K: about 4.5 triples per entity
        deg = degree(data[store].edge_index.flatten(), 20000)
        assert deg.max() > 50 * deg.mean()  # heavy tail
        assert (deg == 0).float().mean() < 0.05


@pytest.mark.parametrize('kwargs', [dict(unique_fraction=1.0),
                                    dict(edge_dropout=-0.1),
                                    dict(degree_exponent=1.0),
                                    dict(num_relations=0)])
def test_invalid_arguments(kwargs):
    with pytest.raises(ValueError):
        synthetic_pair(100, **kwargs)


def test_union_round_trip():
    data = synthetic_pair(300, num_relations=10, num_triples=1500, seed=4)
    n1, r1 = data[SRC].num_nodes, data[SRC_TRIPLE].num_relations
    union = to_union(data)
    e1 = data[SRC_TRIPLE].edge_index.size(1)
    assert union.num_nodes == 600 and union.offset == (n1, r1)
    assert union.num_relations == r1 + data[TGT_TRIPLE].num_relations
    assert torch.equal(union.edge_index[:, :e1], data[SRC_TRIPLE].edge_index)
    assert torch.equal(union.edge_index[:, e1:] - n1, data[TGT_TRIPLE].edge_index)
    assert torch.equal(union.edge_type[e1:] - r1, data[TGT_TRIPLE].edge_type)
    assert (union.node_type[union.link_index[0]] == 0).all()
    assert (union.node_type[union.link_index[1]] == 1).all()
    assert torch.equal(union.train_mask, data[LINK].train_mask)
    x = torch.randn(600, 4)
    x_src, x_tgt = from_union(x, data)
    assert torch.equal(torch.cat([x_src, x_tgt]), x)
    assert torch.equal(x[union.link_index[1]],
                       x_tgt[data[LINK].edge_label_index[1]])
    with pytest.raises(ValueError, match='expected 600 union rows'):
        from_union(x[:-1], data)
