r"""Writes a benchmark pair as the TSV files ``align`` reads (``kg1.tsv``,
``kg2.tsv``: head, relation, tail URIs; ``seeds.tsv``: the training links;
``test.tsv``: the test links), to run ``align`` on a benchmark as a user
would on KGs of their own (names from the URIs), e.g. for the ``align``
memory figure of ``docs/results/memory.rst``:

    TORCH_GEOMETRIC_EA_MIRROR=../shared/data python benchmarks/export_tsv.py \
        --dataset dbp15k --pair fr_en --out runs/fr_en_tsv
    python -m torch_geometric_ea align --model lightea --literal \
        --triples1 runs/fr_en_tsv/kg1.tsv --triples2 runs/fr_en_tsv/kg2.tsv \
        --seeds runs/fr_en_tsv/seeds.tsv --test-links runs/fr_en_tsv/test.tsv \
        --out runs/fr_en_align
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from torch_geometric_ea.data import get_pair  # noqa: E402
from torch_geometric_ea.data.pair import (  # noqa: E402
    LINK,
    SRC,
    SRC_TRIPLE,
    TGT,
    TGT_TRIPLE,
)
from torch_geometric_ea.outputs import atomic_file  # noqa: E402


def export(data, out: str):
    r"""Writes ``data``'s triples and links under ``out``."""
    os.makedirs(out, exist_ok=True)
    for k, (node, rel) in enumerate(((SRC, SRC_TRIPLE), (TGT, TGT_TRIPLE)), 1):
        uri, relation = data[node].uri, data[rel].relation_uri
        (head, tail) = data[rel].edge_index.tolist()
        kind = data[rel].edge_type.tolist()
        with atomic_file(osp.join(out, f'kg{k}.tsv')) as f:
            f.writelines(f'{uri[h]}\t{relation[r]}\t{uri[t]}\n'
                         for h, r, t in zip(head, kind, tail))
    links = data[LINK].edge_label_index
    for name, mask in (('seeds', data[LINK].train_mask),
                       ('test', data[LINK].test_mask)):
        with atomic_file(osp.join(out, f'{name}.tsv')) as f:
            f.writelines(f'{data[SRC].uri[a]}\t{data[TGT].uri[b]}\n'
                         for a, b in links[:, mask].t().tolist())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--dataset', default='dbp15k')
    parser.add_argument('--pair', default='fr_en')
    parser.add_argument('--root', default='data')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', required=True)
    args = parser.parse_args(argv)
    export(get_pair(args.dataset, args.pair, args.root, seed=args.seed, names='uri'),
           args.out)


if __name__ == '__main__':
    main()
