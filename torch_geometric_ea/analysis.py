r"""The analyses of the Dual-AMN paper (`Mao et al., WWW 2021
<https://arxiv.org/abs/2103.15452>`_): which relations the attention
favours (section 6.6) and how accuracy depends on entity degree
(section 6.7)."""
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import HeteroData

from torch_geometric_ea.data.pair import LINK, SRC, SRC_TRIPLE, TGT_TRIPLE
from torch_geometric_ea.metrics import rank_metrics, rank_of_true
from torch_geometric_ea.nn import DualAMN, RelationalAttentionConv
from torch_geometric_ea.outputs import atomic_file

__all__ = ['relation_importance', 'relation_importance_table', 'entity_degree',
           'hits_by_degree', 'plot_hits_by_degree', 'DEGREE_BUCKETS']

DEGREE_BUCKETS = (1, 2, 4, 8, 16, 32)


@torch.no_grad()
def relation_importance(model: DualAMN) -> Tensor:
    r"""The importance of every relation to the attention of a trained
    :class:`~torch_geometric_ea.nn.DualAMN` (paper section 6.6),

    .. math::
        I_r = \frac{1}{|\mathcal{V}|} \sum_{\mathbf{v} \in \mathcal{V}}
        \mathbf{v}^\top \hat{\mathbf{h}}_r,

    where :math:`\hat{\mathbf{h}}_r` is the :math:`L_2`-normalised relation
    embedding and :math:`\mathcal{V}` the attention vectors of every
    :class:`~torch_geometric_ea.nn.RelationalAttentionConv` (both encoders,
    every layer). An edge's attention logit is :math:`\mathbf{v}^\top
    \mathbf{r}_{ij}`, so a larger :math:`I_r` means neighbours over
    :math:`r` weigh more in every entity's aggregation.

    Returns:
        torch.Tensor: :math:`(2R)`, relation :math:`r` then its inverse at
        :math:`r + R`, in the union numbering of
        :func:`~torch_geometric_ea.data.to_union`.
    """
    h = F.normalize(model.rel_emb.weight, dim=-1)
    att = torch.stack([m.att.view(-1) for m in model.modules()
                       if isinstance(m, RelationalAttentionConv)])
    return (h @ att.t()).mean(dim=1)


def relation_importance_table(model: DualAMN, data: HeteroData) -> List[Dict]:
    r""":func:`relation_importance` as rows ``{'kg', 'relation',
    'direction', 'triples', 'importance'}`` named by the pair's relation
    names, most important first (``kg`` is 1 or 2, ``direction``
    ``'forward'`` or ``'inverse'``, ``triples`` the relation's number of
    triples in its KG)."""
    importance = relation_importance(model)
    names = list(data[SRC_TRIPLE].relation_uri) + list(data[TGT_TRIPLE].relation_uri)
    r1, num = data[SRC_TRIPLE].num_relations, len(names)
    if importance.numel() != 2 * num:
        raise ValueError(f"the model has {importance.numel() // 2} relations, "
                         f"the pair {num}")
    counts = torch.cat([torch.bincount(data[rel].edge_type,
                                       minlength=data[rel].num_relations)
                        for rel in (SRC_TRIPLE, TGT_TRIPLE)])
    rows = [dict(kg=1 if r % num < r1 else 2, relation=names[r % num],
                 direction='forward' if r < num else 'inverse',
                 triples=int(counts[r % num]), importance=float(importance[r]))
            for r in range(2 * num)]
    return sorted(rows, key=lambda row: -row['importance'])


def entity_degree(data: HeteroData, side: str) -> Tensor:
    r"""The number of triples each entity of one KG (``'src'`` or
    ``'tgt'``) takes part in, as head or tail (a self-loop counts twice)."""
    rel = SRC_TRIPLE if side == SRC else TGT_TRIPLE
    return torch.bincount(data[rel].edge_index.reshape(-1),
                          minlength=data[side].num_nodes)


