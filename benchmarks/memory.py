r"""The estimated peak memory of a run beside its measured peak, for
Dual-AMN and LightEA on DBP15K zh_en and the synthetic 100K and 1M pairs
(each with the settings the CLI picks for its size) and the baselines on
DBP15K zh_en (GCN-Align also on the 100K pair, 20 epochs).

Each run is ``python -m torch_geometric_ea train ... --out OUT/NAME``; its
``results.json`` (the measured peak), kept as the record
``benchmarks/results/memory/NAME.json``. The estimate is
recomputed from the run's configuration and pair
(:func:`~torch_geometric_ea.train.memory.estimate_memory`), so a table
reflects the estimator of this checkout.

    TORCH_GEOMETRIC_EA_MIRROR=../shared/data python benchmarks/memory.py \
        --out runs/memory --reuse --docs

``--docs`` rewrites the table of ``docs/results/memory.rst`` (its block
``memory``, caption kept); ``--readme`` is its deprecated old name.
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
from dataclasses import fields

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

from docs_tables import write_block  # noqa: E402

import torch  # noqa: E402

from torch_geometric_ea.data import get_pair  # noqa: E402
from torch_geometric_ea.data.pair import to_union  # noqa: E402
from torch_geometric_ea.nn import dual_amn_graph, lightea_graph  # noqa: E402
from torch_geometric_ea.train import MODELS  # noqa: E402
from torch_geometric_ea.train.memory import estimate_memory, pair_size  # noqa: E402

DBP15K = ['--dataset', 'dbp15k', '--pair', 'zh_en']
RUNS = {
    'dual-amn_dbp15k': ['--model', 'dual-amn'] + DBP15K,
    'dual-amn_100k': ['--model', 'dual-amn', '--dataset', 'synthetic',
                      '--num-entities', '100000'],
    'dual-amn_1m': ['--model', 'dual-amn', '--dataset', 'synthetic',
                    '--num-entities', '1000000', '--epochs', '1'],
    'lightea_dbp15k': ['--model', 'lightea'] + DBP15K,
    'lightea_100k': ['--model', 'lightea', '--dataset', 'synthetic',
                     '--num-entities', '100000'],
    'lightea_1m': ['--model', 'lightea', '--dataset', 'synthetic',
                   '--num-entities', '1000000'],
    'gcn-align_dbp15k': ['--model', 'gcn-align'] + DBP15K,
    # 20 epochs: its 2,000 would take hours here; the peak is reached by then
    'gcn-align_100k': ['--model', 'gcn-align', '--dataset', 'synthetic',
                       '--num-entities', '100000', '--set', 'epochs=20'],
    'rdgcn_dbp15k': ['--model', 'rdgcn', '--set', 'features=learned', '--set',
                     'negative_candidates=1000'] + DBP15K,
    # With the translated names (word + character-bigram vectors, 1,861
    # columns on zh_en). Dual-AMN and RDGCN peak in their first epochs.
    'lightea-names_dbp15k': ['--model', 'lightea', '--literal'] + DBP15K,
    'dual-amn-names_dbp15k': ['--model', 'dual-amn', '--literal', '--epochs', '3']
    + DBP15K,
    'rdgcn-names_dbp15k': ['--model', 'rdgcn', '--set', 'epochs=20'] + DBP15K,
}
# The runs HEAP_GROWTH was measured on (not in the table of
# docs/results/memory.rst; its prose names them).
CALIBRATION = {
    'dual-amn_20k': ['--model', 'dual-amn', '--dataset', 'synthetic',
                     '--num-entities', '20000', '--threads', '1'],
    'dual-amn_40k': ['--model', 'dual-amn', '--dataset', 'synthetic',
                     '--num-entities', '40000', '--threads', '1'],
    'lightea_50k': ['--model', 'lightea', '--dataset', 'synthetic',
                    '--num-entities', '50000'],
    'lightea_200k': ['--model', 'lightea', '--dataset', 'synthetic',
                     '--num-entities', '200000'],
}


RECORDS = osp.join(ROOT, 'benchmarks', 'results', 'memory')


def run(name: str, out: str, reuse: bool, root: str) -> dict:
    r"""The ``results.json`` of run ``name``: with ``reuse``, its record in
    ``benchmarks/results/memory/NAME.json`` if there is one; else the run,
    in ``OUT/NAME``, whose results then become the record."""
    record = osp.join(RECORDS, f'{name}.json')
    if reuse and osp.exists(record):
        with open(record) as f:
            return json.load(f)
    folder = osp.join(out, name)
    command = [sys.executable, '-m', 'torch_geometric_ea', 'train',
               *{**RUNS, **CALIBRATION}[name],
               '--root', root, '--json', '--max-memory', '0', '--out', folder]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    with open(osp.join(folder, 'results.json')) as f:
        results = json.load(f)
    os.makedirs(RECORDS, exist_ok=True)
    with open(record, 'w') as f:
        json.dump(results, f, indent=2)
    return results


def estimate(results: dict, root: str):
    r"""The estimate for the run that wrote ``results``, recomputed."""
    config_cls = MODELS[results['model']][0]
    names = {f.name for f in fields(config_cls)}
    config = config_cls(**{k: v for k, v in results['config'].items() if k in names})
    data = get_pair(results['dataset'], results['pair'], root, seed=results['seed'],
                    num_entities=_num_entities(results) or 2000)
    kept = _heap_kept(results)
    return estimate_memory(results['model'], pair_size(data), config, kept)


def _heap_kept(results: dict) -> bool:
    # Records written before results.json named the allocator setting come
    # from CLI runs on the CPU, which kept freed memory since 3624667.
    return bool((results.get('runtime') or {}).get('keeps_freed_memory', True))


def _num_entities(results: dict):
    words = results['command'].split()
    return int(words[words.index('--num-entities') + 1]) if '--num-entities' in words \
        else None


HEADER = ['model', 'pair', 'settings', 'heap', 'estimate GiB (phase)',
          'measured peak GiB', 'estimate / peak']


def cells(results: dict, root: str) -> list:
    r"""The row of the run that wrote ``results`` (:data:`HEADER`), as text."""
    est = estimate(results, root)
    pair = (results['pair'] or f"synthetic {_num_entities(results):,}/side")
    scale = results.get('scale_settings') or {}
    settings = ', '.join(f'{k}={v}' for k, v in scale.items())
    peak = results['peak_memory_gib']
    heap = 'kept' if _heap_kept(results) else 'returned'
    config = results['config']
    names = config.get('literal') or config.get('features') == 'names'
    model = results['model'] + (' (names)' if names else '')
    return [model, pair, settings or 'paper', heap, f'{est.gib:.2f} ({est.phase})',
            f'{peak:.2f}', f'{est.gib / peak:.2f}']


def markdown(line: list) -> str:
    return '| ' + ' | '.join(line) + ' |'


def row(results: dict, root: str) -> str:
    r"""The Markdown row of the run that wrote ``results``."""
    return markdown(cells(results, root))


def _storage_bytes(graph) -> int:
    r"""The bytes of the distinct storages of the tensors ``graph`` holds
    (sparse ones by their parts), however deep."""
    seen, total, todo = set(), 0, [graph]
    while todo:
        obj = todo.pop()
        if isinstance(obj, torch.Tensor):
            if obj.layout == torch.sparse_coo:
                todo += [obj._indices(), obj._values()]
            elif obj.layout == torch.sparse_csr:
                todo += [obj.crow_indices(), obj.col_indices(), obj.values()]
            elif obj.untyped_storage().data_ptr() not in seen:
                seen.add(obj.untyped_storage().data_ptr())
                total += obj.untyped_storage().nbytes()
        elif isinstance(obj, dict):
            todo += list(obj.values())
        elif isinstance(obj, (list, tuple)):
            todo += list(obj)
        elif hasattr(obj, '__dict__'):
            todo += list(vars(obj).values())
    return total


def constants(root: str):
    r"""Prints the runtime's resident size once imported and the graphs'
    bytes per merged edge on DBP15K zh_en and two synthetic pairs."""
    code = ('import resource, torch_geometric_ea.cli; '
            'print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)')
    gib = float(subprocess.run([sys.executable, '-c', code], capture_output=True,
                               text=True, check=True).stdout)
    print(f'runtime: {gib:.3f} GiB')
    for dataset, pair, num in (('dbp15k', 'zh_en', 0), ('synthetic', None, 20000),
                               ('synthetic', None, 100000)):
        data = get_pair(dataset, pair, root, seed=0, num_entities=num)
        u, size = to_union(data), pair_size(data)
        args = (u.edge_index, u.edge_type, u.num_nodes, u.num_relations)
        per_edge = [_storage_bytes(build(*args)._store) / size.merged_edges
                    for build in (dual_amn_graph, lightea_graph)]
        print(f'{pair or num}: bytes per merged edge: dual-amn {per_edge[0]:.1f}, '
              f'lightea {per_edge[1]:.1f}')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default=osp.join('runs', 'memory'))
    parser.add_argument('--runs', nargs='+', default=list(RUNS),
                        choices=list(RUNS) + list(CALIBRATION),
                        help=f"calibration runs: {', '.join(CALIBRATION)}")
    parser.add_argument('--constants', action='store_true',
                        help="print the estimate's measured constants and exit")
    parser.add_argument('--reuse', action='store_true',
                        help="read a run's record in benchmarks/results/memory "
                        "instead of running it")
    parser.add_argument('--root', default=os.environ.get('TORCH_GEOMETRIC_EA_MIRROR',
                                                         'data'))
    parser.add_argument('--docs', action='store_true',
                        help='rewrite the table of docs/results/memory.rst (its '
                        'block memory) with these rows')
    parser.add_argument('--readme', action='store_true', help='deprecated: --docs')
    args = parser.parse_args(argv)
    if args.readme:
        print('--readme is deprecated (the tables are on the docs pages): use '
              '--docs', file=sys.stderr)
    if args.constants:
        return constants(args.root)
    print(markdown(HEADER), '|---' * len(HEADER) + '|', sep='\n')
    rows = []
    for name in args.runs:
        rows.append(cells(run(name, args.out, args.reuse, args.root), args.root))
        print(markdown(rows[-1]), flush=True)
    if args.docs or args.readme:
        print('wrote', write_block('memory', HEADER, rows))


if __name__ == '__main__':
    main()
