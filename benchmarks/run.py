r"""Benchmark harness: runs models x datasets x seeds with the ``train``
command, one fresh process per run, and writes one JSON record per run,
a Markdown table with the papers' numbers beside ours, and a plot.
The full table in the README (every model of ``configs.TABLE`` on DBP15K's
three pairs and SRPRS en_fr) is one command:

    TORCH_GEOMETRIC_EA_MIRROR=../shared/data python benchmarks/run.py --reuse --readme

``--reuse`` reads runs already in ``--out`` that were made with the same
options, so an interrupted table resumes where it stopped. ``--collect``
runs nothing and tabulates every finished run in ``--out``. ``--quick``
runs a few epochs of each model on one pair (CI runs it to prove the
pipeline end to end on real data). Arguments the harness does not know
are passed on to every ``train`` command (``--threads 1`` runs two
harnesses side by side on two cores). Entries and paper configs live in
``configs.py``.
"""
import argparse
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
from typing import Dict, List, Optional

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from configs import ENTRIES, PAPER_CONFIG, TABLE, paper_hits1  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
README = osp.join(ROOT, 'README.md')
RUNS = ['dbp15k/zh_en', 'dbp15k/ja_en', 'dbp15k/fr_en', 'srprs/en_fr']


RUNTIME_OPTIONS = {'--out': 1, '--json': 0, '--threads': 1}


def options(command: List[str]) -> Dict[str, List[str]]:
    r"""The options of a ``train`` command line that decide its result:
    each option's values in order (repeated ``--set`` values sorted), without
    the output folder, ``--json`` and ``--threads``, the seed 0 made
    explicit."""
    out: Dict[str, List[str]] = {'--seed': ['0']}
    tokens = command[command.index('train') + 1:]
    i = 0
    while i < len(tokens):
        name = tokens[i]
        if name in RUNTIME_OPTIONS:
            i += 1 + RUNTIME_OPTIONS[name]
            continue
        values = []
        while i + 1 < len(tokens) and not tokens[i + 1].startswith('--'):
            values.append(tokens[i + 1])
            i += 1
        i += 1
        if name == '--set':
            out[name] = sorted(out.get(name, []) + values)
        else:
            out[name] = values
    return out


def run_one(entry: str, run: str, seed: int, extra: List[str], out_root: str,
            reuse: bool, quick: bool, run_missing: bool = True) -> Optional[Dict]:
    r"""Runs one ``train`` command and returns its record. With ``reuse``,
    an earlier run in the same folder whose command had the same options
    (:func:`options`) is read instead; without ``run_missing``, nothing is
    run and :obj:`None` is returned when there is no such run."""
    spec = ENTRIES[entry]
    dataset, pair = run.split('/')
    name = f"{entry.replace(':', '-')}_{dataset}_{pair}_seed{seed}"
    out = osp.join(out_root, name)
    # A synthetic "pair" is its size: synthetic/100000.
    which = ['--num-entities' if dataset == 'synthetic' else '--pair', pair]
    cmd = [sys.executable, '-m', 'torch_geometric_ea', 'train', '--model',
           spec['model'], '--dataset', dataset, *which, '--seed',
           str(seed), '--out', out, '--json'] + spec['args'] + (
               spec['quick'] if quick else []) + extra
    if not (reuse and _same_run(out, cmd)):
        if not run_missing:
            return None
        print('$', ' '.join(['python'] + cmd[1:]), flush=True)
        subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        with open(osp.join(out, 'harness.json'), 'w') as f:
            json.dump(dict(entry=entry, run=run), f)
    return read_record(out)


def _same_run(out: str, cmd: List[str]) -> bool:
    if not osp.exists(osp.join(out, 'harness.json')):
        return False
    with open(osp.join(out, 'results.json')) as f:
        earlier = json.load(f)['command'].split()
    return options(earlier) == options(cmd)


def read_record(out: str) -> Dict:
    r"""A run's ``results.json`` with the harness entry and run it belongs to."""
    with open(osp.join(out, 'results.json')) as f:
        record = json.load(f)
    with open(osp.join(out, 'harness.json')) as f:
        record.update(json.load(f))
    return record


def collect(out_root: str) -> List[Dict]:
    r"""Every finished run under ``out_root``, ordered by data, entry, seed."""
    records = [read_record(osp.join(out_root, name))
               for name in sorted(os.listdir(out_root))
               if osp.exists(osp.join(out_root, name, 'harness.json'))]
    order = {entry: i for i, entry in enumerate(ENTRIES)}
    runs = {run: i for i, run in enumerate(RUNS)}
    return sorted(records, key=lambda r: (runs.get(r['run'], 99), r['run'],
                                          order.get(r['entry'], 99), r['seed']))


def rows(record: Dict):
    r"""Table rows of a record: its final result and, for a semi-supervised
    run, first the basic result (round 0)."""
    history, extra = record['history'], record.get('extra_metrics', {})
    epochs = sum(h['epochs'] for h in history)
    if record['config'].get('semi'):
        yield 'basic', history[0], history[0]['train_seconds'], history[0]['epochs']
        yield 'semi', dict(record, extra_metrics=extra), record['timings']['train'], epochs
    else:
        yield '', dict(record, extra_metrics=extra), record['timings']['train'], epochs


def label(entry: str, variant: str) -> str:
    r"""``dual-amn``, ``dual-amn (semi)``, ``rdgcn (names)``, ..."""
    base, _, sub = entry.partition(':')
    if variant == 'semi':
        return f'{base} (semi)'
    return f'{base} ({sub})' if sub and sub != 'semi' else base


