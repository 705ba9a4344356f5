r"""Times Dual-AMN training steps on a KG pair, split into phases, and
reports the peak memory (the "where the time goes" table of
``docs/results/profile.rst``).

    TORCH_GEOMETRIC_EA_MIRROR=../shared/data python benchmarks/profile_step.py \
        --pair zh_en --steps 6
    python benchmarks/profile_step.py --dataset synthetic --num-entities 100000

``--candidates random --num-candidates K`` times the loss over K random
candidates instead of all entities. ``--precision bfloat16`` runs the
products in bfloat16 (see :mod:`torch_geometric_ea.precision`; default
float32, as the documented table).

Each step is one batch of ``--batch-size`` training pairs: the full-graph
forward, the loss (whose gradient is computed in its forward pass), the
backward through the model and the optimiser step. ``--epochs N`` instead
trains N epochs of random batches, printing the peak after every step.
"""
import argparse
import json
import os
import time

os.environ.setdefault('THP_MEM_ALLOC_ENABLE', '1')  # as the CLI does

import torch  # noqa: E402

from torch_geometric_ea import precision  # noqa: E402
from torch_geometric_ea.data import get_pair  # noqa: E402
from torch_geometric_ea.data.pair import to_union  # noqa: E402
from torch_geometric_ea.nn import (  # noqa: E402
    DualAMN,
    NormalizedHardSampleMiningLoss,
    dual_amn_graph,
)
from torch_geometric_ea.runtime import keep_freed_memory  # noqa: E402
from torch_geometric_ea.train import peak_memory_gib  # noqa: E402
from torch_geometric_ea.train.dual_amn import rows_to_embed  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--dataset', default='dbp15k')
    parser.add_argument('--pair', default='zh_en')
    parser.add_argument('--root', default='data')
    parser.add_argument('--num-entities', type=int, default=100000)
    parser.add_argument('--candidates', choices=['all', 'random'], default='all')
    parser.add_argument('--num-candidates', type=int, default=4096)
    parser.add_argument('--threads', type=int)
    parser.add_argument('--steps', type=int, default=6)
    parser.add_argument('--epochs', type=int, default=0)
    parser.add_argument('--batch-size', type=int, default=1024)
    parser.add_argument('--system-malloc', action='store_true')
    parser.add_argument('--negatives', choices=['all', 'other'], default='all')
    parser.add_argument('--compile', action='store_true',
                        help='torch.compile the model')
    parser.add_argument('--precision', choices=precision.PRECISIONS, default='float32')
    parser.add_argument('--json', help='write the step times and peak here')
    args = parser.parse_args(argv)
    used = precision.resolve_precision(args.precision)
    print(f'precision: {used}', flush=True)
    if not args.system_malloc:
        keep_freed_memory()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    t = time.perf_counter()
    union = to_union(get_pair(args.dataset, args.pair, args.root, seed=0,
                              num_entities=args.num_entities))
    graph = dual_amn_graph(union.edge_index, union.edge_type, union.num_nodes,
                           union.num_relations)
    print(f'{union.num_nodes} entities, {union.edge_index.size(1)} triples, '
          f'{union.num_relations} relations: loaded and prepared in '
          f'{time.perf_counter() - t:.1f} s', flush=True)
    model = DualAMN(union.num_nodes, union.num_relations)
    loss_fn = NormalizedHardSampleMiningLoss(negatives=args.negatives)
    forward = torch.compile(model, dynamic=False) if args.compile else model
    optimizer = torch.optim.RMSprop(model.parameters(), lr=0.005, alpha=0.9,
                                    eps=1e-7)
    train = union.link_index[:, union.train_mask]

    def step(batch):
        with precision.using(used):
            return timed_step(batch)

    def timed_step(batch):
        times = [time.perf_counter()]
        optimizer.zero_grad()
        cand, node_type = None, union.node_type
        if args.candidates == 'all':
            emb = forward(graph)
        else:  # only the rows the loss reads, as training does
            cand = torch.randperm(union.num_nodes)[:args.num_candidates]
            rows, batch, cand = rows_to_embed(batch, cand)
            emb, node_type = forward(graph, rows), node_type[rows]
        times.append(time.perf_counter())
        loss = loss_fn(emb, batch, node_type, candidates=cand)
        times.append(time.perf_counter())
        loss.backward()
        times.append(time.perf_counter())
        optimizer.step()
        times.append(time.perf_counter())
        return [b - a for a, b in zip(times, times[1:])]

    if args.epochs:
        for _ in range(args.epochs):
            perm = torch.randperm(train.size(1))
            for start in range(0, perm.numel(), args.batch_size):
                step(train[:, perm[start:start + args.batch_size]])
                print(f'peak {peak_memory_gib():.2f} GiB', flush=True)
        return
    batch = train[:, :args.batch_size]
    step(batch)  # warm-up
    steps = []
    for _ in range(args.steps):
        steps.append(step(batch))
        model_s, loss_s, backward_s, opt_s = steps[-1]
        print(f'step {sum(steps[-1]):.2f} s: forward '
              f'{model_s:.2f}, loss {loss_s:.2f}, backward {backward_s:.2f}, '
              f'optimiser {opt_s:.2f}', flush=True)
    print(f'peak {peak_memory_gib():.2f} GiB')
    if args.json:
        median = sorted(sum(t) for t in steps)[len(steps) // 2]
        with open(args.json, 'w') as f:
            json.dump(dict(steps=steps, median_step=median,
                           peak_memory_gib=peak_memory_gib(),
                           num_nodes=union.num_nodes, args=vars(args)), f)


if __name__ == '__main__':
    main()
