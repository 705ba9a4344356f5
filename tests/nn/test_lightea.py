r"""LightEA against a dense float64 transcription of the official notebook
(load_graph, get_features, sparse_sinkhorn_sims) on a small graph with
parallel, inverse and self edges, plus its run-level behaviour."""
import math

import pytest
import torch
import torch.nn.functional as F

from torch_geometric_ea.data import kg_pair, synthetic_pair
from torch_geometric_ea.metrics.decoding import (
    sparse_sinkhorn,
    sparse_sinkhorn_ranks,
    topk_both_ways,
    topk_inner_products,
)
from torch_geometric_ea.nn import LightEA, lightea_graph
from torch_geometric_ea.train import LightEAConfig, train_lightea

N, R = 8, 3
TRIPLES = [(0, 0, 1), (0, 1, 1), (1, 2, 0), (2, 1, 2), (3, 0, 4), (3, 0, 4),
           (4, 2, 5), (5, 1, 0), (6, 0, 2)]  # 7 isolated


def official_graph():
    r"""The official ``load_graph``, dense: relation 2r for (h, r, t) and
    2r + 1 for its inverse, as there (our ids are r and r + R)."""
    triples = sorted({(h, t, r) for h, r, t in TRIPLES} | {(t, h, r + R) for h, r, t in TRIPLES})
    ent_ent = torch.zeros(N, N, dtype=torch.float64)
    rel_ent = torch.zeros(2 * R, N, dtype=torch.float64)
    ent_rel = torch.zeros(N, 2 * R, dtype=torch.float64)
    tuples = {}
    for h, t, r in triples:
        ent_ent[h, h] += 1
        ent_ent[t, t] += 1
        ent_ent[h, t] += 1
        tuples.setdefault((h, t), set()).add(r)
        rel_ent[r, h] = 1
        ent_rel[t, r] = 1
    return ent_ent, rel_ent, ent_rel, tuples


def norm(x):
    return F.normalize(x, dim=-1)


def test_features_equal_the_dense_official_computation():
    head, rel, tail = torch.tensor(TRIPLES).t()
    graph = lightea_graph(torch.stack([head, tail]), rel, N, R)
    for key in ('ent_ent', 'rel_ent', 'ent_rel', 'tuple_rel'):
        graph[key] = graph[key].to(torch.float64)
    model = LightEA(ent_dim=6, depth=2, rel_dim=5, mini_dim=3, chunk_size=2)
    pairs = torch.tensor([[0, 3], [1, 4]])
    got = model(graph, pairs, torch.Generator().manual_seed(7))

    ent_ent, rel_ent, ent_rel, tuples = official_graph()
    gen = torch.Generator().manual_seed(7)
    vec = norm(torch.randn(2, 6, generator=gen)).double()
    ent = torch.zeros(N, 6, dtype=torch.float64)
    ent[pairs[0]] = ent[pairs[1]] = vec
    rel_f = torch.zeros(2 * R, 6, dtype=torch.float64)
    ents, rels = [ent], [rel_f]
    for _ in range(2):
        new_rel = norm(rel_ent @ ent)
        ent = norm(ent_ent @ ent + ent_rel @ rel_f)
        rel_f = new_rel
        ents.append(ent)
        rels.append(rel_f)
    ent, rel_f = norm(torch.cat(ents, 1)), norm(torch.cat(rels, 1))
    rel_proj = rel_f @ norm(torch.randn(18, 5, generator=gen)).double()
    features = []
    for d in range(5):
        adj = torch.zeros(N, N, dtype=torch.float64)
        for (h, t), rs in tuples.items():
            adj[h, t] = sum(rel_proj[r, d] for r in rs)
        features.append(adj @ (ent @ norm(torch.randn(18, 3, generator=gen)).double()))
    expected = norm(torch.cat(features, 1))
    assert torch.allclose(got, expected, atol=1e-6)
    assert (got[7] == 0).all()  # an isolated entity: zero features, no NaN


