r"""Ranks with ties, and the Hits@k and MRR they give: the arithmetic that
every evaluation shares.

Ties follow the *realistic* rank of PyKEEN (`Berrendorf et al., 2020
<https://arxiv.org/abs/2002.06914>`_), the mean of the optimistic and the
pessimistic rank of the true candidate :math:`t` among the scores
:math:`s_1, \ldots, s_M`:

.. math::
    \mathrm{rank}(t) = \frac{1}{2} \Big(
    \underbrace{1 + |\{j : s_j > s_t\}|}_{\text{optimistic}} +
    \underbrace{|\{j : s_j \geq s_t\}|}_{\text{pessimistic}} \Big).

A true candidate tied with :math:`c` others (:math:`c + 1` equal scores,
itself included) below :math:`g` strictly better ones thus gets rank
:math:`g + 1 + c / 2`: the expected rank under a random tie-break.  This is
neither rewarded (optimistic) nor punished (pessimistic) for collapsed
embeddings.

Scores count as equal when they differ by less than :obj:`tie_atol`
(:math:`|s_j - s_t| < \epsilon`), and :math:`s_j > s_t` means
:math:`s_j - s_t \geq \epsilon`.  The default :math:`\epsilon = 10^{-5}`
absorbs the float32 rounding by which matrix-product kernels can split
exact duplicates (a few :math:`10^{-7}` per cosine, observed on CPU for
single-row and edge tiles), far below any meaningful CSLS gap;
:obj:`tie_atol=0` compares exactly, as PyKEEN does.

Where only a few candidates per query are scored (LightEA's sparse
Sinkhorn, :func:`~torch_geometric_ea.metrics.ranking.evaluate_top_k`),
:func:`candidate_ranks` counts the candidates above and tied with the true
one and :func:`expected_rank_metrics` averages over a random tie-break.
"""
import math
from typing import Dict, Optional, Sequence, Tuple

import torch
from torch import Tensor

__all__ = ['DEFAULT_TIE_ATOL', 'sign_sum', 'realistic_rank', 'rank_metrics',
           'expected_rank_metrics', 'candidate_ranks', 'duplicate_rows', 'row_keys',
           'key_groups',
           'no_links_metrics', 'check_test_links']

#: The default ``tie_atol``, :math:`\epsilon` above.
DEFAULT_TIE_ATOL = 1e-5


def sign_sum(scores: Tensor, true: Tensor, dim: int, buf: Tensor,
             num_candidates: int, tie_atol: float) -> Tensor:
    r"""The sums :math:`\sum_j \mathrm{sign}_\epsilon(s_j - s_t) =
    |\{j : s_j > s_t\}| - |\{j : s_j < s_t\}|` along :obj:`dim`, where
    :math:`\mathrm{sign}_\epsilon` is zero on :math:`(-\epsilon, \epsilon)`,
    using :obj:`buf` as scratch.

    One reduction instead of two counts, and a NaN score cannot give a
    silently perfect rank (comparisons with NaN are all false).  Sums of
    :math:`\pm 1` are exact in float32 below :math:`2^{24}` candidates,
    hence the float64 fallback.
    """
    if tie_atol < 0:
        raise ValueError(f"'tie_atol' must be non-negative (got {tie_atol})")
    dtype = torch.promote_types(scores.dtype, torch.float32)
    if num_candidates >= 2**24:
        dtype = torch.float64
    diff = torch.sub(scores, true, out=buf[:scores.size(0)])
    if tie_atol > 0:  # trunc(d / eps) is 0 for |d| < eps (up to rounding).
        sign = diff.div_(tie_atol).trunc_().clamp_(-1, 1)
    else:
        sign = diff.sign_()
    return sign.sum(dim=dim, dtype=dtype)


def realistic_rank(sums: Tensor, num_candidates: int) -> Tensor:
    r"""The realistic ranks from the sums ``sums`` of :func:`sign_sum`.
    With :math:`M` candidates, :math:`|\{s_j > s_t\}| + |\{s_j = s_t\}|
    + |\{s_j < s_t\}| = M`, so the realistic rank is
    :math:`\frac{1}{2}(1 + |\{s_j > s_t\}| + |\{s_j \geq s_t\}|) =
    \frac{1}{2}(1 + M + \sum_j \mathrm{sign}(s_j - s_t))`."""
    return (sums + (1 + num_candidates)) / 2


def rank_metrics(
    ranks: Tensor,
    *,
    ks: Sequence[int] = (1, 5, 10),
) -> Dict[str, float]:
    r"""Hits@k and the mean reciprocal rank of 1-based (realistic) ranks:

    .. math::
        \mathrm{Hits@}k = \frac{1}{N} \sum_{i=1}^N [\mathrm{rank}_i \leq k],
        \qquad
        \mathrm{MRR} = \frac{1}{N} \sum_{i=1}^N \frac{1}{\mathrm{rank}_i}.

    A half-integer realistic rank counts as a hit only if it is at most
    :math:`k`, e.g. a tie of two at the top (rank :obj:`1.5`) is not a
    Hits@1 hit, as in PyKEEN.

    Args:
        ranks (torch.Tensor): The ranks, of shape :math:`(N)`.
        ks (Sequence[int], optional): The cut-offs :math:`k`.
            (default: :obj:`(1, 5, 10)`)

    Returns:
        Dict[str, float]: :obj:`'hits@k'` for every :math:`k` and
        :obj:`'mrr'`.
    """
    ranks = ranks.double()
    out = {f'hits@{k}': float((ranks <= k).double().mean()) for k in ks}
    out['mrr'] = float(ranks.reciprocal().mean())
    return out


