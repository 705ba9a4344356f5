r"""Evaluation with bfloat16 score products (issue 31): the ranks count as
float32 ones, because near-ties that rounding could decide are re-scored
in float32."""
import math

import pytest
import torch
import torch.nn.functional as F

from torch_geometric_ea import precision
from torch_geometric_ea.metrics import similarity
from torch_geometric_ea.metrics.ranking import evaluate_alignment, paired_ranks
from torch_geometric_ea.metrics.similarity import csls_topk, low_pair, similarity_pass


@pytest.fixture(autouse=True)
def any_width(monkeypatch):
    # The tests' narrow embeddings take the low-precision path too.
    monkeypatch.setattr(similarity, 'LOW_PRECISION_MIN_WIDTH', 1)


def dense_ranks(scores):
    diff = scores - scores.diagonal().unsqueeze(1)
    sign = diff.div(1e-5).trunc().clamp(-1, 1)
    return (sign.sum(1) + 1 + scores.size(1)) / 2


def near_tie_pair():
    # Query 0's partner scores 0.7003, a competitor 0.7001: 2e-4 apart, far
    # beyond tie_atol, but one bfloat16 step (2^-8 near 0.7) is 0.004.
    def unit(c, sign):
        return [c, sign * math.sqrt(1 - c * c)]
    x = torch.tensor([[1.0, 0.0], [0.0, -1.0]])
    y = torch.tensor([unit(0.7003, 1), unit(0.7001, -1)])
    return x, y


def test_a_near_tie_that_rounding_decides_is_rescored():
    x, y = near_tie_pair()
    want = paired_ranks(x, y, csls_k=0)
    assert want[0].tolist() == [1.0, 1.0]
    naive = dense_ranks((x.bfloat16() @ y.bfloat16().t()).float())
    assert naive[0] != 1.0  # rounding alone ties (or flips) the two
    with precision.using('bfloat16'):
        got = paired_ranks(x, y, csls_k=0)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


def random_pair(num=400, dim=24, noise=1.5, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(num, dim, generator=gen)
    y = x + noise * torch.randn(num, dim, generator=gen)
    return F.normalize(x, dim=-1), F.normalize(y, dim=-1)


def test_random_ranks_equal_float32_ranks():
    x, y = random_pair()
    for csls_k in (0, 10):
        want = paired_ranks(x, y, csls_k=csls_k, chunk_size=64)
        with precision.using('bfloat16'):
            pair = low_pair(x, y)
            got = paired_ranks(x, y, csls_k=csls_k, chunk_size=64)
        assert pair is not None and pair.x_low.dtype == torch.bfloat16
        for g, w in zip(got, want):
            assert torch.equal(g, w)
        if csls_k == 0:  # without the re-scoring, rounding moves ranks
            naive = dense_ranks((pair.x_low @ pair.y_low.t()).float())
            assert not torch.equal(naive, want[0])


def test_radii_and_metrics_match_float32():
    x, y = random_pair(300, 16, noise=1.0, seed=1)
    (r_x, r_y), _ = similarity_pass(x, y, 10, chunk_size=50)
    links = torch.arange(300).repeat(2, 1)
    want = evaluate_alignment(x, y, links)
    want_sinkhorn = evaluate_alignment(x, y, links, decoding='sinkhorn')
    with precision.using('bfloat16'):
        (b_x, b_y), diag = similarity_pass(x, y, 10, chunk_size=50, diagonal=True)
        got = evaluate_alignment(x, y, links)
        got_sinkhorn = evaluate_alignment(x, y, links, decoding='sinkhorn')
    assert torch.allclose(b_x, r_x, atol=1e-6) and torch.allclose(b_y, r_y, atol=1e-6)
    assert torch.allclose(diag, (x * y).sum(1))
    assert got == want and got_sinkhorn == want_sinkhorn


def test_csls_topk_takes_the_float32_top():
    x, y = random_pair(200, 16, noise=1.0, seed=2)
    want_v, want_i = csls_topk(x, y, k=10, topk=5, chunk_size=64)
    with precision.using('bfloat16'):
        got_v, got_i = csls_topk(x, y, k=10, topk=5, chunk_size=64)
    assert got_v.dtype == torch.float32
    assert torch.equal(got_i, want_i)
    assert torch.allclose(got_v, want_v, atol=1e-5)


def test_float32_other_dtypes_and_narrow_embeddings_take_the_float32_path(
        monkeypatch):
    x, y = random_pair(50, 8)
    assert low_pair(x, y) is None
    with precision.using('bfloat16'):
        assert low_pair(x.double(), y.double()) is None
        monkeypatch.setattr(similarity, 'LOW_PRECISION_MIN_WIDTH', 9)
        assert low_pair(x, y) is None
