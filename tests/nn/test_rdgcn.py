import pytest
import torch
from torch_geometric.utils import scatter

from torch_geometric_ea.nn import (
    RDGCN,
    DualRelationAttentionConv,
    HighwayGCNConv,
    PrimalRelationAttentionConv,
    rdgcn_dual_graph,
)
from torch_geometric_ea.nn.layout import relational_layout


def tiny_kg():
    # (h, r, t): heads r0 {0}, r1 {0, 3}, r2 {4}; tails r0 {1}, r1 {1, 2},
    # r2 {5}; (0, r0, 1) twice (parallel), (2, r2, 2) a self-loop triple,
    # r3 has no triples.
    head = torch.tensor([0, 0, 0, 3, 4, 2, 2])
    rel = torch.tensor([0, 0, 1, 1, 2, 2, 2])
    tail = torch.tensor([1, 1, 2, 1, 5, 2, 4])
    return torch.stack([head, tail]), rel


def dense(index, value, size):
    out = torch.zeros(size, size, dtype=value.dtype)
    out.index_put_((index[0], index[1]), value, accumulate=True)
    return out


def test_dual_graph_weights_by_hand():
    edge_index, edge_type = tiny_kg()
    g = rdgcn_dual_graph(edge_index, edge_type, num_nodes=6, num_relations=4)
    w = dense(g.dual_edge_index, g.dual_weight, 4)
    # heads r2 = {4, 2}, tails r2 = {5, 2, 4}
    expected = torch.tensor([
        # r0 ~ r1: heads {0} vs {0, 3} -> 1/2, tails {1} vs {1, 2} -> 1/2
        [2.0, 1.0, 0.0, 0.0],
        # r1 ~ r2: heads {0, 3} vs {2, 4} -> 0, tails {1, 2} vs {2, 4, 5} -> 1/4
        [1.0, 2.0, 0.25, 0.0],
        [0.0, 0.25, 2.0, 0.0],
        [0.0, 0.0, 0.0, 0.0],  # no triples: no node features, no edges
    ])
    assert torch.allclose(w, expected)
    assert g.dual_edge_index.size(1) == 7
    x = torch.arange(6.0).view(6, 1)
    assert torch.allclose(torch.sparse.mm(g.rel_head, x).view(-1),
                          torch.tensor([0.0, 1.5, 3.0, 0.0]))  # distinct heads
    assert torch.allclose(torch.sparse.mm(g.rel_tail, x).view(-1),
                          torch.tensor([1.0, 1.5, 11 / 3, 0.0]))


def test_gcn_adjacency_is_official_normalisation():
    edge_index, edge_type = tiny_kg()
    g = rdgcn_dual_graph(edge_index, edge_type, num_nodes=6, num_relations=4)
    # Undirected simple graph without self-loop triples, plus self-loops;
    # degree = 1 + distinct neighbours.
    neighbours = {0: {1, 2}, 1: {0, 3}, 2: {0, 4}, 3: {1}, 4: {5, 2}, 5: {4}}
    expected = torch.zeros(6, 6)
    for i, nbrs in neighbours.items():
        for j in nbrs | {i}:
            expected[i, j] = 1 / ((len(nbrs) + 1) * (len(neighbours[j]) + 1)) ** 0.5
    assert torch.allclose(g.adj.to_dense(), expected)


def test_primal_edges_point_from_tail_to_head():
    edge_index, edge_type = tiny_kg()
    g = rdgcn_dual_graph(edge_index, edge_type, num_nodes=6, num_relations=4)
    layout = g.layout
    assert torch.equal(layout.src_d, edge_index[1][layout.order])
    assert torch.equal(layout.dst_d, edge_index[0][layout.order])
    assert torch.equal(layout.type_d, edge_type[layout.order])