def expected_rank_metrics(greater: Tensor, tied: Tensor, *,
                          ks: Sequence[int] = (1, 5, 10)) -> Dict[str, float]:
    r"""Hits@k and MRR in expectation over a uniformly random order of the
    candidates tied with the true one: with :math:`g_i` candidates above it
    (``inf`` for a miss) and :math:`c_i` tied, its rank is :math:`g_i + 1 +
    u` with :math:`u` uniform on :math:`\{0, \dots, c_i\}`, so

    .. math::
        \mathrm{Hits@}k = \frac{1}{N} \sum_i \frac{\min(c_i + 1,
        \max(0, k - g_i))}{c_i + 1}, \qquad \mathrm{MRR} = \frac{1}{N}
        \sum_i \frac{H_{g_i + c_i + 1} - H_{g_i}}{c_i + 1}

    (:math:`H_n` the harmonic numbers). This is what an evaluation that
    breaks ties in an arbitrary order (LightEA's ``argsort``) reports on
    average; the realistic rank of :func:`rank_metrics` would instead count
    a tie at the top as a miss. Without ties both agree."""
    g, c = greater.double(), tied.double()
    found = torch.isfinite(g)
    g = torch.where(found, g, torch.zeros_like(g))
    out = {}
    for k in ks:
        hits = (k - g).clamp(min=0).minimum(c + 1) / (c + 1)
        out[f'hits@{k}'] = float((hits * found).mean())
    mrr = (torch.digamma(g + c + 2) - torch.digamma(g + 1)) / (c + 1)
    out['mrr'] = float((mrr * found).mean())
    return out


def candidate_ranks(scores: Tensor, index: Tensor, true: Tensor,
                    group: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    r"""Where each row's true column ``true`` :math:`(N)` stands among its
    candidates ``index`` :math:`(N, k)` with ``scores``: the number scored
    above it (``inf`` when it is not a candidate) and the number tied with
    it (equal score, or the same ``group`` id; see
    :func:`~torch_geometric_ea.metrics.sinkhorn.sparse_sinkhorn_ranks`)."""
    is_true = index == true.unsqueeze(1)
    true_score = torch.where(is_true, scores, torch.zeros_like(scores)).sum(1, True)
    tied = (scores == true_score) & ~is_true
    if group is not None:
        tied |= (group[index] == group[true].unsqueeze(1)) & ~is_true
    greater = ((scores > true_score) & ~tied).sum(1).to(scores.dtype)
    found = is_true.any(1)
    return (torch.where(found, greater, torch.full_like(greater, math.inf)),
            tied.sum(1) * found)


@torch.no_grad()
def duplicate_rows(x: Tensor, chunk_size: int = 4096) -> Tensor:
    r"""A group id per row of ``x`` :math:`(N, D)`, equal exactly for
    bit-identical rows (entities whose features coincide, such as leaves
    hanging from the same neighbour by the same relation): an exact
    integer hash of each row's bits (:func:`row_keys`), so matrix-product
    rounding, which can split the scores of identical rows, cannot split
    their group. ``x`` is read ``chunk_size`` rows at a time (it may be any
    object whose row slices are tensors, such as
    :class:`~torch_geometric_ea.metrics.topk.GatheredRows`)."""
    return key_groups(torch.cat([row_keys(x[s:s + chunk_size])
                                 for s in range(0, x.size(0), chunk_size)]))


def row_keys(rows: Tensor) -> Tensor:
    r"""An integer hash of each row's float32 bits: :math:`\sum_j w_j
    b_{ij}` over the row's bits read as 64-bit words (32-bit ones for an
    odd width), products and sum wrapped to 64 bits, for fixed random odd
    weights :math:`w_j`; bit-identical rows get the same key, different
    rows different keys but by a chance collision."""
    bits = _bits(rows)
    if bits.size(1) % 2 == 0:
        bits = bits.view(torch.int64)  # two columns a word: half the work
    else:
        bits = bits.long()
    weight = torch.randint(0, 2 ** 62, (bits.size(1),),
                           generator=torch.Generator().manual_seed(0))
    return (bits * (2 * weight + 1).to(rows.device)).sum(1)


def key_groups(keys: Tensor) -> Tensor:
    r"""A group id per key, :math:`0, 1, \dots`, equal for equal keys."""
    return torch.unique(keys, return_inverse=True)[1]


def _bits(x: Tensor) -> Tensor:
    r"""The float32 bits of ``x`` as int32."""
    return x.float().contiguous().view(torch.int32)


def no_links_metrics(ks: Sequence[int] = (1, 5, 10)) -> Dict[str, Dict[str, float]]:
    r"""The metrics of an evaluation without test links (a pair with seed
    links only): every figure NaN, undefined rather than zero."""
    nan = float('nan')
    one = dict({f'hits@{k}': nan for k in ks}, mrr=nan)
    return {'src->tgt': dict(one), 'tgt->src': dict(one)}


def check_test_links(test_links: Tensor):
    r"""Raises unless ``test_links`` is :math:`(2, L)` and one-to-one."""
    if test_links.dim() != 2 or test_links.size(0) != 2:
        raise ValueError(f"Expected 'test_links' of shape [2, L] "
                         f"(got {list(test_links.shape)})")
    for row in test_links:
        if row.unique().numel() != row.numel():
            raise ValueError("'test_links' must be one-to-one, found an "
                             "entity in more than one link")
