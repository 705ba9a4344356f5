r"""Chunked cosine and CSLS similarity search between two embedding sets.

Every function here processes the rows of :obj:`x` :obj:`chunk_size` at a
time, so peak memory is :math:`O(\text{chunk\_size} \cdot M)` and the full
:math:`N \times M` similarity matrix is never materialised.  Inputs are
expected to be L2-normalised, so that the dot product is the cosine
similarity.  No autograd graph is recorded.

CSLS (cross-domain similarity local scaling, `Lample et al., ICLR 2018
<https://arxiv.org/abs/1710.04087>`_) penalises hubs, entities that are close
to everything:

.. math::
    \mathrm{CSLS}(i, j) = 2 \cos(\mathbf{x}_i, \mathbf{y}_j)
    - r_{\mathbf{x}}(i) - r_{\mathbf{y}}(j),

where :math:`r_{\mathbf{x}}(i)` is the mean cosine similarity of
:math:`\mathbf{x}_i` to its :math:`k` nearest neighbours in
:math:`\mathbf{y}` and :math:`r_{\mathbf{y}}(j)` that of :math:`\mathbf{y}_j`
in :math:`\mathbf{x}`.
"""
from typing import Iterator, NamedTuple, Optional, Tuple

import torch
from torch import Tensor

from torch_geometric_ea.precision import product_dtype

__all__ = ['csls_neighbourhood', 'csls_topk', 'similarity_pass', 'score_chunks',
           'check_pair', 'diagonal_scores', 'row_chunks', 'LowPair', 'low_pair',
           'exact_scores', 'low_similarity_pass', 'pad_columns',
           'LOW_PRECISION_MIN_WIDTH', 'search_dtype']

DEFAULT_CHUNK_SIZE = 1024
#: Candidates beyond ``k`` per row and column that a low-precision pass
#: re-scores in float32 before it keeps the exact top ``k``.
EXTRA_CANDIDATES = 8
#: The narrowest embeddings whose evaluation takes low-precision products.
#: On 2 AMX cores (zh_en test links, medians of alternated runs) the passes
#: and re-scoring that keep the ranks exact cost what the products save:
#: width 768, CSLS 1.61 s float32 against 1.52 s bf16, cosine 1.13 against
#: 1.27; width 200 loses more. So no width in use takes them by default.
LOW_PRECISION_MIN_WIDTH = 1024

Radii = Optional[Tuple[Tensor, Tensor]]


def row_chunks(num_rows: int, chunk_size: int) -> Iterator[slice]:
    r"""The slices of ``chunk_size`` consecutive rows (the last one
    shorter) that cover ``num_rows`` rows."""
    if chunk_size < 1:
        raise ValueError(f"'chunk_size' must be positive (got {chunk_size})")
    for start in range(0, num_rows, chunk_size):
        yield slice(start, min(start + chunk_size, num_rows))


def check_pair(x: Tensor, y: Tensor) -> None:
    r"""Raises a one-line :class:`ValueError` unless ``x`` and ``y`` are
    non-empty embedding matrices :math:`(N, D)` and :math:`(M, D)` of one
    width :math:`D`."""
    if x.dim() != 2 or y.dim() != 2 or x.size(1) != y.size(1):
        raise ValueError(f"Expected embeddings of shapes [N, D] and [M, D] "
                         f"(got {list(x.shape)} and {list(y.shape)})")
    if x.size(0) == 0 or y.size(0) == 0:
        raise ValueError("Expected non-empty embeddings")


def _topk_values(src: Tensor, k: int, dim: int) -> Tensor:
    return src.topk(min(k, src.size(dim)), dim=dim, sorted=False).values


