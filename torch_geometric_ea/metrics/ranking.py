r"""Rank-based evaluation of entity alignment: the rank of every true
partner under a decoder's scores, summarised as Hits@k and MRR.

Ties follow the *realistic* rank of PyKEEN (`Berrendorf et al., 2020
<https://arxiv.org/abs/2002.06914>`_), the mean of the optimistic and the
pessimistic rank, and scores closer than :obj:`tie_atol` tie (default
:math:`10^{-5}`; :obj:`0` compares exactly): see
:mod:`~torch_geometric_ea.metrics.ranks`, where the ranks are counted and
summarised.
"""
from typing import Dict, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from torch_geometric_ea.metrics.decoding import (
    RANKING_DECODERS,
    check_decoder,
    hungarian_matching,
)
from torch_geometric_ea.metrics.ranks import (
    DEFAULT_TIE_ATOL,
    candidate_ranks,
    check_test_links,
    duplicate_rows,
    expected_rank_metrics,
    no_links_metrics,
    rank_metrics,
    realistic_rank,
    sign_sum,
)
from torch_geometric_ea.metrics.similarity import (
    DEFAULT_CHUNK_SIZE,
    Radii,
    check_pair,
    diagonal_scores,
    low_pair,
    score_chunks,
    similarity_pass,
)
from torch_geometric_ea.metrics.low_precision import low_paired_ranks
from torch_geometric_ea.metrics.sinkhorn import sinkhorn_radii, sparse_sinkhorn_ranks
from torch_geometric_ea.metrics.topk import topk_both_ways

__all__ = ['rank_of_true', 'paired_ranks', 'evaluate_alignment', 'evaluate_top_k',
           # re-exported from ranks, imported from here elsewhere
           'rank_metrics', 'expected_rank_metrics', 'duplicate_rows',
           'no_links_metrics', 'DEFAULT_TIE_ATOL']

#: Deprecated: the names :func:`evaluate_alignment` took before the
#: decoders had one set of names (``'csls'`` is now ``'greedy'``, still
#: accepted). Use :data:`~torch_geometric_ea.metrics.decoding.RANKING_DECODERS`
#: and :func:`~torch_geometric_ea.metrics.decoding.check_decoder`.
DECODINGS = ('csls', 'sinkhorn', 'hungarian')


