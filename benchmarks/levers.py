r"""Speed levers of Dual-AMN training, one at a time: each setting runs
``profile_step.py`` in a fresh process (so peaks do not mix) and the
median step time and peak memory are tabulated against the first row.

    TORCH_GEOMETRIC_EA_MIRROR=../shared/data python benchmarks/levers.py \
        --dataset dbp15k --pair zh_en
    python benchmarks/levers.py --dataset synthetic --num-entities 100000

Accuracy effects of the levers that change the optimisation (candidates,
batch size, other-KG negatives) come from full ``train`` runs (README).
"""
import argparse
import json
import os.path as osp
import subprocess
import sys
import tempfile

HERE = osp.dirname(osp.abspath(__file__))
LEVERS = [
    ('paper setting (all candidates, batch 1024, 2 threads)', []),
    ('1 thread', ['--threads', '1']),
    ('other-KG negatives', ['--negatives', 'other']),
    ('4,096 random candidates', ['--candidates', 'random', '--num-candidates', '4096']),
    ('batch 4,096 pairs', ['--batch-size', '4096']),
    ('torch.compile', ['--compile']),
]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--steps', type=int, default=4)
    parser.add_argument('--only', nargs='+', type=int,
                        help='row numbers of LEVERS to run (default: all)')
    args, common = parser.parse_known_args(argv)
    rows = []
    print('| setting | s / step | x | peak GiB |\n|---|---|---|---|', flush=True)
    for i, (name, extra) in enumerate(LEVERS):
        if args.only and i not in args.only:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            out = osp.join(tmp, 'step.json')
            cmd = [sys.executable, osp.join(HERE, 'profile_step.py'), '--steps',
                   str(args.steps), '--json', out, *common, *extra]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                print(f'| {name} | failed: {proc.stderr.strip().splitlines()[-1]} | | |')
                continue
            with open(out) as f:
                record = json.load(f)
        rows.append(dict(setting=name, **record))
        base = rows[0]['median_step']
        print(f"| {name} | {record['median_step']:.2f} | "
              f"{base / record['median_step']:.2f} | "
              f"{record['peak_memory_gib']:.2f} |", flush=True)
    return rows


if __name__ == '__main__':
    main()