@torch.no_grad()
def similarity_pass(
    x: Tensor,
    y: Tensor,
    k: int,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    diagonal: bool = False,
) -> Tuple[Radii, Optional[Tensor]]:
    r"""One chunked pass over :math:`\mathbf{x} \mathbf{y}^{\top}`, the
    first of the two that CSLS scoring takes (the second is
    :func:`score_chunks`).

    Returns the CSLS radii :math:`(r_{\mathbf{x}}, r_{\mathbf{y}})` of
    neighbourhood ``k`` (see :func:`csls_neighbourhood`; :obj:`None` for
    :obj:`k=0`, plain cosine) and, if :obj:`diagonal`, the cosine
    similarities :math:`\cos(\mathbf{x}_i, \mathbf{y}_i)` taken from the
    same chunked matrix products that :func:`score_chunks` computes, so
    that they are bitwise equal to the entries it yields.
    :math:`r_{\mathbf{y}}` is obtained by merging per-chunk column
    top-:math:`k` values.

    Args:
        x (torch.Tensor): L2-normalised embeddings :math:`(N, D)`.
        y (torch.Tensor): L2-normalised embeddings :math:`(M, D)`.
        k (int): The CSLS neighbourhood size; :obj:`0` for none.
        chunk_size (int, optional): Rows of :obj:`x` per product.
            (default: :obj:`1024`)
        diagonal (bool, optional): Also return the diagonal (needs
            :math:`N \le M`). (default: :obj:`False`)

    Returns:
        (Radii, torch.Tensor or None): The radii :math:`(N)` and
        :math:`(M)`, or :obj:`None`; the diagonal :math:`(N)` or
        :obj:`None`.

    In a bfloat16 run (:func:`low_pair`) the pass is
    :func:`low_similarity_pass`: radii from float32 re-scored top
    candidates, and an exact float32 diagonal.

    .. note::
        Peak memory is :math:`O(\text{chunk\_size} \cdot M)`.
    """
    if k < 0:
        raise ValueError(f"'k' must be non-negative (got {k})")
    if k == 0 and not diagonal:
        return None, None
    pair = low_pair(x, y)
    if pair is not None:
        return low_similarity_pass(pair, k, chunk_size, diagonal)
    num_x, num_y = x.size(0), y.size(0)
    r_x = x.new_empty(num_x) if k > 0 else None
    top_y = x.new_empty(0, num_y)  # Running top-k of every column.
    diag = x.new_empty(num_x) if diagonal else None

    buf = x.new_empty(min(chunk_size, num_x), num_y)
    for rows in row_chunks(num_x, chunk_size):
        sim = torch.matmul(x[rows], y.t(), out=buf[:rows.stop - rows.start])
        if diag is not None:
            diag[rows] = sim.diagonal(offset=rows.start)
        if r_x is not None:
            r_x[rows] = _topk_values(sim, k, dim=1).mean(dim=1)
            top_y = torch.cat([top_y, _topk_values(sim, k, dim=0)])
            top_y = _topk_values(top_y, k, dim=0)

    radii = None if r_x is None else (r_x, top_y.mean(dim=0))
    return radii, diag