def test_kronecker_projection_equals_its_explicit_matrix():
    # The same computation as above with the per-dimension projections
    # taken from the explicit Kronecker matrix G ⊗ H (torch.kron).
    head, rel, tail = torch.tensor(TRIPLES).t()
    graph = lightea_graph(torch.stack([head, tail]), rel, N, R)
    for key in ('ent_ent', 'rel_ent', 'ent_rel', 'tuple_rel'):
        graph[key] = graph[key].to(torch.float64)
    d, rel_dim, m = 6, 6, 2  # d = 2 x 3, rel_dim * m = 12 = 3 x 4
    model = LightEA(ent_dim=d, depth=2, rel_dim=rel_dim, mini_dim=m,
                    projection='kronecker', chunk_size=2)
    pairs = torch.tensor([[0, 3], [1, 4]])
    got = model(graph, pairs, torch.Generator().manual_seed(3))

    ent_ent, rel_ent, ent_rel, tuples = official_graph()
    gen = torch.Generator().manual_seed(3)
    vec = norm(torch.randn(2, d, generator=gen)).double()
    ent = torch.zeros(N, d, dtype=torch.float64)
    ent[pairs[0]] = ent[pairs[1]] = vec
    rel_f = torch.zeros(2 * R, d, dtype=torch.float64)
    ents, rels = [ent], [rel_f]
    for _ in range(2):
        ent, rel_f = norm(ent_ent @ ent + ent_rel @ rel_f), norm(rel_ent @ ent)
        ents.append(ent)
        rels.append(rel_f)
    ent, rel_f = norm(torch.cat(ents, 1)), norm(torch.cat(rels, 1))
    rel_proj = rel_f @ norm(torch.randn(3 * d, rel_dim, generator=gen)).double()
    g = torch.randn(2, 3, generator=gen).double()       # (a, c)
    h = torch.randn(3 * 3, 4, generator=gen).double()   # ((K + 1) b, e)
    proj = torch.cat([torch.kron(g, hk).view(d, 3, 4).transpose(1, 2).reshape(d, 12)
                      for hk in h.split(3)])  # column j * c + i
    features = []
    for r in range(rel_dim):
        adj = torch.zeros(N, N, dtype=torch.float64)
        for (hh, t), rs in tuples.items():
            adj[hh, t] = sum(rel_proj[x, r] for x in rs)
        features.append(adj @ (ent @ proj[:, r * m:(r + 1) * m]))
    expected = norm(torch.cat(features, 1))
    assert torch.allclose(got, expected, atol=1e-6)


def official_sinkhorn(sims, index, size, iters):
    r"""``sparse_sinkhorn_sims`` after the search, linear domain."""
    k = sims.size(1)
    row_sims = torch.exp(sims.flatten() / 0.02)
    rows = torch.arange(sims.numel()) // k
    cols = index.flatten()
    for _ in range(iters):
        row_sims = row_sims / torch.zeros(sims.size(0), dtype=row_sims.dtype
                                          ).index_add_(0, rows, row_sims)[rows]
        row_sims = row_sims / torch.zeros(size, dtype=row_sims.dtype
                                          ).index_add_(0, cols, row_sims)[cols]
    return row_sims.view(-1, k)


@pytest.mark.parametrize('k', [3, 20])
def test_sparse_sinkhorn_equals_the_official_and_dense_where_k_covers_all(k):
    gen = torch.Generator().manual_seed(0)
    x = norm(torch.randn(15, 4, generator=gen, dtype=torch.float64))
    y = norm(torch.randn(12, 4, generator=gen, dtype=torch.float64))
    values, index = topk_inner_products(x, y, k, chunk_size=4)
    dense = x @ y.t()
    assert torch.equal(index[:, 0], dense.argmax(1))
    got = sparse_sinkhorn(values, index, 12, tau=0.02, num_iters=15)
    expected = official_sinkhorn(values, index, 12, 15)
    assert torch.allclose(got, expected, rtol=1e-6)
    if k >= 12:  # every column: the dense iteration
        p = torch.exp(dense / 0.02)
        for _ in range(15):
            p = p / p.sum(1, keepdim=True)
            p = p / p.sum(0, keepdim=True)
        assert torch.allclose(got, p.gather(1, index), rtol=1e-6)


def small_config(**kwargs):
    return LightEAConfig(**dict(dict(ent_dim=128, rel_dim=32, mini_dim=8, top_k=50),
                                **kwargs))


