r"""Nothing inside the package makes a tensor on the default device: with
the default device set to ``meta``, a tensor made without ``device=``
lands there and every operation mixing it with the CPU inputs fails. So
these runs pass on the CPU only if every tensor follows its inputs, which
is what makes them run on a GPU unchanged."""
import pytest
import torch

from torch_geometric_ea.metrics import (
    evaluate_alignment,
    evaluate_alignment_distance,
    mutual_nearest_neighbours,
)
from torch_geometric_ea.nn import (
    DualAMN,
    DualRelationAttentionConv,
    GCNAlign,
    NormalizedHardSampleMiningLoss,
    ProxyMatchingConv,
    RelationalAttentionConv,
    dual_amn_graph,
    gcn_align_adjacency,
    rdgcn_dual_graph,
    relational_layout,
)


def typed_graph(n=40, e=300, r=5):
    gen = torch.Generator().manual_seed(0)
    return (torch.randint(0, n, (2, e), generator=gen),
            torch.randint(0, r, (e,), generator=gen))


def test_layers_follow_their_inputs():
    edge_index, edge_type = typed_graph()
    convs = [RelationalAttentionConv(8), ProxyMatchingConv(8, 4),
             DualRelationAttentionConv(8, 6)]
    x = torch.randn(40, 8, requires_grad=True)
    rel = torch.randn(5, 8, requires_grad=True)
    with torch.device('meta'):
        layout = relational_layout(edge_index, edge_type, 40, 5)
        outs = [convs[0](x, edge_index, rel, edge_type),
                convs[0](x, layout, rel, return_attention_weights=True)[0],
                convs[1](x), convs[1](x, return_attention_weights=True)[1][1],
                convs[2](x, edge_index)]
        sum(o.sum() for o in outs).backward()
    assert all(o.device.type == 'cpu' for o in outs)
    assert x.grad.device.type == 'cpu'


def test_graph_structures_follow_their_inputs():
    edge_index, edge_type = typed_graph()
    with torch.device('meta'):
        graphs = [dual_amn_graph(edge_index, edge_type, 40, 5),
                  gcn_align_adjacency(edge_index, edge_type, 40, 5),
                  rdgcn_dual_graph(edge_index, edge_type, 40, 5)]
    for graph in graphs:
        assert all(t.device.type == 'cpu' for t in graph.stores[0].values()
                   if isinstance(t, torch.Tensor))


def test_models_and_loss_follow_their_inputs():
    edge_index, edge_type = typed_graph()
    graph = dual_amn_graph(edge_index, edge_type, 40, 5)
    model = DualAMN(40, 5, channels=8, num_proxies=4)
    gcn = GCNAlign(40, channels=8)
    adj = gcn_align_adjacency(edge_index, edge_type, 40, 5)
    pairs = torch.tensor([[0, 1, 2, 3], [20, 21, 22, 23]])
    with torch.device('meta'):
        loss = NormalizedHardSampleMiningLoss()(model(graph), pairs)
        loss = loss + NormalizedHardSampleMiningLoss(chunk_size=7, row_chunk_size=3)(
            model(graph, torch.arange(0, 40, 2, device='cpu')), pairs // 2)
        loss = loss + gcn(adj).sum()
        loss.backward()
    assert loss.device.type == 'cpu'


@pytest.mark.parametrize('decoding', ['csls', 'sinkhorn', 'hungarian'])
def test_metrics_follow_their_inputs(decoding):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(50, 6, generator=gen)
    y = x + 0.1 * torch.randn(50, 6, generator=gen)
    links = torch.stack([torch.arange(50)] * 2)
    with torch.device('meta'):
        check_metrics(x, y, links, decoding)


def check_metrics(x, y, links, decoding):
    metrics = evaluate_alignment(x, y, links, decoding=decoding, chunk_size=16)
    assert metrics['src->tgt']['hits@1'] > 0.5
    assert evaluate_alignment_distance(x, y, links, p=1)['src->tgt']['hits@1'] > 0.5
    pairs = mutual_nearest_neighbours(x, y, decoding=decoding if decoding != 'hungarian'
                                      else 'csls')
    assert pairs.device.type == 'cpu' and pairs.size(1) > 0
