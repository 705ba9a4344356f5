import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from torch_geometric_ea.nn import NormalizedHardSampleMiningLoss
from torch_geometric_ea.nn.loss import orient_pairs


def loss_and_grad(loss_fn, x, pairs, node_type):
    x = x.clone().requires_grad_()
    out = loss_fn(x, pairs, node_type)
    out.backward()
    return out.detach(), x.grad


@st.composite
def mixed_case(draw):
    n1, n2 = draw(st.integers(2, 12)), draw(st.integers(2, 12))
    n = n1 + n2
    seed = draw(st.integers(0, 2 ** 16))
    gen = torch.Generator().manual_seed(seed)
    # KG membership interleaved at random: node_type is not a block layout
    node_type = torch.zeros(n, dtype=torch.long)
    node_type[torch.randperm(n, generator=gen)[:n2]] = 1
    kg1, kg2 = (node_type == 0).nonzero().view(-1), (node_type == 1).nonzero().view(-1)
    b = draw(st.integers(1, min(n1, n2)))
    oriented = torch.stack([kg1[torch.randperm(n1, generator=gen)[:b]],
                            kg2[torch.randperm(n2, generator=gen)[:b]]])
    flip = torch.tensor(draw(st.lists(st.booleans(), min_size=b, max_size=b)))
    mixed = torch.where(flip, oriented.flip(0), oriented)
    x = torch.randn(n, draw(st.integers(1, 6)), generator=gen, dtype=torch.float64)
    return x, node_type, oriented, mixed, bool(flip.all())


@settings(max_examples=60, deadline=None)
@given(case=mixed_case(), negatives=st.sampled_from(['all', 'other']),
       chunk_size=st.sampled_from([None, 1, 3, 100]),
       row_chunk_size=st.sampled_from([None, 1, 2, 512]))
def test_mixed_directions_equal_oriented_pairs(case, negatives, chunk_size, row_chunk_size):
    x, node_type, oriented, mixed, reversed_all = case
    loss_fn = NormalizedHardSampleMiningLoss(negatives=negatives, chunk_size=chunk_size,
                                             row_chunk_size=row_chunk_size)
    out, grad = loss_and_grad(loss_fn, x, oriented, node_type)
    out_mixed, grad_mixed = loss_and_grad(loss_fn, x, mixed, node_type)
    assert torch.isfinite(out)
    if negatives == 'other' and not reversed_all:  # the very same rows: bit-identical
        assert torch.equal(out_mixed, out)
        assert torch.equal(grad_mixed, grad)
    else:  # the rows (or the two sides) come in another order
        assert torch.allclose(out_mixed, out, rtol=1e-12, atol=1e-12)
        assert torch.allclose(grad_mixed, grad, rtol=1e-10, atol=1e-12)


def test_issue_example_mixed_directions():
    x = torch.randn(50, 4, generator=torch.Generator().manual_seed(0))
    node_type = (torch.arange(50) >= 25).long()
    loss_fn = NormalizedHardSampleMiningLoss(negatives='other')
    mixed = loss_fn(x, torch.tensor([[0, 26], [25, 1]]), node_type)
    oriented = loss_fn(x, torch.tensor([[0, 1], [25, 26]]), node_type)
    assert torch.equal(mixed, oriented)


def test_orient_pairs_keeps_oriented_pairs():
    node_type = torch.tensor([0, 0, 1, 1])
    pairs = torch.tensor([[0, 1], [2, 3]])
    i, j = orient_pairs(pairs, node_type)
    assert torch.equal(i, pairs[0])
    assert torch.equal(j, pairs[1])
    i, j = orient_pairs(torch.tensor([[3, 1], [0, 2]]), node_type)
    assert i.tolist() == [0, 1] and j.tolist() == [3, 2]


@pytest.mark.parametrize('pairs', [[[0, 1], [1, 2]], [[2, 0], [3, 1]]])
def test_same_kg_pair_refused(pairs):
    x = torch.randn(4, 3)
    node_type = torch.tensor([0, 0, 1, 1])
    loss_fn = NormalizedHardSampleMiningLoss(negatives='other')
    with pytest.raises(ValueError, match='same KG') as info:
        loss_fn(x, torch.tensor(pairs), node_type)
    assert '\n' not in str(info.value)


@pytest.mark.parametrize('negatives', ['all', 'other'])
@pytest.mark.parametrize('chunk_size', [None, 2])
def test_empty_pairs_give_zero_with_zero_gradient(negatives, chunk_size):
    x = torch.randn(6, 3, requires_grad=True)
    node_type = torch.tensor([0, 0, 0, 1, 1, 1])
    loss_fn = NormalizedHardSampleMiningLoss(negatives=negatives, chunk_size=chunk_size)
    out = loss_fn(x, torch.empty(2, 0, dtype=torch.long), node_type)
    assert out.dim() == 0 and out.item() == 0.0
    out.backward()
    assert x.grad is not None and x.grad.shape == x.shape
    assert torch.equal(x.grad, torch.zeros_like(x))
