import json

import pytest
import torch

from torch_geometric_ea.cli import main
from torch_geometric_ea.data import DBP15K, synthetic_pair
from torch_geometric_ea.nn import RDGCN, MarginRankingL1Loss
from torch_geometric_ea.train import RDGCNSpec, get_model, RDGCNConfig, train_rdgcn
from torch_geometric_ea.train.rdgcn import chunked_margin_l1_loss, l1_nearest


def small_config(**kwargs):
    base = dict(channels=64, num_negatives=10, epochs=200, lr=0.01, gamma=3.0,
                features='learned')
    base.update(kwargs)
    return RDGCNConfig(**base)


def test_defaults_are_official():
    cfg = RDGCNConfig()
    assert (cfg.channels, cfg.alpha, cfg.beta, cfg.gamma, cfg.num_negatives,
            cfg.negative_every, cfg.lr, cfg.epochs) == (
                300, 0.1, 0.3, 1.0, 125, 10, 0.001, 600)
    assert cfg.features == 'names' and get_model('rdgcn') is RDGCNSpec
    assert RDGCNSpec.config_class is RDGCNConfig


def test_learned_features_learn_a_synthetic_pair():
    data = synthetic_pair(400, num_relations=20, seed=1)
    result = train_rdgcn(data, small_config(), progress=False)
    for direction in ('src->tgt', 'tgt->src'):
        m = result.metrics[direction]
        assert set(m) >= {'hits@1', 'hits@5', 'hits@10', 'hits@50', 'mrr'}
        assert m['hits@1'] <= m['hits@5'] <= m['hits@10'] <= m['hits@50']
        # Random ranking over ~280 test targets gives Hits@1 around 0.004.
        assert m['hits@1'] > 0.08
    assert set(result.extra_metrics['csls']['src->tgt']) >= {'hits@1', 'mrr'}
    (info,) = result.history
    assert set(info) >= {'round', 'epochs', 'loss', 'train_pairs',
                         'train_seconds', 'src->tgt', 'tgt->src'}
    assert info['epochs'] == 200 and info['train_pairs'] == 108
    assert set(result.timings) >= {'prepare', 'train', 'evaluate', 'bootstrap',
                                   'total'}
    assert result.timings['bootstrap'] == 0


def test_name_features_align_entities_with_equal_names():
    data = synthetic_pair(300, num_relations=15, seed=2)
    # Give each target entity the (random-looking) name of its counterpart.
    src, tgt = data['src', 'link', 'tgt'].edge_label_index
    words = ['alpha', 'bravo', 'delta', 'kilo', 'lima', 'oscar', 'sierra', 'tango']
    names = [f'{words[i % 8]}_{words[(i // 8) % 8]}_{i * 7919 % 1000}'
             for i in range(300)]
    data['src'].uri = [f'http://kg1.org/{n}' for n in names]
    tgt_uri = [f'http://kg2.org/unlinked{j}' for j in range(300)]
    for s, t in zip(src.tolist(), tgt.tolist()):
        tgt_uri[t] = f'http://kg2.org/{names[s]}'
    data['tgt'].uri = tgt_uri
    result = train_rdgcn(data, small_config(features='names', epochs=10),
                         progress=False)
    assert result.metrics['src->tgt']['hits@1'] > 0.9
    assert result.metrics['tgt->src']['hits@1'] > 0.9
    learned = train_rdgcn(data, small_config(epochs=10), progress=False)
    assert learned.metrics['src->tgt']['hits@1'] < 0.5
    assert result.protocol['names']['source'] == 'uri'
    # The same names as a names file: the hybrid features (several hundred
    # bigram columns), projected to the model's 64 channels.
    data['src'].name = [n.replace('_', ' ') for n in names]
    data['tgt'].name = [u.rsplit('/', 1)[1].replace('_', ' ') for u in tgt_uri]
    hybrid = train_rdgcn(data, small_config(features='names', epochs=10),
                         progress=False)
    assert hybrid.model.x_init.shape == (600, 64)
    assert hybrid.protocol['names']['source'] == 'file'
    assert hybrid.protocol['names']['encoder'].endswith('bigrams')
    assert hybrid.metrics['src->tgt']['hits@1'] > 0.9


