import json

import pytest
import torch

from torch_geometric_ea.cli import main
from torch_geometric_ea.data import DBP15K, synthetic_pair
from torch_geometric_ea.data.pair import to_union
from torch_geometric_ea.nn import DualAMN, dual_amn_graph
from torch_geometric_ea.train import DualAMNConfig, train_dual_amn


def small_config(**kwargs):
    base = dict(channels=16, num_proxies=8, epochs=30, batch_size=256, lr=0.01)
    base.update(kwargs)
    return DualAMNConfig(**base)


def test_dual_amn_learns_a_synthetic_pair():
    data = synthetic_pair(400, num_relations=20, seed=1)
    result = train_dual_amn(data, small_config(), progress=False)
    for direction in ('src->tgt', 'tgt->src'):
        m = result.metrics[direction]
        assert set(m) >= {'hits@1', 'hits@5', 'hits@10', 'mrr'}
        assert m['hits@1'] <= m['hits@5'] <= m['hits@10']
    # Random ranking over ~280 test targets gives Hits@1 around 0.004.
    assert result.metrics['src->tgt']['hits@1'] > 0.3
    # evaluated on the test entities' rows alone, as on every entity's
    from torch_geometric_ea.metrics import evaluate_alignment
    union, emb = to_union(data), result.embed()
    full = evaluate_alignment(emb, emb, union.link_index[:, union.test_mask])
    for direction in ('src->tgt', 'tgt->src'):
        for key, value in full[direction].items():
            assert result.metrics[direction][key] == pytest.approx(value, abs=1e-6)


def test_semi_supervised_rounds_add_pairs():
    data = synthetic_pair(300, num_relations=15, seed=2)
    cfg = small_config(epochs=20, semi=True, semi_rounds=2, semi_epochs=3)
    result = train_dual_amn(data, cfg, progress=False)
    assert len(result.history) == 3
    assert len(result.num_new_pairs) == 2 and sum(result.num_new_pairs) > 0
    train = [h['train_pairs'] for h in result.history]
    assert train[1] == train[0] + result.num_new_pairs[0]
    # the bootstrapped pairs are mutual nearest neighbours among the pool
    # (test entities), whichever rows were embedded
    from torch_geometric_ea.metrics import mutual_nearest_neighbours
    union = to_union(data)
    test = union.link_index[:, union.test_mask]
    first = train_dual_amn(data, small_config(epochs=20), progress=False)
    emb = torch.nn.functional.normalize(first.embed(), dim=-1)
    pairs = mutual_nearest_neighbours(emb[test[0]], emb[test[1]], csls_k=10)
    assert result.num_new_pairs[0] == pairs.size(1)
    check_rounds(result, union, pool=test)


def check_rounds(result, union, pool):
    r"""Every round's new pairs are one-to-one, come from the pool, and
    leave it: no entity is paired twice over all rounds, and none that has
    a training link."""
    new = torch.cat(result.new_pairs, dim=1)
    assert [p.size(1) for p in result.new_pairs] == result.num_new_pairs
    assert new.size(1) > 0
    for side in (0, 1):
        assert new[side].unique().numel() == new.size(1)  # one-to-one, all rounds
        assert torch.isin(new[side], pool[side]).all()
        seeds = union.link_index[side, union.train_mask]
        assert not torch.isin(new[side], seeds).any()


@pytest.mark.parametrize('bootstrap', ['transductive', 'inductive'])
def test_bootstrapping_pools(bootstrap):
    data = synthetic_pair(300, num_relations=15, seed=2)
    cfg = small_config(epochs=20, semi=True, semi_rounds=2, semi_epochs=3,
                       bootstrap=bootstrap)
    result = train_dual_amn(data, cfg, progress=False)
    union = to_union(data)
    assert result.protocol['bootstrapping'] == bootstrap
    if bootstrap == 'transductive':
        pool = union.link_index[:, union.test_mask]
    else:  # every entity without a training link, test entities or not
        free = torch.ones(union.num_nodes, dtype=torch.bool)
        free[union.link_index[:, union.train_mask].reshape(-1)] = False
        ids = free.nonzero().view(-1)
        pool = (ids[union.node_type[ids] == 0], ids[union.node_type[ids] == 1])
    check_rounds(result, union, pool)
    basic = train_dual_amn(data, small_config(epochs=20), progress=False)
    assert basic.protocol['bootstrapping'] is None


def test_sinkhorn_bootstrapping_and_extra_decodings():
    pytest.importorskip('scipy')
    data = synthetic_pair(300, num_relations=15, seed=2)
    cfg = small_config(epochs=20, semi=True, semi_rounds=1, semi_epochs=2,
                       semi_decoding='sinkhorn', decodings='sinkhorn,hungarian')
    result = train_dual_amn(data, cfg, progress=False)
    assert result.num_new_pairs[0] > 0
    assert set(result.extra_metrics) == {'sinkhorn', 'hungarian'}
    assert set(result.extra_metrics['hungarian']['src->tgt']) == {'hits@1'}
    assert 0 < result.extra_metrics['sinkhorn']['src->tgt']['hits@1'] <= 1
    assert result.timings['decode'] > 0


