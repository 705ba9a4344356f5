r"""Benchmark harness: runs models x datasets x seeds with the ``train``
command, one fresh process per run, and writes one JSON record per run,
a Markdown table with the papers' numbers beside ours, and a plot.
The table of ``docs/results/models.rst`` (every model of ``configs.TABLE``
on DBP15K's three pairs and SRPRS en_fr) is one command, which rewrites
that page's table and the plot ``docs/results.png``:

    TORCH_GEOMETRIC_EA_MIRROR=../shared/data python benchmarks/run.py --reuse --docs

``--docs BLOCK`` rewrites the ``csv-table`` between ``.. BLOCK:begin`` and
``.. BLOCK:end`` on the docs page that holds it (``docs_tables.PAGES``:
``results``, ``bootstrapping``, ``literal``, ``candidates``, ``scale``,
``lightea``, ``lightea-names``), keeping its caption; ``--readme BLOCK`` is
its deprecated old name.

Each run's record (its ``results.json`` with the entry and pair) is kept
in ``benchmarks/results/`` and committed, so the table outlives the
machine that ran it; run folders with the checkpoints go to ``--out``.
``--reuse`` reads the records of runs made with the same options, so an
interrupted table resumes where it stopped, and an interrupted run from
its last checkpoint. ``--finished`` runs nothing
and tabulates the requested records; ``--collect`` tabulates every record
kept. A transcribed record (``"transcribed"``: where its figures come
from) holds table rows whose run record was lost; it is tabulated and
marked so, and ``--reuse`` runs it again and replaces it. ``--quick``
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
from typing import Dict, List, Optional, Tuple

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from configs import (  # noqa: E402
    ENTRIES,
    PAPER_CONFIG,
    TABLE,
    paper_direction,
    paper_hits1,
)
from docs_tables import PAGES, write_block  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
RECORDS = osp.join(ROOT, 'benchmarks', 'results')
RUNS = ['dbp15k/zh_en', 'dbp15k/ja_en', 'dbp15k/fr_en', 'srprs/en_fr']
# The docs blocks that hold harness tables (``--docs BLOCK``).
BLOCKS = ['results', 'bootstrapping', 'literal', 'candidates', 'scale', 'lightea',
          'lightea-names']


RUNTIME_OPTIONS = {'--out': 1, '--json': 0, '--threads': 1, '--resume': 1,
                   '--checkpoint-every': 1}


def options(command: List[str]) -> Dict[str, List[str]]:
    r"""The options of a ``train`` command line that decide its result:
    each option's values in order (repeated ``--set`` values sorted), without
    the output folder, ``--json``, ``--threads`` and the checkpoint
    options, the seed 0 made explicit."""
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
            reuse: bool, quick: bool, run_missing: bool = True,
            records: Optional[str] = None) -> Optional[Dict]:
    r"""Runs one ``train`` command in ``out_root`` and keeps its record in
    ``records`` (default: ``out_root``) as ``<name>.json``. With ``reuse``,
    a kept record whose command had the same options (:func:`options`) is
    read instead; without ``run_missing``, nothing is run: the kept record
    is returned if it was made with the same options or transcribed
    (:func:`table`), else :obj:`None`."""
    spec = ENTRIES[entry]
    dataset, pair = run.split('/')
    name = f"{entry.replace(':', '-')}_{dataset}_{pair}_seed{seed}"
    out = osp.join(out_root, name)
    path = osp.join(records or out_root, f'{name}.json')
    # A synthetic "pair" is its size: synthetic/100000.
    which = ['--num-entities' if dataset == 'synthetic' else '--pair', pair]
    cmd = [sys.executable, '-m', 'torch_geometric_ea', 'train', '--model',
           spec['model'], '--dataset', dataset, *which, '--seed',
           str(seed), '--out', out, '--json'] + spec['args'] + spec.get(
               'run_args', {}).get(run, []) + (
               spec['quick'] if quick else []) + extra
    kept = read_record(path) if osp.exists(path) else None
    if reuse and kept is not None and 'command' in kept and (
            options(kept['command'].split()) == options(cmd)):
        return kept
    if not run_missing:
        return kept if kept is not None and 'transcribed' in kept else None
    if reuse and osp.exists(osp.join(out, 'checkpoint.pt')):  # an interrupted run
        cmd += ['--resume', out]
    print('$', ' '.join(['python'] + cmd[1:]), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    with open(osp.join(out, 'results.json')) as f:
        record = dict(json.load(f), entry=entry, run=run)
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    with open(path, 'w') as f:
        json.dump(record, f, indent=1)
    return record


def read_record(path: str) -> Dict:
    r"""A kept record: a run's ``results.json`` with the harness entry and
    run it belongs to, or a transcribed one."""
    with open(path) as f:
        return json.load(f)


def collect(records: str) -> List[Dict]:
    r"""Every record kept in ``records``, ordered by data, entry, seed."""
    found = [read_record(osp.join(records, name))
             for name in sorted(os.listdir(records)) if name.endswith('.json')]
    order = {entry: i for i, entry in enumerate(ENTRIES)}
    runs = {run: i for i, run in enumerate(RUNS)}
    return sorted(found, key=lambda r: (runs.get(r['run'], 99), r['run'],
                                        order.get(r['entry'], 99), r['seed']))


PHASES = ['load', 'prepare', 'evaluate', 'whole run']  # training has its own column

COLUMNS = ['hits@1', 'hits@10', 'mrr', 'hits@1 tgt->src', 'csls hits@1',
           'train s', 's / epoch', 'peak GiB', 'threads', 'not as in the paper']


def rows(record: Dict) -> List[Dict]:
    r"""Table rows of a record, each a dict with ``variant`` and
    :data:`COLUMNS`: the final result and, for a semi-supervised run, first
    the basic result (round 0). A transcribed record (``"transcribed"``
    names where its figures come from, e.g. ``README at 52199cf``: a table
    of the README before the tables moved to the docs pages, whose run
    folders were lost) holds its rows as they were tabulated."""
    if 'transcribed' in record:
        return record['rows']
    history = record['history']
    epochs = sum(h['epochs'] for h in history)
    final = (dict(record, extra_metrics=record.get('extra_metrics', {})),
             record['timings']['train'], epochs)
    if record['config'].get('semi'):
        parts = [('basic', history[0], history[0]['train_seconds'],
                  history[0]['epochs']), ('semi', *final)]
    else:
        parts = [('', *final)]
    if 'structure' in record.get('extra_metrics', {}):  # Dual-AMN (Lit): each
        # channel alone too (LightEA's name view has no such rows)
        extra = record['extra_metrics']
        lit = [('lit ' + v if v else 'lit', *rest) for v, *rest in parts]
        parts = [('names', extra['names'], 0.0, 0),
                 ('structure', extra['structure'], *final[1:])] + lit
    out = []
    for variant, m, train_s, num_epochs in parts:
        csls = m.get('extra_metrics', {}).get('csls', {}).get('src->tgt')
        out.append({
            'variant': variant, 'bootstrapping': bootstrapping(record, variant),
            'hits@1': m['src->tgt']['hits@1'],
            'hits@10': m['src->tgt']['hits@10'], 'mrr': m['src->tgt']['mrr'],
            'hits@1 tgt->src': m['tgt->src']['hits@1'],
            'csls hits@1': csls['hits@1'] if csls else None,
            'train s': train_s, 's / epoch': train_s / max(num_epochs, 1),
            'peak GiB': record['peak_memory_gib'],
            'threads': record.get('versions', {}).get('threads'),
            'not as in the paper': deviations(record),
            'phases': dict({k: record['timings'].get(k) for k in PHASES[:3]},
                           **{'whole run': record['timings'].get('load', 0.0)
                              + record['timings'].get('total', 0.0)})})
    return out


def bootstrapping(record: Dict, variant: str) -> str:
    r"""Whether a row's figures come after bootstrapping rounds that pooled
    the test entities (``transductive``, the paper's protocol, and all
    rounds before the option existed) or every entity without a training
    link (``inductive``); ``-`` for a row without rounds."""
    if 'protocol' in record:  # recorded by the run itself
        after_rounds = variant not in ('basic', 'names', 'lit basic')
        return (record['protocol'].get('bootstrapping') or '-') if after_rounds else '-'
    semi = 'semi' in variant or (variant == 'structure'
                                 and record.get('config', {}).get('semi'))
    if not semi:
        return '-'
    return record.get('config', {}).get('bootstrap', 'transductive')


def names_used(record: Dict) -> Optional[Dict]:
    r"""The names a run used (its ``protocol['names']``: source, encoder,
    ...); for a run recorded before runs said so that used names (Dual-AMN
    (Lit), RDGCN with name features), the URIs' local names by the offline
    encoder; :obj:`None` for a run without names."""
    found = record.get('protocol', {}).get('names')
    if found:
        return found
    config = record.get('config', {})
    if config.get('literal') or record.get('entry') in ('rdgcn:names', 'dual-amn:lit') \
            or _spec_uses_names(record.get('model'), config):
        return dict(source='uri', encoder='offline encoder')
    return None


def _spec_uses_names(model: Optional[str], config: Dict) -> bool:
    r"""Whether the registered ``model`` with ``config`` reads names."""
    from torch_geometric_ea.train import get_model, model_names
    if model not in model_names():
        return False

    class Recorded:  # the settings the record holds; None for the others
        def __getattr__(self, key):
            return config.get(key)

    return bool(get_model(model).uses_names(Recorded()))


def label(entry: str, variant: str, names: Optional[Dict] = None) -> str:
    r"""``dual-amn``, ``dual-amn (semi)``, ``rdgcn (names; translated
    names)``, ...: a run that used names says which (``names``, see
    :func:`names_used`)."""
    if variant == 'names':
        return f"names only ({names['source']}, {names['encoder']})"
    text = _label(entry, variant)
    if not names:
        return text
    return (text[:-1] + '; ' if text.endswith(')') else text + ' (') + \
        f"{names['source']} names)"


def _label(entry: str, variant: str) -> str:
    base, _, sub = entry.partition(':')
    if variant == 'structure':
        return f'{base} (lit, structure only)'
    if variant == 'semi':
        return f'{base} (semi)'
    if variant.startswith('lit '):  # 'lit basic', 'lit semi'
        return f'{base} (lit, {variant[4:]})'
    return f'{base} ({sub})' if sub and sub not in ('semi', 'inductive') else base


def deviations(record: Dict) -> str:
    r"""The config fields where the run differs from the paper's; those
    picked from the pair's size (not set by the command) end in ``*``."""
    paper = PAPER_CONFIG.get(record['model'], {})
    config, auto = record['config'], record.get('scale_settings') or {}
    diff = [f'{k}={config[k]}' + ('*' if k in auto else '') for k, v in paper.items()
            if k in config and config[k] != v]
    return ', '.join(diff) or '-'


