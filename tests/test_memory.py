r"""Memory foresight (issue 19, deliverable 3): the estimate's sizes, its
tensor terms against the allocator's own count on real training steps,
the settings that fit a limit, and the CLI stopping before any work."""
import ctypes
import json
import subprocess
import sys
import threading
import time
from dataclasses import replace

import pytest
import torch

from torch_geometric_ea.precision import using
from hypothesis import given, settings
from hypothesis import strategies as st

from torch_geometric_ea.data import synthetic_pair
from torch_geometric_ea.data.pair import to_union
from torch_geometric_ea.nn import (
    DualAMN,
    NormalizedHardSampleMiningLoss,
    dual_amn_graph,
)
from torch_geometric_ea.nn.sampling import loss_candidates
from torch_geometric_ea.train.common import prepare_run
from torch_geometric_ea.train.dual_amn import (
    DualAMNConfig,
    batch_loss,
    rows_to_embed,
)
from torch_geometric_ea.train.gcn_align import GCNAlignConfig
from torch_geometric_ea.train.lightea import LightEAConfig
from torch_geometric_ea.train.memory import (
    PairSize,
    available_memory,
    estimate_memory,
    fitting_settings,
    pair_size,
)
from torch_geometric_ea.train.rdgcn import RDGCNConfig

CONFIGS = {'dual-amn': DualAMNConfig, 'lightea': LightEAConfig,
           'gcn-align': GCNAlignConfig, 'rdgcn': RDGCNConfig}


def test_pair_size_counts_merged_edges_independently():
    data = synthetic_pair(300, seed=3)
    size = pair_size(data)
    union = to_union(data)
    pairs = set()
    for h, t in union.edge_index.t().tolist():
        pairs.update({(h, t), (t, h)})
    assert size.merged_edges == len(pairs)
    assert size.entities == union.num_nodes
    assert size.triples == union.edge_index.size(1)
    assert size.train_links + size.test_links <= union.link_index.size(1)
    graph = dual_amn_graph(union.edge_index, union.edge_type, union.num_nodes,
                           union.num_relations)
    assert graph.edge_index.size(1) == size.merged_edges


sizes = st.builds(PairSize, entities=st.integers(1_000, 3_000_000),
                  relations=st.integers(1, 5_000),
                  triples=st.integers(1_000, 10 ** 7),
                  merged_edges=st.integers(1_000, 2 * 10 ** 7),
                  train_links=st.integers(10, 300_000),
                  test_links=st.integers(10, 700_000))


@settings(max_examples=60, deadline=None)
@given(size=sizes, model=st.sampled_from(sorted(CONFIGS)),
       grow=st.sampled_from(['entities', 'merged_edges', 'test_links']))
def test_a_larger_pair_never_needs_less(size, model, grow):
    cfg = CONFIGS[model]()
    larger = replace(size, **{grow: getattr(size, grow) * 2})
    assert (estimate_memory(model, larger, cfg).peak
            >= estimate_memory(model, size, cfg).peak)


@settings(max_examples=40, deadline=None)
@given(size=sizes, factor=st.sampled_from([2, 4]))
def test_dual_amn_grows_with_channels_and_batch(size, factor):
    cfg = DualAMNConfig(candidates='random')
    for field in ('channels', 'batch_size'):
        more = replace(cfg, **{field: getattr(cfg, field) * factor})
        assert (estimate_memory('dual-amn', size, more).peak
                >= estimate_memory('dual-amn', size, cfg).peak)


def test_a_kept_heap_is_estimated_above_a_returned_one():
    size = pair_size(synthetic_pair(2000, seed=0))
    kept = estimate_memory('dual-amn', size, DualAMNConfig(), heap_kept=True)
    returned = estimate_memory('dual-amn', size, DualAMNConfig(), heap_kept=False)
    assert kept.peak > returned.peak
    assert kept.peak - returned.peak == kept.parts['heap growth']


class _MallInfo(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        'arena', 'ordblks', 'smblks', 'hblks', 'hblkhd', 'usmblks', 'fsmblks',
        'uordblks', 'fordblks', 'keepcost')]


def _allocated():
    r"""The bytes glibc's allocator has handed out and not taken back."""
    libc = ctypes.CDLL('libc.so.6')
    libc.mallinfo2.restype = _MallInfo
    info = libc.mallinfo2()
    return info.uordblks + info.hblkhd


def _transient(fn) -> int:
    r"""The most bytes allocated at once while ``fn`` runs, beyond those
    allocated before it (sampled every 0.2 ms from another thread: the
    large tensors of a step live for milliseconds at least)."""
    base, top, done = _allocated(), [0], []

    def watch():
        while not done:
            top[0] = max(top[0], _allocated())
            time.sleep(0.0002)
    thread = threading.Thread(target=watch)
    thread.start()
    fn()
    done.append(True)
    thread.join()
    return top[0] - base