def random_graph(n=8, e=30, c=6, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, generator=gen, dtype=torch.float64)
    edge_index = torch.randint(0, n, (2, e), generator=gen)
    weight = torch.rand(e, generator=gen, dtype=torch.float64) * 2
    return x, edge_index, weight


def make_dual(c=6, hidden=5, **kwargs):
    torch.manual_seed(1)
    conv = DualRelationAttentionConv(c, hidden, **kwargs).double()
    with torch.no_grad():
        conv.att_bias.fill_(0.3)  # non-zero, so it takes part in the tests
    return conv


def make_primal(c=4, **kwargs):
    torch.manual_seed(1)
    conv = PrimalRelationAttentionConv(c, **kwargs).double()
    with torch.no_grad():
        conv.att_bias.fill_(-0.2)
    return conv


def test_dual_attention_matches_dense_formula_and_sums_to_one():
    x, edge_index, weight = random_graph()
    edge_index = torch.unique(edge_index, dim=1)  # dense reference needs no duplicates
    weight = weight[:edge_index.size(1)]
    conv = make_dual()
    value = torch.randn(8, 3, dtype=torch.float64)
    out, (_, alpha) = conv(x, edge_index, weight, value=value,
                      return_attention_weights=True)
    h = conv.lin(x)
    f1, f2 = (h @ conv.att_dst).view(-1, 1), (h @ conv.att_src).view(1, -1)
    w = dense(edge_index.flip(0), weight, 8)  # w[i, j] for edge j -> i
    logits = torch.nn.functional.leaky_relu(w * (f1 + f2 + conv.att_bias), 0.2)
    logits = logits.masked_fill(w == 0, float('-inf'))
    coef = torch.softmax(logits, dim=1).nan_to_num(0.0)
    assert torch.allclose(out, coef @ value)
    assert torch.allclose(alpha, coef[edge_index[1], edge_index[0]])
    sums = scatter(alpha, edge_index[1], dim_size=8, reduce='sum')
    has_edges = torch.bincount(edge_index[1], minlength=8) > 0
    assert torch.allclose(sums[has_edges], torch.ones_like(sums[has_edges]))
    assert (out[~has_edges] == 0).all()


def test_primal_attention_sums_to_one_and_depends_on_relation_only():
    x, edge_index, _ = random_graph()
    edge_type = torch.randint(0, 3, (30,))
    rel = torch.randn(3, 4, dtype=torch.float64)
    _, (_, alpha) = make_primal()(x, edge_index, rel, edge_type,
                             return_attention_weights=True)
    sums = scatter(alpha, edge_index[1], dim_size=8, reduce='sum')
    has_edges = torch.bincount(edge_index[1], minlength=8) > 0
    assert torch.allclose(sums[has_edges], torch.ones_like(sums[has_edges]))
    # within one target, edges of one relation get equal weight
    for i in range(8):
        for r in range(3):
            a = alpha[(edge_index[1] == i) & (edge_type == r)]
            assert torch.allclose(a, a[:1].expand_as(a)) if a.numel() else True
    # one relation everywhere: a plain mean of the neighbours
    out = make_primal()(x, edge_index, rel[:1], torch.zeros(30, dtype=torch.long))
    mean = scatter(x[edge_index[0]], edge_index[1], dim=0, dim_size=8,
                   reduce='mean')
    assert torch.allclose(out, mean)


def test_primal_table_path_equals_per_edge_rows():
    x, edge_index, _ = random_graph()
    edge_type = torch.randint(0, 3, (30,))
    rel = torch.randn(3, 4, dtype=torch.float64)
    conv = make_primal()
    assert torch.allclose(conv(x, edge_index, rel, edge_type),
                          conv(x, edge_index, rel[edge_type]))
    with pytest.raises(ValueError, match='one relation row per edge'):
        conv(x, edge_index, rel)