def _cell(value, digits: int) -> str:
    if value is None or value != value:  # NaN: a direction not ranked
        return '-'
    return f'{value:.{digits}f}' if isinstance(value, float) else str(value)


HEADER = ['model', 'data', 'seed', 'bootstrapping', 'Hits@1', 'Hits@10', 'MRR',
          'Hits@1 tgt->src', 'CSLS Hits@1', 'paper Hits@1', "ours, paper's direction",
          'not as in the paper', 'train s', 's / epoch', 'peak GiB', 'threads']


def cells(records: List[Dict],
          phases: bool = False) -> Tuple[List[str], List[List[str]]]:
    r"""The header and the rows (cells as text) of the table of ``records``
    with the papers' Hits@1 beside ours; a transcribed record's rows name
    their source in the last column. With ``phases``, the wall time of each
    phase of a run too (``whole run``: from loading the data to the last
    evaluation)."""
    digits = {'train s': 0, 's / epoch': 2, 'peak GiB': 2}
    header = HEADER + ([f'{k} s' for k in PHASES] if phases else []) + ['record']
    body = []
    for r in records:
        for row in rows(r):
            paper = paper_hits1(r['entry'], r['run'], row['variant'])
            direction = paper_direction(r['entry'])
            ours = row['hits@1'] if direction == 'src->tgt' else row['hits@1 tgt->src']
            line = [label(r['entry'], row['variant'], names_used(r)), r['run'],
                    r['seed'],
                    row.get('bootstrapping') or bootstrapping(r, row['variant'])]
            line += [_cell(row[k], 3) for k in COLUMNS[:5]]
            line += [_cell(paper, 3),
                     f'{_cell(ours, 3)} ({direction})' if paper is not None else '-',
                     row['not as in the paper']]
            line += [_cell(row[k], digits.get(k, 0)) for k in COLUMNS[5:9]]
            if phases:
                line += [_cell(row.get('phases', {}).get(k), 0) for k in PHASES]
            line.append(r.get('transcribed', 'results.json'))
            body.append([str(c) for c in line])
    return header, body


