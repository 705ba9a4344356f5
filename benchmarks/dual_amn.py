r"""Dual-AMN on DBP15K and SRPRS: basic and semi-supervised runs, one JSON
record per run and a Markdown table (also written into the README).

    TORCH_GEOMETRIC_EA_MIRROR=../shared/data python benchmarks/dual_amn.py \
        --runs dbp15k/zh_en:semi dbp15k/ja_en dbp15k/fr_en srprs/en_fr --readme

Each run is ``python -m torch_geometric_ea train ... --out DIR`` in a fresh
process, so peak memory is per run.
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
README = osp.join(ROOT, 'README.md')
BEGIN, END = '<!-- dual-amn:begin -->', '<!-- dual-amn:end -->'

# Hits@1 reported in the paper (Table 3, basic / semi-supervised).
PAPER_HITS1 = {
    ('dbp15k/zh_en', False): 0.731,
    ('dbp15k/ja_en', False): 0.726,
    ('dbp15k/fr_en', False): 0.756,
}


def run_one(spec: str, seed: int, extra, out_root: str, reuse: bool) -> dict:
    r"""Runs ``dataset/pair`` (basic) or ``dataset/pair:semi`` once, or reads
    the results of an earlier identical run with ``reuse``."""
    run, _, variant = spec.partition(':')
    semi = variant == 'semi'
    dataset, pair = run.split('/')
    name = f"{dataset}_{pair}_{'semi' if semi else 'basic'}_seed{seed}"
    out = osp.join(out_root, name)
    result = osp.join(out, 'results.json')
    cmd = [sys.executable, '-m', 'torch_geometric_ea', 'train', '--model',
           'dual-amn', '--dataset', dataset, '--pair', pair, '--seed', str(seed),
           '--out', out, '--json'] + (['--semi'] if semi else []) + extra
    if not (reuse and osp.exists(result)):
        print('$', ' '.join(cmd[1:]), flush=True)
        subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    with open(result) as f:
        record = json.load(f)
    record['run'], record['semi'] = run, semi
    return record


def rows(record: dict):
    r"""The basic row (round 0) and, for a semi-supervised run, the final
    row: a semi-supervised run starts with exactly the basic run."""
    t = record['timings']
    basic = record['history'][0]
    yield ('basic', basic, basic['epochs'], basic['train_seconds'],
           t['load'] + t['prepare'] + basic['train_seconds'])
    if record['semi']:
        epochs = sum(h['epochs'] for h in record['history'])
        yield ('semi', record, epochs, t['train'], t['load'] + t['total'])


def table(records, command: str) -> str:
    lines = [
        f'Command: `{command}`', '',
        '| data | variant | seed | Hits@1 | Hits@10 | MRR | Hits@1 (tgt->src) '
        '| paper Hits@1 | s / epoch | train s | total s | peak GiB |',
        '|---|---|---|---|---|---|---|---|---|---|---|---|',
    ]
    for r in records:
        for variant, m, epochs, train_s, total_s in rows(r):
            paper = PAPER_HITS1.get((r['run'], variant == 'semi'))
            if r['config']['negatives'] != 'all':
                variant += f", {r['config']['negatives']}-KG negatives"
            a, b = m['src->tgt'], m['tgt->src']
            lines.append(
                f"| {r['run']} | {variant} | {r['seed']} | {a['hits@1']:.3f} | "
                f"{a['hits@10']:.3f} | {a['mrr']:.3f} | {b['hits@1']:.3f} | "
                f"{'%.3f' % paper if paper else '-'} | "
                f"{r['history'][0]['train_seconds'] / r['history'][0]['epochs']:.1f}"
                f" | {train_s:.0f} | {total_s:.0f} | {r['peak_memory_gib']:.2f} |")
    return '\n'.join(lines)


def write_readme(text: str):
    with open(README) as f:
        readme = f.read()
    block = f'{BEGIN}\n{text}\n{END}'
    if BEGIN in readme:
        head, rest = readme.split(BEGIN, 1)
        readme = head + block + rest.split(END, 1)[1]
    else:
        readme = readme.replace('RESULTS_TABLE', block)
    with open(README, 'w') as f:
        f.write(readme)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--runs', nargs='+', default=[
        'dbp15k/zh_en:semi', 'dbp15k/ja_en:semi', 'dbp15k/fr_en:semi',
        'srprs/en_fr:semi'], help='dataset/pair, with :semi for a '
        'semi-supervised run (which reports its basic round too)')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0])
    parser.add_argument('--out', default=osp.join(ROOT, 'runs', 'bench'))
    parser.add_argument('--reuse', action='store_true',
                        help='read results.json of runs already in --out')
    parser.add_argument('--readme', action='store_true',
                        help='write the table into README.md')
    args, extra = parser.parse_known_args()
    records = [run_one(run, seed, extra, args.out, args.reuse)
               for run in args.runs for seed in args.seeds]
    os.makedirs(args.out, exist_ok=True)
    with open(osp.join(args.out, 'records.json'), 'w') as f:
        json.dump(records, f, indent=2)
    command = 'python benchmarks/dual_amn.py ' + ' '.join(sys.argv[1:])
    text = table(records, command)
    with open(osp.join(args.out, 'table.md'), 'w') as f:
        f.write(text + '\n')
    print(text)
    if args.readme:
        write_readme(text)


if __name__ == '__main__':
    main()
