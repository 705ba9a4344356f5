r"""LightEA on the official notebook's split, to set beside its figures:

    TORCH_GEOMETRIC_EA_MIRROR=../shared/data python benchmarks/lightea_official_split.py \
        --pair zh_en --iterations 3 [--set rel_dim=256 ...]

The notebook shuffles all links with NumPy seed 12306 and keeps 30% for
training (for SRPRS it reads ``ref_ent_ids``, then ``sup_ent_ids``, and
re-splits their union the same way). Prints the metrics after every round
and the wall time per phase as JSON.
"""
import argparse
import json

import numpy as np
import torch

from torch_geometric_ea.options import parse_field
from torch_geometric_ea.data import DBP15K, SRPRS
from torch_geometric_ea.data.pair import LINK
from torch_geometric_ea.train.lightea import LightEAConfig, train_lightea


def official_split(data, ratio: float = 0.3, ref_first: bool = False):
    r"""``data`` with the notebook's train/test split of all its links."""
    num = data[LINK].edge_label_index.size(1)
    order = np.arange(num)
    if ref_first:  # our SRPRS order is sup_ent_ids, then ref_ent_ids
        sup = int(data[LINK].train_mask.sum())
        order = np.concatenate([np.arange(sup, num), np.arange(sup)])
    np.random.seed(12306)
    np.random.shuffle(order)
    train = torch.zeros(num, dtype=torch.bool)
    train[torch.from_numpy(order[:int(num * ratio)])] = True
    out = data.clone()
    out[LINK].train_mask, out[LINK].test_mask = train, ~train
    out[LINK].val_mask = torch.zeros(num, dtype=torch.bool)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--pair', default='zh_en', help='a DBP15K pair, or srprs')
    parser.add_argument('--root', default='data')
    parser.add_argument('--iterations', type=int, default=1)
    parser.add_argument('--set', action='append', default=[], metavar='KEY=VALUE')
    parser.add_argument('--names', choices=['translated', 'uri'], default='translated',
                        help='the entity names of the name view (--set literal=true)')
    args = parser.parse_args(argv)
    settings = {}
    for item in args.set:
        key, _, value = item.partition('=')
        settings[key] = parse_field(LightEAConfig, key, value)
    srprs = args.pair == 'srprs'
    data = (SRPRS(args.root, 'en_fr', names=args.names) if srprs
            else DBP15K(args.root, args.pair, names=args.names))[0]
    result = train_lightea(official_split(data, ref_first=srprs),
                           LightEAConfig(iterations=args.iterations, **settings),
                           progress=False)
    print(json.dumps(dict(pair=args.pair, settings=settings, timings=result.timings,
                          rounds=[{k: h[k] for k in ('round', 'train_pairs', 'src->tgt',
                                                     'tgt->src')}
                                  for h in result.history]), indent=1))


if __name__ == '__main__':
    main()