def _has_mallinfo2() -> bool:
    try:
        ctypes.CDLL('libc.so.6').mallinfo2
        return sys.platform.startswith('linux')
    except (OSError, AttributeError):
        return False


@pytest.mark.skipif(not _has_mallinfo2(), reason='needs glibc 2.33 (mallinfo2)')
@pytest.mark.parametrize('entities, candidates, batch, channels', [
    (10_000, 'all', 1024, 128), (40_000, 'random', 2048, 64)])
@pytest.mark.parametrize('precision', ['float32', 'bfloat16'])
def test_dual_amn_step_and_embedding_tensors_match_the_allocator(
        entities, candidates, batch, channels, precision):
    data = synthetic_pair(entities, seed=0)
    cfg = DualAMNConfig(candidates=candidates, batch_size=batch, channels=channels,
                        precision=precision)
    estimate = estimate_memory('dual-amn', pair_size(data), cfg, heap_kept=False)
    run = prepare_run(data, 0, 'cpu', lambda u: dual_amn_graph(
        u.edge_index, u.edge_type, u.num_nodes, u.num_relations))
    model = DualAMN(run.union.num_nodes, run.union.num_relations, channels)
    loss_fn = NormalizedHardSampleMiningLoss()
    optimizer = torch.optim.RMSprop(model.parameters(), lr=cfg.lr)

    def step():
        pairs = run.train_pairs[:, :batch]
        sample = loss_candidates(cfg.candidates, cfg.num_candidates, pairs,
                                 run.union.num_nodes)
        optimizer.zero_grad(set_to_none=False)
        batch_loss(model, run.graph, loss_fn, pairs, run.union.node_type, 0, 1,
                   sample).backward()
        optimizer.step()

    with using(precision):
        step()  # gradients and optimiser state exist from here on
        measured = _transient(step)
    assert 0.75 < estimate.phases['train'] / measured < 1.3
    rows = rows_to_embed(run.test_pairs, run.test_pairs[0, :0])[0]
    model.eval()
    with torch.no_grad():
        measured = _transient(lambda: model(run.graph, rows))
    assert 0.75 < estimate.phases['embed'] / measured < 1.3


def test_fitting_settings_fit_and_change_only_what_they_name():
    size = PairSize(entities=2_000_000, relations=540, triples=8_900_000,
                    merged_edges=17_800_000, train_links=270_000, test_links=630_000)
    cfg = DualAMNConfig()
    estimate = estimate_memory('dual-amn', size, cfg)
    limit = estimate.peak // 3
    fit = fitting_settings('dual-amn', size, cfg, limit)
    assert fit and set(fit) <= {'candidates', 'num_candidates', 'batch_size',
                                'channels'}
    assert estimate_memory('dual-amn', size, replace(cfg, **fit)).peak <= limit
    assert fitting_settings('dual-amn', size, cfg, 1) is None  # nothing fits a byte


def test_available_memory_is_positive_where_it_can_be_read():
    available = available_memory()
    if sys.platform.startswith('linux'):
        assert available is not None and available > 0


def _train(tmp_path, *options):
    out = tmp_path / 'run'
    command = [sys.executable, '-m', 'torch_geometric_ea', 'train', '--model',
               'dual-amn', '--dataset', 'synthetic', '--num-entities', '3000',
               '--epochs', '2', '--device', 'cpu', '--json', '--out', str(out),
               *options]
    return subprocess.run(command, capture_output=True, text=True), out


def test_a_run_records_its_estimate_beside_its_peak(tmp_path):
    run, out = _train(tmp_path)
    assert run.returncode == 0, run.stderr
    assert 'memory estimate:' in run.stderr
    results = json.loads((out / 'results.json').read_text())
    estimate = results['memory_estimate']
    assert estimate['phase'] in ('train', 'backward', 'embed', 'evaluate')
    assert estimate['gib'] == pytest.approx(sum(estimate['parts_gib'].values()),
                                            abs=0.01)
    assert 0.5 < estimate['gib'] / results['peak_memory_gib'] < 2


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='Linux /proc')
def test_a_child_of_a_large_process_reports_its_own_peak():
    held = torch.ones(2 ** 28)  # 1 GiB resident here; a fork copies the mapping
    code = ('from torch_geometric_ea.train import peak_memory_gib; '
            'print(peak_memory_gib())')
    run = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, preexec_fn=lambda: None)  # fork, not vfork
    assert float(run.stdout) < 0.9, run.stdout
    del held


def test_a_run_above_max_memory_stops_before_any_work(tmp_path):
    started = time.perf_counter()
    run, out = _train(tmp_path, '--max-memory', '0.4')
    assert run.returncode != 0
    lines = run.stderr.strip().splitlines()
    assert lines[-1].startswith('error: the estimated peak memory')
    assert '--set' in lines[-1] or 'none of the smaller settings' in lines[-1]
    assert not (out / 'model.pt').exists() and not (out / 'results.json').exists()
    assert 'round 0' not in run.stderr
    assert time.perf_counter() - started < 60


