import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from torch_geometric_ea import precision
from torch_geometric_ea.cli import main
from unittest import mock

from torch_geometric_ea.metrics import similarity
from torch_geometric_ea.metrics.similarity import search_dtype
from torch_geometric_ea.metrics.topk import (
    blocked_topk,
    topk_both_ways,
    topk_inner_products,
)
from torch_geometric_ea.nn.functional import unit_rows_
from torch_geometric_ea.nn.models.lightea import LightEA, lightea_graph
from torch_geometric_ea.train import LightEAConfig, train_lightea
from torch_geometric_ea.train.config import ConfigError
from torch_geometric_ea.data import synthetic_pair
from torch_geometric_ea.data.pair import to_union

BF16_RESOLUTION = 2 ** -8  # bfloat16 keeps 8 significant bits


def test_explicit_precisions_resolve_to_themselves():
    for name in ('float32', 'bfloat16'):
        p = precision.resolve_precision(name, 'cpu')
        assert p.used == p.requested == name and p.dtype == getattr(torch, name)
    with pytest.raises(ValueError, match="'precision' must be one of"):
        precision.resolve_precision('half')


@pytest.mark.parametrize('speedup, flags, used', [
    (5.2, ('amx_bf16', 'avx512_bf16'), 'bfloat16'),  # a Xeon with AMX
    (0.28, (), 'float32'),  # AVX2 only: bfloat16 products 3.6x slower
    (1.2, ('avx512_bf16',), 'float32'),  # faster, but not enough to matter
])
def test_auto_on_the_cpu_follows_the_timed_probe(monkeypatch, speedup, flags, used):
    monkeypatch.setattr(precision, 'bfloat16_speedup', lambda: speedup)
    monkeypatch.setattr(precision, 'cpu_bf16_flags', lambda: flags)
    p = precision.resolve_precision('auto', 'cpu')
    assert p.used == used and p.requested == 'auto'
    assert f'{speedup:.1f}x' in p.reason


@pytest.mark.parametrize('capability, used', [((9, 0), 'bfloat16'), ((8, 0), 'bfloat16'),
                                              ((7, 5), 'float32')])
def test_auto_on_cuda_follows_the_tensor_cores(monkeypatch, capability, used):
    monkeypatch.setattr(torch.cuda, 'get_device_capability', lambda device: capability)
    assert precision.resolve_precision('auto', 'cuda').used == used


def test_the_probe_times_real_products_and_leaves_the_random_state():
    precision.bfloat16_speedup.cache_clear()
    state = torch.get_rng_state()
    speedup = precision.bfloat16_speedup()
    assert torch.equal(torch.get_rng_state(), state)  # else the first run differs
    assert speedup > 0 and precision.bfloat16_speedup() == speedup  # once a process


def test_using_sets_the_product_dtype_and_restores_it():
    x = torch.randn(3, 4)
    assert precision.product_dtype() == torch.float32
    assert precision.for_products(x) is x
    with precision.using('bfloat16'):
        assert precision.product_dtype() == torch.bfloat16
        assert precision.for_products(x).dtype == torch.bfloat16
        assert precision.for_products(x.double()).dtype == torch.float64
        with precision.using('float32'):
            assert precision.product_dtype() == torch.float32
        assert precision.product_dtype() == torch.bfloat16
    assert precision.current().used == 'float32'


def test_autocast_decides_the_product_dtype():
    with torch.autocast('cpu', dtype=torch.bfloat16):
        assert precision.product_dtype('cpu') == torch.bfloat16
    with precision.using('bfloat16'), torch.autocast('cpu', enabled=False):
        assert precision.product_dtype('cpu') == torch.bfloat16


def test_configs_refuse_an_unknown_precision():
    with pytest.raises(ConfigError, match="'precision' must be one of"):
        LightEAConfig(precision='half')


def _unit(n, d, seed):
    return unit_rows_(torch.randn(n, d, generator=torch.Generator().manual_seed(seed)))


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 60), m=st.integers(1, 70), d=st.integers(1, 40),
       k=st.integers(1, 12), seed=st.integers(0, 2 ** 16))
