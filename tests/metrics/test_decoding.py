import itertools
import sys

import pytest
import torch
import torch.nn.functional as F

from torch_geometric_ea.metrics import (
    evaluate_alignment,
    hungarian_matching,
    sinkhorn_potentials,
)

from .test_ranking import dense_realistic_rank

CHUNK_SIZES = [1, 3, 7, 100]


def unit(num, dim=6, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(num, dim, generator=gen), dim=-1)


def dense_sinkhorn(x, y, tau, num_iters):
    log_k = (x @ y.t()).double() / tau
    u = torch.zeros(x.size(0), dtype=torch.double)
    v = torch.zeros(y.size(0), dtype=torch.double)
    for _ in range(num_iters):
        u = -torch.tensor(float(x.size(0))).log() - torch.logsumexp(log_k + v, dim=1)
        v = -torch.tensor(float(y.size(0))).log() - torch.logsumexp(log_k + u[:, None], dim=0)
    return u, v, log_k


@pytest.mark.parametrize('chunk_size', CHUNK_SIZES)
@pytest.mark.parametrize('shape', [(9, 9), (9, 7), (5, 8)])
def test_chunked_potentials_equal_dense_sinkhorn(chunk_size, shape):
    x, y = unit(shape[0], seed=1), unit(shape[1], seed=2)
    u, v = sinkhorn_potentials(x, y, tau=0.1, num_iters=7, chunk_size=chunk_size)
    u_ref, v_ref, _ = dense_sinkhorn(x, y, 0.1, 7)
    assert torch.allclose(u.double(), u_ref, atol=1e-4)
    assert torch.allclose(v.double(), v_ref, atol=1e-4)


def test_potentials_give_uniform_marginals():
    x, y = unit(12, seed=3), unit(10, seed=4)
    u, v = sinkhorn_potentials(x, y, tau=0.2, num_iters=200, chunk_size=5)
    p = torch.exp((x @ y.t()) / 0.2 + u[:, None] + v)
    assert torch.allclose(p.sum(0), torch.full((10, ), 1 / 10), atol=1e-5)
    assert torch.allclose(p.sum(1), torch.full((12, ), 1 / 12), atol=1e-4)


def test_sinkhorn_ranks_equal_dense_ranks_of_the_scaled_matrix():
    x = unit(15, seed=5)
    y = F.normalize(x + 0.8 * unit(15, seed=6), dim=-1)
    out = evaluate_alignment(x, y, torch.arange(15).repeat(2, 1),
                             decoding='sinkhorn', tau=0.05, num_iters=5,
                             chunk_size=4, ks=(1, 3), tie_atol=0.0)
    u, v, log_k = dense_sinkhorn(x, y, 0.05, 5)
    log_p = log_k + u[:, None] + v
    truth = torch.arange(15)
    for direction, scores in (('src->tgt', log_p), ('tgt->src', log_p.t())):
        ranks = dense_realistic_rank(scores, truth)
        assert out[direction]['hits@1'] == pytest.approx(float((ranks <= 1).double().mean()))
        assert out[direction]['mrr'] == pytest.approx(float(ranks.reciprocal().mean()))


def test_sinkhorn_undoes_a_hub_that_greedy_decoding_picks():
    # Both sources prefer target 0, but the diagonal has the larger total
    # (0.9 + 0.88 > 0.8 + 0.95): greedy gets one right, Sinkhorn both.
    sim = torch.tensor([[0.9, 0.8], [0.95, 0.88]])
    x, y = torch.eye(2), sim.t().contiguous()  # x @ y.T == sim
    assert sim.argmax(1).tolist() == [0, 0]
    u, v = sinkhorn_potentials(x, y, tau=0.02, num_iters=50)
    assert (sim + 0.02 * v).argmax(1).tolist() == [0, 1]
    assert (sim.t() + 0.02 * u).argmax(1).tolist() == [0, 1]


def brute_force_matching(sim):
    n = sim.size(0)
    best = max(itertools.permutations(range(n)),
               key=lambda p: float(sum(sim[i, p[i]] for i in range(n))))
    return torch.tensor(best)


def test_hungarian_equals_brute_force():
    pytest.importorskip('scipy')
    for seed in range(3):
        x, y = unit(6, seed=10 + seed), unit(6, seed=20 + seed)
        assert torch.equal(hungarian_matching(x, y), brute_force_matching(x @ y.t()))


def test_hungarian_leaves_extra_sources_unmatched_and_checks_size(monkeypatch):
    pytest.importorskip('scipy')
    match = hungarian_matching(unit(7, seed=1), unit(4, seed=2))
    assert (match == -1).sum() == 3 and match[match >= 0].unique().numel() == 4
    with pytest.raises(ValueError, match="above 'max_size'"):
        hungarian_matching(unit(7), unit(7), max_size=6)
    monkeypatch.setitem(sys.modules, 'scipy.optimize', None)
    with pytest.raises(ImportError, match='needs SciPy'):
        hungarian_matching(unit(3), unit(3))


def test_hungarian_evaluation_reports_the_matched_share():
    pytest.importorskip('scipy')
    x = unit(10, seed=30)
    perm = torch.tensor([1, 0, 2, 3, 4, 5, 6, 7, 8, 9])
    y = x[perm]  # the links say i <-> i, the embeddings say i <-> perm[i]
    out = evaluate_alignment(x, y, torch.arange(10).repeat(2, 1),
                             decoding='hungarian')
    assert out['src->tgt'] == out['tgt->src'] == {'hits@1': pytest.approx(0.8)}


def test_rejects_bad_decoding_arguments():
    links = torch.arange(4).repeat(2, 1)
    with pytest.raises(ValueError, match="'decoding' must be one of 'greedy'"):
        evaluate_alignment(unit(4), unit(4), links, decoding='mutual')
    with pytest.raises(ValueError, match="'tau' must be positive"):
        sinkhorn_potentials(unit(4), unit(4), tau=0)
    with pytest.raises(ValueError, match="'num_iters' must be positive"):
        sinkhorn_potentials(unit(4), unit(4), num_iters=0)


@pytest.mark.parametrize('k, chunk', [(3, 4), (5, 100), (40, 7)])
def test_gathered_rows_give_the_top_k_of_the_rows_they_stand_for(k, chunk):
    from torch_geometric_ea.metrics.decoding import (
        GatheredRows,
        topk_both_ways,
        topk_inner_products,
    )
    from torch_geometric_ea.metrics.ranking import duplicate_rows
    gen = torch.Generator().manual_seed(k)
    x, y = torch.randn(60, 8, generator=gen), torch.randn(50, 8, generator=gen)
    x[7] = x[3]  # a duplicate row
    index = torch.randperm(60, generator=gen)[:45]
    lazy = GatheredRows(x, index, lambda rows: F.normalize(rows, dim=-1))
    whole = F.normalize(x[index], dim=-1)
    for got, want in zip(topk_both_ways(lazy, y, k, chunk),
                         topk_both_ways(whole, y, k, chunk)):
        assert torch.equal(got, want)
    for got, want in zip(topk_inner_products(lazy, y, k, chunk),
                         topk_inner_products(whole, y, k, chunk)):
        assert torch.equal(got, want)
    assert torch.equal(duplicate_rows(lazy, 4), duplicate_rows(whole, 4))