@torch.no_grad()
def hits_by_degree(x_src: Tensor, x_tgt: Tensor, data: HeteroData,
                   links: Optional[Tensor] = None,
                   buckets: Sequence[int] = DEGREE_BUCKETS, *,
                   csls_k: int = 10) -> List[Dict]:
    r"""Hits@1 (source to target, CSLS among the links' targets, as
    :func:`~torch_geometric_ea.metrics.evaluate_alignment`) of the links
    grouped by the degree of their source entity (paper section 6.7).

    Args:
        x_src (torch.Tensor): Source entity embeddings :math:`(N_1, D)`.
        x_tgt (torch.Tensor): Target entity embeddings :math:`(N_2, D)`.
        data (HeteroData): The KG pair.
        links (torch.Tensor, optional): Links :math:`(2, L)`; default: the
            pair's test links.
        buckets (Sequence[int], optional): Increasing lower bounds of the
            degree buckets; the last is open. (default: :obj:`(1, 2, 4, 8,
            16, 32)`)
        csls_k (int, optional): The CSLS neighbourhood. (default: :obj:`10`)

    Returns:
        List[Dict]: per bucket ``{'degree', 'low', 'high', 'links',
        'hits@1'}`` (``high`` is :obj:`None` for the open bucket,
        ``hits@1`` NaN for an empty one).
    """
    if links is None:
        links = data[LINK].edge_label_index[:, data[LINK].test_mask]
    if list(buckets) != sorted(set(buckets)) or buckets[0] < 0:
        raise ValueError(f"'buckets' must be increasing non-negative lower "
                         f"bounds (got {list(buckets)})")
    ranks = x_src.new_empty(0)
    if links.size(1) > 0:  # a pair with seed links only has none to rank
        x = F.normalize(x_src[links[0]], dim=-1)
        y = F.normalize(x_tgt[links[1]], dim=-1)
        ranks = rank_of_true(x, y, torch.arange(links.size(1), device=x.device),
                             csls_k=csls_k)
    degree = entity_degree(data, SRC)[links[0]]
    out = []
    for i, low in enumerate(buckets):
        high = buckets[i + 1] - 1 if i + 1 < len(buckets) else None
        mask = degree >= low
        if high is not None:
            mask &= degree <= high
        count = int(mask.sum())
        label = (f'{low}+' if high is None else
                 str(low) if high == low else f'{low}-{high}')
        hits = rank_metrics(ranks[mask], ks=(1,))['hits@1']  # NaN if empty
        out.append(dict(degree=label, low=low, high=high, links=count,
                        **{'hits@1': hits}))
    return out


def plot_hits_by_degree(series: Dict[str, List[Dict]], path: str,
                        title: str = 'Hits@1 by source entity degree'):
    r"""Plots the rows of :func:`hits_by_degree`, one bar group per
    bucket and one bar per entry of ``series`` (for example
    ``{'structure': rows, 'structure + names': rows}``), with the number of
    links per bucket as a line on a second axis, to ``path`` (PNG).
    Needs matplotlib."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    first = next(iter(series.values()))
    labels = [row['degree'] for row in first]
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / len(series)
    for i, (name, rows) in enumerate(series.items()):
        ax.bar([j + i * width for j in range(len(rows))],
               [row['hits@1'] for row in rows], width, label=name)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(labels))])
    ax.set_xticklabels(labels)
    ax.set_xlabel('degree of the source entity (triples)')
    ax.set_ylabel('Hits@1')
    ax.set_ylim(0, 1)
    counts = ax.twinx()
    counts.plot([j + 0.4 - width / 2 for j in range(len(labels))],
                [row['links'] for row in first], 'k.--', label='links')
    counts.set_ylabel('test links')
    ax.legend(loc='upper left', fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    with atomic_file(path, 'wb') as f:
        fig.savefig(f, dpi=100, format='png')
    plt.close(fig)
