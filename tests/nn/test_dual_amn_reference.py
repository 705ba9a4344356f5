r"""DualAMN against an independent dense transcription of its equations
(relation averaging, reflection, relation attention, proxies, gate and the
loss), in float64, on a graph with parallel, inverse, repeated and self
edges: the output and the gradient of every parameter."""
import torch
import torch.nn.functional as F

from torch_geometric_ea.nn import DualAMN, NormalizedHardSampleMiningLoss, dual_amn_graph

N, R, C, L, P = 7, 3, 4, 2, 3
# (h, r, t): 0-1 twice with two relations (parallel), 1->0 (inverse of
# 0->1), 2->2 (self), 3-4 given twice (repeated), 6 isolated
TRIPLES = [(0, 0, 1), (0, 1, 1), (1, 2, 0), (2, 1, 2), (3, 0, 4), (3, 0, 4),
           (4, 2, 5), (5, 1, 0)]


def dense_dual_amn(model):
    r"""The model's equations with dense (N x N) matrices and plain autograd."""
    ent, rel2 = model.ent_emb.weight, model.rel_emb.weight  # (N, C), (2R, C)
    sets = [[set() for _ in range(N)] for _ in range(N)]  # sets[dst][src]
    neighbours = torch.eye(N, dtype=torch.float64)
    sends = torch.zeros(N, 2 * R, dtype=torch.float64)
    for h, r, t in TRIPLES:
        sets[t][h].add(r)        # h -> t with r
        sets[h][t].add(r + R)    # t -> h with the inverse r + R
        neighbours[h, t] = neighbours[t, h] = 1
        sends[h, r] = sends[t, r + R] = 1
    edge = torch.tensor([[bool(sets[d][s]) for s in range(N)] for d in range(N)])
    rel = torch.zeros(N, N, C, dtype=torch.float64)
    for d in range(N):
        for s in range(N):
            if sets[d][s]:  # the mean of the pair's distinct relations, unit
                rel[d, s] = F.normalize(rel2[sorted(sets[d][s])].mean(0), dim=0)
    x_ent = neighbours / neighbours.sum(1, keepdim=True) @ ent
    x_rel = sends / sends.sum(1, keepdim=True).clamp_min(1) @ rel2

    def encoder(x, enc):
        xs = [torch.tanh(x)]
        for conv in enc.convs:
            x = xs[-1]
            logit = (rel @ conv.att).squeeze(-1).masked_fill(~edge, float('-inf'))
            alpha = torch.softmax(logit, dim=1).nan_to_num(0.0)  # no in-edges: 0
            proj = (rel * x.unsqueeze(0)).sum(-1)                # r_ds . x_s
            reflected = x.unsqueeze(0) - 2 * proj.unsqueeze(-1) * rel
            xs.append(torch.tanh((alpha.unsqueeze(-1) * reflected).sum(1)))
        h = torch.cat(xs, dim=-1)
        q = enc.proxy.proxy
        beta = torch.softmax(F.normalize(h, dim=-1) @ F.normalize(q, dim=-1).t(), -1)
        h_p = h - beta @ q
        gate = torch.sigmoid(h_p @ enc.proxy.gate.weight.t() + enc.proxy.gate.bias)
        return gate * h + (1 - gate) * h_p

    return torch.cat([encoder(x_ent, model.ent_encoder),
                      encoder(x_rel, model.rel_encoder)], dim=-1)


def reference_loss(x, pairs, gamma=1.0, lam=30.0, tau=10.0):
    total = 0
    for a, p in (pairs, pairs.flip(0)):
        loss = gamma + (x[a] - x[p]).pow(2).sum(-1, keepdim=True) - torch.cdist(
            x[a], x).pow(2)
        mask = torch.ones_like(loss)
        mask[torch.arange(len(a)), a] = mask[torch.arange(len(a)), p] = 0
        loss = loss * mask
        loss = (loss - loss.mean(-1, keepdim=True).detach()) / loss.std(
            -1, keepdim=True, correction=0).detach()
        total = total + torch.logsumexp(lam * loss + tau, dim=-1)
    return total.mean()


def test_output_and_every_gradient_equal_the_dense_equations():
    head, rel, tail = torch.tensor(TRIPLES).t()
    graph = dual_amn_graph(torch.stack([head, tail]), rel, N, R)
    torch.manual_seed(0)
    model = DualAMN(N, R, channels=C, num_layers=L, num_proxies=P).double().eval()
    for p in model.parameters():  # away from the initial symmetric values
        torch.nn.init.normal_(p, std=0.5)
    pairs = torch.tensor([[0, 2, 3], [1, 5, 4]])

    out = model(graph)
    NormalizedHardSampleMiningLoss()(out, pairs).backward()
    got = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad()
    expected_out = dense_dual_amn(model)
    reference_loss(expected_out, pairs).backward()

    assert torch.allclose(out, expected_out, atol=1e-10)
    assert set(got) == {name for name, _ in model.named_parameters()}
    for name, p in model.named_parameters():
        assert p.grad.abs().sum() > 0, name  # every parameter is trained
        assert torch.allclose(got[name], p.grad, atol=1e-8), name
