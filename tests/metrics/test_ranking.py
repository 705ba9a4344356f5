import math

import pytest
from hypothesis import given, settings, strategies as st
import torch
import torch.nn.functional as F

from torch_geometric_ea.metrics import (
    evaluate_alignment,
    evaluate_top_k,
    rank_metrics,
    rank_of_true,
)
from torch_geometric_ea.metrics.ranking import (
    duplicate_rows,
    expected_rank_metrics,
    paired_ranks,
)

from .reference import dense_csls

N, M, D = 13, 11, 5
CHUNK_SIZES = [1, 3, 5, 13, 50]  # < N (13 = 4 * 3 + 1), == N, > N.


def dense_realistic_rank(scores, truth, tie_atol=0.0):
    diff = scores - scores.gather(1, truth.view(-1, 1))
    tie = (diff == 0) | (diff.abs() < tie_atol)
    optimistic = 1 + ((diff > 0) & ~tie).sum(dim=1)
    pessimistic = ((diff > 0) | tie).sum(dim=1)
    return (optimistic + pessimistic).double() / 2


def random_embeddings(num, seed, duplicates=0):
    gen = torch.Generator().manual_seed(seed)
    emb = F.normalize(torch.randn(num, D, generator=gen), dim=-1)
    emb[num - duplicates:] = emb[:duplicates]  # Exact copies: ties.
    return emb


# Exact duplicates need the tolerance: the float32 matrix-product kernels may
# split them by an ulp (e.g. a single-row chunk with M=11 does on CPU).
TIES = [(0, 0.0), (0, 1e-5), (4, 1e-5)]  # (duplicates, tie_atol)


@pytest.mark.parametrize('chunk_size', CHUNK_SIZES)
@pytest.mark.parametrize('csls_k', [0, 1, 3])
@pytest.mark.parametrize('duplicates,tie_atol', TIES)
def test_rank_of_true_chunked_equals_dense(chunk_size, csls_k, duplicates,
                                           tie_atol):
    x = random_embeddings(N, seed=0)
    y = random_embeddings(M, seed=1, duplicates=duplicates)
    truth = torch.randint(M, (N, ), generator=torch.Generator().manual_seed(2))
    scores = dense_csls(x, y, csls_k)
    expected = dense_realistic_rank(scores, truth, tie_atol)

    ranks = rank_of_true(x, y, truth, csls_k=csls_k, tie_atol=tie_atol,
                         chunk_size=chunk_size)
    assert ranks.shape == (N, ) and ranks.is_floating_point()
    assert torch.equal(ranks.double(), expected)
    assert torch.all((ranks >= 1) & (ranks <= M))


@pytest.mark.parametrize('csls_k', [0, 3])
def test_rank_of_true_ties(csls_k):
    a, b, c = random_embeddings(3, seed=3)
    x = a.view(1, -1)

    # The truth ties with one copy at the top: (1 + 2) / 2.
    y = torch.stack([b, a, a, c])
    assert rank_of_true(x, y, torch.tensor([1]), csls_k=csls_k).item() == 1.5
    assert rank_of_true(x, y, torch.tensor([2]), csls_k=csls_k).item() == 1.5

    # Three equal scores at the top: (1 + 3) / 2, whichever is true.
    y = torch.stack([a, b, a, a])
    for truth in [0, 2, 3]:
        rank = rank_of_true(x, y, torch.tensor([truth]), csls_k=csls_k)
        assert rank.item() == 2.0


def test_rank_of_true_tie_below_better_candidate():
    # Cosine (k=0): one candidate strictly better, the truth tied with one
    # copy: optimistic 2, pessimistic 3, realistic 2.5.
    x = torch.tensor([[1.0, 0.0]])
    y = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.6, 0.8], [0.0, 1.0]])
    ranks = rank_of_true(x, y, torch.tensor([2]), csls_k=0, chunk_size=1)
    assert ranks.tolist() == [2.5]
    ranks = rank_of_true(x, y, torch.tensor([3]), csls_k=0, chunk_size=1)
    assert ranks.tolist() == [4.0]


@pytest.mark.parametrize('tie_atol,expected', [(0.0, 1.0), (1e-5, 1.5),
                                               (1e-4, 2.0)])
