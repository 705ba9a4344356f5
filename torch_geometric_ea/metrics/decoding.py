r"""Decoding an alignment from two sets of embeddings, in one place: the
one set of decoder names, :data:`DECODERS`, and the functions behind them,
used alike by training (bootstrapping pairs), evaluation
(:func:`~torch_geometric_ea.metrics.evaluate_alignment`) and prediction
(:meth:`~torch_geometric_ea.Aligner.candidates`).

Every decoder reads the scores of the sources :math:`\mathbf{x}_i` against
the targets :math:`\mathbf{y}_j`, both L2-normalised, so that
:math:`\cos_{ij} = \mathbf{x}_i^{\top} \mathbf{y}_j`, and either picks a
partner per source (a predicted alignment, bootstrapping pairs) or ranks
each source's targets (evaluation):

- ``'greedy'``: each source's best target under CSLS (`Lample et al.,
  2018 <https://arxiv.org/abs/1710.04087>`_),
  :math:`\mathrm{CSLS}_{ij} = 2 \cos_{ij} - r_{\mathbf{x}}(i) -
  r_{\mathbf{y}}(j)` (plain cosine for ``csls_k=0``); evaluation ranks
  by it. Many sources may pick the same target.
- ``'mutual'``: the greedy pairs :math:`(i, j)` where :math:`i` is also
  :math:`j`'s best source under CSLS (which is symmetric): fewer, surer
  pairs, Dual-AMN's bootstrapping rule.
- ``'hungarian'``: the one-to-one matching of largest total cosine,
  :math:`\max_\pi \sum_i \cos_{i \pi(i)}` (SciPy's
  ``linear_sum_assignment``); it needs the dense :math:`N \times M`
  matrix and gives one target per source, so evaluation reports only
  Hits@1.
- ``'sinkhorn'``: the dense Sinkhorn normalisation (`Cuturi, 2013
  <https://arxiv.org/abs/1306.0895>`_) of the kernel
  :math:`\exp(\cos_{ij} / \tau)` to the doubly stochastic
  :math:`P_{ij} = \exp(\cos_{ij} / \tau + u_i + v_j)`
  (:func:`sinkhorn_potentials`). Row :math:`i` ranks the targets by
  :math:`\cos_{ij} + \tau v_j`: a target that many sources like gets a
  lower :math:`v_j`, as CSLS penalises hubs, but with the penalty fitted to
  all rows at once. As pairs, the mutual best under :math:`P`.
- ``'sparse_sinkhorn'``: LightEA's decoding (`Mao et al., 2022
  <https://arxiv.org/abs/2210.10436>`_): each source keeps its top-:math:`k`
  targets by cosine, and Sinkhorn runs over these candidates only
  (:func:`sparse_sinkhorn`); evaluation ranks among the candidates (a
  partner outside them is a miss), and the pairs are each source's best
  candidate whose :math:`P_{ij}` exceeds a threshold
  (:func:`sparse_sinkhorn_pairs`).

Where each applies (every use takes its names through
:func:`check_decoder`):

========================  ============================  =========================================
use                       decoders                      function
========================  ============================  =========================================
candidates (``align``)    :data:`CANDIDATE_DECODERS`    :func:`decode_candidates`
evaluation                :data:`RANKING_DECODERS`      :func:`~torch_geometric_ea.metrics.evaluate_alignment`
bootstrapping pairs       :data:`PAIRING_DECODERS`      :func:`~torch_geometric_ea.metrics.mutual_nearest_neighbours`, :func:`sparse_sinkhorn_pairs`
========================  ============================  =========================================

``'csls'``, the name evaluation and bootstrapping used before, is still
accepted (:data:`DECODER_ALIASES`): it is the CSLS decoder of the use,
``'greedy'`` when ranking and ``'mutual'`` when pairing.

The CSLS and Sinkhorn scores are computed over row chunks, so they need
:math:`O(\text{chunk\_size} \cdot M)` memory at any size; the Hungarian
algorithm needs the dense :math:`N \times M` matrix.
"""
import math
from typing import Callable, Dict, Optional, Sequence, Tuple

import torch
from torch import Tensor
from tqdm.auto import tqdm

from torch_geometric_ea.metrics.similarity import (
    DEFAULT_CHUNK_SIZE,
    Radii,
    check_pair,
    score_chunks,
    similarity_pass,
)
from torch_geometric_ea.metrics.topk import blocked_topk

