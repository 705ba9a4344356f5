import pytest
import torch
from torch_geometric.data import Data

from torch_geometric_ea import Aligner
from torch_geometric_ea.data import from_pyg_dbp15k
from torch_geometric_ea.data.pair import LINK, SRC, SRC_TRIPLE, TGT, TGT_TRIPLE
from torch_geometric_ea.train import GCNAlignConfig


def gmnn_graph(n1=12, n2=10, words=3, dim=4):
    r"""A graph laid out as PyG's DBP15K stores it: padded word vectors,
    sparse raw relation ids, train_y and test_y."""
    gen = torch.Generator().manual_seed(0)
    x1 = torch.randn(n1, words, dim, generator=gen)
    x1[0, 1:] = 0  # entity 0 has one word, the rest is padding
    x2 = torch.randn(n2, words, dim, generator=gen)
    return Data(
        x1=x1, edge_index1=torch.randint(0, n1, (2, 30), generator=gen),
        rel1=torch.tensor([5, 17, 99])[torch.randint(0, 3, (30,), generator=gen)],
        x2=x2, edge_index2=torch.randint(0, n2, (2, 25), generator=gen),
        rel2=torch.tensor([3, 8])[torch.randint(0, 2, (25,), generator=gen)],
        train_y=torch.tensor([[0, 1, 2], [0, 1, 2]]),
        test_y=torch.tensor([[3, 4, 5, 6], [3, 4, 5, 6]]))


def test_converts_features_relations_and_links():
    graph = gmnn_graph()
    pair = from_pyg_dbp15k(graph)
    assert pair[SRC].x.shape == (12, 4) and pair[TGT].x.shape == (10, 4)
    assert torch.allclose(pair[SRC].x[0], graph.x1[0, 0])  # padding left out
    assert torch.allclose(pair[SRC].x[1], graph.x1[1].mean(0))
    assert from_pyg_dbp15k(graph, word_vectors='keep')[SRC].x.shape == (12, 3, 4)
    assert pair[SRC_TRIPLE].num_relations == 3 and pair[TGT_TRIPLE].num_relations == 2
    assert pair[SRC_TRIPLE].relation_uri == ['rel5', 'rel17', 'rel99']
    raw = torch.tensor([5, 17, 99])[pair[SRC_TRIPLE].edge_type]
    assert torch.equal(raw, graph.rel1)
    assert torch.equal(pair[SRC_TRIPLE].edge_index, graph.edge_index1)
    link = pair[LINK]
    assert torch.equal(link.edge_label_index[:, link.train_mask], graph.train_y)
    assert torch.equal(link.edge_label_index[:, link.test_mask], graph.test_y)


def test_rejects_other_graphs():
    with pytest.raises(ValueError, match='lacks edge_index1, rel1, x2'):
        from_pyg_dbp15k(Data(x1=torch.zeros(2, 2)))


def test_aligner_keeps_node_features_through_save_and_load(tmp_path):
    pair = from_pyg_dbp15k(gmnn_graph())
    aligner = Aligner.fit(pair, 'gcn-align', GCNAlignConfig(epochs=3, channels=8,
                                                           attr_channels=4),
                          progress=False)
    assert aligner.init_args['in_channels'] == 4  # trained with the features
    aligner.save(tmp_path / 'model.pt')
    again = Aligner.load(tmp_path / 'model.pt')
    assert torch.equal(again.data[SRC].x, pair[SRC].x)
    for a, b in zip(aligner.embed(), again.embed()):
        assert torch.allclose(a, b)