@pytest.mark.parametrize('candidates', ['random', 'hard'])
def test_sampled_and_hard_candidates_learn(candidates):
    data = synthetic_pair(400, num_relations=20, seed=1)
    cfg = small_config(candidates=candidates, num_candidates=200,
                       hard_candidates=5, hard_every=10)
    result = train_dual_amn(data, cfg, progress=False)
    assert result.metrics['src->tgt']['hits@1'] > 0.3  # as with all 800
    assert ('hard_candidates' in result.timings) == (candidates == 'hard')


def test_eval_links_evaluate_on_a_seeded_sample_without_changing_training():
    from torch_geometric_ea.data.pair import to_union
    from torch_geometric_ea.metrics import evaluate_alignment
    from torch_geometric_ea.train.dual_amn import sample_links
    data = synthetic_pair(300, num_relations=15, seed=2)
    full = train_dual_amn(data, small_config(epochs=3), progress=False)
    part = train_dual_amn(data, small_config(epochs=3, eval_links=40),
                          progress=False)
    assert part.history[0]['losses'] == full.history[0]['losses']
    union = to_union(data)
    test = union.link_index[:, union.test_mask]
    sample = sample_links(test, 40, seed=0)
    assert sample.size(1) == 40 and sample.unique(dim=1).size(1) == 40
    assert (sample[:, :, None] == test[:, None, :]).all(0).any(1).all()
    emb = part.embed()
    assert part.metrics == evaluate_alignment(emb, emb, sample)
    assert part.metrics != full.metrics
    assert sample_links(test, None, 0) is test and sample_links(test, 10**6, 0) is test
    with pytest.raises(ValueError, match="'eval_links' must be positive"):
        sample_links(test, 0, 0)


def test_eval_top_k_ranks_every_test_link_by_cosine_among_its_top_k():
    from torch_geometric_ea.metrics import evaluate_top_k
    from torch_geometric_ea.precision import using
    data = synthetic_pair(300, num_relations=15, seed=2)
    full = train_dual_amn(data, small_config(epochs=3), progress=False)
    top = train_dual_amn(data, small_config(epochs=3, eval_top_k=12), progress=False)
    assert top.history[0]['losses'] == full.history[0]['losses']
    union = to_union(data)
    test_links = union.link_index[:, union.test_mask]
    with using(top.protocol['precision']['used']):  # the run's products
        emb = top.embed()
        assert top.metrics == evaluate_top_k(emb, emb, test_links, 12)
    assert top.metrics != full.metrics  # cosine, not CSLS
    assert top.protocol['ranking'] == 'cosine top-12'
    with pytest.raises(ValueError, match="'eval_top_k' must be at least 10"):
        train_dual_amn(data, small_config(eval_top_k=5), progress=False)


def test_nearest_entities_equal_brute_force():
    from torch_geometric_ea.nn.sampling import nearest_squared
    x = torch.randn(30, 4, generator=torch.Generator().manual_seed(0))
    query = torch.tensor([3, 17, 29])
    out = nearest_squared(x, query, 4, chunk_size=2)
    dist = torch.cdist(x, x).fill_diagonal_(float('inf'))
    assert torch.equal(out[query], dist[query].topk(4, largest=False).indices)
    assert (out[torch.tensor([0, 1])] == -1).all()


@pytest.mark.parametrize('field, value, match', [
    ('candidates', 'some', "'candidates' must be one of"),
    ('decodings', 'sinkhorn,mutual', "'decodings' must be comma-separated names from"),
    ('semi_decoding', 'hungarian', "'semi_decoding' must be one of .'mutual', 'sinkhorn'."),
])
def test_rejects_unknown_decodings(field, value, match):
    with pytest.raises(ValueError, match=match):  # when the config is made
        small_config(**{field: value})


def test_other_kg_negatives_and_chunked_loss_train():
    data = synthetic_pair(300, num_relations=15, seed=3)
    a = train_dual_amn(data, small_config(epochs=3, negatives='other'),
                       progress=False)
    b = train_dual_amn(data, small_config(epochs=3, negatives='other',
                                          loss_chunk_size=50), progress=False)
    # Same seed, same maths: chunking changes float rounding only.
    assert a.metrics['src->tgt']['mrr'] == pytest.approx(
        b.metrics['src->tgt']['mrr'], abs=0.02)


def test_cli_train_writes_results(tmp_path, capsys):
    out = tmp_path / 'run'
    code = main(['train', '--num-entities', '200', '--epochs', '2', '--json',
                 '--out', str(out)])
    assert code == 0
    results = json.loads((out / 'results.json').read_text())
    for direction in ('src->tgt', 'tgt->src'):
        assert 0 <= results[direction]['hits@1'] <= 1
        assert 0 < results[direction]['mrr'] <= 1
    assert results['timings']['train'] > 0 and results['peak_memory_gib'] > 0
    state = torch.load(out / 'model.pt', weights_only=True)
    assert state['config']['epochs'] == 2 and state['model'] == 'dual-amn'
    assert json.loads(capsys.readouterr().out)['dataset'] == 'synthetic'
    model = DualAMN(**state['init_args'])
    model.load_state_dict(state['state_dict'])  # the saved model rebuilds


