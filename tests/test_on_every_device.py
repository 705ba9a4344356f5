r"""Every exported layer, model, loss and metric on each device the machine
has (the ``device`` fixture: the CPU, and CUDA when available) gives what
it gives on the CPU, with its outputs and gradients on that device."""
import pytest
import torch

from torch_geometric_ea.metrics import (
    csls_topk,
    evaluate_alignment,
    evaluate_alignment_distance,
    mutual_nearest_neighbours,
)
from torch_geometric_ea.nn import (
    RDGCN,
    DualAMN,
    DualRelationAttentionConv,
    GCNAlign,
    HighwayGCNConv,
    MarginRankingL1Loss,
    NormalizedHardSampleMiningLoss,
    PrimalRelationAttentionConv,
    ProxyMatchingConv,
    RelationalAttentionConv,
    dual_amn_graph,
    gcn_align_adjacency,
    rdgcn_dual_graph,
    uniform_negatives,
)

N, E, R, C = 40, 300, 5, 8


def typed_graph():
    gen = torch.Generator().manual_seed(0)
    return (torch.randint(0, N, (2, E), generator=gen),
            torch.randint(0, R, (E,), generator=gen),
            torch.randn(N, C, generator=gen), torch.randn(R, C, generator=gen))


def on(device, *tensors):
    return [t.to(device) for t in tensors]


def forward_backward(module, args, device):
    r"""Output and every gradient of ``module(*args)`` on ``device``,
    brought back to the CPU."""
    module = module.to(device)
    module.zero_grad()
    args = [a.to(device).requires_grad_() if isinstance(a, torch.Tensor)
            and a.is_floating_point() else (a.to(device) if hasattr(a, 'to') else a)
            for a in args]
    out = module(*args)
    out = out[0] if isinstance(out, tuple) else out
    assert out.device.type == device.type
    weight = torch.linspace(-1, 1, out.numel(), device=device).view_as(out)
    (out * weight).sum().backward()
    grads = [a.grad for a in args if isinstance(a, torch.Tensor) and a.grad is not None]
    grads += [p.grad for p in module.parameters() if p.grad is not None]
    return [t.detach().cpu() for t in [out, *grads]]


def layers():
    edge_index, edge_type, _, _ = typed_graph()
    torch.manual_seed(0)
    return {
        'relational': (RelationalAttentionConv(C, bias=True), ['x', edge_index, 'rel',
                                                                edge_type]),
        'proxy': (ProxyMatchingConv(C, 4), ['x']),
        'dual': (DualRelationAttentionConv(C, 6), ['x', edge_index]),
        'primal': (PrimalRelationAttentionConv(C, C), ['x', edge_index, 'rel',
                                                       edge_type]),
        'highway': (HighwayGCNConv(C), ['x', edge_index]),
    }


@pytest.mark.parametrize('name', list(layers()))
def test_layers(device, name):
    _, _, x, rel = typed_graph()
    module, args = layers()[name]
    args = [{'x': x, 'rel': rel}.get(a, a) if isinstance(a, str) else a for a in args]
    cpu = forward_backward(module, args, torch.device('cpu'))
    got = forward_backward(module, args, device)
    for a, b in zip(got, cpu):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)


class OnGraph(torch.nn.Module):
    def __init__(self, model, graph):
        super().__init__()
        self.model, self.graph = model, graph

    def forward(self):
        return self.model(self.graph.to(next(self.model.parameters()).device))


def models():
    edge_index, edge_type, _, _ = typed_graph()
    torch.manual_seed(0)
    dual_amn = DualAMN(N, R, channels=C, num_proxies=4).eval()
    return {
        'dual_amn': OnGraph(dual_amn, dual_amn_graph(edge_index, edge_type, N, R)),
        'gcn_align': OnGraph(GCNAlign(N, channels=C),
                             gcn_align_adjacency(edge_index, edge_type, N, R)),
        'rdgcn': OnGraph(RDGCN(N, R, channels=C),
                         rdgcn_dual_graph(edge_index, edge_type, N, R)),
    }


@pytest.mark.parametrize('name', list(models()))
def test_models(device, name):
    cpu = forward_backward(models()[name], [], torch.device('cpu'))
    got = forward_backward(models()[name], [], device)
    for a, b in zip(got, cpu):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('loss', ['nhsm', 'nhsm_chunked', 'margin'])
def test_losses(device, loss):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(N, C, generator=gen)
    pairs = torch.stack([torch.arange(10), torch.arange(20, 30)])
    fn = {'nhsm': NormalizedHardSampleMiningLoss(),
          'nhsm_chunked': NormalizedHardSampleMiningLoss(chunk_size=7, row_chunk_size=3),
          'margin': MarginRankingL1Loss()}[loss]
    negatives = uniform_negatives(pairs, 3, N, torch.Generator().manual_seed(1))
    values = []
    for dev in (torch.device('cpu'), device):
        xi = x.to(dev).requires_grad_()
        args = (pairs.to(dev),) + ((negatives.to(dev),) if loss == 'margin' else ())
        value = fn(xi, *args)
        value.backward()
        assert value.device.type == dev.type
        values.append((value.detach().cpu(), xi.grad.cpu()))
    for a, b in zip(*values):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)


def assert_same_metrics(got, expected):
    assert got.keys() == expected.keys()
    for direction in expected:
        assert got[direction] == pytest.approx(expected[direction], abs=1e-6)


@pytest.mark.parametrize('decoding', ['csls', 'cosine', 'sinkhorn', 'hungarian'])
def test_metrics(device, decoding):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(60, 6, generator=gen)
    y = x + 0.5 * torch.randn(60, 6, generator=gen)
    links = torch.stack([torch.arange(60)] * 2)
    kwargs = dict(decoding=decoding, chunk_size=16)
    if decoding == 'cosine':
        kwargs = dict(csls_k=0, chunk_size=16)
    assert_same_metrics(evaluate_alignment(*on(device, x, y, links), **kwargs),
                        evaluate_alignment(x, y, links, **kwargs))
    assert_same_metrics(evaluate_alignment_distance(*on(device, x, y, links), p=1),
                        evaluate_alignment_distance(x, y, links, p=1))
    if decoding in ('csls', 'sinkhorn'):
        got = mutual_nearest_neighbours(*on(device, x, y), decoding=decoding)
        assert got.device.type == device.type
        assert torch.equal(got.cpu(), mutual_nearest_neighbours(x, y, decoding=decoding))
    scores, index = csls_topk(*on(device, x, y), topk=5, chunk_size=16)
    assert torch.equal(index.cpu(), csls_topk(x, y, topk=5, chunk_size=16)[1])
