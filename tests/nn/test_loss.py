import pytest
import torch

from torch_geometric_ea.nn import NormalizedHardSampleMiningLoss


def reference_loss(x, pairs, gamma=1.0, lam=30.0, tau=10.0, node_type=None,
                   candidates=None):
    """The loss as the official code writes it, with plain autograd."""
    i, j = pairs
    total = 0
    for a, p in ((i, j), (j, i)):
        xa, xp = x[a], x[p]
        pos = (xa - xp).pow(2).sum(-1, keepdim=True)
        dist = torch.cdist(xa, x).pow(2)
        loss = gamma + pos - dist
        mask = torch.ones_like(loss)
        rows = torch.arange(len(a))
        mask[rows, a] = 0
        mask[rows, p] = 0
        loss = loss * mask
        keep = torch.ones(x.size(0), dtype=torch.bool)
        if node_type is not None:  # keep only the other KG's candidates
            keep &= node_type == node_type[p[0]]
        if candidates is not None:
            keep &= torch.isin(torch.arange(x.size(0)), candidates)
        loss = loss[:, keep]
        mean = loss.mean(-1, keepdim=True).detach()
        std = loss.std(-1, keepdim=True, correction=0).detach()
        loss = (loss - mean) / std
        total = total + torch.logsumexp(lam * loss + tau, dim=-1)
    return total.mean()


def make_case(n=40, d=8, b=6, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen, dtype=torch.float64)
    perm = torch.randperm(n // 2, generator=gen)[:b]
    pairs = torch.stack([perm, perm + n // 2])
    node_type = (torch.arange(n) >= n // 2).long()
    return x, pairs, node_type


@pytest.mark.parametrize('chunk_size', [None, 7, 20, 40, 100])
@pytest.mark.parametrize('row_chunk_size', [None, 1, 5])
@pytest.mark.parametrize('negatives', ['all', 'other'])
def test_loss_equals_reference(chunk_size, row_chunk_size, negatives):
    x, pairs, node_type = make_case()
    x1 = x.clone().requires_grad_()
    x2 = x.clone().requires_grad_()
    loss_fn = NormalizedHardSampleMiningLoss(negatives=negatives,
                                             chunk_size=chunk_size,
                                             row_chunk_size=row_chunk_size)
    out = loss_fn(x1, pairs, node_type)
    ref = reference_loss(x2, pairs,
                         node_type=node_type if negatives == 'other' else None)
    assert torch.isfinite(out)
    assert torch.allclose(out, ref, rtol=1e-9, atol=1e-9)
    out.backward()
    ref.backward()
    assert torch.allclose(x1.grad, x2.grad, rtol=1e-7, atol=1e-9)
    assert x1.grad.abs().sum() > 0


@pytest.mark.parametrize('negatives', ['all', 'other'])
@pytest.mark.parametrize('seed', [0, 1])
def test_candidate_subset_equals_reference(negatives, seed):
    x, pairs, node_type = make_case(seed=seed)
    gen = torch.Generator().manual_seed(seed)
    candidates = torch.randperm(40, generator=gen)[:25]  # some pairs left out
    x1 = x.clone().requires_grad_()
    x2 = x.clone().requires_grad_()
    loss_fn = NormalizedHardSampleMiningLoss(negatives=negatives, chunk_size=7,
                                             row_chunk_size=5)
    out = loss_fn(x1, pairs, node_type, candidates=candidates)
    ref = reference_loss(x2, pairs, candidates=candidates,
                         node_type=node_type if negatives == 'other' else None)
    assert torch.allclose(out, ref, rtol=1e-9, atol=1e-9)
    out.backward()
    ref.backward()
    assert torch.allclose(x1.grad, x2.grad, rtol=1e-7, atol=1e-9)
    # all entities as candidates is the default
    full = loss_fn(x, pairs, node_type, candidates=torch.arange(40).flip(0))
    assert torch.allclose(full, loss_fn(x, pairs, node_type), rtol=1e-12)


@pytest.mark.parametrize('candidates, match', [
    (torch.tensor([], dtype=torch.long), 'non-empty 1-D'),
    (torch.tensor([0, 40]), r'out of range \[0, 40\)'),
    (torch.tensor([3, 3]), 'distinct'),
])
def test_bad_candidates(candidates, match):
    x, pairs, _ = make_case()
    with pytest.raises(ValueError, match=match):
        NormalizedHardSampleMiningLoss()(x, pairs, candidates=candidates)


def test_value_without_gradients_equals_value_with():
    x, pairs, _ = make_case()
    loss_fn = NormalizedHardSampleMiningLoss(row_chunk_size=4)
    with torch.no_grad():
        plain = loss_fn(x, pairs)
    assert torch.equal(plain, loss_fn(x.clone().requires_grad_(), pairs).detach())


def test_loss_gradcheck():
    x, pairs, node_type = make_case(n=12, d=3, b=3)
    x.requires_grad_()
    for chunk in (None, 5):
        fn = NormalizedHardSampleMiningLoss(lam=2.0, tau=1.0, chunk_size=chunk)
        # mean/std are constants in the loss, so compare with the reference
        # whose statistics are detached, not with finite differences.
        ref = reference_loss(x, pairs, lam=2.0, tau=1.0)
        g_ref, = torch.autograd.grad(ref, x)
        g, = torch.autograd.grad(fn(x, pairs), x)
        assert torch.allclose(g, g_ref, atol=1e-10)


def test_loss_float32_large_values_finite():
    x, pairs, _ = make_case(n=300, d=16, b=50)
    x = (x * 100).float().requires_grad_()
    loss = NormalizedHardSampleMiningLoss()(x, pairs)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()


def test_loss_repr_and_args():
    fn = NormalizedHardSampleMiningLoss(gamma=2.0, negatives='other')
    assert repr(fn) == ("NormalizedHardSampleMiningLoss(gamma=2.0, lam=30.0, "
                        "tau=10.0, negatives='other')")
    with pytest.raises(ValueError, match='negatives'):
        NormalizedHardSampleMiningLoss(negatives='some')
    x, pairs, _ = make_case()
    with pytest.raises(ValueError, match='node_type'):
        fn(x, pairs)


def test_row_blocks_shrink_to_bound_the_score_block(monkeypatch):
    import torch_geometric_ea.nn.loss as loss_module
    x, pairs, node_type = make_case()
    ref = NormalizedHardSampleMiningLoss(row_chunk_size=None)(x, pairs)
    monkeypatch.setattr(loss_module, 'BLOCK_ELEMENTS', 3 * 40)  # 3 rows of 40
    calls = []
    original = loss_module._row_block

    def spy(anchor, *args):
        calls.append(anchor.size(0))
        return original(anchor, *args)

    monkeypatch.setattr(loss_module, '_row_block', spy)
    out = NormalizedHardSampleMiningLoss(row_chunk_size=None)(x, pairs)
    assert calls == [3, 3, 3, 3]  # 12 anchor rows
    assert torch.allclose(out, ref, rtol=1e-12)