def test_aligns_a_synthetic_pair_deterministically():
    data = synthetic_pair(300, num_relations=15, seed=2)
    a = train_lightea(data, small_config(), progress=False)
    b = train_lightea(data, small_config(), progress=False)
    assert a.metrics == b.metrics and torch.equal(a.features, b.features)
    assert a.metrics['src->tgt']['hits@1'] > 0.3
    assert a.protocol == dict(bootstrapping=None, ranking='sparse sinkhorn',
                              precision=a.protocol['precision'])
    assert a.protocol['precision']['used'] in ('float32', 'bfloat16')
    other = train_lightea(data, small_config(seed=1), progress=False)
    assert not torch.equal(other.features, a.features)


@pytest.mark.parametrize('bootstrap', ['transductive', 'inductive'])
def test_iterations_add_one_to_one_pairs_from_the_pool(bootstrap):
    data = synthetic_pair(300, num_relations=15, seed=2)
    result = train_lightea(data, small_config(iterations=3, bootstrap=bootstrap),
                           progress=False)
    assert len(result.history) == 3 and result.protocol['bootstrapping'] == bootstrap
    new = torch.cat(result.new_pairs, dim=1)
    assert new.size(1) > 0
    for side in (0, 1):
        assert new[side].unique().numel() == new.size(1)
    assert result.history[1]['train_pairs'] > result.history[0]['train_pairs']
    assert (result.history[-1]['src->tgt']['hits@1']
            >= result.history[0]['src->tgt']['hits@1'] - 0.02)


def test_an_isolated_entity_is_ranked_not_nan():
    data = synthetic_pair(200, num_relations=10, seed=3)
    result = train_lightea(data, small_config(), progress=False)
    assert all(math.isfinite(v) for d in ('src->tgt', 'tgt->src')
               for v in result.metrics[d].values())


@pytest.mark.parametrize('chunk_size', [1, 5, 8, 64])
def test_both_ways_top_k_equals_two_searches(chunk_size):
    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(37, 5, generator=gen), torch.randn(29, 5, generator=gen)
    x[30:] = x[:7] * 0.01  # late rows that enter no column's top-6
    rv, ri, cv, ci = topk_both_ways(x, y, 6, chunk_size=chunk_size)
    ev, ei = topk_inner_products(x, y, 6)
    assert torch.equal(ri, ei) and torch.allclose(rv, ev)
    ev, ei = topk_inner_products(y, x, 6)
    assert torch.equal(ci, ei) and torch.allclose(cv, ev)


def test_columns_with_identical_features_tie_whatever_the_rounding():
    # Columns 0 and 1 are one feature vector that rounding split by 1e-6.
    values = torch.tensor([[0.9 + 1e-6, 0.9, 0.1], [0.5 + 1e-6, 0.5, 0.8]])
    index = torch.tensor([[1, 0, 2], [1, 0, 2]])
    true = torch.tensor([0, 2])
    scores = sparse_sinkhorn(values, index, 3)
    greater, tied = sparse_sinkhorn_ranks(values, index, 3, true)
    other, own = scores[0, 0], scores[0, 1]  # columns 1 and 0 (the true one)
    assert (greater[0], tied[0]) == (int(other > own), int(other == own))
    greater, tied = sparse_sinkhorn_ranks(values, index, 3, true,
                                          torch.tensor([0, 0, 1]))
    assert greater.tolist() == [0, 0] and tied.tolist() == [1, 0]
    greater, tied = sparse_sinkhorn_ranks(values[:, :1], index[:, :1], 3, true)
    assert math.isinf(greater[0]) and tied[0] == 0  # a miss


def test_leaves_with_the_same_neighbourhood_count_half_a_hit():
    # KG1 and KG2: hub 0 with leaves 1 and 2 by relation 0, and a chain
    # 0-3-4 by relation 1; the seed links are the hubs and the chains.
    # Leaves 1 and 2 have identical features, so each is found in half
    # of the random tie orders.
    edges = torch.tensor([[0, 0, 0, 3], [1, 2, 3, 4]])
    types = torch.tensor([0, 0, 1, 1])
    links = torch.tensor([[0, 3, 4, 1, 2], [0, 3, 4, 1, 2]])
    train = torch.tensor([True, True, True, False, False])
    data = kg_pair(num_nodes=(5, 5), edge_index=(edges, edges),
                   edge_type=(types, types), link_index=links,
                   train_mask=train, test_mask=~train)
    result = train_lightea(data, small_config(top_k=2), progress=False)
    for direction in ('src->tgt', 'tgt->src'):
        assert result.metrics[direction]['hits@1'] == pytest.approx(0.5)
        assert result.metrics[direction]['mrr'] == pytest.approx(0.75)


