r"""The decoders in one module (metrics.decoding): one set of names, used by
the candidates of ``align``, evaluation and bootstrapping; each decoder
checked against an independent dense computation, chunked against dense."""
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

from torch_geometric_ea.metrics import (
    evaluate_alignment,
    mutual_nearest_neighbours,
)
from torch_geometric_ea.metrics.decoding import (
    CANDIDATE_DECODERS,
    DECODER_ALIASES,
    DECODERS,
    PAIRING_DECODERS,
    RANKING_DECODERS,
    check_decoder,
    decode_candidates,
    sparse_sinkhorn_pairs,
)
from torch_geometric_ea.metrics.ranking import DECODINGS, rank_metrics

from .reference import dense_csls
from .test_ranking import dense_realistic_rank


def unit(num, dim=6, seed=0, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(num, dim, generator=gen, dtype=dtype), dim=-1)


def dense_candidates(x, y, k, decoder, csls_k):
    r"""What :func:`decode_candidates` should return, from the dense CSLS
    matrix, torch.topk, a brute-force mutual check and SciPy."""
    scores = dense_csls(x, y, csls_k)
    k = min(k, y.size(0))
    score, index = scores.topk(k, dim=1)
    rank = torch.arange(1, k + 1).expand(x.size(0), k).clone()
    keep = torch.ones(x.size(0), dtype=torch.bool)
    if decoder == 'mutual':
        best_source = scores.argmax(dim=0)
        keep = torch.tensor([int(best_source[index[i, 0]]) == i for i in range(x.size(0))],
                            dtype=torch.bool)
    elif decoder == 'hungarian':
        from scipy.optimize import linear_sum_assignment
        rows, cols = linear_sum_assignment((x @ y.t()).double().numpy(), maximize=True)
        keep = torch.zeros(x.size(0), dtype=torch.bool)
        keep[torch.from_numpy(rows)] = True
        partner = torch.zeros(x.size(0), dtype=torch.long)
        partner[torch.from_numpy(rows)] = torch.from_numpy(cols)
        rows = []
        for i in range(x.size(0)):
            p = int(partner[i])
            others = [j for j in index[i].tolist() if j != p][:k - 1]
            s = scores[i, p]
            rows.append(([p] + others, [float(s)] + scores[i, others].tolist(),
                         [int((scores[i] > s + 1e-6).sum()) + 1]
                         + [index[i].tolist().index(j) + 1 for j in others]))
        index = torch.tensor([r[0] for r in rows])
        score = torch.tensor([r[1] for r in rows], dtype=x.dtype)
        rank = torch.tensor([r[2] for r in rows])
    return keep, index, score, rank


def assert_same_candidates(got, want, exact=True):
    keep, index, score, rank = got
    assert torch.equal(keep, want[0])
    # rows of sources not kept are meaningless
    assert torch.equal(index[keep], want[1][keep])
    assert torch.equal(rank[keep], want[3][keep])
    if exact:
        assert torch.equal(score[keep], want[2][keep])
    else:
        torch.testing.assert_close(score[keep], want[2][keep], atol=1e-5, rtol=0)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 25), m=st.integers(1, 25), d=st.integers(2, 8),
       k=st.integers(1, 12), csls_k=st.integers(0, 5), chunk=st.integers(1, 30),
       decoder=st.sampled_from(CANDIDATE_DECODERS), seed=st.integers(0, 999))
def test_candidates_equal_a_dense_computation(n, m, d, k, csls_k, chunk, decoder, seed):
    if decoder == 'hungarian':
        pytest.importorskip('scipy')
    x, y = unit(n, d, seed, torch.float64), unit(m, d, seed + 1000, torch.float64)
    got = decode_candidates(x, y, k, decoder, csls_k=csls_k, chunk_size=chunk)
    assert_same_candidates(got, dense_candidates(x, y, k, decoder, csls_k), exact=False)
    # chunked equals dense (one chunk holding every row), bit for bit where
    # the product is formed the same way
    dense = decode_candidates(x, y, k, decoder, csls_k=csls_k, chunk_size=10_000)
    assert_same_candidates(got, dense, exact=False)


