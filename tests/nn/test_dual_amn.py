import torch

from torch_geometric_ea.nn import DualAMN, dual_amn_graph


def small_graph():
    # triples (h, r, t): two parallel relations between 0 and 1
    edge_index = torch.tensor([[0, 0, 1, 2, 3], [1, 1, 2, 3, 0]])
    edge_type = torch.tensor([0, 1, 1, 2, 0])
    return dual_amn_graph(edge_index, edge_type, num_nodes=5, num_relations=3)


def test_graph_structure():
    g = small_graph()
    # merged edges: 1<-0 (r0, r1), 0<-1 (r0+3, r1+3), 2<-1, 1<-2, 3<-2,
    # 2<-3, 0<-3, 3<-0
    assert g.edge_index.size(1) == 8
    edges = set(map(tuple, g.edge_index.t().tolist()))
    assert (0, 1) in edges and (1, 0) in edges
    assert (g.edge_index[1].diff() >= 0).all()  # sorted by target
    rel = g.set_rel.to_dense()[g.edge_set]
    assert torch.allclose(rel.sum(1), torch.ones(8))
    row = [i for i, e in enumerate(g.edge_index.t().tolist()) if e == [0, 1]][0]
    assert rel[row, 0] == rel[row, 1] == 0.5
    ent = g.ent_avg.to_dense()
    assert torch.allclose(ent.sum(1), torch.ones(5))
    assert ent[4, 4] == 1  # isolated entity averages itself
    assert ent[0].nonzero().view(-1).tolist() == [0, 1, 3]
    rel_avg = g.rel_avg.to_dense()
    # entity 1 sends r0 + 3, r1 + 3 (inverse) to 0 and r1 to 2
    assert rel_avg[1].nonzero().view(-1).tolist() == [1, 3, 4]
    assert rel_avg[4].sum() == 0


def test_relation_sets_group_equal_rows_only():
    # (0, r0, 1), (1, r0, 2), (2, r1, 3), (3, r0, 4) and (3, r1, 4)
    g = dual_amn_graph(torch.tensor([[0, 1, 2, 3, 3], [1, 2, 3, 4, 4]]),
                       torch.tensor([0, 0, 1, 0, 1]), num_nodes=5, num_relations=2)
    rel = g.set_rel.to_dense()
    # sets: {r0}, {r1}, {r0, r1} and their inverses
    assert g.edge_index.size(1) == 8
    assert rel.size(0) == int(g.edge_set.max()) + 1 == 6
    assert torch.unique(rel, dim=0).size(0) == rel.size(0)  # sets distinct
    per_edge = rel[g.edge_set]
    same = (per_edge.unsqueeze(0) == per_edge.unsqueeze(1)).all(-1)
    assert torch.equal(same, g.edge_set.unsqueeze(0) == g.edge_set.unsqueeze(1))


def test_layers_see_the_per_edge_relation_means():
    from torch_geometric_ea.nn.functional import normalize_rows
    torch.manual_seed(0)
    model = DualAMN(5, 3, channels=8, num_proxies=4, dropout=0.0)
    g = small_graph()
    conv = model.ent_encoder.convs[0]
    x = torch.randn(5, 8)
    table = normalize_rows(g.set_rel.to_dense() @ model.rel_emb.weight)
    per_edge = table[g.edge_set]
    assert torch.allclose(conv(x, g.layout, table),
                          conv(x, g.edge_index, per_edge), atol=1e-6)


def test_output_shape_repr_and_dropout():
    torch.manual_seed(0)
    model = DualAMN(5, 3, channels=8, num_proxies=4)
    assert repr(model) == 'DualAMN(5, num_relations=3, channels=8)'
    g = small_graph()
    model.eval()
    out = model(g)
    assert out.shape == (5, model.out_channels) == (5, 48)
    assert torch.equal(out, model(g))
    model.train()
    assert not torch.equal(model(g), out)


def test_backward_reaches_every_parameter():
    torch.manual_seed(0)
    model = DualAMN(5, 3, channels=8, num_proxies=4, dropout=0.0)
    model(small_graph()).pow(2).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_dropout_rate_scale_and_gradient():
    from torch_geometric_ea.nn.models.dual_amn import _dropout
    torch.manual_seed(0)
    x = torch.ones(200, 500, requires_grad=True)
    out = _dropout(x, 0.3, True)
    dropped = (out == 0).float().mean().item()
    assert abs(dropped - 0.3) < 0.01
    assert torch.allclose(out[out != 0], torch.tensor(1 / 0.7))
    out.sum().backward()
    assert torch.equal(x.grad, out.detach())  # gradient is the same mask
    assert _dropout(x, 0.3, False) is x
    torch.manual_seed(0)
    assert torch.equal(_dropout(x, 0.3, True), out)  # seeded by torch


def test_relation_sets_of_random_rows_of_several_sizes():
    from torch_geometric_ea.nn.models.dual_amn import _relation_sets
    gen = torch.Generator().manual_seed(0)
    sets = [tuple(sorted(torch.randperm(6, generator=gen)[:int(k)].tolist()))
            for k in torch.randint(1, 4, (200, ), generator=gen)]
    row = torch.tensor([i for i, s in enumerate(sets) for _ in s])
    col = torch.tensor([c for s in sets for c in s])
    edge_rel = torch.sparse_coo_tensor(torch.stack([row, col]), torch.ones(len(col)),
                                       (200, 6)).coalesce()
    set_id, first = _relation_sets(edge_rel)
    for i in range(200):
        same = [j for j in range(200) if sets[j] == sets[i]]
        assert (set_id[same] == set_id[i]).all() and int(first[set_id[i]]) == same[0]
    assert first.numel() == len(set(sets)) == int(set_id.max()) + 1


def test_embedding_a_subset_equals_rows_of_the_full_embedding():
    g = small_graph()
    model = DualAMN(5, 3, channels=8, num_proxies=4).eval()
    index = torch.tensor([3, 0, 4])
    full = model(g)
    assert torch.allclose(model(g, index), full[index], atol=1e-6)
    # gradients through the subset reach the same parameters as through rows
    w = torch.randn(3, full.size(1))
    grads = [torch.autograd.grad((out * w).sum(), list(model.parameters()))
             for out in (model(g, index), model(g)[index])]
    for a, b in zip(*grads):
        assert torch.allclose(a, b, atol=1e-5)


def test_sparse_means_multiply_and_back_propagate_as_their_dense_matrices():
    g = small_graph()
    for mean in (g.ent_avg, g.rel_avg):
        dense = mean.to_dense()
        x = torch.randn(dense.size(1), 4, requires_grad=True)
        w = torch.randn(dense.size(0), 4)
        out = mean @ x
        assert torch.allclose(out, dense @ x, atol=1e-6)
        out.mul(w).sum().backward()
        assert torch.allclose(x.grad, dense.t() @ w, atol=1e-6)