def test_bfloat16_top_k_is_the_float32_top_k_up_to_its_resolution(n, m, d, k, seed):
    # Every selected value is the float32 score of its pair within bfloat16's
    # resolution, and nothing left out beats the k-th selected by more.
    x, y = _unit(n, d, seed), _unit(m, d, seed + 1)
    exact = x @ y.t()
    with precision.using('bfloat16'), mock.patch.object(similarity, 'LOW_PRECISION_MIN_WIDTH', 1):
        results = [topk_inner_products(x, y, k, chunk_size=7),
                   topk_both_ways(x, y, k, chunk_size=7)[:2],
                   topk_both_ways(x, y, k, chunk_size=7)[2:],
                   blocked_topk(x, y, k, row_block=5, col_block=6)[:2]]
    for i, (values, index) in enumerate(results):
        scores = exact.t() if i == 2 else exact
        assert values.dtype == torch.float32
        picked = scores.gather(1, index)
        assert (values - picked).abs().max() <= 2 * BF16_RESOLUTION
        kth = picked.min(dim=1, keepdim=True).values
        left = scores.clone()
        left.scatter_(1, index, -2.0)
        assert (left <= kth + 2 * BF16_RESOLUTION).all()


def test_bfloat16_top_k_differs_from_float32_so_the_products_ran_low():
    x, y = _unit(50, 64, 0), _unit(80, 64, 1)
    values32 = topk_inner_products(x, y, 5)[0]
    with precision.using('bfloat16'):
        assert torch.equal(topk_inner_products(x, y, 5)[0], values32)  # too narrow
        with mock.patch.object(similarity, 'LOW_PRECISION_MIN_WIDTH', 64):
            values16 = topk_inner_products(x, y, 5)[0]
        assert search_dtype(1024, 'cpu') == torch.bfloat16
        assert search_dtype(1023, 'cpu') == torch.float32
    assert not torch.equal(values16, values32)
    assert torch.allclose(values16, values32, atol=2 * BF16_RESOLUTION)


def test_lightea_features_in_bfloat16_match_float32_row_by_row():
    union = to_union(synthetic_pair(300, num_relations=15, seed=2))
    graph = lightea_graph(union.edge_index, union.edge_type, union.num_nodes,
                          union.num_relations)
    model = LightEA(ent_dim=64, depth=2, rel_dim=16, mini_dim=4)
    pairs = torch.stack([torch.arange(0, 90), torch.arange(300, 390)])
    full = model(graph, pairs, torch.Generator().manual_seed(0))
    with precision.using('bfloat16'):
        low = model(graph, pairs, torch.Generator().manual_seed(0))
    assert low.dtype == torch.float32 and not torch.equal(low, full)
    cosine = (low * full).sum(1)[full.norm(dim=1) > 0]
    assert cosine.min() > 0.999


def test_runs_record_the_precision_they_used(tmp_path):
    data = synthetic_pair(200, num_relations=10, seed=1)
    cfg = dict(ent_dim=64, rel_dim=16, mini_dim=4, top_k=20)
    runs = {p: train_lightea(data, LightEAConfig(precision=p, **cfg), progress=False)
            for p in ('float32', 'bfloat16')}
    for name, result in runs.items():
        assert result.protocol['precision']['used'] == name
    h32 = runs['float32'].metrics['src->tgt']['hits@1']
    h16 = runs['bfloat16'].metrics['src->tgt']['hits@1']
    assert abs(h32 - h16) <= 0.05  # 63 test links: at most 3 ranks change
    out = tmp_path / 'run'
    assert main(['train', '--model', 'lightea', '--num-entities', '200',
                 '--set', 'ent_dim=64', '--set', 'rel_dim=16', '--set', 'top_k=20',
                 '--precision', 'bfloat16', '--out', str(out), '--json']) == 0
    saved = json.loads((out / 'results.json').read_text())
    assert saved['protocol']['precision']['used'] == 'bfloat16'
    assert saved['config']['precision'] == 'bfloat16'


def test_the_command_line_refuses_an_unknown_precision(capsys):
    with pytest.raises(SystemExit) as stop:
        main(['train', '--model', 'lightea', '--precision', 'half'])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith('error: argument --precision') and '\n' not in err
