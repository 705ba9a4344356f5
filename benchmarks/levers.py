r"""Speed levers of Dual-AMN training, one at a time: each setting runs
``profile_step.py`` in a fresh process (so peaks do not mix) and the
median step time and peak memory are tabulated against the first row.

    TORCH_GEOMETRIC_EA_MIRROR=../shared/data python benchmarks/levers.py \
        --dataset dbp15k --pair zh_en
    python benchmarks/levers.py --dataset synthetic --num-entities 100000

``--matmul`` instead times the loss's score product (2,048 anchor rows x
386 augmented channels x 32,768 candidates) in float32 and bfloat16: the
bfloat16 lever of the issue, which pays only where the CPU multiplies
bfloat16 natively (AVX-512 BF16 or AMX).

``--sharing`` times sharing the machine: one ``profile_step.py`` job alone
and two at once, each with ``--job-threads`` (default 2), first with the
OpenMP runtime's default wait policy and then with
``OMP_WAIT_POLICY=PASSIVE`` (what ``python -m torch_geometric_ea`` and the
console script set): the median step of each, and its ratio to the job
alone with the same policy (2x is a fair share of two cores).

    TORCH_GEOMETRIC_EA_MIRROR=../shared/data python benchmarks/levers.py \
        --sharing --dataset dbp15k --pair zh_en

Accuracy effects of the levers that change the optimisation (candidates,
batch size, other-KG negatives) come from full ``train`` runs:
``docs/results/candidates.rst`` (fewer loss candidates, other-KG
negatives), ``docs/results/scale.rst`` (the batch sizes of the scale
settings); this script's tables are on ``docs/results/levers.rst``.
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import tempfile
import time

HERE = osp.dirname(osp.abspath(__file__))
LEVERS = [
    ('paper setting (all candidates, batch 1024, 2 threads)', []),
    ('1 thread', ['--threads', '1']),
    ('other-KG negatives', ['--negatives', 'other']),
    ('4,096 random candidates', ['--candidates', 'random', '--num-candidates', '4096']),
    ('batch 4,096 pairs', ['--batch-size', '4096']),
    ('torch.compile', ['--compile']),
]


def matmul_dtypes(repeats: int = 3, shape=(2048, 386, 32768)):
    """Seconds and GFLOP/s of one ``shape`` product per dtype."""
    import torch
    rows, inner, cols = shape
    print('| dtype | s / product | GFLOP/s |\n|---|---|---|')
    for dtype in (torch.float32, torch.bfloat16):
        a = torch.randn(rows, inner).to(dtype)
        b = torch.randn(inner, cols).to(dtype)
        a @ b  # warm-up
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        seconds = (time.perf_counter() - start) / repeats
        print(f'| {str(dtype)[6:]} | {seconds:.3f} | '
              f'{2 * rows * inner * cols / seconds / 1e9:.0f} |', flush=True)


def _steps(jobs: int, policy, args, common):
    r"""Runs ``jobs`` ``profile_step.py`` processes at once with the wait
    ``policy`` (:obj:`None`: the OpenMP default); their median steps."""
    env = {k: v for k, v in os.environ.items() if k != 'OMP_WAIT_POLICY'}
    if policy:
        env['OMP_WAIT_POLICY'] = policy
    with tempfile.TemporaryDirectory() as tmp:
        outs = [osp.join(tmp, f'step{i}.json') for i in range(jobs)]
        procs = [subprocess.Popen(
            [sys.executable, osp.join(HERE, 'profile_step.py'), '--steps',
             str(args.steps), '--threads', str(args.job_threads), '--json', out,
             *common], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True) for out in outs]
        for proc in procs:
            if proc.wait() != 0:
                raise SystemExit(proc.stderr.read().strip().splitlines()[-1])
        medians = []
        for out in outs:
            with open(out) as f:
                medians.append(json.load(f)['median_step'])
    return medians


def sharing(args, common):
    r"""The ``--sharing`` table: alone and two at once, per wait policy."""
    print(f'| wait policy | jobs ({args.job_threads} threads each) | s / step '
          '| x alone |\n|---|---|---|---|', flush=True)
    rows = []
    for policy in (None, 'PASSIVE'):
        (alone,) = _steps(1, policy, args, common)
        both = _steps(2, policy, args, common)
        for jobs, medians in ((1, [alone]), (2, both)):
            steps = ' / '.join(f'{m:.2f}' for m in medians)
            ratio = ' / '.join(f'{m / alone:.2f}' for m in medians)
            print(f"| {policy or 'default'} | {jobs} | {steps} | {ratio} |", flush=True)
            rows.append(dict(policy=policy, jobs=jobs, median_steps=medians))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--steps', type=int, default=4)
    parser.add_argument('--only', nargs='+', type=int,
                        help='row numbers of LEVERS to run (default: all)')
    parser.add_argument('--matmul', action='store_true',
                        help='time float32 vs bfloat16 products instead')
    parser.add_argument('--sharing', action='store_true',
                        help='time one job alone and two at once, per wait policy')
    parser.add_argument('--job-threads', type=int, default=2,
                        help='threads per job of --sharing')
    args, common = parser.parse_known_args(argv)
    if args.matmul:
        return matmul_dtypes()
    if args.sharing:
        return sharing(args, common)
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
