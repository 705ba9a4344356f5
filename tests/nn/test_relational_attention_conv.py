import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
import torch
from torch_geometric.utils import scatter

from torch_geometric_ea.nn import RelationalAttentionConv


def tiny_graph(n=8, e=30, c=6, r=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, generator=gen, dtype=torch.float64)
    edge_index = torch.randint(0, n, (2, e), generator=gen)
    rel_table = torch.randn(r, c, generator=gen, dtype=torch.float64)
    edge_type = torch.randint(0, r, (e,), generator=gen)
    return x, edge_index, rel_table, edge_type


def make_conv(c=6, **kwargs):
    torch.manual_seed(1)
    return RelationalAttentionConv(c, **kwargs).double()


def test_repr_and_shape():
    conv = make_conv()
    assert repr(conv) == 'RelationalAttentionConv(6)'
    x, edge_index, rel_table, edge_type = tiny_graph()
    assert conv(x, edge_index, rel_table, edge_type).shape == (8, 6)


def test_attention_sums_to_one_per_target():
    x, edge_index, rel_table, edge_type = tiny_graph()
    _, (_, alpha) = make_conv()(x, edge_index, rel_table, edge_type,
                                return_attention_weights=True)
    sums = scatter(alpha, edge_index[1], dim_size=8, reduce='sum')
    has_edges = torch.bincount(edge_index[1], minlength=8) > 0
    assert torch.allclose(sums[has_edges], torch.ones(int(has_edges.sum()),
                                                      dtype=sums.dtype))
    assert (sums[~has_edges] == 0).all()


def test_table_path_equals_per_edge_vectors():
    x, edge_index, rel_table, edge_type = tiny_graph()
    conv = make_conv()
    assert torch.allclose(conv(x, edge_index, rel_table, edge_type),
                          conv(x, edge_index, rel_table[edge_type]))


@pytest.mark.parametrize('bias', [False, True])
def test_fused_equals_message_passing(bias):
    x, edge_index, rel_table, edge_type = tiny_graph()
    fused, plain = make_conv(bias=bias), make_conv(bias=bias, fused=False)
    plain.load_state_dict(fused.state_dict())
    outs, grads = [], []
    for conv in (fused, plain):
        xi = x.clone().requires_grad_()
        ri = rel_table.clone().requires_grad_()
        out = conv(xi, edge_index, ri, edge_type)
        (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)
         ).sum().backward()
        outs.append(out)
        grads.append((xi.grad, ri.grad, conv.att.grad))
    assert torch.allclose(outs[0], outs[1])
    for a, b in zip(*grads):
        assert torch.allclose(a, b)


def test_fused_gradcheck():
    x, edge_index, rel_table, edge_type = tiny_graph(n=5, e=12, c=3, r=3)
    conv = make_conv(c=3)
    x.requires_grad_()
    rel_table.requires_grad_()
    assert torch.autograd.gradcheck(
        lambda x, r: conv(x, edge_index, r, edge_type), (x, rel_table))


def test_invariant_to_edge_order_and_node_relabelling():
    x, edge_index, rel_table, edge_type = tiny_graph()
    conv = make_conv()
    out = conv(x, edge_index, rel_table, edge_type)
    perm = torch.randperm(edge_index.size(1))
    assert torch.allclose(out, conv(x, edge_index[:, perm], rel_table,
                                    edge_type[perm]))
    relabel = torch.randperm(8)  # node i becomes relabel[i]
    x_new = torch.empty_like(x)
    x_new[relabel] = x
    out_new = conv(x_new, relabel[edge_index], rel_table, edge_type)
    assert torch.allclose(out_new[relabel], out)


def test_reflection_keeps_norm_for_a_single_neighbour():
    conv = make_conv()
    x = torch.randn(2, 6, dtype=torch.float64)
    out = conv(x, torch.tensor([[0], [1]]), torch.randn(1, 6, dtype=torch.float64))
    assert torch.allclose(out[1].norm(), x[0].norm())
    assert torch.equal(out[0], torch.zeros(6, dtype=torch.float64))


