r"""The fused kernels against plain message passing on random graphs of
every shape: more edges than relations x nodes or nodes squared, parallel
edges, self-loops, isolated nodes, no edges at all."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from torch_geometric_ea.nn import (
    DualRelationAttentionConv,
    ProxyMatchingConv,
    RelationalAttentionConv,
)
from torch_geometric_ea.nn import layout as layout_module


@pytest.fixture(autouse=True, scope='module')
def checked_layouts():
    layout_module.CHECK_INVARIANTS = True  # every CSR tensor made is checked
    yield
    layout_module.CHECK_INVARIANTS = False


def typed_graph(n, e, r, c, seed, loops):
    gen = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, n, (2, e), generator=gen)
    if loops and e:
        edge_index[1, ::3] = edge_index[0, ::3]  # every third edge a self-loop
    edge_type = torch.randint(0, r, (e,), generator=gen)
    x = torch.randn(n, c, generator=gen, dtype=torch.float64)
    table = torch.randn(r, c, generator=gen, dtype=torch.float64)
    weights = torch.randn(n, c, generator=gen, dtype=torch.float64)
    return edge_index, edge_type, x, table, weights


def run(conv, weights, *inputs, **kwargs):
    inputs = [t.clone().requires_grad_() if t.is_floating_point() else t
              for t in inputs]
    out, (edge_index, alpha) = conv(*inputs, return_attention_weights=True, **kwargs)
    (out * weights[:, :out.size(1)]).sum().backward()
    grads = [t.grad for t in inputs if t.is_floating_point()]
    return [out, alpha, *grads, *(p.grad for p in conv.parameters())], edge_index


def assert_all_close(got, expected):
    for a, b in zip(got, expected):
        assert a.shape == b.shape
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-10), (a - b).abs().max()


@settings(max_examples=500, deadline=None)
@given(n=st.integers(1, 50), e=st.integers(0, 400), r=st.integers(1, 6),
       seed=st.integers(0, 2**31), loops=st.booleans())
def test_relational_attention_fused_equals_message_passing(n, e, r, seed, loops):
    edge_index, edge_type, x, table, weights = typed_graph(n, e, r, 5, seed, loops)
    torch.manual_seed(seed)
    fused = RelationalAttentionConv(5, bias=True).double()
    plain = RelationalAttentionConv(5, bias=True, fused=False).double()
    plain.load_state_dict(fused.state_dict())
    got, ei = run(fused, weights, x, edge_index, table, edge_type)
    expected, _ = run(plain, weights, x, edge_index, table, edge_type)
    assert ei is edge_index
    assert_all_close(got, expected)
    has_in = torch.bincount(edge_index[1], minlength=n) > 0
    sums = torch.zeros(n, dtype=torch.float64).index_add_(0, edge_index[1], got[1])
    assert torch.allclose(sums[has_in], torch.ones(int(has_in.sum()), dtype=sums.dtype))
    assert torch.equal(got[0][~has_in], fused.bias.detach().expand(int((~has_in).sum()), 5))


@settings(max_examples=150, deadline=None)
@given(n=st.integers(1, 30), e=st.integers(0, 300), seed=st.integers(0, 2**31))
def test_dual_attention_fused_equals_message_passing(n, e, seed):
    edge_index, _, x, _, weights = typed_graph(n, e, 1, 4, seed, loops=True)
    edge_weight = torch.rand(e, dtype=torch.float64)
    torch.manual_seed(seed)
    fused = DualRelationAttentionConv(4, 6).double()
    plain = DualRelationAttentionConv(4, 6, fused=False).double()
    plain.load_state_dict(fused.state_dict())
    got, _ = run(fused, weights, x, edge_index, edge_weight)
    expected, _ = run(plain, weights, x, edge_index, edge_weight)
    assert_all_close(got, expected)


@settings(max_examples=100, deadline=None)
@given(n=st.integers(0, 40), proxies=st.integers(1, 8), chunk=st.integers(1, 50),
       seed=st.integers(0, 2**31))
def test_proxy_matching_dense_equals_message_passing(n, proxies, chunk, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, generator=gen, dtype=torch.float64)
    weights = torch.randn(n, 5, generator=gen, dtype=torch.float64)
    torch.manual_seed(seed)
    conv = ProxyMatchingConv(5, proxies, chunk_size=chunk).double()
    full = torch.stack([torch.arange(proxies).repeat(n),
                        torch.arange(n).repeat_interleave(proxies)])
    got, ei = run(conv, weights, x)
    assert torch.equal(ei, full)
    grads = [p.grad.clone() for p in conv.parameters()]
    conv.zero_grad()
    expected, _ = run(conv, weights, x, full)
    assert_all_close(got[:3] + grads, expected[:3] + [p.grad for p in conv.parameters()])


def test_readme_example_with_more_edges_than_relations_times_nodes():
    conv = RelationalAttentionConv(64)
    x = torch.randn(10, 64)
    edge_index = torch.randint(0, 10, (2, 51))
    rel_table, edge_type = torch.randn(5, 64), torch.randint(0, 5, (51,))
    assert conv(x, edge_index, rel_table, edge_type).shape == (10, 64)


def test_single_relation_graph_of_cora_size():
    gen = torch.Generator().manual_seed(0)
    edge_index = torch.randint(0, 2708, (2, 10556), generator=gen)
    x = torch.randn(2708, 16, generator=gen)
    conv = RelationalAttentionConv(16)
    rel = torch.randn(1, 16, requires_grad=True)
    out = conv(x, edge_index, rel, torch.zeros(10556, dtype=torch.long))
    out.sum().backward()
    assert out.shape == (2708, 16) and torch.isfinite(rel.grad).all()
    # one relation: every incoming edge has the same weight, so each node
    # receives the mean of its reflected in-neighbours
    r = torch.nn.functional.normalize(rel.detach(), dim=-1)
    msg = x - 2 * (x @ r.t()) * r
    deg = torch.bincount(edge_index[1], minlength=2708).clamp_min(1)
    mean = torch.zeros(2708, 16).index_add_(0, edge_index[1], msg[edge_index[0]])
    assert torch.allclose(out, mean / deg.unsqueeze(1), atol=1e-5)
