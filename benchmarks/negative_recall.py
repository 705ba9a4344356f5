r"""How close RDGCN's fast hard negatives (Euclidean candidates, then exact
:math:`L_1` ranking) are to the exact ones (:math:`L_1` over all entities),
on the embeddings of a saved RDGCN run:

    TORCH_GEOMETRIC_EA_MIRROR=../shared/data python benchmarks/negative_recall.py \
        runs/harness/rdgcn-names_dbp15k_zh_en_seed0/model.pt --dataset dbp15k --pair zh_en

Prints, per candidate count, the share of the exact :math:`k` nearest that
are chosen, the exact rank of the chosen ones (median, 95th percentile) and
the time per query row.
"""
import argparse
import time

import torch

from torch_geometric_ea import Aligner
from torch_geometric_ea.data import get_pair
from torch_geometric_ea.data.pair import to_union
from torch_geometric_ea.train.rdgcn import l1_nearest


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('checkpoint', help="an RDGCN run's model.pt")
    parser.add_argument('--dataset', default='dbp15k')
    parser.add_argument('--pair', default='zh_en')
    parser.add_argument('--root', default='data')
    parser.add_argument('--queries', type=int, default=600)
    parser.add_argument('--k', type=int, default=125)
    parser.add_argument('--candidates', type=int, nargs='+',
                        default=[1000, 500, 300])
    args = parser.parse_args(argv)
    data = get_pair(args.dataset, args.pair, args.root, seed=0)
    union = to_union(data)
    aligner = Aligner.load(args.checkpoint, data)
    with torch.no_grad():
        out = aligner.model(aligner.graph)
    query = out[union.link_index[1, union.train_mask][:args.queries]]
    rank = torch.cdist(query, out, p=1).argsort(1).argsort(1)
    print('| candidates | exact share | exact rank median | p95 | ms / query |')
    print('|---|---|---|---|---|')
    for num in args.candidates:
        t = time.perf_counter()
        chosen = l1_nearest(query, out, args.k, candidates=num)
        ms = (time.perf_counter() - t) * 1e3 / query.size(0)
        ranks = rank.gather(1, chosen).float()
        share = (ranks < args.k).float().mean().item()
        print(f'| {num} | {share:.3f} | {ranks.median().item():.0f} | '
              f'{ranks.quantile(0.95).item():.0f} | {ms:.2f} |')


if __name__ == '__main__':
    main()