def score_chunks(
    x: Tensor,
    y: Tensor,
    radii: Radii,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Iterator[Tuple[slice, Tensor]]:
    r"""Yields :obj:`(rows, scores)` for consecutive row chunks of
    :obj:`x`, with :obj:`scores` the :obj:`[len(rows), M]` cosine
    similarities (:obj:`radii=None`) or the scores

    .. math::
        s_{ij} = 2 \cos(\mathbf{x}_i, \mathbf{y}_j) - r_{\mathbf{x}}(i)
        - r_{\mathbf{y}}(j)

    for :obj:`radii` :math:`(r_{\mathbf{x}}, r_{\mathbf{y}})`: CSLS with
    the radii of :func:`similarity_pass`, or any other offsets (the
    Sinkhorn decoding passes its potentials this way).

    The yielded tensor is a reused buffer: it is only valid until the next
    iteration. No autograd graph is recorded by the callers here (wrap it
    in :func:`torch.no_grad` yourself when iterating it directly).
    """
    buf = x.new_empty(min(chunk_size, x.size(0)), y.size(0))
    for rows in row_chunks(x.size(0), chunk_size):
        scores = torch.matmul(x[rows], y.t(), out=buf[:rows.stop - rows.start])
        if radii is not None:
            # The order of operations matters: `diagonal_scores` repeats it
            # element-wise on the diagonal and relies on bitwise equality.
            r_x, r_y = radii
            scores.mul_(2).sub_(r_x[rows].unsqueeze(1)).sub_(r_y)
        yield rows, scores


def diagonal_scores(diag: Tensor, radii: Radii) -> Tensor:
    r"""The scores of pairs :obj:`(i, i)`, computed exactly as in
    :func:`score_chunks` (bitwise equal) from the diagonal of
    :func:`similarity_pass`."""
    if radii is None:
        return diag
    r_x, r_y = radii
    return diag.mul(2).sub_(r_x).sub_(r_y)


class LowPair(NamedTuple):
    r"""Unit embeddings ``x``, ``y`` (float32) with their low-precision
    copies ``x_low``, ``y_low``, cast once."""
    x: Tensor
    y: Tensor
    x_low: Tensor
    y_low: Tensor


def low_pair(x: Tensor, y: Tensor) -> Optional[LowPair]:
    r"""The :class:`LowPair` of ``x`` and ``y`` where the products run in a
    low precision (:func:`~torch_geometric_ea.precision.product_dtype`
    is not float32) and pay (:data:`LOW_PRECISION_MIN_WIDTH`), else
    :obj:`None`."""
    dtype = search_dtype(x.size(1), x.device)
    if dtype == torch.float32 or x.dtype != torch.float32 or y.dtype != torch.float32:
        return None
    return LowPair(x, y, x.to(dtype), y.to(dtype))


def search_dtype(width: int, device) -> torch.dtype:
    r"""The dtype ``width``-wide embeddings are multiplied in by the
    evaluations and the top-k searches: the run's product dtype
    (:func:`~torch_geometric_ea.precision.product_dtype`) from
    :data:`LOW_PRECISION_MIN_WIDTH` columns, float32 below (there, on two
    cores, the casts and narrow bfloat16 products cost more than they save:
    Dual-AMN's 774 columns at 100K evaluated in 64 s against 59)."""
    if width < LOW_PRECISION_MIN_WIDTH:
        return torch.float32
    return product_dtype(device)


def exact_scores(x: Tensor, y: Tensor, rows: Tensor, cols: Tensor, radii: Radii,
                 chunk_size: int = 4096) -> Tensor:
    r"""The float32 scores of the pairs :math:`(\mathrm{rows}_m,
    \mathrm{cols}_m)` as :func:`score_chunks` defines them (cosine, or
    :math:`2 \cos_{ij} - r_{\mathbf{x}}(i) - r_{\mathbf{y}}(j)`), each
    an exact float32 row dot product: the re-scoring of the few entries
    that a low-precision product leaves undecided."""
    out = x.new_empty(rows.numel())
    for part in row_chunks(rows.numel(), chunk_size):
        i, j = rows[part], cols[part]
        dots = (x[i] * y[j]).sum(-1)
        if radii is not None:
            dots.mul_(2).sub_(radii[0][i]).sub_(radii[1][j])
        out[part] = dots
    return out


def pad_columns(a: Tensor, multiple: int = 32) -> Tensor:
    r"""``a`` with zero columns up to a multiple of ``multiple`` (the
    products' tile width: 774 columns multiply at half the speed of 800)."""
    extra = -a.size(1) % multiple
    return torch.cat([a, a.new_zeros(a.size(0), extra)], 1) if extra else a


def _exact_topk_mean(x: Tensor, y: Tensor, index: Tensor, k: int,
                     chunk_size: int = 128) -> Tensor:
    r"""The mean of the :math:`k` largest float32 cosines of each
    :math:`\mathbf{x}_i` with its candidates :math:`\mathbf{y}_{\mathrm{index}_i}`."""
    out = x.new_empty(x.size(0))
    for rows in row_chunks(x.size(0), chunk_size):  # small chunks stay in cache
        near = y.index_select(0, index[rows].reshape(-1))
        near = near.view(-1, index.size(1), y.size(1))
        dots = torch.bmm(near, x[rows].unsqueeze(2)).squeeze(2)
        out[rows] = _topk_values(dots, k, dim=1).mean(dim=1)
    return out


def _low_topk_index(a: Tensor, b: Tensor, k: int, chunk_size: int) -> Tensor:
    r"""The indices of the ``k`` largest entries of each row of the
    low-precision :math:`\mathbf{a} \mathbf{b}^{\top}`, unsorted."""
    k = min(k, b.size(0))
    index = torch.empty(a.size(0), k, dtype=torch.long, device=a.device)
    buf = a.new_empty(min(chunk_size, a.size(0)), b.size(0))
    for rows in row_chunks(a.size(0), chunk_size):
        sim = torch.matmul(a[rows], b.t(), out=buf[:rows.stop - rows.start])
        index[rows] = sim.topk(k, dim=1, sorted=False).indices
    return index


@torch.no_grad()
def low_similarity_pass(pair: LowPair, k: int, chunk_size: int = DEFAULT_CHUNK_SIZE,
                        diagonal: bool = False) -> Tuple[Radii, Optional[Tensor]]:
    r""":func:`similarity_pass` with low-precision products: each row's
    and column's top :math:`k` + :data:`EXTRA_CANDIDATES` by the rounded
    cosines, re-scored in float32, give the radii (means of the exact top
    :math:`k`); the diagonal is an exact float32 row dot product."""
    x, y = pair.x, pair.y
    radii = None
    if k > 0:  # the columns' top-k from the rows of y x^T: no top-k down columns
        radii = tuple(_exact_topk_mean(a, b, _low_topk_index(
            pad_columns(a_low), pad_columns(b_low), k + EXTRA_CANDIDATES,
            chunk_size), k)
            for a, b, a_low, b_low in ((x, y, pair.x_low, pair.y_low),
                                       (y, x, pair.y_low, pair.x_low)))
    diag = None
    if diagonal:
        rows = torch.arange(x.size(0), device=x.device)
        diag = exact_scores(x, y, rows, rows, None)
    return radii, diag


@torch.no_grad()
def csls_neighbourhood(
    x: Tensor,
    y: Tensor,
    k: int = 10,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Tensor:
    r"""The CSLS neighbourhood radius of every row of :obj:`x` with respect
    to :obj:`y` (`Lample et al., ICLR 2018
    <https://arxiv.org/abs/1710.04087>`_):

    .. math::
        r_{\mathbf{x}}(i) = \frac{1}{k}
        \sum_{\mathbf{y}_j \in \mathcal{N}_k(\mathbf{x}_i)}
        \cos(\mathbf{x}_i, \mathbf{y}_j),

    where :math:`\mathcal{N}_k(\mathbf{x}_i)` are the :math:`k` rows of
    :obj:`y` most similar to :math:`\mathbf{x}_i`.  Call it again with the
    arguments swapped for the radii of :obj:`y`.

    Args:
        x (torch.Tensor): L2-normalised query embeddings.
        y (torch.Tensor): L2-normalised candidate embeddings.
        k (int, optional): The neighbourhood size, clipped to :math:`M`.
            (default: :obj:`10`)
        chunk_size (int, optional): The number of rows of :obj:`x` scored at
            once. (default: :obj:`1024`)

    Shapes:
        - **inputs:** :math:`(N, D)`, :math:`(M, D)`
        - **output:** :math:`(N)`

    .. note::
        Peak memory is :math:`O(\text{chunk\_size} \cdot M)`.
    """
    check_pair(x, y)
    if k < 1:
        raise ValueError(f"'k' must be positive (got {k})")
    out = x.new_empty(x.size(0))
    for rows, sim in score_chunks(x, y, None, chunk_size):
        out[rows] = _topk_values(sim, k, dim=1).mean(dim=1)
    return out


@torch.no_grad()
def csls_topk(
    x: Tensor,
    y: Tensor,
    *,
    k: int = 10,
    topk: int = 10,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Tuple[Tensor, Tensor]:
    r"""The :obj:`topk` best candidates in :obj:`y` of every row of :obj:`x`
    under CSLS (`Lample et al., ICLR 2018
    <https://arxiv.org/abs/1710.04087>`_):

    .. math::
        \mathrm{CSLS}(i, j) = 2 \cos(\mathbf{x}_i, \mathbf{y}_j)
        - r_{\mathbf{x}}(i) - r_{\mathbf{y}}(j),

    where :math:`r_{\mathbf{x}}` is :obj:`csls_neighbourhood(x, y, k)` and
    :math:`r_{\mathbf{y}}` is :obj:`csls_neighbourhood(y, x, k)`.  The
    returned scores are exact CSLS values, including the row-constant term
    :math:`r_{\mathbf{x}}(i)` that does not affect the ranking.
    For :obj:`k=0` the scores are plain cosine similarities.

    Args:
        x (torch.Tensor): L2-normalised query embeddings.
        y (torch.Tensor): L2-normalised candidate embeddings.
        k (int, optional): The CSLS neighbourhood size; :obj:`0` for plain
            cosine similarity. (default: :obj:`10`)
        topk (int, optional): The number of candidates returned per row,
            clipped to :math:`M`. (default: :obj:`10`)
        chunk_size (int, optional): The number of rows of :obj:`x` scored at
            once. (default: :obj:`1024`)

    Returns:
        (torch.Tensor, torch.Tensor): The scores, sorted in descending order,
        and the indices into :obj:`y` of the candidates.

    Shapes:
        - **inputs:** :math:`(N, D)`, :math:`(M, D)`
        - **outputs:** :math:`(N, \text{topk})`, :math:`(N, \text{topk})`

    .. note::
        Peak memory is :math:`O(\text{chunk\_size} \cdot M)`.  CSLS costs a
        second pass over the rows to compute the radii.  Among tied
        candidates the choice follows :func:`torch.topk`.
    """
    check_pair(x, y)
    if topk < 1:
        raise ValueError(f"'topk' must be positive (got {topk})")
    radii, _ = similarity_pass(x, y, k, chunk_size)
    topk = min(topk, y.size(0))
    values = x.new_empty(x.size(0), topk)
    index = torch.empty(x.size(0), topk, dtype=torch.long, device=x.device)
    for rows, scores in score_chunks(x, y, radii, chunk_size):
        values[rows], index[rows] = scores.topk(topk, dim=1)
    return values, index