def run_both(make, inputs, grad_names):
    fused, plain = make(), make(fused=False)
    plain.load_state_dict(fused.state_dict())
    outs, grads = [], []
    for conv in (fused, plain):
        leaves = [t.clone().requires_grad_() for t in inputs['leaves']]
        out = inputs['call'](conv, *leaves)
        (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)
         ).sum().backward()
        outs.append(out)
        grads.append([t.grad for t in leaves]
                     + [getattr(conv, n).grad for n in grad_names])
    assert torch.allclose(outs[0], outs[1])
    for a, b in zip(*grads):
        assert torch.allclose(a, b)


def test_fused_equals_message_passing():
    x, edge_index, weight = random_graph()
    value = torch.randn(8, 3, dtype=torch.float64)
    run_both(make_dual, dict(
        leaves=[x, value],
        call=lambda conv, x, v: conv(x, edge_index, weight, value=v)),
        ['att_dst', 'att_src', 'att_bias'])
    edge_type = torch.randint(0, 3, (30,))
    rel = torch.randn(3, 4, dtype=torch.float64)
    run_both(make_primal, dict(
        leaves=[x, rel],
        call=lambda conv, x, r: conv(x, edge_index, r, edge_type)),
        ['att', 'att_bias'])


def test_primal_logit_bias_gets_a_gradient():
    x, edge_index, _ = random_graph()
    edge_type = torch.arange(30) % 3
    rel = torch.randn(3, 4, dtype=torch.float64)
    conv = make_primal()
    with torch.no_grad():  # logits on both sides of zero
        conv.att_bias.fill_(-float((rel @ conv.att).median()))
    conv(x, edge_index, rel, edge_type).pow(2).sum().backward()
    assert conv.att_bias.grad.abs() > 0


def test_fused_gradcheck():
    x, edge_index, weight = random_graph(n=5, e=12, c=3)
    conv = make_dual(c=3, hidden=2)
    value = torch.randn(5, 2, dtype=torch.float64, requires_grad=True)
    x.requires_grad_()
    assert torch.autograd.gradcheck(
        lambda x, v: conv(x, edge_index, weight, value=v), (x, value))
    rel = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    edge_type = torch.randint(0, 3, (12,))
    primal = make_primal()
    assert torch.autograd.gradcheck(
        lambda x, r: primal(x, edge_index, r, edge_type), (x, rel))


def test_invariant_to_edge_order_and_node_relabelling():
    x, edge_index, weight = random_graph()
    edge_type = torch.randint(0, 3, (30,))
    rel = torch.randn(3, 4, dtype=torch.float64)
    dual, primal = make_dual(), make_primal()
    out_d = dual(x, edge_index, weight)
    out_p = primal(x, edge_index, rel, edge_type)
    perm = torch.randperm(30)
    assert torch.allclose(out_d, dual(x, edge_index[:, perm], weight[perm]))
    assert torch.allclose(out_p, primal(x, edge_index[:, perm], rel, edge_type[perm]))
    relabel = torch.randperm(8)  # node i becomes relabel[i]
    x_new = torch.empty_like(x)
    x_new[relabel] = x
    assert torch.allclose(dual(x_new, relabel[edge_index], weight)[relabel], out_d)
    assert torch.allclose(primal(x_new, relabel[edge_index], rel, edge_type)[relabel],
                          out_p)


def test_layout_input_equals_edge_index():
    x, edge_index, weight = random_graph()
    dual = make_dual()
    layout = relational_layout(edge_index, None, 8)
    assert torch.allclose(dual(x, layout, weight), dual(x, edge_index, weight))


def test_reprs():
    assert repr(DualRelationAttentionConv(600, 600)) == 'DualRelationAttentionConv(600, 600)'
    assert repr(PrimalRelationAttentionConv(600)) == 'PrimalRelationAttentionConv(600)'
    assert repr(HighwayGCNConv(300)) == 'HighwayGCNConv(300)'
    assert repr(RDGCN(10, 3, channels=8)) == 'RDGCN(10, num_relations=3, channels=8)'