def test_rank_of_true_tie_tolerance(tie_atol, expected):
    # Cosines 1, 1 - 5e-6 and 1 - 5e-5 to the query (float32 resolves all).
    angles = torch.tensor([0.0, 5e-6, 5e-5], dtype=torch.float64).mul(2).sqrt()
    y = torch.stack([angles.cos(), angles.sin()], dim=1).float()
    x = torch.tensor([[1.0, 0.0]])
    ranks = rank_of_true(x, y, torch.tensor([0]), csls_k=0, tie_atol=tie_atol)
    assert ranks.item() == expected


def test_rank_of_true_nan_is_not_perfect():
    x = torch.tensor([[1.0, 0.0], [float('nan'), 0.0]])
    y = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    for tie_atol in [0.0, 1e-5]:
        ranks = rank_of_true(x, y, torch.tensor([0, 1]), csls_k=0,
                             tie_atol=tie_atol)
        # NaN (tie_atol > 0) or (1 + M) / 2 (sign(NaN) = 0), never a hit.
        assert ranks[0] == 1.0 and not ranks[1] < 1.5


def test_rank_of_true_invalid_truth():
    x, y = random_embeddings(N, seed=0), random_embeddings(M, seed=1)
    with pytest.raises(ValueError, match='shape'):
        rank_of_true(x, y, torch.zeros(N - 1, dtype=torch.long))
    with pytest.raises(ValueError, match='range'):
        rank_of_true(x, y, torch.full((N, ), M))
    with pytest.raises(ValueError, match='tie_atol'):
        rank_of_true(x, y, torch.zeros(N, dtype=torch.long), tie_atol=-1.0)


@pytest.mark.parametrize('chunk_size', CHUNK_SIZES)
@pytest.mark.parametrize('csls_k', [0, 1, 3])
@pytest.mark.parametrize('duplicates,tie_atol', TIES)
def test_paired_ranks_equals_dense(chunk_size, csls_k, duplicates, tie_atol):
    # Noisy copies, so that ranks spread out, and exact duplicates in both.
    x = random_embeddings(N, seed=0, duplicates=duplicates)
    y = F.normalize(x + 0.7 * random_embeddings(N, seed=1), dim=-1)
    y[N - duplicates:] = y[:duplicates]
    truth = torch.arange(N)
    scores = dense_csls(x, y, csls_k)

    ranks_x, ranks_y = paired_ranks(x, y, csls_k=csls_k, tie_atol=tie_atol,
                                    chunk_size=chunk_size)
    assert torch.equal(ranks_x.double(),
                       dense_realistic_rank(scores, truth, tie_atol))
    assert torch.equal(ranks_y.double(),
                       dense_realistic_rank(scores.t(), truth, tie_atol))
    if duplicates > 0:  # Each duplicate ties with its copy.
        assert torch.all(ranks_x[:duplicates] % 1 == 0.5)
        assert torch.all(ranks_y[:duplicates] % 1 == 0.5)


def test_rank_metrics_values():
    ranks = torch.tensor([1.0, 1.5, 3.0, 10.0, 11.0])
    out = rank_metrics(ranks, ks=(1, 5, 10))
    assert out == pytest.approx({
        'hits@1': 1 / 5,
        'hits@5': 3 / 5,
        'hits@10': 4 / 5,
        'mrr': (1 + 1 / 1.5 + 1 / 3 + 1 / 10 + 1 / 11) / 5,
    })
    assert all(type(value) is float for value in out.values())


def make_kg_pair(num_src=30, num_tgt=25, num_links=20, noise=0.0, seed=0):
    gen = torch.Generator().manual_seed(seed)
    src = torch.randn(num_src, 8, generator=gen)
    tgt = torch.randn(num_tgt, 8, generator=gen)
    links = torch.stack([
        torch.randperm(num_src, generator=gen)[:num_links],
        torch.randperm(num_tgt, generator=gen)[:num_links],
    ])
    # Aligned target embeddings are scaled (normalisation undoes it), noisy
    # copies of their sources.
    tgt[links[1]] = 3 * src[links[0]] + noise * torch.randn(
        num_links, 8, generator=gen)
    return src, tgt, links


