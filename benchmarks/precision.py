r"""float32 against bfloat16 products (``--precision``), run for run: each
run of a group once in each precision, alternating, one fresh ``train``
process each (``--json``), so both see the same machine in the same
window. A record per run goes to ``benchmarks/results/precision/``
(committed); the table of ``docs/results/precision.rst`` is made from
the records:

    TORCH_GEOMETRIC_EA_MIRROR=../shared/data python benchmarks/precision.py \
        --root data --groups speed lightea dual-amn --docs

Groups: ``speed`` (every model on DBP15K zh_en, LightEA and one Dual-AMN
epoch on the synthetic 100K pair), ``lightea`` (LightEA-B and LightEA-I,
3 rounds, on the four shared pairs), ``dual-amn`` (the paper's 20 epochs
on DBP15K zh_en and SRPRS en_fr), ``seeds`` (those, seeds 1 and 2).
``--before DIR`` also runs each run with the code checked out in ``DIR``
(``git worktree add DIR <commit>``), which has no ``--precision``: the
float32 of that commit, labelled ``before``. ``--reuse`` keeps the
records already made; ``--finished`` only tabulates. Options it does not
know go to every ``train`` command; ``--lock FILE`` runs each process
under ``flock FILE`` (so that timings sharing the machine take turns).
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Dict, List, Optional

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from docs_tables import write_block  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
RECORDS = osp.join(ROOT, 'benchmarks', 'results', 'precision')
PRECISIONS = ('float32', 'bfloat16')
#: Each model entry's ``train`` options.
MODELS = {
    'lightea': ['--model', 'lightea'],
    'lightea-i3': ['--model', 'lightea', '--iterations', '3'],
    'dual-amn': ['--model', 'dual-amn'],
    'dual-amn-3ep': ['--model', 'dual-amn', '--epochs', '3'],
    'dual-amn-1ep': ['--model', 'dual-amn', '--epochs', '1'],
    'gcn-align-20ep': ['--model', 'gcn-align', '--epochs', '20'],
    'rdgcn-5ep': ['--model', 'rdgcn', '--epochs', '5'],
}
PAIRS = ['dbp15k/zh_en', 'dbp15k/ja_en', 'dbp15k/fr_en', 'srprs/en_fr']
#: Runs as ``model/dataset/pair[/seed]`` (synthetic: the entities per side).
GROUPS = {
    'speed': ['lightea/dbp15k/zh_en', 'lightea/synthetic/100000',
              'dual-amn-3ep/dbp15k/zh_en', 'dual-amn-1ep/synthetic/100000',
              'gcn-align-20ep/dbp15k/zh_en', 'rdgcn-5ep/dbp15k/zh_en'],
    'lightea': [f'{m}/{p}' for p in PAIRS for m in ('lightea', 'lightea-i3')],
    'dual-amn': ['dual-amn/dbp15k/zh_en', 'dual-amn/srprs/en_fr'],
    'seeds': [f'dual-amn/{p}/{s}' for p in ('dbp15k/zh_en', 'srprs/en_fr')
              for s in (1, 2)],
}
HEADER = ['run', 'products', 'total s', 'features or train s', 'evaluate s',
          'Hits@1 src->tgt', 'MRR src->tgt', 'Hits@1 tgt->src', 'MRR tgt->src',
          'peak GiB', 'speed-up']


def train_options(run: str, root: str) -> List[str]:
    r"""The ``train`` options of ``run``."""
    model, dataset, pair, *seed = run.split('/')
    where = (['--dataset', 'synthetic', '--num-entities', pair] if dataset == 'synthetic'
             else ['--dataset', dataset, '--pair', pair, '--root', root])
    return MODELS[model] + where + ['--seed', seed[0] if seed else '0']


def record_path(run: str, label: str) -> str:
    return osp.join(RECORDS, f"{run.replace('/', '_')}_{label}.json")


def run_once(run: str, label: str, args, extra: List[str]) -> Dict:
    r"""One ``train`` process of ``run`` in ``label``'s precision (or the
    ``--before`` code's float32); its results with the wall time."""
    code = args.before if label == 'before' else ROOT
    command = [sys.executable, '-m', 'torch_geometric_ea', 'train',
               *train_options(run, args.root), '--json', *extra]
    if label != 'before':
        command += ['--precision', label]
    if args.lock:  # one timed process at a time among those sharing the lock
        command = ['flock', args.lock] + command
    env = dict(os.environ, PYTHONPATH=code)
    t = time.perf_counter()
    done = subprocess.run(command, cwd=code, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f'{run} ({label}) failed: {done.stderr.strip()[-500:]}')
    record = json.loads(done.stdout)
    record.pop('history', None)
    record.update(run=run, label=label, wall_s=time.perf_counter() - t,
                  cpu=cpu_name())
    os.makedirs(RECORDS, exist_ok=True)
    with open(record_path(run, label), 'w') as f:
        json.dump(record, f, indent=1)
    return record


