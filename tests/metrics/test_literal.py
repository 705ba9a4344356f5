import pytest
import torch
import torch.nn.functional as F

from torch_geometric_ea.metrics import evaluate_alignment, fuse_literal


@pytest.mark.parametrize('weight', [0.0, 0.5, 1.0, 3.0])
def test_fused_cosine_is_the_weighted_sum_of_both_channels(weight):
    gen = torch.Generator().manual_seed(0)
    h, n = torch.randn(7, 5, generator=gen), torch.randn(7, 3, generator=gen)
    z = fuse_literal(h, n, weight)
    assert z.shape == (7, 8)
    s = F.normalize(h, dim=1) @ F.normalize(h, dim=1).t()
    lit = F.normalize(n, dim=1) @ F.normalize(n, dim=1).t()
    assert torch.allclose(z @ z.t(), (s + weight * lit) / (1 + weight), atol=1e-6)
    assert torch.allclose(z.norm(dim=1), torch.ones(7))


def test_names_fix_what_structure_gets_wrong():
    # Structure swaps entities 0 and 1; the names tell them apart.
    h = torch.eye(4)
    h_tgt = h[[1, 0, 2, 3]]
    names = torch.eye(4)
    x = torch.cat([h, h_tgt])
    links = torch.tensor([[0, 1, 2, 3], [4, 5, 6, 7]])
    names = torch.cat([names, names])
    assert evaluate_alignment(x, x, links, csls_k=0)['src->tgt']['hits@1'] == 0.5
    fused = fuse_literal(x, names, weight=2.0)
    assert evaluate_alignment(fused, fused, links, csls_k=0)['src->tgt']['hits@1'] == 1.0


def test_zero_name_vectors_and_bad_arguments():
    z = fuse_literal(torch.ones(2, 3), torch.zeros(2, 4))
    assert torch.allclose(z[:, 3:], torch.zeros(2, 4))  # no name, no name score
    with pytest.raises(ValueError, match='rows'):
        fuse_literal(torch.ones(2, 3), torch.ones(3, 3))
    with pytest.raises(ValueError, match='non-negative'):
        fuse_literal(torch.ones(2, 3), torch.ones(2, 3), weight=-1)
