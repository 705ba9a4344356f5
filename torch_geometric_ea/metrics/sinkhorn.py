r"""Sinkhorn decoding: the dense Sinkhorn normalisation (`Cuturi, 2013
<https://arxiv.org/abs/1306.0895>`_) of the kernel
:math:`\exp(\cos_{ij} / \tau)`, computed over row chunks
(:func:`sinkhorn_potentials`), and LightEA's sparse one over each source's
top-:math:`k` candidates (`Mao et al., 2022
<https://arxiv.org/abs/2210.10436>`_; :func:`sparse_sinkhorn`), with the
pairs and ranks the ``'sinkhorn'`` and ``'sparse_sinkhorn'`` decoders of
:mod:`~torch_geometric_ea.metrics.decoding` take from them.
"""
import math
from typing import Optional, Tuple

import torch
from torch import Tensor

from torch_geometric_ea.metrics.ranks import candidate_ranks
from torch_geometric_ea.metrics.similarity import (
    DEFAULT_CHUNK_SIZE,
    check_pair,
    score_chunks,
)
from torch_geometric_ea.metrics.topk import topk_inner_products

__all__ = ['sinkhorn_potentials', 'sinkhorn_radii', 'sparse_sinkhorn',
           'sparse_sinkhorn_pairs', 'sparse_sinkhorn_ranks']


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
def sparse_sinkhorn(values: Tensor, index: Tensor, num_cols: int, *,
                    tau: float = 0.02, num_iters: int = 15) -> Tensor:
    r"""Sinkhorn normalisation of a sparse kernel: each row :math:`i` keeps
    only its candidates ``index[i]`` (for example the top-:math:`k` of
    :func:`~torch_geometric_ea.metrics.topk.topk_inner_products`), with
    :math:`K_{ij} = \exp(s_{ij} / \tau)`; each iteration divides every row
    by its sum, then every column by its sum over the rows that list it
    (LightEA's sparse Sinkhorn).
    Returns the normalised :math:`P_{ij}` :math:`(N, k)` in the order of
    ``index`` (after a column normalisation, as the official code ends).
    Where :math:`k` covers every column it is the dense Sinkhorn iteration.

    Each row's kernel is shifted by its largest score, which the first row
    normalisation cancels, and floored at :math:`e^{-80}`, so that no entry
    underflows and no column sums to zero."""
    kernel = (values - values.max(dim=1, keepdim=True).values).div_(tau)
    kernel = kernel.clamp_(min=-80).exp_()  # in place: N x k, 15 times
    flat = index.reshape(-1)
    total = kernel.new_empty(num_cols)
    for _ in range(num_iters):
        kernel.div_(kernel.sum(dim=1, keepdim=True))
        total.zero_().scatter_add_(0, flat, kernel.view(-1))
        kernel.div_(total.take(index))
    return kernel


@torch.no_grad()
def sparse_sinkhorn_pairs(x: Tensor, y: Tensor, k: int, *, threshold: float = 0.5,
                          tau: float = 0.02, num_iters: int = 15,
                          chunk_size: int = DEFAULT_CHUNK_SIZE) -> Tensor:
    r"""The ``'sparse_sinkhorn'`` pairs (LightEA's confident pairs): each
    source :math:`i` with its best candidate :math:`j` among its top-``k``
    targets by cosine
    (:func:`~torch_geometric_ea.metrics.topk.topk_inner_products`), scored
    by :func:`sparse_sinkhorn`, where that score :math:`P_{ij}` exceeds
    ``threshold``. Above 0.5 the pairs are one-to-one: after the final
    column normalisation the scores of a target sum to one over the
    sources that list it.

    Args:
        x (torch.Tensor): L2-normalised source embeddings :math:`(N, D)`
            (or rows gathered when sliced,
            :class:`~torch_geometric_ea.metrics.topk.GatheredRows`).
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
def sparse_sinkhorn_ranks(values: Tensor, index: Tensor, num_cols: int,
                          true: Tensor, group: Optional[Tensor] = None, *,
                          tau: float = 0.02, num_iters: int = 15
                          ) -> Tuple[Tensor, Tensor]:
    r"""Where each row's true column ``true`` :math:`(N)` stands among its
    candidates ``index`` (with inner products ``values``, e.g. the top-k of
    :func:`~torch_geometric_ea.metrics.topk.topk_both_ways`), ordered by
    their :func:`sparse_sinkhorn` scores (LightEA's evaluation): the number
    of candidates scored above it, ``inf`` when it is not a candidate (a
    miss, as the official evaluation counts it), and the number tied with
    it. Columns with the
    same ``group`` id :math:`(M)` (identical feature vectors, see
    :func:`~torch_geometric_ea.metrics.ranks.duplicate_rows`) tie
    whatever rounding made of their scores; other candidates tie on equal
    scores. Feed both to
    :func:`~torch_geometric_ea.metrics.ranks.expected_rank_metrics`."""
    scores = sparse_sinkhorn(values, index, num_cols, tau=tau, num_iters=num_iters)
    return candidate_ranks(scores, index, true, group)