def test_the_suggested_settings_pass_the_same_limit(tmp_path):
    run, _ = _train(tmp_path, '--max-memory', '1.0', '--set', 'channels=512')
    line = run.stderr.strip().splitlines()[-1]
    assert run.returncode != 0 and '--set' in line, line
    suggested = line.split('GiB): ')[1].split(' (--max-memory')[0].split()
    run, out = _train(tmp_path, '--max-memory', '1.0', '--set', 'channels=512',
                      *suggested)
    assert run.returncode == 0, run.stderr
    results = json.loads((out / 'results.json').read_text())
    assert results['memory_estimate']['gib'] <= 1.0


#: DBP15K zh_en (seed 0) with its translated names: 50 word-vector and
#: 1,811 character-bigram columns.
ZH_EN = PairSize(entities=38_960, relations=3_024, triples=165_556,
                 merged_edges=259_545, train_links=4_500, test_links=10_500,
                 name_columns=1_861)
NAMED = {'lightea': LightEAConfig(literal=True),
         'dual-amn': DualAMNConfig(literal=True),
         'rdgcn': RDGCNConfig(features='names')}


@pytest.mark.parametrize('model', sorted(NAMED))
def test_the_estimate_grows_with_the_width_of_the_names(model):
    narrow = replace(ZH_EN, name_columns=100)
    wide, small = (estimate_memory(model, size, NAMED[model])
                   for size in (ZH_EN, narrow))
    assert wide.phases['encoding'] > small.phases['encoding']
    if model != 'rdgcn':  # RDGCN peaks in training, whatever the names' width
        assert wide.peak > small.peak
    # URI names: hashed to the run's name_dim (LightEA, Dual-AMN) columns
    uri = replace(ZH_EN, name_columns=0)
    if model != 'rdgcn':
        wide = replace(NAMED[model], name_dim=4000)
        assert (estimate_memory(model, uri, wide).peak
                > estimate_memory(model, uri, NAMED[model]).peak)


def test_lightea_with_names_counts_its_evaluated_matrix_and_rows():
    # [structure || name view]: 8,192 + 3 x 1,861 + 8,192 columns for
    # every entity, and the targets' test rows of it, unit, beside it (the
    # sources are gathered a chunk at a time).
    cols = 2 * 512 * 16 + 3 * ZH_EN.name_columns
    floor = 4 * cols * (ZH_EN.entities + ZH_EN.test_links)
    estimate = estimate_memory('lightea', ZH_EN, NAMED['lightea'])
    assert estimate.peak - estimate.parts['runtime'] > floor
    plain = estimate_memory('lightea', ZH_EN, LightEAConfig())
    assert estimate.peak > plain.peak + 4 * (cols - 8192) * ZH_EN.entities


def test_pair_size_counts_the_hybrid_name_columns():
    from torch_geometric_ea.data.names import HybridNameEncoder, encode_names
    data = synthetic_pair(300, seed=1)
    assert pair_size(data).name_columns == 0  # URI names: the run's name_dim
    for side, offset in (('src', 0), ('tgt', 7)):
        data[side].name = [f'name {i + offset} of {side}' for i in
                           range(data[side].num_nodes)]
    width = encode_names(data, HybridNameEncoder(words=False), union=True).size(1)
    assert pair_size(data).name_columns == 50 + width


def test_a_literal_lightea_run_peaks_within_a_quarter_of_its_estimate(tmp_path):
    # Names hashed to 1,024 columns outweigh the structure's 512: the name
    # view's matrix, its rows and the encoding are most of the peak.
    out = tmp_path / 'run'
    run = subprocess.run(
        [sys.executable, '-m', 'torch_geometric_ea', 'train', '--model', 'lightea',
         '--literal', '--dataset', 'synthetic', '--num-entities', '10000',
         '--set', 'ent_dim=128', '--set', 'rel_dim=64', '--set', 'mini_dim=8',
         '--set', 'name_dim=1024', '--device', 'cpu', '--json', '--out', str(out)],
        capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    results = json.loads((out / 'results.json').read_text())
    ratio = results['memory_estimate']['gib'] / results['peak_memory_gib']
    assert 0.75 < ratio < 1.25, (results['memory_estimate'], results['peak_memory_gib'])


def test_align_counts_the_candidates_of_every_unlinked_entity():
    # LightEA's features are wide: align's ranking of the unlinked rows
    # (both sides gathered beside the whole matrix) outweighs its evaluation
    plain = estimate_memory('lightea', ZH_EN, LightEAConfig())
    ranked = estimate_memory('lightea', ZH_EN, LightEAConfig(), candidates=True)
    assert ranked.phase == 'candidates' and ranked.peak > plain.peak
    free = ZH_EN.entities - 2 * ZH_EN.train_links
    assert ranked.parts['candidates'] >= 4 * free * 512 * 16  # rows x columns