def cpu_name() -> str:
    r"""``lscpu``'s model name and its bfloat16 flags."""
    from torch_geometric_ea.precision import cpu_bf16_flags
    try:
        out = subprocess.run(['lscpu'], capture_output=True, text=True).stdout
        name = next(line.split(':', 1)[1].strip() for line in out.splitlines()
                    if line.startswith('Model name'))
    except (OSError, StopIteration):
        name = 'unknown CPU'
    return f"{name} ({', '.join(cpu_bf16_flags()) or 'no bf16 flags'})"


def row(record: Dict, reference: Optional[Dict]) -> List[str]:
    t = record['timings']
    work = t.get('features', 0.0) + t.get('train', 0.0)
    s2t, t2s = record['src->tgt'], record['tgt->src']
    speed = (f"{reference['timings']['total'] / t['total']:.2f}x" if reference
             and record is not reference else '')
    used = record.get('protocol', {}).get('precision', {}).get('used', 'float32')
    return [record['run'], used if record['label'] != 'before' else 'float32 (before)',
            f"{t['total']:.1f}", f'{work:.1f}', f"{t['evaluate']:.1f}",
            *(_metric(m.get(k)) for m in (s2t, t2s) for k in ('hits@1', 'mrr')),
            f"{record['peak_memory_gib']:.2f}", speed]


def _metric(value) -> str:
    return '-' if value is None or value != value else f'{value:.4f}'  # not ranked


def table(runs: List[str]) -> List[List[str]]:
    r"""The rows of every kept record of ``runs``: float32 (before), float32,
    bfloat16; speed-ups against the first of them."""
    rows = []
    for run in runs:
        kept = [json.load(open(p)) for p in (record_path(run, label) for label in
                ('before', *PRECISIONS)) if osp.exists(p)]
        rows += [row(r, kept[0]) for r in kept]
    return rows


def main(argv: Optional[List[str]] = None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--groups', nargs='+', default=['speed'], choices=GROUPS)
    parser.add_argument('--root', default='data', help='dataset folder')
    parser.add_argument('--runs', nargs='+', help='only these runs of the groups')
    parser.add_argument('--before', help='a checkout of the code to compare with')
    parser.add_argument('--lock', help='run each process under flock LOCK')
    parser.add_argument('--reuse', action='store_true')
    parser.add_argument('--finished', action='store_true')
    parser.add_argument('--docs', action='store_true',
                        help='rewrite the table of docs/results/precision.rst')
    args, extra = parser.parse_known_args(argv)
    runs = [run for group in args.groups for run in GROUPS[group]
            if not args.runs or run in args.runs]
    labels = (['before'] if args.before else []) + list(PRECISIONS)
    for run in runs if not args.finished else []:
        for label in labels:
            if args.reuse and osp.exists(record_path(run, label)):
                continue
            record = run_once(run, label, args, extra)
            print(' | '.join(row(record, None)[:-1]), flush=True)
    runs = [run for group in args.groups for run in GROUPS[group]]  # every kept one
    rows = table(runs)
    print('\n'.join(' | '.join(r) for r in [HEADER] + rows))
    if args.docs:
        command = ('python benchmarks/precision.py --root data --groups '
                   + ' '.join(args.groups) + ' --reuse --docs')
        cpus = sorted({json.load(open(record_path(run, label)))['cpu']
                       for run in runs for label in ('before', *PRECISIONS)
                       if osp.exists(record_path(run, label))})
        write_block('precision', HEADER, rows, command,
                    notes=[f"Machine: {'; '.join(cpus)}, 2 threads."])


if __name__ == '__main__':
    main()
