import pytest
import torch

from torch_geometric_ea.nn import RelationalAttentionConv, relational_layout
from torch_geometric_ea.nn import layout as layout_module

AXES = ('dst', 'src', 'type')


def random_typed_graph(n=7, e=25, r=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randint(0, n, (2, e), generator=gen),
            torch.randint(0, r, (e,), generator=gen))


@pytest.fixture
def checked(monkeypatch):
    monkeypatch.setattr(layout_module, 'CHECK_INVARIANTS', True)


@pytest.mark.parametrize('n, e, r', [(7, 25, 4), (3, 60, 2), (5, 80, 1), (4, 0, 3)])
@pytest.mark.parametrize('rows, cols', [(a, b) for a in AXES for b in AXES if a != b])
def test_csr_sums_the_values_of_every_edge_and_is_valid(checked, rows, cols, n, e, r):
    # e > r * n and e > n * n: parallel edges share entries
    edge_index, edge_type = random_typed_graph(n, e, r)
    layout = relational_layout(edge_index, edge_type, n, r)
    canon = {'dst': edge_index[1], 'src': edge_index[0], 'type': edge_type}
    canon = {k: v[layout.order] for k, v in canon.items()}
    value = torch.rand(e, dtype=torch.float64)  # canonical order
    size = [r if k == 'type' else n for k in (rows, cols)]
    expected = torch.zeros(size, dtype=torch.float64)
    expected.index_put_((canon[rows], canon[cols]), value, accumulate=True)
    matrix = layout.csr(rows, cols, value)  # checked against the invariants
    assert torch.allclose(matrix.to_dense(), expected)
    a = torch.randn(size[0], 3, dtype=torch.float64)
    b = torch.randn(size[1], 3, dtype=torch.float64)
    dots = layout.sampled_dots(rows, cols, a, b)
    assert torch.allclose(dots, (a[canon[rows]] * b[canon[cols]]).sum(-1))


def test_canonical_order_is_sorted_by_target_then_source():
    edge_index, edge_type = random_typed_graph()
    layout = relational_layout(edge_index, edge_type, 7, 4)
    key = layout.dst_d * 7 + layout.src_d
    assert (key.diff() >= 0).all()
    assert torch.equal(layout.order.sort()[0], torch.arange(25))
    assert torch.equal(layout.src_d, edge_index[0][layout.order])
    assert torch.equal(layout.type_d, edge_type[layout.order])


def test_without_types_every_edge_is_its_own_type():
    edge_index, _ = random_typed_graph()
    layout = relational_layout(edge_index, None, 7)
    assert layout.num_types == 25
    assert torch.equal(layout.type_d, layout.order)


@pytest.mark.parametrize('edge_index, edge_type, match', [
    (torch.tensor([[0, 7], [1, 2]]), torch.tensor([0, 1]), 'node ids outside'),
    (torch.tensor([[0, -1], [1, 2]]), torch.tensor([0, 1]), 'node ids outside'),
    (torch.tensor([[0, 1], [1, 2]]), torch.tensor([0, 4]), 'edge_type holds'),
])
def test_rejects_ids_out_of_range(edge_index, edge_type, match):
    with pytest.raises(ValueError, match=match):
        relational_layout(edge_index, edge_type, 7, 4)


def test_prebuilt_layout_equals_edge_index_and_keeps_edge_order():
    torch.manual_seed(0)
    conv = RelationalAttentionConv(6).double()
    edge_index, edge_type = random_typed_graph()
    x = torch.randn(7, 6, dtype=torch.float64)
    table = torch.randn(4, 6, dtype=torch.float64)
    out, (ei, alpha) = conv(x, edge_index, table, edge_type,
                            return_attention_weights=True)
    assert ei is edge_index
    layout = relational_layout(edge_index, edge_type, 7, 4)
    out2, (ei2, alpha2) = conv(x, layout, table, return_attention_weights=True)
    assert torch.allclose(out, out2)
    assert torch.equal(ei2, edge_index[:, layout.order])
    assert torch.allclose(alpha[layout.order], alpha2)
    logit = (torch.nn.functional.normalize(table) @ conv.att).view(-1)[edge_type]
    # edges into one node with the same type get the same weight
    same = ((edge_index[1].unsqueeze(0) == edge_index[1].unsqueeze(1))
            & (logit.unsqueeze(0) == logit.unsqueeze(1)))
    assert torch.allclose((alpha.unsqueeze(0) - alpha.unsqueeze(1))[same],
                          torch.zeros(int(same.sum()), dtype=torch.float64))
    with pytest.raises(ValueError, match='relation table of 4 rows'):
        conv(x, layout, table[:3])


def test_sparse_path_equals_message_passing_on_a_larger_float_graph():
    gen = torch.Generator().manual_seed(3)
    n, e, r, c = 300, 2000, 40, 32
    edge_index = torch.randint(0, n - 20, (2, e), generator=gen)  # 20 isolated
    edge_type = torch.randint(0, r, (e,), generator=gen)
    x = torch.randn(n, c, generator=gen)
    table = torch.randn(r, c, generator=gen)
    torch.manual_seed(0)
    fused, plain = RelationalAttentionConv(c), RelationalAttentionConv(c, fused=False)
    plain.load_state_dict(fused.state_dict())
    results = []
    for conv in (fused, plain):
        xi, ti = x.clone().requires_grad_(), table.clone().requires_grad_()
        out = conv(xi, edge_index, ti, edge_type)
        out.pow(2).sum().backward()
        results.append((out, xi.grad, ti.grad, conv.att.grad))
    for a, b in zip(*results):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-4)
    assert (results[0][0][n - 20:] == 0).all()
