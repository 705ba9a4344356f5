import pytest
import torch

from torch_geometric_ea.nn import ProxyMatchingConv


def test_repr_and_shape():
    conv = ProxyMatchingConv(12, num_proxies=5)
    assert repr(conv) == 'ProxyMatchingConv(12, num_proxies=5)'
    assert conv(torch.randn(7, 12)).shape == (7, 12)


def test_dense_equals_message_passing_over_all_proxies():
    torch.manual_seed(0)
    conv = ProxyMatchingConv(6, num_proxies=4).double()
    x = torch.randn(9, 6, dtype=torch.float64, requires_grad=True)
    edge_index = torch.stack([torch.arange(4).repeat(9),
                              torch.arange(9).repeat_interleave(4)])
    perm = torch.randperm(edge_index.size(1))  # edge order must not matter
    dense = conv(x)
    sparse = conv(x, edge_index[:, perm])
    assert torch.allclose(dense, sparse)
    g_dense = torch.autograd.grad(dense.sum(), (x, conv.proxy))
    g_sparse = torch.autograd.grad(sparse.sum(), (x, conv.proxy))
    for a, b in zip(g_dense, g_sparse):
        assert torch.allclose(a, b)


def test_formula_on_one_proxy():
    conv = ProxyMatchingConv(3, num_proxies=1, bias=False)
    x = torch.randn(4, 3)
    # One proxy gets all the attention: h_p = h - q.
    x_p = x - conv.proxy
    gate = torch.sigmoid(x_p @ conv.gate.weight.t())
    assert torch.allclose(conv(x), gate * x + (1 - gate) * x_p, atol=1e-6)


def test_values_with_three_proxies_by_hand():
    # two entities, three proxies in 2-d, computed with math on floats
    import math
    x = [[1.0, 0.0], [0.6, 0.8]]
    q = [[1.0, 0.0], [0.0, 2.0], [-3.0, 4.0]]
    w, b = [[0.5, -1.0], [2.0, 0.25]], [0.1, -0.2]
    expected = []
    for h in x:
        norm_h = math.hypot(*h)
        cos = [(h[0] * p[0] + h[1] * p[1]) / (norm_h * math.hypot(*p)) for p in q]
        e = [math.exp(c) for c in cos]
        beta = [v / sum(e) for v in e]
        h_p = [h[c] - sum(beta[k] * q[k][c] for k in range(3)) for c in range(2)]
        gate = [1 / (1 + math.exp(-(sum(w[o][c] * h_p[c] for c in range(2)) + b[o])))
                for o in range(2)]
        expected.append([gate[c] * h[c] + (1 - gate[c]) * h_p[c] for c in range(2)])
    conv = ProxyMatchingConv(2, num_proxies=3).double()
    with torch.no_grad():
        conv.proxy.copy_(torch.tensor(q))
        conv.gate.weight.copy_(torch.tensor(w))
        conv.gate.bias.copy_(torch.tensor(b))
    x = torch.tensor(x, dtype=torch.float64)
    expected = torch.tensor(expected, dtype=torch.float64)
    assert torch.allclose(conv(x), expected, atol=1e-12)
    full = torch.stack([torch.arange(3).repeat(2), torch.arange(2).repeat_interleave(3)])
    assert torch.allclose(conv(x, full), expected, atol=1e-12)


def test_subset_of_proxies_per_entity():
    conv = ProxyMatchingConv(3, num_proxies=2, bias=False)
    x = torch.randn(2, 3)
    # Entity 0 sees proxy 1 only, entity 1 proxy 0 only.
    out = conv(x, torch.tensor([[1, 0], [0, 1]]))
    x_p = x - conv.proxy.flip(0)
    gate = torch.sigmoid(x_p @ conv.gate.weight.t())
    assert torch.allclose(out, gate * x + (1 - gate) * x_p, atol=1e-6)


def test_dense_gradients_match_autograd_formula():
    torch.manual_seed(0)
    conv = ProxyMatchingConv(5, num_proxies=3).double()
    x = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    params = (x, conv.proxy, conv.gate.weight, conv.gate.bias)
    assert torch.autograd.gradcheck(
        lambda *args: conv(args[0]), params)


@pytest.mark.parametrize('chunk_size', [1, 4, 7])
def test_chunked_equals_one_block(chunk_size):
    torch.manual_seed(1)
    conv = ProxyMatchingConv(5, num_proxies=3, chunk_size=None).double()
    x = torch.randn(7, 5, dtype=torch.float64, requires_grad=True)
    out = conv(x)
    grads = torch.autograd.grad(out.pow(2).sum(), (x, *conv.parameters()))
    conv.chunk_size = chunk_size
    out_c = conv(x)
    grads_c = torch.autograd.grad(out_c.pow(2).sum(), (x, *conv.parameters()))
    assert torch.allclose(out, out_c, atol=1e-12)
    for g, g_c in zip(grads, grads_c):
        assert torch.allclose(g, g_c, atol=1e-12)
    x3 = x.detach().requires_grad_()
    assert torch.autograd.gradcheck(lambda a, *p: conv(a), (x3, *conv.parameters()))