@pytest.mark.parametrize('decoder', CANDIDATE_DECODERS)
def test_chunked_equals_dense(decoder):
    if decoder == 'hungarian':
        pytest.importorskip('scipy')
    x, y = unit(40, 8, seed=1), unit(33, 8, seed=2)
    chunked = decode_candidates(x, y, 6, decoder, chunk_size=7)
    dense = decode_candidates(x, y, 6, decoder, chunk_size=10_000)
    assert_same_candidates(chunked, dense, exact=False)
    assert chunked[1].shape == chunked[2].shape == chunked[3].shape == (40, 6)
    assert chunked[0].dtype == torch.bool and chunked[3].dtype == torch.long


def test_mutual_keeps_the_mutual_best_and_hungarian_is_one_to_one():
    pytest.importorskip('scipy')
    # sources 0 and 1 both prefer target 0, which prefers source 1; the
    # matching of largest total (0.7 + 0.9 + 1) gives source 0 its second best
    sim = torch.tensor([[0.8, 0.7, 0.0], [0.9, 0.0, 0.0], [0.0, 0.0, 1.0]])
    x, y = torch.eye(3), sim.t().contiguous()  # x @ y.T == sim
    keep, index, score, rank = decode_candidates(x, y, 2, 'greedy', csls_k=0)
    assert keep.all() and index[:, 0].tolist() == [0, 0, 2]
    keep, index, _, _ = decode_candidates(x, y, 2, 'mutual', csls_k=0)
    assert keep.tolist() == [False, True, True]
    assert index[:, 0].tolist() == [0, 0, 2]
    keep, index, score, rank = decode_candidates(x, y, 2, 'hungarian', csls_k=0)
    assert keep.all() and index[:, 0].tolist() == [1, 0, 2]
    assert index[0].tolist() == [1, 0] and rank[0].tolist() == [2, 1]
    assert score[0].tolist() == pytest.approx([0.7, 0.8])
    assert rank[1:, 0].tolist() == [1, 1]


def test_candidates_equal_those_of_the_aligner():
    pytest.importorskip('scipy')
    from torch_geometric_ea import Aligner
    from torch_geometric_ea.data import synthetic_pair
    from torch_geometric_ea.precision import using
    from torch_geometric_ea.train.lightea import LightEAConfig
    data = synthetic_pair(60, num_relations=8, seed=0)
    aligner = Aligner.fit(data, 'lightea', LightEAConfig(ent_dim=64, top_k=20, device='cpu'),
                          progress=False)
    sources, targets = aligner.unlinked()
    x_src, x_tgt = aligner.embed()
    x, y = x_src[sources], x_tgt[targets]
    for decoder in CANDIDATE_DECODERS:
        for csls_k, chunk_size in ((10, 7), (0, 10_000)):
            want = aligner.candidates(k=5, decoder=decoder, csls_k=csls_k,
                                      chunk_size=chunk_size)
            with using(aligner.precision):  # the aligner's products
                keep, index, score, rank = decode_candidates(
                    x, y, 5, decoder, csls_k=csls_k, chunk_size=chunk_size)
            assert torch.equal(sources[keep], want.source)
            assert torch.equal(targets[index[keep]], want.target)
            assert torch.equal(score[keep], want.score)
            assert torch.equal(rank[keep], want.rank)


def test_every_decoder_is_used_somewhere_and_accepted_where_it_applies():
    uses = set(CANDIDATE_DECODERS) | set(RANKING_DECODERS) | set(PAIRING_DECODERS)
    assert uses | {'sparse_sinkhorn'} == set(DECODERS)  # its pairs: sparse_sinkhorn_pairs
    for allowed in (None, CANDIDATE_DECODERS, RANKING_DECODERS, PAIRING_DECODERS):
        for name in DECODERS if allowed is None else allowed:
            assert check_decoder(name, allowed) == name
    assert set(DECODER_ALIASES) == {'csls'}
    assert check_decoder('csls') == check_decoder('csls', RANKING_DECODERS) == 'greedy'
    assert check_decoder('csls', PAIRING_DECODERS) == 'mutual'
    assert DECODINGS == ('csls', 'sinkhorn', 'hungarian')  # the older names, kept


