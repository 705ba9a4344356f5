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
    rel = g.edge_rel.to_dense()
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