# Perfect embeddings give Hits@1 = 1 under cosine; under CSLS this is not a
# theorem (see test_matching.py), but it holds for this seed.
@pytest.mark.parametrize('csls_k', [0, 10])
@pytest.mark.parametrize('chunk_size', [3, 1024])
def test_evaluate_alignment_perfect(csls_k, chunk_size):
    src, tgt, links = make_kg_pair()
    # Distractors outside the test links, identical to test sources, must
    # not count: the candidates are the test targets only.
    non_test = torch.ones(tgt.size(0), dtype=torch.bool)
    non_test[links[1]] = False
    tgt[non_test] = src[links[0, :int(non_test.sum())]]

    out = evaluate_alignment(src, tgt, links, csls_k=csls_k,
                             chunk_size=chunk_size)
    assert set(out) == {'src->tgt', 'tgt->src'}
    for metrics in out.values():
        assert metrics == {'hits@1': 1.0, 'hits@5': 1.0, 'hits@10': 1.0,
                           'mrr': 1.0}
        assert all(type(value) is float for value in metrics.values())


@pytest.mark.parametrize('csls_k', [0, 3])
@pytest.mark.parametrize('chunk_size', [1, 7, 20, 64])
def test_evaluate_alignment_equals_dense(csls_k, chunk_size):
    src, tgt, links = make_kg_pair(noise=4.0)
    x = F.normalize(src[links[0]], dim=-1)
    y = F.normalize(tgt[links[1]], dim=-1)
    scores, truth = dense_csls(x, y, csls_k), torch.arange(links.size(1))
    ks = (1, 3, 5, 10)

    out = evaluate_alignment(src, tgt, links, csls_k=csls_k, ks=ks,
                             chunk_size=chunk_size)
    for key, s in [('src->tgt', scores), ('tgt->src', scores.t())]:
        ranks = dense_realistic_rank(s, truth)
        expected = {f'hits@{k}': (ranks <= k).double().mean().item()
                    for k in ks}
        expected['mrr'] = ranks.reciprocal().mean().item()
        assert out[key] == pytest.approx(expected)
    assert 0 < out['src->tgt']['hits@1'] < 1  # Not a trivial case.


@pytest.mark.parametrize('csls_k', [0, 10])
def test_hits_monotone_in_k(csls_k):
    src, tgt, links = make_kg_pair(60, 60, 50, noise=6.0)
    ks = tuple(range(1, 51))
    out = evaluate_alignment(src, tgt, links, csls_k=csls_k, ks=ks,
                             chunk_size=16)
    for metrics in out.values():
        hits = [metrics[f'hits@{k}'] for k in ks]
        assert all(a <= b for a, b in zip(hits[:-1], hits[1:]))
        assert hits[0] < hits[-1] == 1.0
        assert hits[0] <= metrics['mrr'] <= 1.0
        assert not math.isnan(metrics['mrr'])


def test_evaluate_alignment_duplicate_embeddings():
    # Two test entities share an embedding on both sides: each is tied
    # with the other's counterpart, rank 1.5, no Hits@1, reciprocal 2/3.
    src, tgt, links = make_kg_pair(num_links=10)
    src[links[0, 1]] = src[links[0, 0]]
    tgt[links[1, 1]] = tgt[links[1, 0]]
    out = evaluate_alignment(src, tgt, links)
    for metrics in out.values():
        assert metrics['hits@1'] == pytest.approx(0.8)
        assert metrics['hits@5'] == 1.0
        assert metrics['mrr'] == pytest.approx((8 + 2 / 1.5) / 10)


def test_evaluate_alignment_invalid_links():
    src, tgt, links = make_kg_pair()
    with pytest.raises(ValueError, match='shape'):
        evaluate_alignment(src, tgt, links.t())
    links[1, 1] = links[1, 0]
    with pytest.raises(ValueError, match='one-to-one'):
        evaluate_alignment(src, tgt, links)


def brute_force_expected(greater, tied, ks):
    r"""Averages Hits@k and 1/rank over every position of the true
    candidate among its ties (each equally likely)."""
    hits = {k: 0.0 for k in ks}
    mrr = 0.0
    for g, c in zip(greater, tied):
        if math.isinf(g):
            continue
        for u in range(c + 1):
            rank = g + 1 + u
            for k in ks:
                hits[k] += (rank <= k) / (c + 1)
            mrr += 1 / rank / (c + 1)
    n = len(greater)
    return {**{f'hits@{k}': v / n for k, v in hits.items()}, 'mrr': mrr / n}