@pytest.mark.parametrize('decoding', RANKING_DECODERS)
def test_evaluation_takes_every_ranking_decoder(decoding):
    if decoding == 'hungarian':
        pytest.importorskip('scipy')
    x = unit(30, seed=3)
    y = F.normalize(x + 0.3 * unit(30, seed=4), dim=-1)
    out = evaluate_alignment(x, y, torch.arange(30).repeat(2, 1), decoding=decoding,
                             top_k=5, chunk_size=7)
    for direction in ('src->tgt', 'tgt->src'):
        assert 0 < out[direction]['hits@1'] <= 1


def test_csls_is_greedy_bit_for_bit():
    x, y = unit(25, seed=5), unit(25, seed=6)
    links = torch.arange(25).repeat(2, 1)
    greedy = evaluate_alignment(x, y, links, decoding='greedy', chunk_size=4)
    assert evaluate_alignment(x, y, links, decoding='csls', chunk_size=4) == greedy
    assert evaluate_alignment(x, y, links, chunk_size=4) == greedy
    mutual = mutual_nearest_neighbours(x, y, chunk_size=4)
    assert torch.equal(mutual_nearest_neighbours(x, y, decoding='csls', chunk_size=4), mutual)
    assert torch.equal(mutual_nearest_neighbours(x, y, decoding='mutual', chunk_size=4), mutual)


def one_line_error(call):
    with pytest.raises(ValueError) as info:
        call()
    message = str(info.value)
    assert '\n' not in message and message
    return message


@pytest.mark.parametrize('name', ['best', 'Greedy', 'a\nb', None, ''])
def test_an_unknown_name_is_one_line(name):
    x, y = unit(5, seed=7), unit(5, seed=8)
    links = torch.arange(5).repeat(2, 1)
    calls = {
        "'decoder' must be one of 'greedy', 'mutual', 'hungarian', 'sinkhorn', "
        "'sparse_sinkhorn', 'csls' (= 'greedy')": lambda: check_decoder(name),
        "'decoder' must be one of 'greedy', 'mutual', 'hungarian', 'csls' (= 'greedy')":
            lambda: decode_candidates(x, y, 2, name),
        "'decoding' must be one of 'greedy', 'sinkhorn', 'hungarian', "
        "'sparse_sinkhorn', 'csls' (= 'greedy')":
            lambda: evaluate_alignment(x, y, links, decoding=name),
        "'decoding' must be one of 'mutual', 'sinkhorn', 'csls' (= 'mutual')":
            lambda: mutual_nearest_neighbours(x, y, decoding=name),
    }
    for start, call in calls.items():
        assert one_line_error(call) == f"{start} (got {name!r})"


def test_a_decoder_where_it_does_not_apply_is_refused():
    x, y = unit(5, seed=7), unit(5, seed=8)
    links = torch.arange(5).repeat(2, 1)
    for name in set(DECODERS) - set(CANDIDATE_DECODERS):
        assert 'decoder' in one_line_error(lambda: decode_candidates(x, y, 2, name))
    assert "(got 'mutual')" in one_line_error(
        lambda: evaluate_alignment(x, y, links, decoding='mutual'))
    assert "(got 'greedy')" in one_line_error(
        lambda: mutual_nearest_neighbours(x, y, decoding='greedy'))
    assert "'semi_decoding' must be one of 'mutual'" in one_line_error(
        lambda: check_decoder('hungarian', PAIRING_DECODERS, field='semi_decoding'))
    assert 'allowed' in one_line_error(lambda: check_decoder('greedy', ['greedy', 'cosine']))
    assert "'k' must be positive" in one_line_error(lambda: decode_candidates(x, y, 0))
    assert "'top_k' must be positive" in one_line_error(
        lambda: evaluate_alignment(x, y, links, decoding='sparse_sinkhorn', top_k=0))


