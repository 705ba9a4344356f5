r"""Greedy (cosine, CSLS) against global (Sinkhorn, Hungarian) decoding of
a trained Dual-AMN's embeddings, with the time each takes:

    TORCH_GEOMETRIC_EA_MIRROR=../shared/data python benchmarks/decoding.py \
        runs/harness/dual-amn_dbp15k_zh_en_seed0/model.pt --dataset dbp15k --pair zh_en

The pair is loaded with the checkpoint's split seed. Prints a Markdown
table; ``--json FILE`` also writes the rows.
"""
import argparse
import json
import time

import torch

from torch_geometric_ea import Aligner
from torch_geometric_ea.align import read_checkpoint
from torch_geometric_ea.data import get_pair
from torch_geometric_ea.data.pair import to_union
from torch_geometric_ea.metrics import evaluate_alignment
from torch_geometric_ea.nn import DualAMN


def embed(checkpoint: str, data) -> torch.Tensor:
    r"""The union embeddings of a saved Dual-AMN ``model.pt`` and the test
    links in union ids."""
    aligner = Aligner.load(checkpoint, data)
    if not isinstance(aligner.model, DualAMN):
        raise SystemExit(f"{checkpoint}: a {aligner.model_name} model, not dual-amn")
    union = to_union(data)
    with torch.no_grad():
        return aligner.model(aligner.graph), union.link_index[:, union.test_mask]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('checkpoint', help="a Dual-AMN run's model.pt")
    parser.add_argument('--dataset', default='dbp15k')
    parser.add_argument('--pair', default='zh_en')
    parser.add_argument('--root', default='data')
    parser.add_argument('--tau', type=float, nargs='+', default=[0.02])
    parser.add_argument('--iters', type=int, nargs='+', default=[10])
    parser.add_argument('--json', help='also write the rows to this file')
    args = parser.parse_args(argv)
    seed = read_checkpoint(args.checkpoint)['config']['seed']
    data = get_pair(args.dataset, args.pair, args.root, seed=seed)
    emb, test = embed(args.checkpoint, data)
    settings = [('cosine', dict(csls_k=0)), ('csls k=10', dict(csls_k=10))]
    settings += [(f'sinkhorn tau={tau} iters={n}',
                  dict(decoding='sinkhorn', tau=tau, num_iters=n))
                 for tau in args.tau for n in args.iters]
    settings.append(('hungarian', dict(decoding='hungarian')))
    rows = []
    print('| decoding | Hits@1 | Hits@10 | MRR | Hits@1 tgt->src | s |')
    print('|---|---|---|---|---|---|')
    for name, kwargs in settings:
        t = time.perf_counter()
        out = evaluate_alignment(emb, emb, test, **kwargs)
        seconds = time.perf_counter() - t
        a, b = out['src->tgt'], out['tgt->src']
        rows.append(dict(decoding=name, seconds=seconds, **out))
        fmt = lambda m, k: f"{m[k]:.3f}" if k in m else '-'  # noqa: E731
        print(f"| {name} | {a['hits@1']:.3f} | {fmt(a, 'hits@10')} | "
              f"{fmt(a, 'mrr')} | {b['hits@1']:.3f} | {seconds:.1f} |", flush=True)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(rows, f, indent=2)


if __name__ == '__main__':
    main()