def test_name_view_propagates_the_names_in_place_of_the_labels():
    head, rel, tail = torch.tensor(TRIPLES).t()
    graph = lightea_graph(torch.stack([head, tail]), rel, N, R)
    for key in ('ent_ent', 'rel_ent', 'ent_rel', 'tuple_rel'):
        graph[key] = graph[key].to(torch.float64)
    names = norm(torch.randn(N, 4, generator=torch.Generator().manual_seed(5))).double()
    model = LightEA(ent_dim=6, depth=2, rel_dim=5, mini_dim=3)
    pairs = torch.tensor([[0, 3], [1, 4]])
    got = model(graph, pairs, torch.Generator().manual_seed(2), labels=names)
    assert got.shape == (N, 3 * 4 + 5 * 3)
    ent_ent, rel_ent, ent_rel, _ = official_graph()
    ent, rel_f, ents = names, torch.zeros(2 * R, 4, dtype=torch.float64), [names]
    for _ in range(2):
        ent, rel_f = norm(ent_ent @ ent + ent_rel @ rel_f), norm(rel_ent @ ent)
        ents.append(ent)
    assert torch.allclose(got[:, :12], norm(torch.cat(ents, 1)), atol=1e-9)
    structure = LightEA(ent_dim=4, depth=2, rel_dim=5, mini_dim=3)
    unit = torch.ones(7, dtype=torch.float64)
    assert torch.allclose(got[:, 12:].norm(dim=1)[:7], unit)
    assert not torch.allclose(got[:, 12:], structure(graph, pairs,
                                                     torch.Generator().manual_seed(2)))


def test_literal_lightea_runs_end_to_end_and_replays_in_the_aligner():
    from torch_geometric_ea import Aligner
    data = synthetic_pair(300, num_relations=10, seed=1)
    plain = train_lightea(data, small_config(), progress=False)
    lit = train_lightea(data, small_config(literal=True, name_dim=32), progress=False)
    assert lit.protocol['ranking'] == 'sparse sinkhorn+names'
    assert lit.features.size(1) == plain.features.size(1) + 3 * 32 + 32 * 8
    aligner = Aligner.fit(data, 'lightea', small_config(literal=True, name_dim=32),
                          progress=False)
    x_src, x_tgt = aligner.embed()
    assert torch.allclose(torch.cat([x_src, x_tgt]), norm(lit.features), atol=1e-6)


@pytest.mark.parametrize('projection', ['gaussian', 'kronecker'])
def test_the_memory_cap_on_chunks_leaves_the_features_unchanged(projection):
    head, rel, tail = torch.tensor(TRIPLES).t()
    graph = lightea_graph(torch.stack([head, tail]), rel, N, R)
    pairs = torch.tensor([[0, 3], [1, 4]])
    model = LightEA(ent_dim=6, depth=2, rel_dim=6, mini_dim=2, projection=projection)
    chunks = []
    projector = getattr(model, f'_{projection}')

    def counting(*args):  # records the relation dimensions of each chunk
        project, *rest = projector(*args)
        return (lambda dims: chunks.append(len(dims)) or project(dims), *rest)

    model.__dict__[f'_{projection}'] = counting
    whole = model(graph, pairs, torch.Generator().manual_seed(5))
    assert chunks == [6]  # chunk_size 64 covers every relation dimension
    chunks.clear()
    model.max_chunk_entries = 1  # one relation dimension (or unit) at a time
    torch.testing.assert_close(model(graph, pairs, torch.Generator().manual_seed(5)),
                               whole)
    assert len(chunks) > 1 and max(chunks) < 6


