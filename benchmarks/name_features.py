r"""How well name features align entities on their own: cosine Hits@1 / MRR
on the test links (no training), per pair. By default the offline
features of the URIs (:func:`~torch_geometric_ea.data.name_features`, and
whether a transliteration package was used); with ``--translated`` the
character-bigram view of the machine-translated names
(:func:`~torch_geometric_ea.data.names.token_bigram_features`).

    TORCH_GEOMETRIC_EA_MIRROR=../shared/data python benchmarks/name_features.py
    TORCH_GEOMETRIC_EA_MIRROR=../shared/data python benchmarks/name_features.py --translated
"""
import argparse

from torch_geometric_ea.cli import load_pair
from torch_geometric_ea.data import name_features
from torch_geometric_ea.data.names import token_bigram_features, transliterator
from torch_geometric_ea.data.translated import pair_names, translated_names
from torch_geometric_ea.data.pair import LINK
from torch_geometric_ea.metrics import evaluate_alignment

RUNS = ['dbp15k/zh_en', 'dbp15k/ja_en', 'dbp15k/fr_en', 'srprs/en_fr']


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--runs', nargs='+', default=RUNS)
    parser.add_argument('--root', default='data')
    parser.add_argument('--dim', type=int, default=300)
    parser.add_argument('--translated', action='store_true',
                        help='bigrams of the machine-translated names')
    args = parser.parse_args(argv)
    print(f"transliteration: {transliterator()('Москва')!r} for 'Москва'")
    print('| data | Hits@1 | Hits@10 | MRR |\n|---|---|---|---|')
    for run in args.runs:
        dataset, pair = run.split('/')
        data = load_pair(dataset, pair, args.root, seed=0)
        if args.translated:
            names = translated_names(dataset, pair, f'{args.root}/names')
            src, tgt = pair_names(data, names)
            both = token_bigram_features(src + tgt)
            x_src, x_tgt = both[:len(src)], both[len(src):]
        else:
            x_src, x_tgt = name_features(data, dim=args.dim)
        test = data[LINK].edge_label_index[:, data[LINK].test_mask]
        m = evaluate_alignment(x_src, x_tgt, test, csls_k=0)['src->tgt']
        print(f"| {run} | {m['hits@1']:.3f} | {m['hits@10']:.3f} | {m['mrr']:.3f} |",
              flush=True)


if __name__ == '__main__':
    main()
