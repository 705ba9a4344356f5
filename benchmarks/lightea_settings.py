r"""LightEA feature settings side by side on one pair: for each setting
(``ent_dim:rel_dim:mini_dim``, Kronecker projections), the time to build
the features, their raw-cosine Hits@1 and Hits@10 on a random sample of
test links (each ranked exactly against every test target), and the
process's peak memory so far. The sample keeps 1M-pair comparisons to
minutes; the full evaluation is the harness's (``docs/results/scale.rst``
and ``docs/results/lightea.rst``), and this script's tables inform
``docs/results/scale.rst``.

    python benchmarks/lightea_settings.py --num-entities 1000000 256:32:8 256:16:8
    python benchmarks/lightea_settings.py --num-entities 100000 256:16:8 256:32:4

``--costs`` instead times, per score, what the exact searches are made
of: on a 4,096 x 1,024 block the product at ``--dim`` columns, the row
and column maxima of the blocked search and a ``topk`` of 10; and a
``topk`` of 500 from rows of 63,000 (the 100K pair's test targets).
"""
import argparse
import resource
import time

import torch
import torch.nn.functional as F

from torch_geometric_ea.data.synthetic import synthetic_pair
from torch_geometric_ea.metrics.decoding import topk_inner_products
from torch_geometric_ea.nn.models.lightea import LightEA, lightea_graph
from torch_geometric_ea.train.common import prepare_run


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20


def compare(args):
    t = time.perf_counter()
    run = prepare_run(synthetic_pair(args.num_entities, seed=args.seed), args.seed,
                      'cpu', lambda u: lightea_graph(u.edge_index, u.edge_type,
                                                     u.num_nodes, u.num_relations))
    print(f'load and graph {time.perf_counter() - t:.0f} s, peak {peak_gib():.1f} GiB')
    test = run.test_pairs
    gen = torch.Generator().manual_seed(args.seed)
    sample = torch.randperm(test.size(1), generator=gen)[:args.sample]
    print('| ent_dim:rel_dim:mini_dim | features s | Hits@1 | Hits@10 | peak GiB |')
    print('|---|---|---|---|---|')
    for spec in args.settings:
        ent_dim, rel_dim, mini_dim = map(int, spec.split(':'))
        t = time.perf_counter()
        x = LightEA(ent_dim, 2, rel_dim, mini_dim, 'kronecker')(
            run.graph, run.train_pairs, torch.Generator().manual_seed(args.seed))
        seconds = time.perf_counter() - t
        src, tgt = F.normalize(x[test[0]], dim=1), F.normalize(x[test[1]], dim=1)
        _, index = topk_inner_products(src[sample], tgt, 10, 256)
        found = index == sample.unsqueeze(1)
        print(f'| {spec} | {seconds:.0f} | {float(found[:, 0].float().mean()):.3f} '
              f'| {float(found.any(1).float().mean()):.3f} | {peak_gib():.1f} |',
              flush=True)
        del x, src, tgt


def per_score(fn, num_scores: int, repeats: int = 10) -> float:
    fn()
    t = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t) / repeats / num_scores * 1e9


def costs(dim: int, rows: int = 4096, cols: int = 1024):
    gen = torch.Generator().manual_seed(0)
    q, yt = torch.randn(rows, dim, generator=gen), torch.randn(dim, cols, generator=gen)
    out = torch.empty(rows, cols)
    long_rows = torch.randn(512, 63000, generator=gen)  # the 100K pair's test rows
    print('| step | ns per score |\n|---|---|')
    for name, fn, size in (
            (f'product, {dim} columns', lambda: torch.mm(q, yt, out=out), out.numel()),
            ('row maxima', lambda: out.amax(dim=1), out.numel()),
            ('column maxima', lambda: out.t().amax(dim=1), out.numel()),
            ('topk 10 of a block row (1,024)', lambda: out.topk(10, dim=1),
             out.numel()),
            ('topk 500 of 63,000', lambda: long_rows.topk(500, dim=1),
             long_rows.numel())):
        print(f'| {name} | {per_score(fn, size):.2f} |')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('settings', nargs='*', default=['256:32:4'])
    parser.add_argument('--num-entities', type=int, default=100000)
    parser.add_argument('--sample', type=int, default=2000)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--costs', action='store_true')
    parser.add_argument('--dim', type=int, default=128)
    args = parser.parse_args()
    if args.costs:
        costs(args.dim)
    else:
        compare(args)


if __name__ == '__main__':
    main()
