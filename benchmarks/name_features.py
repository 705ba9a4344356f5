r"""How well name features align entities on their own: cosine Hits@1 / MRR
on the test links (no training), per pair. By default the offline
features of the URIs (:func:`~torch_geometric_ea.data.name_features`, and
whether a transliteration package was used); with ``--translated`` the
machine-translated names by the hybrid encoder
(:class:`~torch_geometric_ea.data.HybridNameEncoder`: word vectors and
character bigrams) and by each view alone, with the tokens that have no
word vector.

    TORCH_GEOMETRIC_EA_MIRROR=../shared/data python benchmarks/name_features.py
    TORCH_GEOMETRIC_EA_MIRROR=../shared/data python benchmarks/name_features.py --translated
"""
import argparse

from torch_geometric_ea.data import get_pair, name_features
from torch_geometric_ea.data.names import (
    HybridNameEncoder,
    encode_names,
    transliterator,
)
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
    print('| data | names | Hits@1 | Hits@10 | MRR |\n|---|---|---|---|---|')
    for run in args.runs:
        dataset, pair = run.split('/')
        names = 'translated' if args.translated else 'uri'
        data = get_pair(dataset, pair, args.root, seed=0, names=names)
        test = data[LINK].edge_label_index[:, data[LINK].test_mask]
        if args.translated:
            hybrid = HybridNameEncoder()
            views = {'hybrid': hybrid, 'bigrams': HybridNameEncoder(False),
                     'words': lambda names: hybrid(names)[:, :50]}  # GloVe 50d
        else:
            views = {'uri n-grams': None}
        for view, encoder in views.items():
            x_src, x_tgt = (encode_names(data, encoder) if encoder else
                            name_features(data, dim=args.dim))
            m = evaluate_alignment(x_src, x_tgt, test, csls_k=0)['src->tgt']
            print(f"| {run} | {view} | {m['hits@1']:.3f} | {m['hits@10']:.3f} "
                  f"| {m['mrr']:.3f} |", flush=True)
        if args.translated:
            stats = hybrid.stats
            print(f"  {run}: {stats['tokens_without_vector']:,} of {stats['tokens']:,} "
                  f"tokens without a word vector, {stats['names_without_tokens']:,} "
                  f"of {stats['names']:,} entities without a name", flush=True)


if __name__ == '__main__':
    main()
