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
  (:func:`~torch_geometric_ea.metrics.sinkhorn.sinkhorn_potentials`).
  Row :math:`i` ranks the targets by :math:`\cos_{ij} + \tau v_j`: a
  target that many sources like gets a lower :math:`v_j`, as CSLS
  penalises hubs, but with the penalty fitted to all rows at once. As
  pairs, the mutual best under :math:`P`.
- ``'sparse_sinkhorn'``: LightEA's decoding (`Mao et al., 2022
  <https://arxiv.org/abs/2210.10436>`_): each source keeps its top-:math:`k`
  targets by cosine, and Sinkhorn runs over these candidates only
  (:func:`~torch_geometric_ea.metrics.sinkhorn.sparse_sinkhorn`);
  evaluation ranks among the candidates (a partner outside them is a
  miss), and the pairs are each source's best candidate whose
  :math:`P_{ij}` exceeds a threshold
  (:func:`~torch_geometric_ea.metrics.sinkhorn.sparse_sinkhorn_pairs`).

Where each applies (every use takes its names through
:func:`check_decoder`):

========================  ============================  ==================================
use                       decoders                      function
========================  ============================  ==================================
candidates (``align``)    :data:`CANDIDATE_DECODERS`    :func:`decode_candidates`
evaluation                :data:`RANKING_DECODERS`      :func:`.evaluate_alignment`
bootstrapping pairs       :data:`PAIRING_DECODERS`      :func:`.mutual_nearest_neighbours`,
                                                        :func:`.sparse_sinkhorn_pairs`
========================  ============================  ==================================

``'csls'``, the name evaluation and bootstrapping used before, is still
accepted (:data:`DECODER_ALIASES`): it is the CSLS decoder of the use,
``'greedy'`` when ranking and ``'mutual'`` when pairing.

The CSLS and Sinkhorn scores are computed over row chunks, so they need
:math:`O(\text{chunk\_size} \cdot M)` memory at any size; the Hungarian
algorithm needs the dense :math:`N \times M` matrix.

This module holds the names and the entry points (:func:`check_decoder`,
:func:`decode_candidates`, :func:`hungarian_matching`); the Sinkhorn
machinery lives in :mod:`~torch_geometric_ea.metrics.sinkhorn`, the exact
top-:math:`k` candidates in :mod:`~torch_geometric_ea.metrics.topk` and
the ranks among candidates in :mod:`~torch_geometric_ea.metrics.ranks`,
and their names stay importable from here.
"""
from typing import Dict, Optional, Sequence, Tuple

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
from torch_geometric_ea.metrics.ranks import candidate_ranks
from torch_geometric_ea.metrics.sinkhorn import (
    sinkhorn_potentials,
    sinkhorn_radii,
    sparse_sinkhorn,
    sparse_sinkhorn_pairs,
    sparse_sinkhorn_ranks,
)
from torch_geometric_ea.metrics.topk import (
    GatheredRows,
    few_of_many,
    topk_both_ways,
    topk_inner_products,
)

__all__ = ['DECODERS', 'DECODER_ALIASES', 'CANDIDATE_DECODERS', 'RANKING_DECODERS',
           'PAIRING_DECODERS', 'check_decoder', 'decode_candidates',
           'sinkhorn_potentials', 'hungarian_matching', 'GatheredRows',
           'topk_inner_products',
           'topk_both_ways', 'sparse_sinkhorn', 'sparse_sinkhorn_ranks',
           'sparse_sinkhorn_pairs', 'candidate_ranks',
           # re-exported from the modules above, imported from here elsewhere
           'sinkhorn_radii', 'few_of_many']

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
#: :func:`~torch_geometric_ea.metrics.sinkhorn.sparse_sinkhorn_pairs`.
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
