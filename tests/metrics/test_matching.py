import pytest
import torch
import torch.nn.functional as F

from torch_geometric_ea.metrics import mutual_nearest_neighbours, sinkhorn_potentials

N, M, D = 13, 9, 5
CHUNK_SIZES = [1, 3, 5, 13, 50]  # < N (13 = 4 * 3 + 1), == N, > N.


def dense_mutual_nearest_neighbours(x, y, k):
    sim = x @ y.t()
    if k > 0:
        r_x = sim.topk(min(k, y.size(0)), dim=1).values.mean(dim=1)
        r_y = sim.topk(min(k, x.size(0)), dim=0).values.mean(dim=0)
        sim = 2 * sim - r_x.view(-1, 1) - r_y.view(1, -1)
    best_y, best_x = sim.argmax(dim=1), sim.argmax(dim=0)
    return [(i, j) for i, j in enumerate(best_y.tolist())
            if best_x[j] == i]


@pytest.mark.parametrize('csls_k', [0, 1])
def test_mutual_nearest_neighbours_known_answer(csls_k):
    # x[0] and y[0] pick each other; x[1] also picks y[0], which rejects it;
    # y[1] picks x[1], which rejects it.
    x = F.normalize(torch.tensor([[1.0, 0.0], [1.0, 0.1]]), dim=-1)
    y = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    out = mutual_nearest_neighbours(x, y, csls_k=csls_k, chunk_size=1)
    assert out.dtype == torch.long
    assert out.tolist() == [[0], [0]]


@pytest.mark.parametrize('chunk_size', CHUNK_SIZES)
def test_mutual_nearest_neighbours_permutation(chunk_size):
    # Plain cosine only: under CSLS an entity in a dense region may lose its
    # own copy to a near one in a sparse region (2 - 2 cos < r(i) - r(l)).
    gen = torch.Generator().manual_seed(0)
    x = F.normalize(torch.randn(N, D, generator=gen), dim=-1)
    perm = torch.randperm(N, generator=gen)
    out = mutual_nearest_neighbours(x, x[perm], csls_k=0,
                                    chunk_size=chunk_size)
    # y[j] = x[perm[j]], so x[i] matches y[perm^-1[i]].
    assert torch.equal(out, torch.stack([torch.arange(N), perm.argsort()]))


@pytest.mark.parametrize('chunk_size', CHUNK_SIZES)
@pytest.mark.parametrize('csls_k', [0, 1, 3])
@pytest.mark.parametrize('seed', [0, 1, 2])
def test_mutual_nearest_neighbours_chunked_equals_dense(
        chunk_size, csls_k, seed):
    gen = torch.Generator().manual_seed(seed)
    x = F.normalize(torch.randn(N, D, generator=gen), dim=-1)
    y = F.normalize(torch.randn(M, D, generator=gen), dim=-1)
    out = mutual_nearest_neighbours(x, y, csls_k=csls_k,
                                    chunk_size=chunk_size)
    assert out.size(0) == 2
    assert [tuple(pair) for pair in out.t().tolist()] == \
        dense_mutual_nearest_neighbours(x, y, csls_k)
    # Matches are one-to-one:
    assert out[0].unique().numel() == out[1].unique().numel() == out.size(1)


@pytest.mark.parametrize('chunk_size', CHUNK_SIZES)
def test_sinkhorn_mutual_nearest_neighbours_equal_dense(chunk_size):
    gen = torch.Generator().manual_seed(5)
    x = F.normalize(torch.randn(N, D, generator=gen), dim=-1)
    y = F.normalize(torch.randn(M, D, generator=gen), dim=-1)
    out = mutual_nearest_neighbours(x, y, decoding='sinkhorn', tau=0.1,
                                    num_iters=5, chunk_size=chunk_size)
    u, v = sinkhorn_potentials(x, y, tau=0.1, num_iters=5)
    log_p = (x @ y.t()) / 0.1 + u[:, None] + v
    best_y, best_x = log_p.argmax(1), log_p.argmax(0)
    dense = [(i, int(best_y[i])) for i in range(N) if best_x[best_y[i]] == i]
    assert [tuple(pair) for pair in out.t().tolist()] == dense
    with pytest.raises(ValueError, match="'decoding' must be one of 'mutual', 'sinkhorn'"):
        mutual_nearest_neighbours(x, y, decoding='hungarian')
