r"""Every exported layer and model cast with ``.half()``, ``.bfloat16()`` or
``.double()`` (no autocast) runs in that dtype: its output has the module's
dtype and is close to the float32 module's output, and backward works.
The sparse kernels compute in float32 inside where the CPU lacks half
precision, as :class:`~torch_geometric.nn.conv.GCNConv` returns the
module's dtype."""
import pytest
import torch

from torch_geometric_ea.nn import (
    RDGCN,
    DualAMN,
    DualRelationAttentionConv,
    GCNAlign,
    HighwayGCNConv,
    LightEA,
    MarginRankingL1Loss,
    NormalizedHardSampleMiningLoss,
    PrimalRelationAttentionConv,
    ProxyMatchingConv,
    RelationalAttentionConv,
    dual_amn_graph,
    gcn_align_adjacency,
    lightea_graph,
    rdgcn_dual_graph,
)

N, R, C = 12, 3, 8
DTYPES = [torch.float16, torch.bfloat16, torch.float64]
# float16 keeps 11 significant bits, bfloat16 8; outputs are compared with
# the float32 module's relative to their largest entry.
TOL = {torch.float16: 2e-2, torch.bfloat16: 8e-2, torch.float64: 1e-5}


def kg(seed=0, e=40):
    gen = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, N, (2, e), generator=gen)  # parallel edges, loops
    edge_type = torch.randint(0, R, (e,), generator=gen)
    return edge_index, edge_type


def features(*shape, seed=1):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# Each case: (make the float32 module, run it on inputs cast to ``dtype``).
def relational_attention(dtype, fused=True):
    edge_index, edge_type = kg()
    conv = RelationalAttentionConv(C, bias=True, fused=fused)
    return conv, lambda m: m(features(N, C).to(dtype), edge_index,
                             features(R, C, seed=3).to(dtype), edge_type)


def relational_attention_message_passing(dtype):
    return relational_attention(dtype, fused=False)


def dual_relation_attention(dtype):
    edge_index, _ = kg()
    weight = torch.rand(edge_index.size(1), generator=torch.Generator().manual_seed(2))
    conv = DualRelationAttentionConv(C, 5)
    with torch.no_grad():
        conv.att_bias.fill_(0.3)
    return conv, lambda m: m(features(N, C).to(dtype), edge_index, weight.to(dtype),
                             value=features(N, 6, seed=3).to(dtype))


def primal_relation_attention(dtype):
    edge_index, edge_type = kg()
    conv = PrimalRelationAttentionConv(C)
    return conv, lambda m: m(features(N, 6).to(dtype), edge_index,
                             features(R, C, seed=3).to(dtype), edge_type)


def highway_gcn(dtype):
    edge_index, _ = kg()
    conv = HighwayGCNConv(C, bias=True)
    return conv, lambda m: m(features(N, C).to(dtype), edge_index)


def highway_gcn_sparse_adjacency(dtype):
    edge_index, _ = kg()
    adj_t = torch.sparse_coo_tensor(edge_index.flip(0), torch.rand(edge_index.size(1)),
                                    (N, N)).coalesce().to_sparse_csr()
    conv = HighwayGCNConv(C, normalize=False)
    return conv, lambda m: m(features(N, C).to(dtype), adj_t.to(dtype))


def proxy_matching_dense(dtype):
    conv = ProxyMatchingConv(C, num_proxies=4, chunk_size=5)
    return conv, lambda m: m(features(N, C).to(dtype))


def proxy_matching_edges(dtype):
    gen = torch.Generator().manual_seed(4)
    edge_index = torch.stack([torch.randint(0, 4, (30,), generator=gen),
                              torch.randint(0, N, (30,), generator=gen)])
    conv = ProxyMatchingConv(C, num_proxies=4)
    return conv, lambda m: m(features(N, C).to(dtype), edge_index)


