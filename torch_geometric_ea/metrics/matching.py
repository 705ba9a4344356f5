r"""Mutual nearest neighbours under CSLS, the usual bootstrapping step of
iterative entity alignment (as in `Dual-AMN (Mao et al., WWW 2021)
<https://arxiv.org/abs/2101.01353>`_)."""
import torch
from torch import Tensor

from torch_geometric_ea.metrics.decoding import PAIRING_DECODERS, check_decoder
from torch_geometric_ea.metrics.similarity import (
    DEFAULT_CHUNK_SIZE,
    check_pair,
    score_chunks,
    similarity_pass,
)
from torch_geometric_ea.metrics.sinkhorn import sinkhorn_radii

__all__ = ['mutual_nearest_neighbours']


@torch.no_grad()
def mutual_nearest_neighbours(
    x: Tensor,
    y: Tensor,
    *,
    csls_k: int = 10,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    decoding: str = 'mutual',
    tau: float = 0.02,
    num_iters: int = 10,
) -> Tensor:
    r"""The pairs :math:`(i, j)` that are each other's best match under CSLS
    (see :func:`~torch_geometric_ea.metrics.csls_topk`):

    .. math::
        \mathcal{P} = \{(i, j) : j = \arg\max_{j'} \mathrm{CSLS}(i, j')
        \text{ and } i = \arg\max_{i'} \mathrm{CSLS}(i', j)\}.

    As CSLS is symmetric, both arg-maxima come from the same chunked scores:
    the rows give each :math:`\mathbf{x}_i` its best :math:`j` and a running
    column maximum gives each :math:`\mathbf{y}_j` its best :math:`i`.

    Args:
        x (torch.Tensor): L2-normalised embeddings of the first entity set.
        y (torch.Tensor): L2-normalised embeddings of the second entity set.
        csls_k (int, optional): The CSLS neighbourhood size; :obj:`0` matches
            by plain cosine similarity. (default: :obj:`10`)
        chunk_size (int, optional): The number of rows of :obj:`x` scored at
            once. (default: :obj:`1024`)
        decoding (str, optional): One of
            :data:`~torch_geometric_ea.metrics.decoding.PAIRING_DECODERS`:
            :obj:`'mutual'` (or its older name :obj:`'csls'`) scores by
            CSLS, :obj:`'sinkhorn'` by the Sinkhorn-normalised
            similarities (:math:`\cos_{ij} + \tau (u_i + v_j)`, see
            :func:`~torch_geometric_ea.metrics.sinkhorn.sinkhorn_potentials` with
            ``tau`` and ``num_iters``). (default: :obj:`'mutual'`)

    Returns:
        torch.Tensor: The pairs, indices into :obj:`x` in the first row and
        into :obj:`y` in the second, sorted by the first row.  Every index
        occurs at most once.

    Shapes:
        - **inputs:** :math:`(N, D)`, :math:`(M, D)`
        - **output:** :math:`(2, P)` with :math:`P \leq \min(N, M)`

    .. note::
        Peak memory is :math:`O(\text{chunk\_size} \cdot M)`.  Ties are broken
        arbitrarily (by :func:`torch.max`, and towards the earlier chunk
        across chunks), so exact duplicates may or may not be matched.
    """
    decoding = check_decoder(decoding, PAIRING_DECODERS, field='decoding')
    check_pair(x, y)
    if decoding == 'sinkhorn':
        radii = sinkhorn_radii(x, y, tau=tau, num_iters=num_iters,
                               chunk_size=chunk_size)
    else:
        radii, _ = similarity_pass(x, y, csls_k, chunk_size)

    best_y = torch.empty(x.size(0), dtype=torch.long, device=x.device)
    best_x_score = x.new_full((y.size(0), ), float('-inf'))
    best_x = torch.zeros(y.size(0), dtype=torch.long, device=x.device)
    for rows, scores in score_chunks(x, y, radii, chunk_size):
        best_y[rows] = scores.argmax(dim=1)
        col_score, col_index = scores.max(dim=0)
        better = col_score > best_x_score
        best_x_score = torch.where(better, col_score, best_x_score)
        best_x = torch.where(better, col_index + rows.start, best_x)

    src = torch.arange(x.size(0), device=x.device)
    mask = best_x[best_y] == src
    return torch.stack([src[mask], best_y[mask]], dim=0)