def test_one_way_ranking_keeps_src_to_tgt_and_leaves_tgt_to_src_undefined():
    data = synthetic_pair(400, num_relations=10, seed=2)
    both = train_lightea(data, small_config(top_k=3), progress=False).metrics
    one = train_lightea(data, small_config(top_k=3, both_ways=False),
                        progress=False).metrics
    assert one['src->tgt'] == both['src->tgt']
    assert all(math.isnan(v) for v in one['tgt->src'].values())


@pytest.mark.parametrize('projection', ['gaussian', 'kronecker'])
@pytest.mark.parametrize('with_labels', [False, True])
def test_features_written_into_columns_of_a_wider_matrix_are_the_same(
        projection, with_labels):
    head, rel, tail = torch.tensor(TRIPLES).t()
    graph = lightea_graph(torch.stack([head, tail]), rel, N, R)
    pairs = torch.tensor([[0, 3], [1, 4]])
    model = LightEA(ent_dim=6, depth=2, rel_dim=6, mini_dim=2, projection=projection)
    labels = norm(torch.randn(N, 4, generator=torch.Generator().manual_seed(1)))
    labels = labels if with_labels else None
    alone = model(graph, pairs, torch.Generator().manual_seed(5), labels=labels)
    assert alone.size(1) == model.num_features(4 if with_labels else None)
    wide = torch.full((N, alone.size(1) + 5), float('nan'))
    out = model(graph, pairs, torch.Generator().manual_seed(5), labels=labels,
                out=wide[:, 2:-3])
    assert out.data_ptr() == wide[:, 2:-3].data_ptr()
    assert torch.equal(wide[:, 2:-3], alone)
    assert wide[:, :2].isnan().all() and wide[:, -3:].isnan().all()
    with pytest.raises(ValueError, match="'out' must have shape"):
        model(graph, pairs, labels=labels, out=wide)


def test_sparse_matrices_obey_pytorchs_invariants(monkeypatch):
    from torch_geometric_ea.nn import layout
    monkeypatch.setattr(layout, 'CHECK_INVARIANTS', True)  # checked as made
    data = synthetic_pair(200, num_relations=10, seed=3)
    checked = train_lightea(data, small_config(literal=True, name_dim=16),
                            progress=False)
    monkeypatch.setattr(layout, 'CHECK_INVARIANTS', False)
    unchecked = train_lightea(data, small_config(literal=True, name_dim=16),
                              progress=False)
    assert torch.equal(checked.features, unchecked.features)


def test_evaluation_equals_the_top_k_of_the_normalised_rows():
    from torch_geometric_ea.metrics.ranking import duplicate_rows, expected_rank_metrics
    from torch_geometric_ea.train.lightea import evaluate_sparse_sinkhorn
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(60, 24, generator=gen)
    x[7] = x[9]  # a duplicate target
    x[11] = 0  # a row without features
    links = torch.stack([torch.arange(0, 30), torch.arange(30, 60)])
    links[1, :2] = links[1, :2].flip(0)
    cfg = small_config(top_k=5)
    got = evaluate_sparse_sinkhorn(x, links, cfg)
    x_src, x_tgt = norm(x[links[0]]), norm(x[links[1]])
    row_v, row_i, col_v, col_i = topk_both_ways(x_src, x_tgt, 5, cfg.chunk_size)
    true = torch.arange(30)
    for name, v, i, cols in (('src->tgt', row_v, row_i, x_tgt),
                             ('tgt->src', col_v, col_i, x_src)):
        greater, tied = sparse_sinkhorn_ranks(v, i, 30, true, duplicate_rows(cols))
        assert got[name] == expected_rank_metrics(greater, tied)


def test_a_literal_run_prints_no_warning(tmp_path):
    # PyTorch warns, with its source line, where a sparse tensor is made
    # without saying whether its invariants are checked (once a process, so
    # a fresh one, with Python's default filters, as a user runs it).
    import subprocess
    import sys
    run = subprocess.run(
        [sys.executable, '-m', 'torch_geometric_ea', 'train',
         '--model', 'lightea', '--literal', '--dataset', 'synthetic',
         '--num-entities', '300', '--set', 'ent_dim=128', '--set', 'rel_dim=32',
         '--set', 'mini_dim=8', '--set', 'top_k=50', '--set', 'name_dim=32',
         '--device', 'cpu', '--out', str(tmp_path / 'run')],
        capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert 'Warning' not in run.stderr, run.stderr
