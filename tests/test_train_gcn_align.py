import json

import pytest
import torch

from torch_geometric_ea.cli import main
from torch_geometric_ea.data import DBP15K, synthetic_pair
from torch_geometric_ea.nn import GCNAlign
from torch_geometric_ea.train import GCNAlignSpec, get_model, GCNAlignConfig, train_gcn_align

METRICS = {'hits@1', 'hits@5', 'hits@10', 'mrr'}


def test_defaults_are_the_official_ones():
    cfg = GCNAlignConfig()
    assert (cfg.channels, cfg.epochs, cfg.lr, cfg.gamma) == (200, 2000, 20.0, 3.0)
    assert (cfg.num_negatives, cfg.resample_every, cfg.seed) == (5, 10, 0)
    assert get_model('gcn-align') is GCNAlignSpec and GCNAlignSpec.config_class is GCNAlignConfig


def test_gcn_align_learns_a_synthetic_pair():
    data = synthetic_pair(300, num_relations=15, seed=1)
    cfg = GCNAlignConfig(channels=32, epochs=100, eval_every=50)
    result = train_gcn_align(data, cfg, progress=False)
    for metrics in (result.metrics, result.extra_metrics['csls']):
        for direction in ('src->tgt', 'tgt->src'):
            m = metrics[direction]
            assert set(m) == METRICS
            assert m['hits@1'] <= m['hits@5'] <= m['hits@10']
    # Random ranking over ~190 test targets gives Hits@1 around 0.005.
    assert result.metrics['src->tgt']['hits@1'] > 0.3
    assert result.metrics['tgt->src']['hits@1'] > 0.3
    assert [h['round'] for h in result.history] == [0, 1]
    assert [h['epochs'] for h in result.history] == [50, 50]
    assert result.metrics == {k: v for k, v in result.history[-1].items()
                              if '->' in k}
    assert result.history[1]['loss'] < result.history[0]['loss'] < 3.0
    assert set(result.timings) == {'prepare', 'train', 'evaluate', 'bootstrap',
                                   'total'}
    assert result.timings['bootstrap'] == 0 and result.timings['train'] > 0
    assert result.embed().shape == (600, 32)


def test_same_seed_same_run_and_untrained_is_poor():
    data = synthetic_pair(200, num_relations=10, seed=2)
    cfg = GCNAlignConfig(channels=16, epochs=20)
    a = train_gcn_align(data, cfg, progress=False)
    b = train_gcn_align(data, cfg, progress=False)
    assert a.metrics == b.metrics
    assert torch.equal(a.model.ent_emb, b.model.ent_emb)
    untrained = train_gcn_align(data, GCNAlignConfig(channels=16, epochs=1, lr=0),
                                progress=False)
    assert untrained.metrics['src->tgt']['hits@1'] < a.metrics['src->tgt']['hits@1']


def with_features(data, noise=0.1, dim=40, seed=0):
    r"""Binary features shared by aligned entities, with a few bits flipped."""
    gen = torch.Generator().manual_seed(seed)
    links = data['src', 'link', 'tgt'].edge_label_index
    x_src = (torch.rand(data['src'].num_nodes, dim, generator=gen) < 0.2).float()
    x_tgt = (torch.rand(data['tgt'].num_nodes, dim, generator=gen) < 0.2).float()
    x_tgt[links[1]] = x_src[links[0]]
    flip = torch.rand(x_tgt.shape, generator=gen) < noise
    x_tgt[flip] = 1 - x_tgt[flip]
    data['src'].x, data['tgt'].x = x_src, x_tgt
    return data


def test_attribute_channel():
    data = with_features(synthetic_pair(200, num_relations=10, seed=3))
    cfg = GCNAlignConfig(channels=16, attr_channels=8, epochs=30)
    result = train_gcn_align(data, cfg, progress=False)
    assert result.init_args['in_channels'] == 40
    assert result.embed().shape == (400, 24)
    assert result.model.attr_weight.abs().sum() > 0
    ignored = train_gcn_align(data, GCNAlignConfig(channels=16, epochs=30,
                                                   attributes=False),
                              progress=False)
    assert ignored.init_args['in_channels'] is None
    assert ignored.embed().shape == (400, 16)
    data['tgt'].x = data['tgt'].x[:, :5]
    with pytest.raises(ValueError, match='differ in size'):
        train_gcn_align(data, cfg, progress=False)


def test_cli_trains_gcn_align(tmp_path, capsys):
    out = tmp_path / 'run'
    code = main(['train', '--model', 'gcn-align', '--num-entities', '200',
                 '--set', 'epochs=50', '--json', '--out', str(out)])
    assert code == 0
    results = json.loads((out / 'results.json').read_text())
    assert results['model'] == 'gcn-align' and results['config']['epochs'] == 50
    for direction in ('src->tgt', 'tgt->src'):
        assert set(results[direction]) == METRICS
        assert 0 < results[direction]['mrr'] <= 1
        assert set(results['extra_metrics']['csls'][direction]) == METRICS
    assert results['timings']['train'] > 0 and results['peak_memory_gib'] > 0
    assert len(results['history']) == 1
    assert json.loads(capsys.readouterr().out)['model'] == 'gcn-align'
    state = torch.load(out / 'model.pt', weights_only=True)
    model = GCNAlign(**state['init_args'])
    model.load_state_dict(state['state_dict'])  # the saved model rebuilds
    assert model.ent_emb.shape == (400, 200)


@pytest.mark.real_data
@pytest.mark.slow
def test_short_run_on_dbp15k_zh_en(mirror, dataset_root):
    data = DBP15K(dataset_root, 'zh_en', seed=0)[0]
    result = train_gcn_align(data, GCNAlignConfig(epochs=40), progress=False)
    # The full 2000 epochs reach about 0.4; 40 epochs already pass 0.3.
    assert result.metrics['src->tgt']['hits@1'] > 0.3
    assert result.metrics['tgt->src']['hits@1'] > 0.28