def test_rejects_wrong_number_of_relation_vectors():
    x, edge_index, rel_table, _ = tiny_graph()
    with pytest.raises(ValueError, match='one relation row per edge'):
        make_conv()(x, edge_index, rel_table)


def test_normalize_rows_matches_autograd():
    from torch_geometric_ea.nn.functional import normalize_rows
    x = torch.randn(20, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(normalize_rows, (x,))
    assert torch.allclose(normalize_rows(x), torch.nn.functional.normalize(x))


@pytest.mark.parametrize('fused', [True, False])
def test_flow_target_to_source_is_the_default_flow_on_flipped_edges(fused):
    x, edge_index, rel_table, edge_type = tiny_graph()
    conv = make_conv(fused=fused, flow='target_to_source', bias=True)
    default = make_conv(fused=fused, bias=True)
    default.load_state_dict(conv.state_dict())
    out, (ei, alpha) = conv(x, edge_index, rel_table, edge_type,
                            return_attention_weights=True)
    expected, (_, alpha_expected) = default(x, edge_index.flip(0), rel_table, edge_type,
                                            return_attention_weights=True)
    assert ei is edge_index
    assert torch.allclose(out, expected)
    assert torch.allclose(alpha, alpha_expected)
    assert not torch.allclose(out, default(x, edge_index, rel_table, edge_type))


def test_flow_paths_agree_in_values_and_gradients():
    x, edge_index, rel_table, edge_type = tiny_graph()
    fused = make_conv(flow='target_to_source')
    plain = make_conv(flow='target_to_source', fused=False)
    plain.load_state_dict(fused.state_dict())
    results = []
    for conv in (fused, plain):
        xi = x.clone().requires_grad_()
        out = conv(xi, edge_index, rel_table, edge_type)
        out.pow(2).sum().backward()
        results.append((out, xi.grad, conv.att.grad))
    for a, b in zip(*results):
        assert torch.allclose(a, b)


@pytest.mark.parametrize('fused', [True, False])
def test_owned_relation_table(fused):
    x, edge_index, _, edge_type = tiny_graph()
    conv = make_conv(num_relations=4, fused=fused)
    assert repr(conv) == 'RelationalAttentionConv(6, num_relations=4)'
    assert conv.rel_table.shape == (4, 6)
    table = conv.rel_table.detach().clone()
    plain = make_conv(fused=fused)
    plain.att.data.copy_(conv.att.data)
    expected = plain(x, edge_index, table, edge_type)
    assert torch.allclose(conv(x, edge_index, edge_type), expected)
    assert torch.allclose(conv(x, edge_index, edge_type=edge_type), expected)
    conv(x, edge_index, edge_type).sum().backward()
    assert conv.rel_table.grad is not None
    conv.reset_parameters()
    assert not torch.equal(conv.rel_table.detach(), table)
    with pytest.raises(ValueError, match='owns its relation table'):
        conv(x, edge_index, table, edge_type)


@pytest.mark.parametrize('fused', [True, False])
def test_bipartite_input_sends_messages_from_source_to_destination(fused):
    x, edge_index, rel_table, edge_type = tiny_graph()
    x_dst = torch.randn(5, 6, dtype=torch.float64)
    edge_index = edge_index[:, edge_index[1] < 5]
    edge_type = edge_type[:edge_index.size(1)]
    conv = make_conv(fused=fused)
    out = conv((x, x_dst), edge_index, rel_table, edge_type)
    # the same as one graph of both node sets, destination ids shifted
    joint = conv(torch.cat([x, x_dst]), torch.stack([edge_index[0], edge_index[1] + 8]),
                 rel_table, edge_type)
    assert out.shape == (5, 6)
    assert torch.allclose(out, joint[8:])


def hetero_model(channels=8):
    from torch_geometric.nn import to_hetero

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = RelationalAttentionConv(channels, num_relations=270)

        def forward(self, x, edge_index, edge_type):
            return torch.tanh(self.conv(x, edge_index, edge_type))
    return Net, to_hetero


def test_to_hetero_with_an_owned_table_on_two_node_types():
    from torch_geometric.data import HeteroData
    Net, to_hetero = hetero_model()
    data = HeteroData()
    data['a'].x, data['b'].x = torch.randn(7, 8), torch.randn(5, 8)
    data['a', 'r', 'a'].edge_index = torch.randint(0, 7, (2, 20))
    data['a', 'r', 'a'].edge_type = torch.randint(0, 270, (20,))
    data['a', 's', 'b'].edge_index = torch.stack([torch.randint(0, 7, (9,)),
                                                  torch.randint(0, 5, (9,))])
    data['a', 's', 'b'].edge_type = torch.randint(0, 270, (9,))
    model = to_hetero(Net(), data.metadata())
    out = model(data.x_dict, data.edge_index_dict, data.edge_type_dict)
    assert out['a'].shape == (7, 8) and out['b'].shape == (5, 8)
    assert torch.isfinite(out['b']).all() and out['b'].abs().sum() > 0


def test_to_hetero_on_a_pair_link_type_contributes_nothing():
    from torch_geometric_ea.data import synthetic_pair
    Net, to_hetero = hetero_model()
    pair = synthetic_pair(60)
    model = to_hetero(Net(), pair.metadata())
    x = {t: torch.randn(pair[t].num_nodes, 8) for t in pair.node_types}
    out = model(x, pair.edge_index_dict, pair.edge_type_dict)
    assert out['src'].shape == (60, 8) and out['tgt'].shape == (60, 8)
    link = model.conv['src__link__tgt']
    zeros = link((x['src'], x['tgt']), pair['src', 'link', 'tgt'].edge_index, None)
    assert torch.equal(zeros, torch.zeros(60, 8))


def test_aggr_other_than_add_is_refused():
    with pytest.raises(ValueError, match="aggr='add'"):
        RelationalAttentionConv(6, aggr='mean')
    assert RelationalAttentionConv(6, aggr='add').aggr == 'add'


@pytest.mark.parametrize('fused', [True, False])
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_sparse_adjacency_with_types_as_values_equals_edge_index(fused, data):
    r"""``adj_t`` (entry (i, j) for the edge j -> i, its value the edge's
    type, as RGCNConv reads it) gives what edge_index and edge_type give:
    uncoalesced COO keeps parallel edges apart; CSR on graphs without them."""
    n = data.draw(st.integers(1, 12))
    e = data.draw(st.integers(0, 40))
    gen = torch.Generator().manual_seed(data.draw(st.integers(0, 2**31)))
    edge_index = torch.randint(n, (2, e), generator=gen)
    edge_type = torch.randint(4, (e,), generator=gen)
    x, table = torch.randn(n, 8, generator=gen), torch.randn(4, 8, generator=gen)
    conv = RelationalAttentionConv(8, fused=fused)
    want = conv(x, edge_index, table, edge_type)
    adj = torch.sparse_coo_tensor(edge_index.flip(0), edge_type, (n, n))
    torch.testing.assert_close(conv(x, adj, table), want, rtol=1e-4, atol=1e-5)
    owner = RelationalAttentionConv(8, fused=fused, num_relations=4)
    torch.testing.assert_close(owner(x, adj), owner(x, edge_index, edge_type),
                               rtol=1e-4, atol=1e-5)
    key = edge_index[1] * n + edge_index[0]
    if key.unique().numel() == e:  # CSR merges parallel edges
        torch.testing.assert_close(conv(x, adj.coalesce().to_sparse_csr(), table),
                                   want, rtol=1e-4, atol=1e-5)


def test_sparse_adjacency_without_types_is_refused_with_a_clear_error():
    x, edge_index, rel_table, edge_type = tiny_graph()
    adj = torch.sparse_coo_tensor(edge_index, torch.ones(30), (8, 8)).coalesce()
    for adj_t in (adj, adj.to_sparse_csr()):
        with pytest.raises(ValueError, match='relation type as its integer value'):
            make_conv()(x, adj_t, rel_table, edge_type)
        with pytest.raises(ValueError, match='relation type as its integer value'):
            make_conv()(x, adj_t, rel_table)


@pytest.mark.parametrize('fused', [True, False])
def test_lazy_channels_take_the_width_of_the_first_input(fused):
    x, edge_index, rel_table, edge_type = tiny_graph()
    for owned in (False, True):
        kwargs = dict(num_relations=rel_table.size(0)) if owned else {}
        lazy = RelationalAttentionConv(-1, bias=True, fused=fused, **kwargs)
        assert repr(lazy).startswith('RelationalAttentionConv(-1')
        args = (edge_type,) if owned else (rel_table, edge_type)
        out = lazy(x, edge_index, *args)
        assert lazy.channels == x.size(1) and lazy.att.shape == (x.size(1), 1)
        eager = RelationalAttentionConv(x.size(1), bias=True, fused=fused,
                                        **kwargs).to(x.dtype)
        eager.load_state_dict(lazy.state_dict())
        assert torch.equal(eager(x, edge_index, *args), out)
        fresh = RelationalAttentionConv(-1, bias=True, fused=fused, **kwargs)
        fresh.load_state_dict(lazy.state_dict())  # a lazy layer loads weights
        assert torch.equal(fresh(x, edge_index, *args), out)
    with pytest.raises(ValueError, match='positive channels, or -1'):
        RelationalAttentionConv(0)


def test_cached_layout_with_another_graph_says_so():
    x, edge_index, rel_table, edge_type = tiny_graph()
    conv = make_conv(cached=True)
    conv(x, edge_index, rel_table, edge_type)
    x2, edge_index2, _, edge_type2 = tiny_graph(n=12, seed=1)
    with pytest.raises(ValueError, match='cache holds the layout of another graph'):
        conv(x2, edge_index2, rel_table, edge_type2)
    conv.reset_parameters()
    assert conv(x2, edge_index2, rel_table, edge_type2).shape == (12, 6)


@pytest.mark.parametrize('fused', [True, False])
def test_int32_edge_index_on_both_paths(fused):
    x, edge_index, rel_table, edge_type = tiny_graph()
    conv = make_conv(fused=fused)
    assert torch.allclose(conv(x, edge_index.int(), rel_table, edge_type.int()),
                          conv(x, edge_index, rel_table, edge_type))


@settings(max_examples=60, deadline=None)
@given(n_src=st.integers(1, 12), n_dst=st.integers(1, 12), e=st.integers(0, 60),
       r=st.integers(1, 4), seed=st.integers(0, 2**31), fused=st.booleans())
def test_flow_and_bipartite_on_random_graphs(n_src, n_dst, e, r, seed, fused):
    gen = torch.Generator().manual_seed(seed)
    x_src = torch.randn(n_src, 4, generator=gen, dtype=torch.float64)
    x_dst = torch.randn(n_dst, 4, generator=gen, dtype=torch.float64)
    edge_index = torch.stack([torch.randint(0, n_src, (e,), generator=gen),
                              torch.randint(0, n_dst, (e,), generator=gen)])
    edge_type = torch.randint(0, r, (e,), generator=gen)
    torch.manual_seed(seed)
    conv = RelationalAttentionConv(4, num_relations=r, bias=True, fused=fused).double()
    flipped = RelationalAttentionConv(4, num_relations=r, bias=True, fused=not fused,
                                      flow='target_to_source').double()
    flipped.load_state_dict(conv.state_dict())
    out = conv((x_src, x_dst), edge_index, edge_type)
    assert out.shape == (n_dst, 4)
    # the other path, the other flow, the edges and node sets swapped
    assert torch.allclose(out, flipped((x_dst, x_src), edge_index.flip(0), edge_type))
    joint = conv(torch.cat([x_src, x_dst]),
                 torch.stack([edge_index[0], edge_index[1] + n_src]), edge_type)
    assert torch.allclose(out, joint[n_src:])