__all__ = ['DECODERS', 'DECODER_ALIASES', 'CANDIDATE_DECODERS', 'RANKING_DECODERS',
           'PAIRING_DECODERS', 'check_decoder', 'decode_candidates',
           'sinkhorn_potentials', 'hungarian_matching', 'GatheredRows',
           'topk_inner_products',
           'topk_both_ways', 'sparse_sinkhorn', 'sparse_sinkhorn_ranks',
           'sparse_sinkhorn_pairs', 'candidate_ranks']

#: The decoders, one name each (see the module): ``'greedy'`` and
#: ``'mutual'`` decode CSLS scores, ``'hungarian'`` cosine, ``'sinkhorn'``
#: the dense and ``'sparse_sinkhorn'`` the top-k Sinkhorn normalisation.
DECODERS = ('greedy', 'mutual', 'hungarian', 'sinkhorn', 'sparse_sinkhorn')
#: Older names still accepted, each with the decoders it may stand for:
#: the first of them that a use allows (``'csls'``: ``'greedy'`` when
#: ranking, ``'mutual'`` when pairing).
DECODER_ALIASES: Dict[str, Tuple[str, ...]] = {'csls': ('greedy', 'mutual')}
#: The decoders of :func:`decode_candidates` (the ``align`` command).
CANDIDATE_DECODERS = ('greedy', 'mutual', 'hungarian')
#: The decoders that evaluation ranks by
#: (:func:`~torch_geometric_ea.metrics.evaluate_alignment`).
RANKING_DECODERS = ('greedy', 'sinkhorn', 'hungarian', 'sparse_sinkhorn')
#: The decoders of bootstrapping pairs by mutual best scores
#: (:func:`~torch_geometric_ea.metrics.mutual_nearest_neighbours`);
#: LightEA's ``'sparse_sinkhorn'`` pairs come from
#: :func:`sparse_sinkhorn_pairs`.
PAIRING_DECODERS = ('mutual', 'sinkhorn')


def check_decoder(name: str, allowed: Optional[Sequence[str]] = None, *,
                  field: str = 'decoder') -> str:
    r"""The decoder ``name`` as one of :data:`DECODERS`, for a use that
    takes the decoders ``allowed`` (default: all of them); an alias of
    :data:`DECODER_ALIASES` becomes the first decoder it stands for that
    the use allows (``'csls'`` is ``'greedy'`` in evaluation, ``'mutual'``
    in pairing).

    Raises:
        ValueError: One line, ``'<field>' must be one of ... (got ...)``,
            when ``name`` names none of the decoders ``allowed``.
    """
    allowed = DECODERS if allowed is None else tuple(allowed)
    unknown = [d for d in allowed if d not in DECODERS]
    if unknown:
        raise ValueError(f"'allowed' must hold names from {DECODERS} (got {unknown})")
    if isinstance(name, str):
        if name in allowed:
            return name
        for target in DECODER_ALIASES.get(name, ()):
            if target in allowed:
                return target
    aliases = [f'{alias!r} (= {next(t for t in targets if t in allowed)!r})'
               for alias, targets in DECODER_ALIASES.items()
               if any(t in allowed for t in targets)]
    names = ', '.join([repr(d) for d in allowed] + aliases)
    raise ValueError(f"{field!r} must be one of {names} (got {name!r})")


