r"""The exported layers, model and loss under torch.compile, in float64,
under autocast, on every device, and their documented first-order limit."""
import pytest
import torch

from torch_geometric_ea.nn import (
    DualAMN,
    NormalizedHardSampleMiningLoss,
    ProxyMatchingConv,
    RelationalAttentionConv,
    dual_amn_graph,
)


def graph(device, n=30, e=200, r=3, c=8, dtype=torch.float32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, n, (2, e), generator=gen)  # E > R x N
    edge_type = torch.randint(0, r, (e,), generator=gen)
    x = torch.randn(n, c, generator=gen, dtype=dtype)
    rel = torch.randn(r, c, generator=gen, dtype=dtype)
    return [t.to(device) for t in (x, edge_index, rel, edge_type)]


def outputs_and_grads(module, inputs, dtype=None):
    inputs = [t.clone().requires_grad_() if t.is_floating_point() else t
              for t in inputs]
    module.zero_grad()
    out = module(*inputs)
    weight = torch.linspace(-1, 1, out.numel(), device=out.device).view_as(out)
    (out * weight.to(out.dtype)).sum().backward()
    return [out] + [t.grad for t in inputs if t.is_floating_point()] + [
        p.grad.clone() for p in module.parameters() if p.grad is not None]


def assert_close(got, expected, tol=1e-5):
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert a.dtype == b.dtype and a.device == b.device
        assert torch.allclose(a, b, rtol=tol, atol=tol), (a - b).abs().max()


def small_dual_amn(device, dtype=torch.float32):
    x, edge_index, _, edge_type = graph(device)
    torch.manual_seed(0)
    model = DualAMN(30, 3, channels=8, num_proxies=4).to(device, dtype)
    return model, dual_amn_graph(edge_index, edge_type, 30, 3).to(device)


class OnGraph(torch.nn.Module):  # the model on its fixed graph
    def __init__(self, model, graph):
        super().__init__()
        self.model, self.graph = model, graph

    def forward(self):
        return self.model(self.graph)


@pytest.mark.parametrize('fused', [True, False])
def test_relational_attention_compiled_equals_eager(device, fused):
    torch.manual_seed(0)
    conv = RelationalAttentionConv(8, bias=True, fused=fused).to(device)
    inputs = graph(device)
    expected = outputs_and_grads(conv, inputs)
    assert_close(outputs_and_grads(torch.compile(conv), inputs), expected)


def test_proxy_matching_compiled_equals_eager(device):
    torch.manual_seed(0)
    conv = ProxyMatchingConv(8, 4).to(device)
    x = graph(device)[0]
    assert_close(outputs_and_grads(torch.compile(conv), [x]),
                 outputs_and_grads(conv, [x]))


def test_dual_amn_compiled_equals_eager(device):
    model, g = small_dual_amn(device)
    model.eval()  # dropout draws differ between two calls
    module = OnGraph(model, g)
    expected = outputs_and_grads(module, [])
    compiled = outputs_and_grads(torch.compile(module), [])
    assert_close(compiled, expected)
    pairs = torch.tensor([[0, 1, 2], [15, 16, 17]], device=device)
    loss_fn = NormalizedHardSampleMiningLoss()
    losses = [loss_fn(m(g), pairs) for m in (model, torch.compile(model))]
    assert torch.allclose(losses[0], losses[1], rtol=1e-5)


def test_float64_end_to_end(device):
    model, g = small_dual_amn(device, torch.float64)
    out = model(g)
    assert out.dtype == torch.float64 and out.device.type == device.type
    loss = NormalizedHardSampleMiningLoss()(out, torch.tensor(
        [[0, 1, 2], [15, 16, 17]], device=device))
    loss.backward()
    for p in model.parameters():
        assert p.grad.dtype == torch.float64 and torch.isfinite(p.grad).all()


def test_float64_gradients_of_the_layer_pass_gradcheck():
    torch.manual_seed(0)
    conv = RelationalAttentionConv(4, bias=True).double()
    x, edge_index, rel, edge_type = graph('cpu', n=6, e=20, r=2, c=4,
                                          dtype=torch.float64)
    x.requires_grad_(), rel.requires_grad_()
    assert torch.autograd.gradcheck(
        lambda a, b: conv(a, edge_index, b, edge_type), (x, rel))


def test_double_backward_stops_with_the_documented_error_or_works():
    torch.manual_seed(0)
    x, edge_index, rel, edge_type = graph('cpu', n=6, e=20, r=2, c=4,
                                          dtype=torch.float64)
    x.requires_grad_()
    fused = RelationalAttentionConv(4).double()
    grad, = torch.autograd.grad(fused(x, edge_index, rel, edge_type).pow(2).sum(),
                                x, create_graph=True)  # first order works
    with pytest.raises(RuntimeError, match='once_differentiable'):
        grad.sum().backward()
    plain = RelationalAttentionConv(4, fused=False).double()
    plain.load_state_dict(fused.state_dict())
    assert torch.autograd.gradgradcheck(
        lambda a: plain(a, edge_index, rel, edge_type), (x,))


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_autocast_runs_the_kernels_in_float32(device, dtype):
    if device.type == 'cpu' and dtype == torch.float16:
        pytest.skip('CPU autocast is bfloat16')
    model, g = small_dual_amn(device)
    pairs = torch.tensor([[0, 1, 2], [15, 16, 17]], device=device)
    with torch.autocast(device.type, dtype=dtype):
        out = model(g)
        loss = NormalizedHardSampleMiningLoss()(out, pairs)
    loss.backward()
    assert out.dtype == torch.float32 and torch.isfinite(loss)
    for p in model.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all()


def test_layer_outputs_stay_on_the_input_device(device):
    torch.manual_seed(0)
    conv = RelationalAttentionConv(8, cached=True).to(device)
    x, edge_index, rel, edge_type = graph(device)
    out, (ei, alpha) = conv(x, edge_index, rel, edge_type,
                            return_attention_weights=True)
    assert out.device.type == alpha.device.type == ei.device.type == device.type
    # the cached layout serves a later call without edges
    again = conv(x, edge_index[:, :0], rel, edge_type[:0])
    assert torch.equal(again, out)