@torch.no_grad()
def rank_of_true(
    x: Tensor,
    y: Tensor,
    truth_index: Tensor,
    *,
    csls_k: int = 10,
    tie_atol: float = DEFAULT_TIE_ATOL,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Tensor:
    r"""The realistic rank of the true candidate :obj:`y[truth_index[i]]`
    among all rows of :obj:`y`, for every query :obj:`x[i]`, under CSLS
    scores (see :func:`~torch_geometric_ea.metrics.csls_topk`):

    .. math::
        \mathrm{rank}_i = \frac{1}{2} \Big(1
        + |\{j : s_{ij} > s_{i t_i}\}|
        + |\{j : s_{ij} \geq s_{i t_i}\}|\Big),
        \qquad t_i = \mathrm{truth\_index}_i.

    Ranks are 1-based; a true candidate tied with :math:`c` others gets the
    mean of the optimistic and the pessimistic rank, e.g. :obj:`1.5` for a
    tie of two at the top (PyKEEN's realistic rank).  Scores closer than
    :obj:`tie_atol` count as tied (see
    :mod:`~torch_geometric_ea.metrics.ranks`).

    Args:
        x (torch.Tensor): L2-normalised query embeddings.
        y (torch.Tensor): L2-normalised candidate embeddings.
        truth_index (torch.Tensor): The index into :obj:`y` of the true
            candidate of every query.
        csls_k (int, optional): The CSLS neighbourhood size; :obj:`0` ranks
            by plain cosine similarity. (default: :obj:`10`)
        tie_atol (float, optional): Scores closer than this to the true
            score tie with it; :obj:`0` for exact ties (see
            :mod:`~torch_geometric_ea.metrics.ranks`). (default: :obj:`1e-5`)
        chunk_size (int, optional): The number of queries scored at once.
            (default: :obj:`1024`)

    Shapes:
        - **inputs:** :math:`(N, D)`, :math:`(M, D)`, :math:`(N)`
        - **output:** :math:`(N)`, floating point

    .. note::
        Peak memory is :math:`O(\text{chunk\_size} \cdot M)`.
    """
    check_pair(x, y)
    if truth_index.shape != (x.size(0), ):
        raise ValueError(f"Expected 'truth_index' of shape [{x.size(0)}] "
                         f"(got {list(truth_index.shape)})")
    if int(truth_index.min()) < 0 or int(truth_index.max()) >= y.size(0):
        raise ValueError(f"'truth_index' out of range [0, {y.size(0)})")

    num_y = y.size(0)
    radii, _ = similarity_pass(x, y, csls_k, chunk_size)
    sign_sums = []
    buf = x.new_empty(min(chunk_size, x.size(0)), num_y)
    for rows, scores in score_chunks(x, y, radii, chunk_size):
        true = scores.gather(1, truth_index[rows].unsqueeze(1))
        sign_sums.append(sign_sum(scores, true, 1, buf, num_y, tie_atol))
    return realistic_rank(torch.cat(sign_sums), num_y)


def paired_ranks(
    x: Tensor,
    y: Tensor,
    *,
    csls_k: int = 10,
    tie_atol: float = DEFAULT_TIE_ATOL,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    radii: Radii = None,
) -> Tuple[Tensor, Tensor]:
    r"""Realistic ranks in both directions for the pairs :obj:`(x[i], y[i])`.

    Equal to :obj:`rank_of_true(x, y, arange(N))` and :obj:`rank_of_true(y, x,
    arange(N))` (up to float rounding of the transposed product), but with
    two passes over :math:`\mathbf{x} \mathbf{y}^{\top}` instead of four: the
    second direction counts down the columns of the same score chunks, as
    :math:`\mathrm{CSLS}_{\mathbf{y}\mathbf{x}}(j, i) =
    \mathrm{CSLS}_{\mathbf{x}\mathbf{y}}(i, j)`. Given ``radii``, the
    scores are :math:`2 \cos_{ij} - r_{\mathbf{x}}(i) - r_{\mathbf{y}}(j)`
    with these offsets instead of the CSLS ones (``csls_k`` is ignored).
    """
    num = x.size(0)
    pair = low_pair(x, y)
    if pair is not None:
        return low_paired_ranks(pair, csls_k=csls_k, tie_atol=tie_atol,
                                chunk_size=chunk_size, radii=radii)
    if radii is None:
        radii, diag = similarity_pass(x, y, csls_k, chunk_size, diagonal=True)
    else:
        diag = similarity_pass(x, y, 0, chunk_size, diagonal=True)[1]
    true = diagonal_scores(diag, radii)  # Bitwise equal to the chunks' ones.
    sums_x, sums_y = [], 0
    buf = x.new_empty(min(chunk_size, num), num)
    for rows, scores in score_chunks(x, y, radii, chunk_size):
        true_x = true[rows].unsqueeze(1)
        sums_x.append(sign_sum(scores, true_x, 1, buf, num, tie_atol))
        # Column sums of signs add up over the row chunks:
        sums_y = sums_y + sign_sum(scores, true, 0, buf, num, tie_atol)
    return (realistic_rank(torch.cat(sums_x), num),
            realistic_rank(sums_y, num))


@torch.no_grad()
def evaluate_alignment(
    src_emb: Tensor,
    tgt_emb: Tensor,
    test_links: Tensor,
    *,
    csls_k: int = 10,
    ks: Sequence[int] = (1, 5, 10),
    tie_atol: float = DEFAULT_TIE_ATOL,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    decoding: str = 'greedy',
    tau: float = 0.02,
    num_iters: int = 10,
    top_k: int = 500,
) -> Dict[str, Dict[str, float]]:
    r"""Evaluates entity alignment in both directions, as in `Dual-AMN
    (Mao et al., WWW 2021) <https://arxiv.org/abs/2101.01353>`_.

    The embeddings are L2-normalised and restricted to the test links: every
    test source entity is ranked against the test target entities only (and
    vice versa) under CSLS with neighbourhood :obj:`csls_k`, and the realistic
    ranks (see :func:`rank_of_true`) are summarised by
    :func:`~torch_geometric_ea.metrics.ranks.rank_metrics`.

    ``decoding`` names the decoder that ranks (one of
    :data:`~torch_geometric_ea.metrics.decoding.RANKING_DECODERS`, see
    :mod:`~torch_geometric_ea.metrics.decoding`):

    - ``'greedy'`` (or its older name ``'csls'``): CSLS, as above.
    - ``'sinkhorn'``: the Sinkhorn-normalised similarities
      (:func:`~torch_geometric_ea.metrics.sinkhorn.sinkhorn_potentials` with
      ``tau`` and ``num_iters``): row :math:`i` ranks the targets by
      :math:`\cos_{ij} + \tau v_j` and column :math:`j` the sources by
      :math:`\cos_{ij} + \tau u_i`.
    - ``'hungarian'``: matches the test entities one to one
      (:func:`~torch_geometric_ea.metrics.decoding.hungarian_matching`) and reports
      only ``'hits@1'``, the share matched correctly, the same both ways.
    - ``'sparse_sinkhorn'``: LightEA's evaluation: each query's ``top_k``
      nearest by cosine, ranked by their
      :func:`~torch_geometric_ea.metrics.sinkhorn.sparse_sinkhorn` scores
      (``tau``, ``num_iters``; LightEA iterates 15 times); a partner
      outside them is a miss (MRR counts it as zero). Candidates tied with
      the partner, by equal score or bit-identical embeddings
      (:func:`~torch_geometric_ea.metrics.ranks.duplicate_rows`), count as
      a random tie-break does on average
      (:func:`~torch_geometric_ea.metrics.ranks.expected_rank_metrics`);
      ``tie_atol`` is not used.

    Args:
        src_emb (torch.Tensor): The source KG's entity embeddings.
        tgt_emb (torch.Tensor): The target KG's entity embeddings.
        test_links (torch.Tensor): The test alignment links, source indices
            in the first row and target indices in the second. Each entity
            occurs at most once (one-to-one links, as in DBP15K).
        csls_k (int, optional): The CSLS neighbourhood size; :obj:`0` ranks
            by plain cosine similarity. (default: :obj:`10`)
        ks (Sequence[int], optional): The Hits@k cut-offs.
            (default: :obj:`(1, 5, 10)`)
        tie_atol (float, optional): Scores closer than this to the true
            score tie with it; :obj:`0` for exact ties (see
            :func:`rank_of_true`). (default: :obj:`1e-5`)
        chunk_size (int, optional): The number of queries scored at once.
            (default: :obj:`1024`)
        decoding (str, optional): The decoder that ranks (see above).
            (default: :obj:`'greedy'`)
        tau (float, optional): The Sinkhorn temperature.
            (default: :obj:`0.02`)
        num_iters (int, optional): Sinkhorn iterations.
            (default: :obj:`10`)
        top_k (int, optional): Candidates per query of
            ``'sparse_sinkhorn'``. (default: :obj:`500`)

    Returns:
        Dict[str, Dict[str, float]]: The metrics of
        :func:`~torch_geometric_ea.metrics.ranks.rank_metrics` under
        :obj:`'src->tgt'` and :obj:`'tgt->src'`; NaN without test links
        (:math:`L = 0`).

    Shapes:
        - **inputs:** :math:`(N_s, D)`, :math:`(N_t, D)`, :math:`(2, L)`

    .. note::
        Peak memory is :math:`O(\text{chunk\_size} \cdot L)`; both directions
        share two chunked passes over the :math:`L \times L` scores.
    """
    decoding = check_decoder(decoding, RANKING_DECODERS, field='decoding')
    check_test_links(test_links)
    if decoding == 'sparse_sinkhorn' and top_k < 1:
        raise ValueError(f"'top_k' must be positive (got {top_k})")
    if test_links.size(1) == 0:
        return no_links_metrics(ks)

    x = F.normalize(src_emb[test_links[0]], dim=-1)
    y = F.normalize(tgt_emb[test_links[1]], dim=-1)
    check_pair(x, y)
    if decoding == 'sparse_sinkhorn':
        return _sparse_sinkhorn_metrics(x, y, top_k, ks=ks, tau=tau,
                                        num_iters=num_iters, chunk_size=chunk_size)
    if decoding == 'hungarian':
        match = hungarian_matching(x, y)
        truth = torch.arange(x.size(0), device=x.device)
        hits = float((match == truth).double().mean())
        return {'src->tgt': {'hits@1': hits}, 'tgt->src': {'hits@1': hits}}
    radii = None
    if decoding == 'sinkhorn':
        radii = sinkhorn_radii(x, y, tau=tau, num_iters=num_iters,
                               chunk_size=chunk_size)
    ranks_src, ranks_tgt = paired_ranks(x, y, csls_k=csls_k,
                                        tie_atol=tie_atol,
                                        chunk_size=chunk_size, radii=radii)
    return {
        'src->tgt': rank_metrics(ranks_src, ks=ks),
        'tgt->src': rank_metrics(ranks_tgt, ks=ks),
    }


def _sparse_sinkhorn_metrics(x: Tensor, y: Tensor, top_k: int, *,
                             ks: Sequence[int], tau: float, num_iters: int,
                             chunk_size: int) -> Dict[str, Dict[str, float]]:
    r"""The ``'sparse_sinkhorn'`` metrics of the pairs :math:`(x_i, y_i)`
    both ways (see :func:`evaluate_alignment`), as LightEA's evaluation
    computes them."""
    row_v, row_i, col_v, col_i = topk_both_ways(x, y, top_k, chunk_size)
    true = torch.arange(x.size(0), device=x.device)
    return {name: expected_rank_metrics(*sparse_sinkhorn_ranks(
                values, index, x.size(0), true, duplicate_rows(other),
                tau=tau, num_iters=num_iters), ks=ks)
            for name, values, index, other in (('src->tgt', row_v, row_i, y),
                                               ('tgt->src', col_v, col_i, x))}


@torch.no_grad()
def evaluate_top_k(src_emb: Tensor, tgt_emb: Tensor, test_links: Tensor,
                   k: int = 10, *, ks: Sequence[int] = (1, 5, 10)
                   ) -> Dict[str, Dict[str, float]]:
    r"""Hits@k and MRR of the test links in both directions by cosine, from
    the exact top-``k`` of every test source among all test targets and of
    every test target among all test sources: one pass over the products
    (:func:`~torch_geometric_ea.metrics.topk.topk_both_ways`, blocked
    for a few of many), where :func:`evaluate_alignment`'s full ranks take
    two passes and a comparison per score (hours on million-entity pairs).

    A true partner outside a query's top :math:`k` is a miss: Hits@:math:`j`
    is exact for :math:`j \le k`, and the MRR counts ranks beyond :math:`k`
    as zero (MRR@:math:`k`). Candidates tied with the true partner count as
    a random tie-break does on average
    (:func:`~torch_geometric_ea.metrics.ranks.expected_rank_metrics`).

    Shapes:
        - **inputs:** :math:`(N_s, D)`, :math:`(N_t, D)`, :math:`(2, L)`
    """
    check_test_links(test_links)
    if k < max(ks):
        raise ValueError(f"'k' must be at least the largest Hits@k cut-off "
                         f"{max(ks)} (got {k})")
    if test_links.size(1) == 0:
        return no_links_metrics(ks)
    x = F.normalize(src_emb[test_links[0]], dim=-1)
    y = F.normalize(tgt_emb[test_links[1]], dim=-1)
    row_v, row_i, col_v, col_i = topk_both_ways(x, y, k)
    true = torch.arange(test_links.size(1), device=x.device)
    return {name: expected_rank_metrics(*candidate_ranks(values, index, true), ks=ks)
            for name, values, index in (('src->tgt', row_v, row_i),
                                        ('tgt->src', col_v, col_i))}