def table(records: List[Dict], command: str, phases: bool = False) -> str:
    r"""The Markdown table of ``records`` (:func:`cells`) under the line
    ``Command: `command```."""
    header, body = cells(records, phases)
    lines = [f'Command: `{command}`', '', '| ' + ' | '.join(header) + ' |',
             '|---' * len(header) + '|']
    lines += ['| ' + ' | '.join(line) + ' |' for line in body]
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
        for row in rows(r):
            bars.setdefault(label(r['entry'], row['variant'], names_used(r)),
                            {})[r['run']] = (
                row['hits@1'], row['train s'])
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


def docs_command(argv: List[str]) -> str:
    r"""The command line of the harness as a docs page shows it: ``argv``
    without ``--docs``/``--readme`` and their block (the table is the same
    with or without them)."""
    kept, i = [], 0
    while i < len(argv):
        word = argv[i]
        if word in ('--docs', '--readme'):
            i += 2 if i + 1 < len(argv) and argv[i + 1] in BLOCKS else 1
            continue
        if not word.startswith(('--docs=', '--readme=')):
            kept.append(word)
        i += 1
    return ' '.join(['python benchmarks/run.py'] + kept)


def write_docs(records: List[Dict], command: str, block: str = 'results',
               phases: bool = False, missing: List[str] = (),
               path: Optional[str] = None) -> str:
    r"""Rewrites the ``csv-table`` of ``block`` on its docs page
    (:data:`docs_tables.PAGES`, e.g. ``results``: ``docs/results/models.rst``;
    or the page ``path``) with the table of ``records`` (:func:`cells`),
    the ``Command:`` line before it and the runs ``missing`` after it;
    the table's caption stays. Returns the page's path."""
    header, body = cells(records, phases)
    notes = ['Not run yet: ' + '; '.join(missing) + '.'] if missing else []
    return write_block(block, header, body, command=command, notes=notes, path=path)


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
    parser.add_argument('--out', default=osp.join(ROOT, 'runs', 'harness'),
                        help='run folders (model.pt), the table and the plot')
    parser.add_argument('--records', help='where each run\'s record is kept '
                        '(default: benchmarks/results, which is committed; '
                        'with --quick, --out)')
    parser.add_argument('--reuse', action='store_true',
                        help='read the records of runs made with the same '
                        'options instead of running them again')
    parser.add_argument('--finished', action='store_true',
                        help='run nothing; tabulate the requested records (as '
                        '--reuse would read them, and transcribed ones) and '
                        'list the missing ones')
    parser.add_argument('--collect', action='store_true',
                        help='run nothing; tabulate every record kept')
    parser.add_argument('--phases', action='store_true',
                        help='a column per phase of each run (load, prepare, '
                        'evaluate, whole run)')
    parser.add_argument('--docs', nargs='?', const='results', choices=BLOCKS,
                        metavar='BLOCK',
                        help="rewrite BLOCK's table on its docs page: "
                        + ', '.join(f'{b} ({PAGES[b]})' for b in BLOCKS)
                        + ' (default: results, whose plot also goes to '
                        'docs/results.png)')
    parser.add_argument('--readme', nargs='?', const='results', choices=BLOCKS,
                        metavar='BLOCK', help='deprecated: --docs')
    args, extra = parser.parse_known_args(argv)
    if args.readme:
        print('--readme is deprecated (the tables are on the docs pages): use '
              '--docs', file=sys.stderr)
        args.docs = args.docs or args.readme
    runs = args.runs[:1] if args.quick else args.runs
    kept = args.records or (args.out if args.quick else RECORDS)
    missing = []
    if args.collect:
        records = collect(kept)
    else:
        records = []
        for run in runs:
            for entry in args.models:
                for seed in args.seeds:
                    record = run_one(entry, run, seed, extra, args.out,
                                     args.reuse or args.finished, args.quick,
                                     run_missing=not args.finished,
                                     records=kept)
                    if record is None:
                        missing.append(f'{entry} on {run} (seed {seed})')
                    else:
                        records.append(record)
    os.makedirs(args.out, exist_ok=True)
    with open(osp.join(args.out, 'records.json'), 'w') as f:
        json.dump(records, f, indent=2)
    command = docs_command(argv if argv is not None else sys.argv[1:])
    text = table(records, command, args.phases)
    if missing:
        text += '\n\nNot run yet: ' + '; '.join(missing) + '.'
    with open(osp.join(args.out, 'table.md'), 'w') as f:
        f.write(text + '\n')
    print(text)
    # docs/results/index.rst shows the plot of the main table only.
    if plot(records, osp.join(args.out, 'results.png')) and args.docs == 'results':
        shutil.copy(osp.join(args.out, 'results.png'),
                    osp.join(ROOT, 'docs', 'results.png'))
    if args.docs:
        print('wrote', write_docs(records, command, args.docs, args.phases, missing))
    return 0


if __name__ == '__main__':
    sys.exit(main())
