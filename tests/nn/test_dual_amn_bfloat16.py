r"""Dual-AMN's encoder with bfloat16 products (issue 31): the proxy
matching layer's gate products run in bfloat16 under
``precision.using('bfloat16')`` and bfloat16 autocast, close to float64,
and its float32 path is untouched; a whole model-and-loss step in
bfloat16 stays close to float32's."""
import pytest
import torch

from torch_geometric_ea import precision
from torch_geometric_ea.nn import (
    DualAMN,
    NormalizedHardSampleMiningLoss,
    ProxyMatchingConv,
    dual_amn_graph,
)


def proxy_outputs_and_grads(conv, x, dtype=torch.float32, using='float32',
                            autocast=False):
    conv = conv.to(dtype)
    conv.zero_grad()
    x = x.to(dtype).clone().requires_grad_()
    with precision.using(using), torch.autocast('cpu', torch.bfloat16,
                                                enabled=autocast):
        out = conv(x)
    weight = torch.linspace(-1, 1, out.numel()).view_as(out).to(dtype)
    (out * weight).sum().backward()
    return [out.detach(), x.grad] + [p.grad.clone() for p in conv.parameters()]


def relative_errors(got, expected):
    return [((a.double() - b).norm() / b.norm()).item() for a, b in zip(got, expected)]


def proxy_case(seed=0):
    torch.manual_seed(seed)
    conv = ProxyMatchingConv(64, 16, chunk_size=200)  # three row blocks
    torch.nn.init.normal_(conv.gate.bias)
    return conv, torch.randn(500, 64)


def spy_products(monkeypatch):
    seen = []
    original = torch.Tensor.__matmul__

    def matmul(a, b):
        seen.append(a.dtype)
        return original(a, b)
    monkeypatch.setattr(torch.Tensor, '__matmul__', matmul)
    return seen


@pytest.mark.parametrize('how', ['using', 'autocast'])
def test_proxy_gate_products_in_bfloat16_near_float64(monkeypatch, how):
    conv, x = proxy_case()
    ref = proxy_outputs_and_grads(conv, x, torch.float64)
    seen = spy_products(monkeypatch)
    got = proxy_outputs_and_grads(conv.float(), x, using='bfloat16' if how == 'using'
                                  else 'float32', autocast=how == 'autocast')
    # per block: the gate forward, its recomputation and the two gradient products
    assert seen.count(torch.bfloat16) == 3 * 4
    errors = relative_errors(got, ref)
    # output, input gradient, proxies, weight, bias: measured 2e-5, 2e-5,
    # 3e-3, 3e-3, 3e-3 (float32: below 1e-5)
    assert max(errors[:2]) < 2e-4 and max(errors[2:]) < 2e-2, errors
    assert max(errors) > 1e-4  # the products did run in bfloat16


def test_proxy_float32_path_unchanged():
    conv, x = proxy_case(1)
    ref = proxy_outputs_and_grads(conv, x, torch.float64)
    plain = proxy_outputs_and_grads(conv.float(), x)
    with precision.using('bfloat16'):  # an inner float32 run wins
        inner = proxy_outputs_and_grads(conv, x, using='float32')
    assert all(torch.equal(a, b) for a, b in zip(plain, inner))
    assert max(relative_errors(plain, ref)) < 1e-5


def test_dual_amn_step_in_bfloat16_near_float32():
    gen = torch.Generator().manual_seed(0)
    edge_index = torch.randint(0, 200, (2, 1500), generator=gen)
    edge_type = torch.randint(0, 5, (1500,), generator=gen)
    graph = dual_amn_graph(edge_index, edge_type, 200, 5)
    pairs = torch.stack([torch.arange(40), torch.arange(100, 140)])
    loss_fn = NormalizedHardSampleMiningLoss()

    def step(using):
        torch.manual_seed(0)
        model = DualAMN(200, 5, channels=16, num_proxies=8, dropout=0.0)
        with precision.using(using):
            loss = loss_fn(model(graph), pairs)
        loss.backward()
        return loss.detach(), [p.grad for p in model.parameters()]

    loss32, grads32 = step('float32')
    loss16, grads16 = step('bfloat16')
    assert abs(loss16 - loss32) < 1e-3 * abs(loss32)
    # measured on four seeds: parameters' gradients within 3.1e-2 (the
    # proxy layers' small ones; the loss's bfloat16 scores dominate)
    for g16, g32 in zip(grads16, grads32):
        assert g16.dtype == torch.float32
        assert (g16 - g32).norm() <= 8e-2 * g32.norm()