def dual_amn(dtype):
    graph = dual_amn_graph(*kg(), N, R)
    model = DualAMN(N, R, channels=C, num_proxies=4).eval()  # no dropout draws
    return model, lambda m: m(graph)


def rdgcn(dtype):
    graph = rdgcn_dual_graph(*kg(), num_nodes=N, num_relations=R)
    model = RDGCN(N, R, channels=C, x=features(N, C))
    return model, lambda m: m(graph)


def gcn_align(dtype):
    graph = gcn_align_adjacency(*kg(), N, R)
    graph.x = features(N, 5).abs()
    model = GCNAlign(N, channels=C, in_channels=5, attr_channels=3)
    return model, lambda m: m(graph)


def hard_sample_mining_loss(dtype):
    x = torch.nn.Parameter(features(N, C))
    pairs = torch.tensor([[0, 1, 2, 3], [6, 7, 8, 9]])

    class Loss(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.x, self.loss = x, NormalizedHardSampleMiningLoss(chunk_size=5)

        def forward(self):
            return self.loss(self.x, pairs)
    return Loss(), lambda m: m()


def margin_ranking_l1_loss(dtype):
    x = torch.nn.Parameter(features(N, C))
    pairs = torch.tensor([[0, 1, 2, 3], [6, 7, 8, 9]])
    negatives = torch.randint(0, N, (2, 4, 3), generator=torch.Generator().manual_seed(5))

    class Loss(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.x, self.loss = x, MarginRankingL1Loss()

        def forward(self):
            return self.loss(self.x, pairs, negatives)
    return Loss(), lambda m: m()


CASES = [relational_attention, relational_attention_message_passing,
         dual_relation_attention, primal_relation_attention, highway_gcn,
         highway_gcn_sparse_adjacency, proxy_matching_dense, proxy_matching_edges,
         dual_amn, rdgcn, gcn_align, hard_sample_mining_loss, margin_ranking_l1_loss]


def run(case, dtype):
    torch.manual_seed(0)
    module, forward = case(dtype)
    module = module.to(dtype)
    out = forward(module)
    weight = torch.linspace(-1, 1, out.numel()).view_as(out).to(dtype)
    (out * weight).sum().backward()
    grads = {name: p.grad for name, p in module.named_parameters()}
    return out, grads


def assert_close(got, expected, dtype):
    assert got.dtype == dtype, f'{got.dtype} instead of {dtype}'
    scale = expected.abs().max().clamp_min(1.0)
    err = (got.float() - expected).abs().max() / scale
    assert err <= TOL[dtype], err


@pytest.mark.parametrize('dtype', DTYPES, ids=str)
@pytest.mark.parametrize('case', CASES, ids=lambda case: case.__name__)
def test_module_runs_in_its_dtype_close_to_float32(case, dtype):
    expected, expected_grads = run(case, torch.float32)
    out, grads = run(case, dtype)
    assert_close(out, expected, dtype)
    assert grads.keys() == expected_grads.keys()
    for name, grad in grads.items():
        assert grad is not None and grad.dtype == dtype, name
        assert torch.isfinite(grad).all(), name
        if expected_grads[name] is not None and dtype == torch.float64:
            assert_close(grad, expected_grads[name], dtype)


@pytest.mark.parametrize('dtype', DTYPES, ids=str)
def test_lightea_features_in_the_graphs_dtype(dtype):
    # LightEA has no parameters: it computes in the dtype of its graph.
    def features_of(dtype):
        graph = lightea_graph(*kg(), N, R)
        for key in ('ent_ent', 'rel_ent', 'ent_rel', 'tuple_rel'):
            graph[key] = graph[key].to(dtype)
        model = LightEA(ent_dim=6, depth=2, rel_dim=5, mini_dim=3, chunk_size=4)
        pairs = torch.tensor([[0, 1, 2], [6, 7, 8]])
        return model(graph, pairs, torch.Generator().manual_seed(7))
    expected = features_of(torch.float32)
    assert_close(features_of(dtype), expected, dtype)