def test_highway_gate_shape_and_limits():
    torch.manual_seed(0)
    conv = HighwayGCNConv(4).double()
    assert conv.gate.weight.shape == (4, 4) and conv.gate.bias.shape == (4,)
    assert torch.equal(conv.weight, torch.ones(4, dtype=torch.float64))
    x, edge_index, _ = random_graph(c=4)
    edge_index = edge_index[:, edge_index[0] != edge_index[1]]
    with torch.no_grad():
        conv.gate.weight.zero_()
        conv.gate.bias.fill_(-1e4)  # gate closed: the input passes
    assert torch.allclose(conv(x, edge_index), x)
    with torch.no_grad():
        conv.gate.bias.fill_(1e4)  # gate open: ReLU of the normalised GCN
    ei = torch.cat([edge_index, torch.arange(8).repeat(2, 1)], dim=1)
    deg = torch.bincount(ei[1], minlength=8).double()
    norm = (deg[ei[0]] * deg[ei[1]]).rsqrt()
    expected = scatter(norm.view(-1, 1) * x[ei[0]], ei[1], dim=0, dim_size=8)
    assert torch.allclose(conv(x, edge_index), expected.relu())


def test_highway_sparse_adjacency_equals_edge_index():
    torch.manual_seed(0)
    conv = HighwayGCNConv(4, normalize=False).double()
    x, edge_index, weight = random_graph(c=4)
    adj = torch.sparse_coo_tensor(edge_index.flip(0), weight, (8, 8))
    out = conv(x, edge_index, weight)
    assert torch.allclose(conv(x, adj.coalesce().to_sparse_csr()), out)
    assert out.shape == (8, 4)


def test_model_shape_gradients_and_features():
    edge_index, edge_type = tiny_kg()
    g = rdgcn_dual_graph(edge_index, edge_type, num_nodes=6, num_relations=4)
    torch.manual_seed(0)
    feats = torch.randn(6, 8)
    model = RDGCN(6, 4, channels=8, x=feats)
    assert torch.equal(model.emb.weight.detach(), feats)
    out = model(g)
    assert out.shape == (6, model.out_channels) == (6, 8)
    out.pow(2).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        # The primal logit bias shifts all logits of a target alike, so its
        # gradient vanishes unless they straddle LeakyReLU's kink (tested
        # on the layer, test_primal_logit_bias_gets_a_gradient).
        if not name.endswith('att_bias') or 'dual' in name:
            assert p.grad.abs().sum() > 0, name
    with torch.no_grad():
        model.emb.weight.zero_()
    model.reset_parameters()  # the given features come back
    assert torch.equal(model.emb.weight.detach(), feats)
    assert 'x_init' not in model.state_dict()
    with pytest.raises(ValueError, match='expected features of shape'):
        RDGCN(6, 4, channels=4, x=feats)


def test_model_invariant_to_triple_order_and_entity_relabelling():
    edge_index, edge_type = tiny_kg()
    torch.manual_seed(0)
    feats = torch.randn(6, 8)
    model = RDGCN(6, 4, channels=8, x=feats)
    out = model(rdgcn_dual_graph(edge_index, edge_type, 6, 4))
    perm = torch.randperm(edge_type.numel())
    g = rdgcn_dual_graph(edge_index[:, perm], edge_type[perm], 6, 4)
    assert torch.allclose(model(g), out, atol=1e-6)
    relabel = torch.randperm(6)
    x_new = torch.empty_like(feats)
    x_new[relabel] = feats
    model_new = RDGCN(6, 4, channels=8, x=x_new)
    state = {k: v for k, v in model.state_dict().items() if k != 'emb.weight'}
    model_new.load_state_dict(state, strict=False)
    g = rdgcn_dual_graph(relabel[edge_index], edge_type, 6, 4)
    assert torch.allclose(model_new(g)[relabel], out, atol=1e-6)