def dense_sinkhorn_scaling(x, y, tau, num_iters):
    r"""LightEA's Sinkhorn over every candidate: rows then columns
    normalised, ``num_iters`` times."""
    p = ((x @ y.t()).double() / tau).exp()
    for _ in range(num_iters):
        p = p / p.sum(1, keepdim=True)
        p = p / p.sum(0, keepdim=True)
    return p


def test_sparse_sinkhorn_evaluation_over_every_candidate_equals_dense_sinkhorn():
    x = unit(20, seed=9, dtype=torch.float64)
    y = F.normalize(x + 0.6 * unit(20, seed=10, dtype=torch.float64), dim=-1)
    out = evaluate_alignment(x, y, torch.arange(20).repeat(2, 1), decoding='sparse_sinkhorn',
                             top_k=20, tau=0.1, num_iters=5, ks=(1, 3), chunk_size=6)
    p = dense_sinkhorn_scaling(x, y, 0.1, 5)
    truth = torch.arange(20)
    for direction, scores in (('src->tgt', p), ('tgt->src', p.t())):
        want = rank_metrics(dense_realistic_rank(scores, truth), ks=(1, 3))
        assert out[direction] == pytest.approx(want)


def test_sparse_sinkhorn_evaluation_equals_lighteas():
    from torch_geometric_ea.train.lightea import LightEAConfig, evaluate_sparse_sinkhorn
    x = torch.randn(90, 12, generator=torch.Generator().manual_seed(11))
    x[50] = x[41]  # a duplicate target: it ties
    links = torch.stack([torch.arange(0, 40), torch.arange(40, 80)])
    for top_k in (3, 50):
        cfg = LightEAConfig(top_k=top_k, tau=0.05, sinkhorn_iters=7, chunk_size=16)
        want = evaluate_sparse_sinkhorn(x, links, cfg)
        got = evaluate_alignment(x, x, links, decoding='sparse_sinkhorn', top_k=top_k,
                                 tau=0.05, num_iters=7, chunk_size=16)
        assert got == want


def test_sparse_sinkhorn_pairs_equal_lighteas_confident_pairs_and_dense():
    from torch_geometric_ea.train.lightea import LightEAConfig, confident_pairs
    x = torch.randn(70, 10, generator=torch.Generator().manual_seed(12))
    x[40:70] = x[0:30] + 0.3 * torch.randn(30, 10, generator=torch.Generator().manual_seed(13))
    pool_src, pool_tgt = torch.arange(0, 35), torch.arange(35, 70)
    cfg = LightEAConfig(top_k=8, tau=0.05, sinkhorn_iters=9, chunk_size=4, threshold=0.5)
    want = confident_pairs(x, pool_src, pool_tgt, cfg)
    pairs = sparse_sinkhorn_pairs(F.normalize(x[pool_src], dim=-1),
                                  F.normalize(x[pool_tgt], dim=-1), 8, threshold=0.5,
                                  tau=0.05, num_iters=9, chunk_size=4)
    assert want.size(1) > 10
    assert torch.equal(torch.stack([pool_src[pairs[0]], pool_tgt[pairs[1]]]), want)
    # over every candidate: the dense scaling's rows whose best exceeds 0.5
    xs, xt = unit(12, seed=14, dtype=torch.float64), unit(12, seed=15, dtype=torch.float64)
    p = dense_sinkhorn_scaling(xs, xt, 0.05, 9)
    best, at = p.max(1)
    dense = torch.stack([torch.nonzero(best > 0.5).squeeze(1), at[best > 0.5]])
    assert torch.equal(sparse_sinkhorn_pairs(xs, xt, 12, tau=0.05, num_iters=9), dense)
    assert dense.size(1) > 0 and dense[1].unique().numel() == dense.size(1)
