r"""What a Dual-AMN checkpoint costs on a pair: its size, and the seconds to
write it (atomically, synced) and to read it back (digest checked), for a
model of the pair's size with its RMSprop state, the state a run saves.

    TORCH_GEOMETRIC_EA_MIRROR=../shared/data python benchmarks/checkpoint_cost.py \
        --dataset dbp15k --pair zh_en
    python benchmarks/checkpoint_cost.py --dataset synthetic --num-entities 1000000 \
        --channels 64
"""
import argparse
import os
import os.path as osp
import sys
import tempfile
import time

import torch

from torch_geometric_ea.data import get_pair
from torch_geometric_ea.data.pair import to_union
from torch_geometric_ea.nn import DualAMN
from torch_geometric_ea.train.checkpoint import (
    random_state,
    read_checkpoint_file,
    write_atomic,
)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--dataset', default='synthetic')
    parser.add_argument('--pair')
    parser.add_argument('--num-entities', type=int, default=2000)
    parser.add_argument('--root', default=osp.join(
        os.environ.get('TORCH_GEOMETRIC_EA_MIRROR', 'data')))
    parser.add_argument('--channels', type=int, default=128)
    parser.add_argument('--repeats', type=int, default=3)
    args = parser.parse_args(argv)
    data = get_pair(args.dataset, args.pair, args.root, seed=0,
                    num_entities=args.num_entities)
    union = to_union(data)
    model = DualAMN(union.num_nodes, union.num_relations, args.channels)
    optimizer = torch.optim.RMSprop(model.parameters(), alpha=0.9, eps=1e-7)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()  # the optimiser's state exists, as in a run
    state = dict(identity={}, model=model.state_dict(), optimizer=optimizer.state_dict(),
                 random=random_state())
    with tempfile.TemporaryDirectory(dir='.') as tmp:
        path = osp.join(tmp, 'checkpoint.pt')
        writes, reads = [], []
        for _ in range(args.repeats):
            t = time.perf_counter()
            write_atomic(path, state)
            writes.append(time.perf_counter() - t)
            t = time.perf_counter()
            read_checkpoint_file(path)
            reads.append(time.perf_counter() - t)
        size = osp.getsize(path)
    print(f"| {args.dataset} {args.pair or args.num_entities} | {union.num_nodes:,} "
          f"| {args.channels} | {size / 2**20:,.0f} MiB | {min(writes):.2f} s "
          f"| {min(reads):.2f} s |")
    return 0


if __name__ == '__main__':
    sys.exit(main())