@torch.no_grad()
def decode_candidates(
    x: Tensor,
    y: Tensor,
    k: int = 10,
    decoder: str = 'greedy',
    *,
    csls_k: int = 10,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: bool = False,
) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    r"""The ``k`` best targets of every source by CSLS and the partner a
    decoder picks (see the module), in row chunks: the candidates of
    :meth:`~torch_geometric_ea.Aligner.candidates`.

    Every source :math:`i` gets the ``k`` targets :math:`j` of largest
    :math:`\mathrm{CSLS}_{ij} = 2 \cos_{ij} - r_{\mathbf{x}}(i) -
    r_{\mathbf{y}}(j)` (neighbourhood ``csls_k``; plain cosine for
    ``csls_k=0``), best first, with their 1-based ranks :math:`1, \dots,
    k`. The decoder picks the partner, ``index[:, 0]``, and the sources
    kept:

    - ``'greedy'``: the best candidate; every source is kept.
    - ``'mutual'``: the best candidate :math:`j`, keeping only the sources
      :math:`i` with :math:`i = \arg\max_{i'} \mathrm{CSLS}_{i' j}`
      (mutual best; ties go to the earlier chunk, then as
      :func:`torch.max` breaks them).
    - ``'hungarian'``: the partner of the one-to-one matching of largest
      total cosine (:func:`hungarian_matching`), which need not be the
      best candidate: the row is the partner, with its CSLS score and its
      rank in the source's CSLS ranking (one plus the number of targets
      scored above it by more than :math:`10^{-6}`, the rounding of the
      product), then the best candidates other than it. Sources left
      unmatched (:math:`N > M`) are dropped.

    Args:
        x (torch.Tensor): L2-normalised source embeddings :math:`(N, D)`.
        y (torch.Tensor): L2-normalised target embeddings :math:`(M, D)`.
        k (int, optional): Candidates per source, clipped to :math:`M`.
            (default: :obj:`10`)
        decoder (str, optional): One of :data:`CANDIDATE_DECODERS`.
            (default: :obj:`'greedy'`)
        csls_k (int, optional): The CSLS neighbourhood size; :obj:`0` for
            plain cosine. (default: :obj:`10`)
        chunk_size (int, optional): Rows of :obj:`x` scored at once.
            (default: :obj:`1024`)
        progress (bool, optional): Show a progress bar over the chunks.
            (default: :obj:`False`)

    Returns:
        (torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor): ``keep``,
        the sources kept :math:`(N)` (bool); ``index``, the candidates'
        rows of :obj:`y` :math:`(N, k)`; ``score``, their CSLS scores
        :math:`(N, k)`; ``rank``, their 1-based CSLS ranks :math:`(N, k)`.
        Rows of sources not kept are filled but meaningless.

    .. note::
        Peak memory is :math:`O(\text{chunk\_size} \cdot M)` for
        ``'greedy'`` and ``'mutual'`` (two passes over the scores);
        ``'hungarian'`` needs the dense :math:`N \times M` matrix and a
        third pass.
    """
    decoder = check_decoder(decoder, CANDIDATE_DECODERS)
    check_pair(x, y)
    if k < 1:
        raise ValueError(f"'k' must be positive (got {k})")
    radii, _ = similarity_pass(x, y, csls_k, chunk_size)
    k = min(k, y.size(0))
    score = x.new_empty(x.size(0), k)
    index = torch.empty(x.size(0), k, dtype=torch.long, device=x.device)
    best_of_target = y.new_full((y.size(0),), float('-inf'))
    best_source = torch.zeros(y.size(0), dtype=torch.long, device=x.device)
    chunks = score_chunks(x, y, radii, chunk_size)
    total = -(-x.size(0) // chunk_size)
    for rows, scores in tqdm(chunks, total=total, desc='scoring', disable=not progress,
                             leave=False):
        score[rows], index[rows] = scores.topk(k, dim=1)
        value, arg = scores.max(dim=0)
        better = value > best_of_target
        best_of_target[better] = value[better]
        best_source[better] = arg[better] + rows.start
    row_ids = torch.arange(x.size(0), device=x.device)
    rank = torch.arange(1, k + 1, device=x.device).expand(x.size(0), k).clone()
    keep = torch.ones(x.size(0), dtype=torch.bool, device=x.device)
    if decoder == 'mutual':
        keep = best_source[index[:, 0]] == row_ids
    elif decoder == 'hungarian':
        match = hungarian_matching(x, y)
        matched = match >= 0
        partner = match.clamp(min=0)
        partner_score = _pair_scores(x, y, radii, partner)
        above = torch.zeros(x.size(0), dtype=torch.long, device=x.device)
        for rows, scores in score_chunks(x, y, radii, chunk_size):
            # above the partner by more than float rounding of the product
            above[rows] = (scores > partner_score[rows, None] + 1e-6).sum(1)
        # the partner first, then the best candidates other than it: the
        # first k columns of [partner | top-k] that are not a repeat
        take = torch.cat([torch.ones(x.size(0), 1, dtype=torch.bool,
                                     device=x.device),
                          index != partner[:, None]], 1)
        cols = take.long().argsort(dim=1, descending=True, stable=True)[:, :k]
        index = torch.cat([partner[:, None], index], 1).gather(1, cols)
        score = torch.cat([partner_score[:, None], score], 1).gather(1, cols)
        rank = torch.cat([above[:, None] + 1, rank], 1).gather(1, cols)
        keep = matched
    return keep, index, score, rank


def _pair_scores(x: Tensor, y: Tensor, radii: Radii, partner: Tensor) -> Tensor:
    r"""The scores of the pairs :math:`(i, \text{partner}_i)` as
    :func:`~torch_geometric_ea.metrics.similarity.score_chunks` defines
    them (equal up to the rounding of the product)."""
    cos = (x * y[partner]).sum(1)
    if radii is None:
        return cos
    r_x, r_y = radii
    return cos.mul(2).sub_(r_x).sub_(r_y[partner])


@torch.no_grad()
def sinkhorn_potentials(
    x: Tensor,
    y: Tensor,
    *,
    tau: float = 0.02,
    num_iters: int = 10,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Tuple[Tensor, Tensor]:
    r"""The log-domain Sinkhorn potentials :math:`\mathbf{u}, \mathbf{v}`
    that scale :math:`K_{ij} = \exp(\mathbf{x}_i^{\top} \mathbf{y}_j / \tau)`
    towards uniform marginals, :math:`\sum_j P_{ij} = 1/N` and
    :math:`\sum_i P_{ij} = 1/M` for :math:`P_{ij} = \exp(\mathbf{x}_i^{\top}
    \mathbf{y}_j / \tau + u_i + v_j)`. Each iteration updates

    .. math::
        u_i = -\log N - \operatorname{logsumexp}_j
        (\mathbf{x}_i^{\top} \mathbf{y}_j / \tau + v_j), \qquad
        v_j = -\log M - \operatorname{logsumexp}_i
        (\mathbf{x}_i^{\top} \mathbf{y}_j / \tau + u_i)

    in one chunked pass over :math:`\mathbf{x} \mathbf{y}^{\top}` (the
    column log-sum-exp is accumulated over row chunks with a running
    maximum), so it ends with exact column marginals.

    Args:
        x (torch.Tensor): L2-normalised source embeddings :math:`(N, D)`.
        y (torch.Tensor): L2-normalised target embeddings :math:`(M, D)`.
        tau (float, optional): The temperature (the literature's
            :math:`\exp(50 \cdot \cos)` is :math:`\tau = 0.02`).
            (default: :obj:`0.02`)
        num_iters (int, optional): Sinkhorn iterations. (default: :obj:`10`)
        chunk_size (int, optional): Rows of :math:`\mathbf{x}` per product.
            (default: :obj:`1024`)

    Returns:
        (torch.Tensor, torch.Tensor): :math:`\mathbf{u}` :math:`(N)` and
        :math:`\mathbf{v}` :math:`(M)`.
    """
    check_pair(x, y)
    if tau <= 0:
        raise ValueError(f"'tau' must be positive (got {tau})")
    if num_iters < 1:
        raise ValueError(f"'num_iters' must be positive (got {num_iters})")
    num_x, num_y = x.size(0), y.size(0)
    u, v = x.new_zeros(num_x), x.new_zeros(num_y)
    for _ in range(num_iters):
        col_max = x.new_full((num_y, ), -math.inf)
        col_sum = x.new_zeros(num_y)
        for rows, scores in score_chunks(x, y, None, chunk_size):
            scores.div_(tau)
            u[rows] = -math.log(num_x) - torch.logsumexp(scores + v, dim=1)
            scores.add_(u[rows].unsqueeze(1))
            new_max = torch.maximum(col_max, scores.max(dim=0).values)
            col_sum.mul_(torch.exp(col_max - new_max))
            col_sum.add_(scores.sub_(new_max).exp_().sum(dim=0))
            col_max = new_max
        v = -math.log(num_y) - (col_max + col_sum.log())
    return u, v


def sinkhorn_radii(x: Tensor, y: Tensor, *, tau: float = 0.02,
                   num_iters: int = 10,
                   chunk_size: int = DEFAULT_CHUNK_SIZE) -> Tuple[Tensor, Tensor]:
    r"""The Sinkhorn potentials as CSLS-shaped offsets
    :math:`(r_{\mathbf{x}}, r_{\mathbf{y}}) = (-2 \tau \mathbf{u}, -2 \tau
    \mathbf{v})`, so that :math:`2 \cos_{ij} - r_{\mathbf{x}}(i) -
    r_{\mathbf{y}}(j) = 2 \tau \log P_{ij}` (up to a constant) and the
    chunked CSLS scoring ranks by the Sinkhorn-normalised similarities."""
    u, v = sinkhorn_potentials(x, y, tau=tau, num_iters=num_iters,
                               chunk_size=chunk_size)
    return u.mul(-2 * tau), v.mul(-2 * tau)


@torch.no_grad()
def hungarian_matching(x: Tensor, y: Tensor, *, max_size: int = 30000) -> Tensor:
    r"""The one-to-one matching of largest total cosine similarity
    :math:`\max_\pi \sum_i \mathbf{x}_i^{\top} \mathbf{y}_{\pi(i)}`, by
    SciPy's ``linear_sum_assignment`` (the Hungarian algorithm's modern
    variant).

    Args:
        x (torch.Tensor): L2-normalised source embeddings :math:`(N, D)`.
        y (torch.Tensor): L2-normalised target embeddings :math:`(M, D)`.
        max_size (int, optional): The largest :math:`\max(N, M)` accepted:
            the dense matrix takes :math:`8 N M` bytes in SciPy.
            (default: :obj:`30000`)

    Returns:
        torch.Tensor: For every source, the index of its target, or
        :obj:`-1` where :math:`N > M` leaves it unmatched :math:`(N)`.
    """
    check_pair(x, y)
    if max(x.size(0), y.size(0)) > max_size:
        raise ValueError(f"hungarian_matching needs the dense {x.size(0)} x "
                         f"{y.size(0)} matrix; above 'max_size' ({max_size}) "
                         f"use Sinkhorn decoding")
    try:
        from scipy.optimize import linear_sum_assignment
    except ImportError as e:
        raise ImportError("hungarian_matching needs SciPy "
                          "(pip install scipy)") from e
    sim = (x @ y.t()).double().cpu().numpy()  # SciPy runs on the CPU
    rows, cols = linear_sum_assignment(sim, maximize=True)
    out = torch.full((x.size(0), ), -1, dtype=torch.long, device='cpu')
    out[torch.from_numpy(rows)] = torch.from_numpy(cols)
    return out.to(x.device)


def few_of_many(k: int, rows: int, cols: int) -> bool:
    r"""Whether a top-``k`` search of ``rows`` queries among ``cols``
    targets is for so few of so many (``k`` at most 64 and a 64th of both
    sizes) that blocks with thresholds pay off
    (:func:`~torch_geometric_ea.metrics.topk.blocked_topk`)."""
    return k <= 64 and 64 * k <= min(rows, cols)


class GatheredRows:
    r"""The rows ``x[index]``, each passed through ``transform`` (row-wise,
    e.g. made unit), gathered only when sliced: as the queries of
    :func:`topk_inner_products` and :func:`topk_both_ways` (read
    ``chunk_size`` rows at a time) they cost one chunk of memory instead
    of a copy of all the rows."""
    def __init__(self, x: Tensor, index: Tensor,
                 transform: Callable[[Tensor], Tensor] = lambda rows: rows):
        self.x, self.index, self.transform = x, index, transform
        self.shape = torch.Size((index.numel(), x.size(1)))
        self.dtype, self.device = x.dtype, x.device

    def size(self, dim: Optional[int] = None):
        r"""The shape :math:`(|index|, D)`, or its size ``dim``."""
        return self.shape if dim is None else self.shape[dim]

    def dim(self) -> int:
        r"""2: a matrix."""
        return 2

    def new_empty(self, *size) -> Tensor:
        r"""An empty tensor of ``x``'s dtype and device."""
        return self.x.new_empty(*size)

    def __getitem__(self, rows: slice) -> Tensor:
        return self.transform(self.x[self.index[rows]])


@torch.no_grad()
def topk_inner_products(x: Tensor, y: Tensor, k: int,
                        chunk_size: int = DEFAULT_CHUNK_SIZE) -> Tuple[Tensor, Tensor]:
    r"""The exact ``k`` largest :math:`\mathbf{x}_i^{\top} \mathbf{y}_j` of
    every row :math:`i`, best first: values and column indices
    :math:`(N, k)`, computed ``chunk_size`` rows at a time
    (:math:`O(\text{chunk\_size} \cdot M)` memory); for a few of many
    (see :func:`topk_both_ways`) by
    :func:`~torch_geometric_ea.metrics.topk.blocked_topk`."""
    check_pair(x, y)
    if few_of_many(k, x.size(0), y.size(0)):
        return blocked_topk(x[:], y, k, columns=False)[:2]
    k = min(k, y.size(0))
    values = x.new_empty(x.size(0), k)
    index = torch.empty(x.size(0), k, dtype=torch.long, device=x.device)
    yt = y.t().contiguous()
    for start in range(0, x.size(0), chunk_size):
        rows = slice(start, min(start + chunk_size, x.size(0)))
        values[rows], index[rows] = (x[rows] @ yt).topk(k, dim=1)
    return values, index


@torch.no_grad()
def sparse_sinkhorn(values: Tensor, index: Tensor, num_cols: int, *,
                    tau: float = 0.02, num_iters: int = 15) -> Tensor:
    r"""Sinkhorn normalisation of a sparse kernel: each row :math:`i` keeps
    only its candidates ``index[i]`` (for example the top-:math:`k` of
    :func:`topk_inner_products`), with :math:`K_{ij} = \exp(s_{ij} /
    \tau)`; each iteration divides every row by its sum, then every column
    by its sum over the rows that list it (LightEA's sparse Sinkhorn).
    Returns the normalised :math:`P_{ij}` :math:`(N, k)` in the order of
    ``index`` (after a column normalisation, as the official code ends).
    Where :math:`k` covers every column it is the dense Sinkhorn iteration.

    Each row's kernel is shifted by its largest score, which the first row
    normalisation cancels, and floored at :math:`e^{-80}`, so that no entry
    underflows and no column sums to zero."""
    shifted = (values - values.max(dim=1, keepdim=True).values) / tau
    kernel = shifted.clamp(min=-80).exp()
    flat = index.reshape(-1)
    for _ in range(num_iters):
        kernel = kernel / kernel.sum(dim=1, keepdim=True)
        total = torch.zeros(num_cols, dtype=kernel.dtype, device=kernel.device)
        kernel = kernel / total.index_add_(0, flat, kernel.reshape(-1))[index]
    return kernel


@torch.no_grad()
def sparse_sinkhorn_pairs(x: Tensor, y: Tensor, k: int, *, threshold: float = 0.5,
                          tau: float = 0.02, num_iters: int = 15,
                          chunk_size: int = DEFAULT_CHUNK_SIZE) -> Tensor:
    r"""The ``'sparse_sinkhorn'`` pairs (LightEA's confident pairs): each
    source :math:`i` with its best candidate :math:`j` among its top-``k``
    targets by cosine (:func:`topk_inner_products`), scored by
    :func:`sparse_sinkhorn`, where that score :math:`P_{ij}` exceeds
    ``threshold``. Above 0.5 the pairs are one-to-one: after the final
    column normalisation the scores of a target sum to one over the
    sources that list it.

    Args:
        x (torch.Tensor): L2-normalised source embeddings :math:`(N, D)`
            (or rows gathered when sliced, :class:`GatheredRows`).
        y (torch.Tensor): L2-normalised target embeddings :math:`(M, D)`.
        k (int): Candidates per source.
        threshold (float, optional): The least score kept (exclusive).
            (default: :obj:`0.5`)
        tau (float, optional): The temperature. (default: :obj:`0.02`)
        num_iters (int, optional): Sinkhorn iterations. (default: :obj:`15`)
        chunk_size (int, optional): Rows of :obj:`x` scored at once.
            (default: :obj:`1024`)

    Returns:
        torch.Tensor: The pairs :math:`(2, P)`, rows of :obj:`x` in the
        first row (ascending) and of :obj:`y` in the second.
    """
    if k < 1:
        raise ValueError(f"'k' must be positive (got {k})")
    values, index = topk_inner_products(x, y, k, chunk_size)
    scores = sparse_sinkhorn(values, index, y.size(0), tau=tau, num_iters=num_iters)
    best, at = scores.max(dim=1)
    keep = best > threshold
    src = torch.arange(index.size(0), device=index.device)
    return torch.stack([src[keep], index[keep, at[keep]]])


@torch.no_grad()
def topk_both_ways(x: Tensor, y: Tensor, k: int,
                   chunk_size: int = DEFAULT_CHUNK_SIZE
                   ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    r"""The exact top-``k`` of every row of :math:`\mathbf{x}
    \mathbf{y}^{\top}` and of every column, from one chunked pass over the
    product (half the work of two :func:`topk_inner_products` calls): row
    values and indices :math:`(N, k)`, column values and indices
    :math:`(M, k)`, best first. For a few candidates of many (``k`` at most
    64 and a 64th of :math:`N` and :math:`M`) the pass is
    :func:`~torch_geometric_ea.metrics.topk.blocked_topk`, which selects
    only from the blocks that beat a row's or column's running
    :math:`k`-th best."""
    check_pair(x, y)
    if few_of_many(k, x.size(0), y.size(0)):
        return blocked_topk(x[:], y, k)
    k_row, k_col = min(k, y.size(0)), min(k, x.size(0))
    row_values = x.new_empty(x.size(0), k_row)
    row_index = torch.empty(x.size(0), k_row, dtype=torch.long, device=x.device)
    col_values = x.new_empty(y.size(0), 0)
    col_index = torch.empty(y.size(0), 0, dtype=torch.long, device=x.device)
    yt = y.t().contiguous()
    # One buffer for the transposed chunks: writing to fresh pages each
    # time cost 2.5 times the copy (0.64 against 0.26 s per 2,048 x 63K).
    buffer = x.new_empty(y.size(0) * min(chunk_size, x.size(0)))
    for start in range(0, x.size(0), chunk_size):
        rows = slice(start, min(start + chunk_size, x.size(0)))
        scores = x[rows] @ yt
        row_values[rows], row_index[rows] = scores.topk(k_row, dim=1)
        # the columns' candidates, row-wise
        scores = buffer[:scores.numel()].view(scores.t().shape).copy_(scores.t())
        # Unsorted selections while merging: sorting 500 of 2,048 costs
        # more than selecting them.
        values, index = scores.topk(min(k_col, scores.size(1)), dim=1, sorted=False)
        values = torch.cat([col_values, values], dim=1)
        index = torch.cat([col_index, index + start], dim=1)
        col_values, keep = values.topk(min(k_col, values.size(1)), dim=1, sorted=False)
        col_index = index.gather(1, keep)
    col_values, order = col_values.sort(dim=1, descending=True)
    return row_values, row_index, col_values, col_index.gather(1, order)


@torch.no_grad()
def sparse_sinkhorn_ranks(values: Tensor, index: Tensor, num_cols: int,
                          true: Tensor, group: Optional[Tensor] = None, *,
                          tau: float = 0.02, num_iters: int = 15
                          ) -> Tuple[Tensor, Tensor]:
    r"""Where each row's true column ``true`` :math:`(N)` stands among its
    candidates ``index`` (with inner products ``values``, e.g. the top-k of
    :func:`topk_both_ways`), ordered by their :func:`sparse_sinkhorn`
    scores (LightEA's evaluation): the number of candidates scored above
    it, ``inf`` when it is not a candidate (a miss, as the official
    evaluation counts it), and the number tied with it. Columns with the
    same ``group`` id :math:`(M)` (identical feature vectors, see
    :func:`~torch_geometric_ea.metrics.ranking.duplicate_rows`) tie
    whatever rounding made of their scores; other candidates tie on equal
    scores. Feed both to
    :func:`~torch_geometric_ea.metrics.ranking.expected_rank_metrics`."""
    scores = sparse_sinkhorn(values, index, num_cols, tau=tau, num_iters=num_iters)
    return candidate_ranks(scores, index, true, group)


def candidate_ranks(scores: Tensor, index: Tensor, true: Tensor,
                    group: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    r"""Where each row's true column ``true`` :math:`(N)` stands among its
    candidates ``index`` :math:`(N, k)` with ``scores``: the number scored
    above it (``inf`` when it is not a candidate) and the number tied with
    it (equal score, or the same ``group`` id; see
    :func:`sparse_sinkhorn_ranks`)."""
    is_true = index == true.unsqueeze(1)
    true_score = torch.where(is_true, scores, torch.zeros_like(scores)).sum(1, True)
    tied = (scores == true_score) & ~is_true
    if group is not None:
        tied |= (group[index] == group[true].unsqueeze(1)) & ~is_true
    greater = ((scores > true_score) & ~tied).sum(1).to(scores.dtype)
    found = is_true.any(1)
    return (torch.where(found, greater, torch.full_like(greater, math.inf)),
            tied.sum(1) * found)