@pytest.mark.parametrize('seed', range(5))
def test_expected_rank_metrics_average_every_tie_order(seed):
    gen = torch.Generator().manual_seed(seed)
    greater = torch.randint(0, 12, (40,), generator=gen).double()
    greater[::7] = math.inf  # misses
    tied = torch.randint(0, 6, (40,), generator=gen)
    tied[::3] = 0
    got = expected_rank_metrics(greater, tied, ks=(1, 3, 10))
    want = brute_force_expected(greater.tolist(), tied.tolist(), (1, 3, 10))
    assert got == pytest.approx(want, abs=1e-12)
    no_ties = expected_rank_metrics(greater, torch.zeros_like(tied), ks=(1, 3, 10))
    assert no_ties == pytest.approx(rank_metrics(greater + 1, ks=(1, 3, 10)))


def test_duplicate_rows_groups_bit_identical_rows_only():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(50, 7, generator=gen)
    x[10], x[20], x[30] = x[3], x[3], torch.zeros(7)
    x[31] = 0
    x[40] = x[5].clone()
    x[40, 6] = torch.nextafter(x[5, 6], torch.tensor(1e9))  # one ulp apart
    group = duplicate_rows(x, chunk_size=8)
    same = group.unsqueeze(0) == group.unsqueeze(1)
    assert torch.equal(same, (x.unsqueeze(0) == x.unsqueeze(1)).all(-1))


def dense_top_k_metrics(x, y, k, ks=(1, 5, 10)):
    r"""Cosine ranks from the whole score matrix: Hits@j and the MRR with
    ranks beyond ``k`` counted as zero, both ways (no ties in float64)."""
    scores = F.normalize(x, dim=1) @ F.normalize(y, dim=1).t()
    out = {}
    for name, s in (('src->tgt', scores), ('tgt->src', scores.t())):
        rank = 1 + (s > s.diagonal().unsqueeze(1)).sum(1).double()
        out[name] = {f'hits@{j}': float((rank <= j).double().mean()) for j in ks}
        out[name]['mrr'] = float(torch.where(rank <= k, 1 / rank, 0.0).mean())
    return out


@settings(max_examples=25, deadline=None)
@given(num=st.integers(1, 60), dim=st.integers(2, 6), k=st.integers(10, 20),
       seed=st.integers(0, 2**31 - 1))
def test_top_k_metrics_equal_the_dense_ranks(num, dim, k, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(num, dim, generator=gen, dtype=torch.float64)
    y = x + 0.7 * torch.randn(num, dim, generator=gen, dtype=torch.float64)
    out = evaluate_top_k(x, y, torch.arange(num).repeat(2, 1), k)
    expected = dense_top_k_metrics(x, y, k)
    for direction in expected:
        for key, value in expected[direction].items():
            assert out[direction][key] == pytest.approx(value, abs=1e-12)


def test_top_k_metrics_of_a_few_of_many_use_the_blocked_search(monkeypatch):
    import torch_geometric_ea.metrics.topk as topk
    calls = []
    blocked = topk.blocked_topk
    monkeypatch.setattr(topk, 'blocked_topk',
                        lambda *a, **kw: calls.append(1) or blocked(*a, **kw))
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(700, 8, generator=gen, dtype=torch.float64)
    y = x + torch.randn(700, 8, generator=gen, dtype=torch.float64)
    links = torch.stack([torch.arange(700), torch.randperm(700, generator=gen)])
    out = evaluate_top_k(x, y[links[1].argsort()], links)
    assert calls == [1]
    expected = dense_top_k_metrics(x, y, 10)
    for direction in expected:
        for key, value in expected[direction].items():
            assert out[direction][key] == pytest.approx(value, abs=1e-12)
    assert 0 < expected['src->tgt']['hits@10'] < 1  # misses beyond the top 10


def test_top_k_metrics_reject_a_k_below_the_cut_offs():
    x = torch.randn(20, 3)
    with pytest.raises(ValueError, match="'k' must be at least"):
        evaluate_top_k(x, x, torch.arange(20).repeat(2, 1), 5)
