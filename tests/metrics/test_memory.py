import pytest
import torch
import torch.nn.functional as F
from torch.utils._pytree import tree_flatten
from torch.utils._python_dispatch import TorchDispatchMode

from torch_geometric_ea.metrics import (
    csls_neighbourhood,
    csls_topk,
    evaluate_alignment,
    mutual_nearest_neighbours,
    rank_of_true,
)

N, M, D, K = 60, 50, 4, 3


class ShapeRecorder(TorchDispatchMode):
    """Records the shape of every tensor produced by an aten operator."""
    def __init__(self):
        super().__init__()
        self.shapes = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                self.shapes.append(tuple(t.shape))
        return out


CALLS = {
    'csls_neighbourhood':
    lambda x, y, c: csls_neighbourhood(x, y, K, chunk_size=c),
    'csls_topk':
    lambda x, y, c: csls_topk(x, y, k=K, topk=5, chunk_size=c),
    'rank_of_true':
    lambda x, y, c: rank_of_true(x, y, torch.arange(N) % M, csls_k=K,
                                 chunk_size=c),
    'evaluate_alignment':
    lambda x, y, c: evaluate_alignment(x, y[torch.arange(N) % M] + 0.1,
                                       torch.arange(N).repeat(2, 1),
                                       csls_k=K, chunk_size=c),
    'mutual_nearest_neighbours':
    lambda x, y, c: mutual_nearest_neighbours(x, y, csls_k=K, chunk_size=c),
}


def largest_intermediate(name, chunk_size):
    gen = torch.Generator().manual_seed(0)
    x = F.normalize(torch.randn(N, D, generator=gen), dim=-1)
    y = F.normalize(torch.randn(M, D, generator=gen), dim=-1)
    with ShapeRecorder() as recorder:
        CALLS[name](x, y, chunk_size)
    return max(recorder.shapes, key=lambda shape: torch.Size(shape).numel())


@pytest.mark.parametrize('name', list(CALLS))
def test_no_dense_similarity_matrix(name):
    # Guard self-check: without chunking the N x M (or N x N) matrix shows.
    shape = largest_intermediate(name, chunk_size=N)
    assert min(shape[-2:]) > 2 * K + 8

    # With chunks of 8 rows, no intermediate holds more than (8 + 2K) rows
    # (chunk scores, or the running column top-k stacked on a chunk's).
    shape = largest_intermediate(name, chunk_size=8)
    assert len(shape) <= 2
    assert torch.Size(shape).numel() <= (8 + 2 * K) * max(N, M)
    assert min(shape) <= 8 + 2 * K
