r"""Settings picked from the pair's size for the options a user left unset
(issue 17, deliverable 7)."""
import pytest
import torch

from torch_geometric_ea.cli import build_config, build_parser
from torch_geometric_ea.data import kg_pair
from torch_geometric_ea.train.scale import (
    MILLION_ENTITIES,
    SCALE_ENTITIES,
    keeps_freed_memory,
    scale_settings,
)


def sized_pair(num_nodes, num_train):
    edges = torch.tensor([[0], [1]])
    links = torch.arange(num_train + 10).repeat(2, 1)
    train = torch.arange(num_train + 10) < num_train
    return kg_pair(num_nodes=(num_nodes, num_nodes), edge_index=(edges, edges),
                   edge_type=(torch.zeros(1, dtype=torch.long),) * 2,
                   link_index=links, train_mask=train, test_mask=~train)


def test_paper_size_pairs_keep_the_paper_settings():
    dbp15k = sized_pair(19_572, 4_500)  # zh_en: 19,388 + 19,572 entities
    for model in ('dual-amn', 'lightea', 'gcn-align', 'rdgcn'):
        assert scale_settings(model, dbp15k, ()) == {}
    assert scale_settings('dual-amn', sized_pair(SCALE_ENTITIES // 2, 10), ()) == {}


@pytest.mark.parametrize('num_nodes, num_train, batch', [
    (100_000, 27_000, 8192), (100_000, 2_000, 1024), (1_000_000, 270_000, 32768)])
def test_large_pairs_score_random_candidates_in_larger_batches(num_nodes, num_train,
                                                               batch):
    pair = sized_pair(num_nodes, num_train)
    million = (dict(channels=64, eval_top_k=10) if 2 * num_nodes > MILLION_ENTITIES
               else {})
    assert scale_settings('dual-amn', pair, ()) == dict(
        candidates='random', num_candidates=4096, batch_size=batch,
        precision='float32', **million)
    assert scale_settings('gcn-align', pair, ()) == {}


def test_million_entity_dual_amn_keeps_the_channels_the_user_set():
    pair = sized_pair(1_000_000, 270_000)
    assert scale_settings('dual-amn', pair, ('channels', )) == dict(
        candidates='random', num_candidates=4096, batch_size=32768, eval_top_k=10,
        precision='float32')


def test_lightea_narrows_its_features_with_the_pair():
    assert scale_settings('lightea', sized_pair(100_000, 27_000), ()) == dict(
        projection='kronecker', rel_dim=128, mini_dim=8, both_ways=False)
    assert scale_settings('lightea', sized_pair(MILLION_ENTITIES // 2, 10), ()) == dict(
        projection='kronecker', rel_dim=128, mini_dim=8, both_ways=False)
    million = sized_pair(1_000_000, 270_000)
    assert scale_settings('lightea', million, ('top_k', )) == dict(
        projection='kronecker', ent_dim=256, rel_dim=32, mini_dim=4, both_ways=False)


def test_options_the_user_set_are_kept_and_the_rest_reported(capsys):
    pair = sized_pair(100_000, 27_000)
    args = build_parser().parse_args(['train', '--model', 'dual-amn',
                                      '--batch-size', '2048'])
    config = build_config('dual-amn', args, pair)
    assert (config.batch_size, config.candidates, config.num_candidates) == (
        2048, 'random', 4096)
    assert args.scale_settings == dict(candidates='random', num_candidates=4096,
                                       precision='float32')
    assert 'scale settings for a pair of 200,000 entities' in capsys.readouterr().err
    args = build_parser().parse_args(['train', '--model', 'lightea', '--set',
                                      'projection=gaussian'])
    config = build_config('lightea', args, pair)
    assert (config.projection, config.rel_dim, config.mini_dim) == ('gaussian', 128, 8)
    args = build_parser().parse_args(['train', '--model', 'dual-amn'])
    assert build_config('dual-amn', args, sized_pair(15_000, 4_500)).batch_size == 1024
    assert args.scale_settings == {}


def test_million_entity_dual_amn_leaves_the_allocator_as_it_is():
    million, dbp15k = sized_pair(1_000_000, 270_000), sized_pair(19_572, 4_500)
    assert not keeps_freed_memory('dual-amn', million)
    assert keeps_freed_memory('dual-amn', dbp15k)
    assert keeps_freed_memory('lightea', million)


def test_cli_keeps_freed_memory_as_the_pair_size_says(monkeypatch, capsys):
    import json
    import torch_geometric_ea.cli as cli
    import torch_geometric_ea.resources as resources
    import torch_geometric_ea.train.scale as scale
    calls = []
    monkeypatch.setattr(resources, 'keep_freed_memory', lambda: calls.append(1) or True)
    args = ['train', '--num-entities', '60', '--epochs', '1', '--set', 'channels=8',
            '--device', 'cpu', '--json']
    assert cli.main(args) == 0
    assert json.loads(capsys.readouterr().out)['runtime']['keeps_freed_memory']
    monkeypatch.setattr(scale, 'MILLION_ENTITIES', 100)  # the pair has 120
    assert cli.main(args) == 0
    assert not json.loads(capsys.readouterr().out)['runtime']['keeps_freed_memory']
    assert calls == [1]
