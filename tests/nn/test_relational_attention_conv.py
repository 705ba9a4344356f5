import pytest
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
