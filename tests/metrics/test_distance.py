import pytest
import torch

from torch_geometric_ea.metrics import evaluate_alignment_distance, rank_metrics
from torch_geometric_ea.metrics.distance import paired_distance_ranks

CHUNK_SIZES = [1, 3, 5, 13, 50]


def dense_ranks(x, y, p):
    r"""Realistic ranks from the full distance matrix, both directions."""
    dist = (x.unsqueeze(1) - y.unsqueeze(0)).abs().pow(p).sum(-1)
    true = dist.diagonal()

    def rank(d, t):
        return (1 + (d < t.view(-1, 1)).sum(1) + (d <= t.view(-1, 1)).sum(1)
                ).double() / 2
    return rank(dist, true), rank(dist.t(), true)


def integer_embeddings(num, dim, seed):
    # Small integers: exact distances, hence many exact ties.
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(-2, 3, (num, dim), generator=gen).float()


@pytest.mark.parametrize('chunk_size', CHUNK_SIZES)
@pytest.mark.parametrize('p', [1, 2])
@pytest.mark.parametrize('tie_atol', [0.0, 1e-5])
def test_chunked_equals_dense(chunk_size, p, tie_atol):
    x, y = integer_embeddings(13, 3, 0), integer_embeddings(13, 3, 1)
    y[5] = y[4]  # duplicate candidates
    ranks_x, ranks_y = paired_distance_ranks(x, y, p=p, tie_atol=tie_atol,
                                             chunk_size=chunk_size)
    # p = 2 ranks like the squared distance.
    exp_x, exp_y = dense_ranks(x, y, p)
    assert torch.equal(ranks_x.double(), exp_x)
    assert torch.equal(ranks_y.double(), exp_y)
    assert (ranks_x % 1 != 0).any()  # the data has ties


@pytest.mark.parametrize('chunk_size', [1, 7, 1024])
def test_exact_ties_on_float_embeddings(chunk_size):
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(40, 17, generator=gen) * 5
    y = torch.randn(40, 17, generator=gen) * 5
    y[10] = y[3]  # exact duplicates: true distances tie with a copy's
    x[20] = x[30]
    ranks_x, ranks_y = paired_distance_ranks(x, y, tie_atol=0.0,
                                             chunk_size=chunk_size)
    dist = torch.cdist(x, y, p=1)
    assert ranks_x[3] == 1 + (dist[3] < dist[3, 3]).sum() + 0.5
    assert ranks_y[30] == 1 + (dist[:, 30] < dist[30, 30]).sum() + 0.5
    ref_x, ref_y = paired_distance_ranks(x, y, tie_atol=0.0, chunk_size=40)
    assert torch.equal(ranks_x, ref_x) and torch.equal(ranks_y, ref_y)


def test_tie_at_the_top():
    # Query 0 is at distance 1 from both candidates: rank 1.5, no Hits@1.
    x = torch.tensor([[0., 0.], [5., 5.]])
    y = torch.tensor([[1., 0.], [0., 1.]])
    ranks_x, _ = paired_distance_ranks(x, y, tie_atol=0.0)
    assert ranks_x[0] == 1.5
    assert rank_metrics(ranks_x)['hits@1'] == 0.0


def test_evaluate_alignment_distance():
    gen = torch.Generator().manual_seed(3)
    src = torch.randn(30, 8, generator=gen)
    tgt = torch.randn(25, 8, generator=gen)
    links = torch.stack([torch.arange(10, 30), torch.randperm(25, generator=gen)[:20]])
    tgt[links[1]] = src[links[0]] + 0.01 * torch.randn(20, 8, generator=gen)
    out = evaluate_alignment_distance(src, tgt, links)
    assert set(out) == {'src->tgt', 'tgt->src'}
    for m in out.values():
        assert set(m) == {'hits@1', 'hits@5', 'hits@10', 'mrr'}
        assert m['hits@1'] == 1.0 and m['mrr'] == 1.0
    # Shuffled partners: far from perfect, and the chunk size changes nothing.
    wrong = torch.stack([links[0], links[1].roll(1)])
    a = evaluate_alignment_distance(src, tgt, wrong, chunk_size=3)
    assert a == evaluate_alignment_distance(src, tgt, wrong)
    assert a['src->tgt']['hits@1'] < 0.2


def test_rejects_bad_links():
    x = torch.randn(5, 2)
    with pytest.raises(ValueError, match='one-to-one'):
        evaluate_alignment_distance(x, x, torch.tensor([[0, 0], [1, 2]]))
    with pytest.raises(ValueError, match='shape'):
        evaluate_alignment_distance(x, x, torch.tensor([0, 1]))
