r"""A KG pair next to PyG's own tools: heterogeneous models never see an
alignment link, and the relation ids survive ``to_homogeneous()``."""
import torch
from torch_geometric.nn import HeteroConv, MessagePassing, SAGEConv, to_hetero

from torch_geometric_ea.data import synthetic_pair
from torch_geometric_ea.data.pair import LINK, SRC, SRC_TRIPLE, TGT, TGT_TRIPLE, to_union


class Spy(MessagePassing):
    r"""A conv that records every edge it is given and sums its messages."""
    seen = []

    def __init__(self):
        super().__init__(aggr='sum')

    def forward(self, x, edge_index):
        Spy.seen.append(edge_index)
        x = x if isinstance(x, tuple) else (x, x)
        return self.propagate(edge_index, x=x, size=(x[0].size(0), x[1].size(0)))


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = Spy()

    def forward(self, x, edge_index):
        return self.conv(x, edge_index)


def pair_with_features():
    data = synthetic_pair(40, num_relations=4, seed=1)
    for side in (SRC, TGT):
        data[side].x = torch.randn(data[side].num_nodes, 8)
    return data


def test_to_hetero_never_passes_a_link_to_a_conv():
    data = pair_with_features()
    Spy.seen = []
    model = to_hetero(Model(), data.metadata(), aggr='sum')
    out = model(data.x_dict, data.edge_index_dict)
    assert set(out) == {SRC, TGT}
    seen = torch.cat(Spy.seen, dim=1)
    triples = torch.cat([data[SRC_TRIPLE].edge_index, data[TGT_TRIPLE].edge_index], 1)
    assert seen.size(1) == triples.size(1)  # the triples and nothing else
    # KG2 entities receive messages from KG2 only: change KG1's features,
    # KG2's outputs stay the same (no link carries anything across)
    x_dict = dict(data.x_dict)
    x_dict[SRC] = torch.randn_like(x_dict[SRC])
    assert torch.equal(model(x_dict, data.edge_index_dict)[TGT], out[TGT])


def test_hetero_conv_over_the_pair_keeps_the_kgs_apart():
    data = pair_with_features()
    conv = HeteroConv({edge_type: SAGEConv((-1, -1), 4)
                       for edge_type in data.edge_types})
    out = conv(data.x_dict, data.edge_index_dict)
    x_dict = dict(data.x_dict)
    x_dict[SRC] = torch.randn_like(x_dict[SRC])
    # the link conv sees no edges: KG2 gets only its root term, no KG1 message
    assert torch.allclose(conv(x_dict, data.edge_index_dict)[TGT], out[TGT])
    assert data[LINK].edge_index.shape == (2, 0)
    assert data[LINK].edge_label_index.size(1) == data[LINK].train_mask.numel()


def test_relation_ids_survive_to_homogeneous():
    data = synthetic_pair(40, num_relations=4, seed=1)
    homo = data.to_homogeneous()
    union = to_union(data)
    assert torch.equal(homo.edge_index, union.edge_index)
    assert torch.equal(homo.relation, union.edge_type)
    assert torch.equal(homo.edge_label_index, union.link_index)