def test_eval_every_records_rounds():
    data = synthetic_pair(150, num_relations=10, seed=4)
    result = train_rdgcn(data, small_config(epochs=7, eval_every=3),
                         progress=False)
    assert [h['epochs'] for h in result.history] == [3, 3, 1]  # since the last
    assert [h['round'] for h in result.history] == [0, 1, 2]
    assert result.metrics == {k: v for k, v in result.history[-1].items()
                              if '->' in k}
    assert sum(h['train_seconds'] for h in result.history) == pytest.approx(
        result.timings['train'])


def test_rejects_unknown_features():
    with pytest.raises(ValueError, match="'features' must be one of"):
        train_rdgcn(synthetic_pair(50, seed=0), RDGCNConfig(features='words'),
                    progress=False)


def test_chunked_loss_equals_autograd_loss():
    torch.manual_seed(0)
    x = torch.randn(30, 5, dtype=torch.float64, requires_grad=True)
    pairs = torch.stack([torch.arange(8), torch.arange(8) + 10])
    negatives = torch.randint(30, (2, 8, 4))
    negatives[1, 0, 0] = 0  # the anchor itself, as the official sampler gives
    negatives[0, 1, 1] = 11  # the true partner
    for gamma in (0.5, 3.0, 30.0):  # from few to all terms active
        dense = MarginRankingL1Loss(gamma)(x, pairs, negatives)
        grad_dense, = torch.autograd.grad(dense, x)
        chunked = chunked_margin_l1_loss(x, pairs, negatives, gamma, chunk_size=3)
        grad_chunked, = torch.autograd.grad(chunked, x)
        assert torch.allclose(chunked, dense)
        assert torch.allclose(grad_chunked, grad_dense)
    with pytest.raises(ValueError, match='negatives'):
        chunked_margin_l1_loss(x, pairs, negatives[0])


def test_l1_nearest_chunked_equals_dense():
    torch.manual_seed(0)
    query, x = torch.randn(7, 5), torch.randn(50, 5)
    dense = torch.cdist(query, x, p=1).topk(4, largest=False).indices
    assert torch.equal(l1_nearest(query, x, 4, chunk_size=3), dense)
    assert torch.equal(l1_nearest(query, x, 4, chunk_size=3, candidates=50), dense)
    approx = l1_nearest(query, x, 4, chunk_size=3, candidates=10)
    assert approx.shape == (7, 4) and (approx == dense).float().mean() > 0.5
    assert torch.equal(l1_nearest(x[:3], x, 1)[:, 0], torch.arange(3))  # itself
    with pytest.raises(ValueError, match="'k'"):
        l1_nearest(query, x, 51)


def test_cli_trains_rdgcn(tmp_path, capsys):
    out = tmp_path / 'run'
    assert main(['train', '--model', 'rdgcn', '--num-entities', '200', '--set',
                 'epochs=20', '--set', 'features=learned', '--json', '--out',
                 str(out)]) == 0
    results = json.loads((out / 'results.json').read_text())
    assert results['model'] == 'rdgcn' and results['config']['epochs'] == 20
    assert results['config']['features'] == 'learned'
    for direction in ('src->tgt', 'tgt->src'):
        assert 0 < results[direction]['mrr'] <= 1
    assert 'csls' in results['extra_metrics']
    assert json.loads(capsys.readouterr().out)['model'] == 'rdgcn'
    state = torch.load(out / 'model.pt', weights_only=True)
    model = RDGCN(**state['init_args'])
    model.load_state_dict(state['state_dict'])  # the saved model rebuilds


@pytest.mark.real_data
@pytest.mark.slow
def test_a_few_epochs_on_dbp15k_zh_en(mirror, dataset_root):
    data = DBP15K(dataset_root, 'zh_en', seed=0)[0]
    cfg = RDGCNConfig(epochs=3, negative_candidates=200)
    result = train_rdgcn(data, cfg, progress=False)
    # Untranslated name n-grams alone reach about 0.06-0.08 Hits@1 here.
    for direction in ('src->tgt', 'tgt->src'):
        assert result.metrics[direction]['hits@1'] > 0.05
        assert result.extra_metrics['csls'][direction]['hits@1'] > 0.05