def test_cli_set_overrides_config_fields(tmp_path):
    out = tmp_path / 'run'
    assert main(['train', '--num-entities', '100', '--epochs', '1', '--json',
                 '--set', 'channels=8', '--set', 'num-proxies=4',
                 '--set', 'loss_chunk_size=none', '--out', str(out)]) == 0
    config = json.loads((out / 'results.json').read_text())['config']
    assert config['channels'] == 8 and config['num_proxies'] == 4
    assert config['loss_chunk_size'] is None


@pytest.mark.parametrize('item, match', [
    ('width=3', "has no field 'width'"),
    ('channels=abc', "cannot read 'abc' as int"),
    ('semi=maybe', 'expected true or false'),
    ('channels', 'expects key=value'),
])
def test_cli_set_rejects_bad_items(item, match):
    with pytest.raises(SystemExit, match=match):
        main(['train', '--epochs', '1', '--set', item])


@pytest.mark.real_data
@pytest.mark.slow
def test_two_epochs_on_dbp15k_zh_en(mirror, dataset_root):
    data = DBP15K(dataset_root, 'zh_en', seed=0)[0]
    result = train_dual_amn(data, DualAMNConfig(epochs=2), progress=False)
    assert result.metrics['src->tgt']['hits@1'] > 0.45
    assert result.metrics['tgt->src']['hits@1'] > 0.45


def test_batch_loss_over_candidates_embeds_only_the_rows_it_reads():
    from torch_geometric_ea.nn import NormalizedHardSampleMiningLoss
    from torch_geometric_ea.train.dual_amn import batch_loss
    data = to_union(synthetic_pair(60, num_relations=5, seed=1))
    graph = dual_amn_graph(data.edge_index, data.edge_type, data.num_nodes,
                           data.num_relations)
    model = DualAMN(data.num_nodes, data.num_relations, channels=8,
                    num_proxies=4, dropout=0.0)
    seen = []
    model.register_forward_hook(lambda m, args, out: seen.append(out.size(0)))
    loss_fn = NormalizedHardSampleMiningLoss()
    batch = data.link_index[:, data.train_mask][:, :6]
    candidates = torch.randperm(data.num_nodes)[:20]
    losses, grads = [], []
    for subset in (True, False):
        model.zero_grad()
        if subset:
            loss = batch_loss(model, graph, loss_fn, batch, data.node_type, 0, 1,
                              candidates)
        else:
            loss = loss_fn(model(graph), batch, data.node_type, candidates)
        loss.backward()
        losses.append(loss.detach())
        grads.append([p.grad.clone() for p in model.parameters()])
    assert seen[0] == torch.cat([batch.reshape(-1), candidates]).unique().numel()
    assert seen[1] == data.num_nodes
    assert torch.allclose(losses[0], losses[1], atol=1e-5)
    for a, b in zip(*grads):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-4)


def test_literal_variant_ranks_by_structure_plus_names():
    data = synthetic_pair(300, num_relations=10, seed=2)
    n1, n2 = data['src'].num_nodes, data['tgt'].num_nodes
    truth = {int(t): int(s) for s, t in data['src', 'link', 'tgt'].edge_label_index.t()}
    # labels: a linked target is named as its source
    data['src'].name = [f'e{i}' for i in range(n1)]
    data['tgt'].name = [f'e{truth[t]}' if t in truth else f'x{t}'
                        for t in range(n2)]
    vocab = sorted(set(data['src'].name) | set(data['tgt'].name))
    calls = []

    def one_hot_encoder(names):
        calls.append(names)
        return torch.eye(len(vocab))[[vocab.index(n) for n in names]]

    result = train_dual_amn(data, small_config(epochs=2, literal=True),
                            progress=False, name_encoder=one_hot_encoder)
    assert calls == [data['src'].name + data['tgt'].name]  # once, both KGs
    assert result.extra_metrics['names']['src->tgt']['hits@1'] == 1.0
    structure = result.extra_metrics['structure']['src->tgt']['hits@1']
    assert structure < 1.0 and result.metrics['src->tgt']['hits@1'] == 1.0
    assert result.history[0]['structure']['src->tgt']['hits@1'] == structure


def test_cli_literal_is_a_dual_amn_option(tmp_path):
    with pytest.raises(SystemExit, match='option of dual-amn, lightea'):
        main(['train', '--model', 'gcn-align', '--literal', '--json'])
    assert main(['train', '--num-entities', '200', '--epochs', '1', '--literal',
                 '--set', 'name_dim=16', '--json', '--out', str(tmp_path)]) == 0
    out = json.loads((tmp_path / 'results.json').read_text())
    assert out['config']['literal'] and set(out['extra_metrics']) == {'names',
                                                                      'structure'}
    # The synthetic pair has no names: the URIs' local names, hashed n-grams.
    assert out['protocol']['names'] == dict(source='uri', encoder='hashed-2-3-grams-16',
                                            entities_without_name=0)