def deviations(record: Dict) -> str:
    r"""The config fields where the run differs from the paper's."""
    paper = PAPER_CONFIG.get(record['model'], {})
    config = record['config']
    diff = [f'{k}={config[k]}' for k, v in paper.items()
            if k in config and config[k] != v]
    return ', '.join(diff) or '-'


def table(records: List[Dict], command: str) -> str:
    lines = [
        f'Command: `{command}`', '',
        '| model | data | seed | Hits@1 | Hits@10 | MRR | Hits@1 tgt->src '
        '| CSLS Hits@1 | paper Hits@1 | not as in the paper | train s '
        '| s / epoch | peak GiB | threads |',
        '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ]
    for r in records:
        for variant, m, train_s, epochs in rows(r):
            a, b = m['src->tgt'], m['tgt->src']
            csls = m.get('extra_metrics', {}).get('csls', {}).get('src->tgt')
            paper = paper_hits1(r['entry'], r['run'], variant == 'semi')
            lines.append(
                f"| {label(r['entry'], variant)} | {r['run']} | {r['seed']} | {a['hits@1']:.3f} | "
                f"{a['hits@10']:.3f} | {a['mrr']:.3f} | {b['hits@1']:.3f} | "
                f"{'%.3f' % csls['hits@1'] if csls else '-'} | "
                f"{'%.3f' % paper if paper else '-'} | {deviations(r)} | "
                f"{train_s:.0f} | {train_s / max(epochs, 1):.2f} | "
                f"{r['peak_memory_gib']:.2f} | "
                f"{r.get('versions', {}).get('threads', '-')} |")
    return '\n'.join(lines)


def plot(records: List[Dict], path: str) -> bool:
    r"""Hits@1 and training time by model and dataset, as a PNG; returns
    :obj:`False` (and says why) when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        print('matplotlib is not installed: no plot (pip install -e ".[bench]")')
        return False
    bars = {}
    for r in records:
        for variant, m, train_s, _ in rows(r):
            bars.setdefault(label(r['entry'], variant), {})[r['run']] = (m['src->tgt']['hits@1'], train_s)
    runs = sorted({r['run'] for r in records})
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    width = 0.8 / max(len(bars), 1)
    for i, (name, values) in enumerate(bars.items()):
        xs = [j + i * width for j, run in enumerate(runs) if run in values]
        for ax, k in zip(axes, (0, 1)):
            ax.bar(xs, [values[run][k] for run in runs if run in values],
                   width, label=name)
    for ax, title in zip(axes, ('Hits@1 (src->tgt)', 'training time (s)')):
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(runs))])
        ax.set_xticklabels(runs, rotation=15)
        ax.set_title(title)
    axes[1].set_yscale('log')
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def write_readme(text: str, block: str = 'results', path: str = README):
    r"""Replaces the README's ``<!-- block:begin -->`` ... ``<!-- block:end
    -->`` part with ``text``."""
    begin, end = f'<!-- {block}:begin -->', f'<!-- {block}:end -->'
    with open(path) as f:
        readme = f.read()
    if begin not in readme or end not in readme:
        raise SystemExit(f'{path} has no {begin} ... {end} block')
    head, rest = readme.split(begin, 1)
    with open(path, 'w') as f:
        f.write(head + f'{begin}\n{text}\n{end}' + rest.split(end, 1)[1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--models', nargs='+', default=TABLE,
                        choices=list(ENTRIES), metavar='ENTRY',
                        help=f"any of {', '.join(ENTRIES)} (default: "
                        f"{' '.join(TABLE)})")
    parser.add_argument('--runs', nargs='+', default=RUNS, help='dataset/pair')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0])
    parser.add_argument('--quick', action='store_true',
                        help='a few epochs per model on the first pair only')
    parser.add_argument('--out', default=osp.join(ROOT, 'runs', 'harness'))
    parser.add_argument('--reuse', action='store_true',
                        help='read the results of runs already in --out made '
                        'with the same options instead of running them again')
    parser.add_argument('--finished', action='store_true',
                        help='run nothing; tabulate the requested runs already '
                        'in --out (as --reuse would read them) and list the '
                        'missing ones')
    parser.add_argument('--collect', action='store_true',
                        help='run nothing; tabulate every finished run in --out')
    parser.add_argument('--readme', nargs='?', const='results', metavar='BLOCK',
                        help="write the table into README.md's BLOCK "
                        "(default: results) and the plot to docs/BLOCK.png")
    args, extra = parser.parse_known_args(argv)
    runs = args.runs[:1] if args.quick else args.runs
    missing = []
    if args.collect:
        records = collect(args.out)
    else:
        records = []
        for run in runs:
            for entry in args.models:
                for seed in args.seeds:
                    record = run_one(entry, run, seed, extra, args.out,
                                     args.reuse or args.finished, args.quick,
                                     run_missing=not args.finished)
                    if record is None:
                        missing.append(f'{entry} on {run} (seed {seed})')
                    else:
                        records.append(record)
    os.makedirs(args.out, exist_ok=True)
    with open(osp.join(args.out, 'records.json'), 'w') as f:
        json.dump(records, f, indent=2)
    command = 'python benchmarks/run.py ' + ' '.join(
        argv if argv is not None else sys.argv[1:])
    text = table(records, command)
    if missing:
        text += '\n\nNot run yet: ' + '; '.join(missing) + '.'
    with open(osp.join(args.out, 'table.md'), 'w') as f:
        f.write(text + '\n')
    print(text)
    if plot(records, osp.join(args.out, 'results.png')) and args.readme:
        shutil.copy(osp.join(args.out, 'results.png'),
                    osp.join(ROOT, 'docs', f'{args.readme}.png'))
    if args.readme:
        write_readme(text, args.readme)
    return 0


if __name__ == '__main__':
    sys.exit(main())
