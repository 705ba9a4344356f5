import pytest
import torch
import torch.nn.functional as F

from torch_geometric_ea.metrics import csls_neighbourhood, csls_topk
from torch_geometric_ea.metrics.similarity import similarity_pass

from .reference import dense_csls

N, M, D = 13, 11, 5
CHUNK_SIZES = [1, 3, 5, 13, 50]  # < N (13 = 4 * 3 + 1), == N, > N.


def random_pair(seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = F.normalize(torch.randn(N, D, generator=gen), dim=-1)
    y = F.normalize(torch.randn(M, D, generator=gen), dim=-1)
    return x, y


@pytest.mark.parametrize('chunk_size', CHUNK_SIZES)
@pytest.mark.parametrize('k', [1, 3, 20])
def test_csls_neighbourhood_chunked_equals_dense(chunk_size, k):
    x, y = random_pair()
    sim = x @ y.t()
    r_x = csls_neighbourhood(x, y, k, chunk_size=chunk_size)
    r_y = csls_neighbourhood(y, x, k, chunk_size=chunk_size)
    assert r_x.shape == (N, ) and r_y.shape == (M, )
    expected_x = sim.topk(min(k, M), dim=1).values.mean(dim=1)
    expected_y = sim.topk(min(k, N), dim=0).values.mean(dim=0)
    assert torch.allclose(r_x, expected_x, atol=1e-6)
    assert torch.allclose(r_y, expected_y, atol=1e-6)

    # The one-pass radii (row and merged column top-k) agree as well:
    (one_pass_x, one_pass_y), _ = similarity_pass(x, y, k, chunk_size)
    assert torch.allclose(one_pass_x, r_x, atol=1e-6)
    assert torch.allclose(one_pass_y, r_y, atol=1e-6)


def test_csls_hand_computed():
    # cos = [[1.0, 0.6],
    #        [0.0, 0.8]]
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([[1.0, 0.0], [0.6, 0.8]])

    # k=1: r_x = [1.0, 0.8], r_y = [1.0, 0.8].
    assert torch.allclose(csls_neighbourhood(x, y, 1), torch.tensor([1., .8]))
    assert torch.allclose(csls_neighbourhood(y, x, 1), torch.tensor([1., .8]))
    values, index = csls_topk(x, y, k=1, topk=2)
    assert index.tolist() == [[0, 1], [1, 0]]
    assert torch.allclose(values, torch.tensor([[0.0, -0.6], [0.0, -1.8]]))

    # k=2: r_x = [0.8, 0.4], r_y = [0.5, 0.7];
    # CSLS = 2 cos - r_x - r_y = [[0.7, -0.3], [-0.9, 0.5]].
    assert torch.allclose(csls_neighbourhood(x, y, 2), torch.tensor([.8, .4]))
    assert torch.allclose(csls_neighbourhood(y, x, 2), torch.tensor([.5, .7]))
    values, index = csls_topk(x, y, k=2, topk=2)
    assert index.tolist() == [[0, 1], [1, 0]]
    assert torch.allclose(values, torch.tensor([[0.7, -0.3], [0.5, -0.9]]))


def test_csls_demotes_hub():
    # y[0] is a hub, the cosine-best match of every x:
    # cos = [[0.857, 0.707], [0.514, -0.707], [0.970, 0.000]].
    # With k=2, r_y = [0.914, 0.354], so for x[0] CSLS prefers y[1]:
    # 2 * 0.707 - 0.354 = 1.061 > 0.801 = 2 * 0.857 - 0.914.
    x = F.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), dim=1)
    y = F.normalize(torch.tensor([[1.0, 0.6], [1.0, -1.0]]), dim=1)
    assert csls_topk(x, y, k=0, topk=1)[1].view(-1).tolist() == [0, 0, 0]
    assert csls_topk(x, y, k=2, topk=1)[1].view(-1).tolist() == [1, 0, 0]


@pytest.mark.parametrize('chunk_size', CHUNK_SIZES)
@pytest.mark.parametrize('k', [0, 1, 3])
@pytest.mark.parametrize('topk', [1, 4, 100])
def test_csls_topk_chunked_equals_dense(chunk_size, k, topk):
    x, y = random_pair()
    expected_values, expected_index = dense_csls(x, y, k).topk(min(topk, M))
    values, index = csls_topk(x, y, k=k, topk=topk, chunk_size=chunk_size)
    assert values.shape == index.shape == (N, min(topk, M))
    assert index.dtype == torch.long
    assert torch.equal(index, expected_index)
    assert torch.allclose(values, expected_values, atol=1e-6)


def test_csls_topk_plain_cosine():
    x, y = random_pair()
    values, index = csls_topk(x, y, k=0, topk=M, chunk_size=4)
    assert torch.allclose(values, (x @ y.t()).gather(1, index), atol=1e-6)
    assert torch.all(values[:, :-1] >= values[:, 1:])


def test_invalid_arguments():
    x, y = random_pair()
    with pytest.raises(ValueError, match='chunk_size'):
        csls_neighbourhood(x, y, 3, chunk_size=0)
    with pytest.raises(ValueError, match="'k'"):
        csls_neighbourhood(x, y, 0)
    with pytest.raises(ValueError, match="'k'"):
        csls_topk(x, y, k=-1)
    with pytest.raises(ValueError, match="'topk'"):
        csls_topk(x, y, topk=0)
    with pytest.raises(ValueError, match='shapes'):
        csls_topk(x, y[:, :2])
