r"""A pair of knowledge graphs with alignment links, stored as one
:class:`~torch_geometric.data.HeteroData`.

Layout (``S = 'src'``, ``T = 'tgt'``)::

    data['src'].num_nodes                 N1
    data['src'].uri                       list[str], N1 full names (URIs)
    data['src', 'triple', 'src'].edge_index  [2, E1]  (head, tail)
    data['src', 'triple', 'src'].edge_type   [E1]     relation id in [0, R1)
    data['src', 'triple', 'src'].relation    [E1]     the same, as union id
    data['src', 'triple', 'src'].num_relations  R1
    data['src', 'triple', 'src'].relation_uri   list[str], R1 names
    ... the same for 'tgt' (relation = R1 + edge_type) ...
    data['src', 'link', 'tgt'].edge_label_index  [2, M]  (src id, tgt id)
    data['src', 'link', 'tgt'].train_mask / val_mask / test_mask   [M] bool
    data['src', 'link', 'tgt'].edge_index        [2, 0]  no message edges

Entity and relation ids are local to their KG. :func:`to_union` merges
both KGs into one graph for models that run on a single graph.

The alignment links are supervision, stored as PyG stores supervision
edges (``edge_label_index``, as ``RandomLinkSplit`` does): the link type's
message-passing ``edge_index`` is empty, so ``to_hetero(model,
data.metadata())`` and ``HeteroConv`` over ``data.edge_index_dict`` never
pass a link between the KGs. A pair is a :class:`KGPair`, a
:class:`~torch_geometric.data.HeteroData` whose ``to_homogeneous()``
(:func:`pair_to_homogeneous`) keeps the union relation ids in
``relation`` (PyG overwrites ``edge_type`` with the store index), offsets
``edge_label_index`` to homogeneous ids and keeps ``train_mask`` /
``val_mask`` / ``test_mask`` aligned with those links (PyG's own method
would pad them with one entry per triple). What the files a pair was read
from said (``data.report``) is kept but left out of its printout.
"""
import copy
import hashlib
from typing import Dict, List, Optional, Sequence, Tuple
from urllib.parse import unquote

import torch
from torch import Tensor
from torch_geometric.data import Data, HeteroData

SRC, TGT = 'src', 'tgt'
SRC_TRIPLE = (SRC, 'triple', SRC)
TGT_TRIPLE = (TGT, 'triple', TGT)
LINK = (SRC, 'link', TGT)
SPLITS = ('train', 'val', 'test')
#: Attributes of the whole pair kept out of its printout.
HIDDEN = ('report',)


class KGPair(HeteroData):
    r"""A KG pair: a :class:`~torch_geometric.data.HeteroData` in the layout
    above (made by :func:`kg_pair`), whose :meth:`to_homogeneous` keeps the
    link split masks aligned with ``edge_label_index`` and whose printout
    leaves out ``report``."""
    def to_homogeneous(self, *args, **kwargs) -> Data:
        r"""PyG's :meth:`~torch_geometric.data.HeteroData.to_homogeneous`,
        with the links' masks aligned with the links (see
        :func:`pair_to_homogeneous`)."""
        return pair_to_homogeneous(self, *args, **kwargs)

    def __repr__(self) -> str:
        shown = copy.copy(self)
        for key in HIDDEN:
            if key in shown._global_store:
                del shown._global_store[key]
        return HeteroData.__repr__(shown)


torch.serialization.add_safe_globals([KGPair])  # processed files hold the class


def pair_to_homogeneous(data: HeteroData, *args, **kwargs) -> Data:
    r"""Converts a KG pair (any :class:`~torch_geometric.data.HeteroData` in
    the layout above) as :meth:`HeteroData.to_homogeneous
    <torch_geometric.data.HeteroData.to_homogeneous>` does (same
    arguments), except that ``train_mask``, ``val_mask`` and ``test_mask``
    are the links' ``[M]`` masks, aligned with the ``[2, M]``
    ``edge_label_index`` in homogeneous ids, so that
    ``h.edge_label_index[:, h.train_mask]`` are the training links. (PyG
    concatenates every edge attribute across edge types, padding the
    triples with ``False``.) Nothing of the pair's report is carried."""
    masks = {f'{s}_mask': data[LINK][f'{s}_mask'] for s in SPLITS
             if f'{s}_mask' in data[LINK]}
    plain = copy.copy(data)
    for key in list(masks) + [k for k in HIDDEN if k in plain._global_store]:
        store = plain[LINK] if key in masks else plain._global_store
        del store[key]
    out = HeteroData.to_homogeneous(plain, *args, **kwargs)
    for key, mask in masks.items():
        out[key] = mask
    return out


def local_name(uri: str) -> str:
    r"""The readable local name of a URI: the last path segment,
    percent-decoded, with underscores as spaces
    (``http://dbpedia.org/resource/Kim_Dae-jung`` -> ``Kim Dae-jung``)."""
    name = uri.rstrip('/')
    for sep in ('#', '/'):
        if sep in name:
            name = name.rsplit(sep, 1)[1]
            break
    return unquote(name).replace('_', ' ')


def _check_index(index: Tensor, size: int, what: str):
    if index.numel() > 0 and (int(index.min()) < 0 or int(index.max()) >= size):
        raise ValueError(f"{what} holds ids outside [0, {size}): "
                         f"min {int(index.min())}, max {int(index.max())}")


def kg_pair(
    *,
    num_nodes: Tuple[int, int],
    edge_index: Tuple[Tensor, Tensor],
    edge_type: Tuple[Tensor, Tensor],
    num_relations: Optional[Tuple[int, int]] = None,
    link_index: Tensor,
    train_mask: Optional[Tensor] = None,
    val_mask: Optional[Tensor] = None,
    test_mask: Optional[Tensor] = None,
    uri: Optional[Tuple[Sequence[str], Sequence[str]]] = None,
    relation_uri: Optional[Tuple[Sequence[str], Sequence[str]]] = None,
) -> KGPair:
    r"""Builds a KG pair from tensors, checking that every id is in range.

    Args:
        num_nodes: entity counts ``(N1, N2)``.
        edge_index: per KG, ``[2, E]`` (head, tail) entity ids.
        edge_type: per KG, ``[E]`` relation ids.
        num_relations: per KG relation counts (default: ``max + 1``).
        link_index: ``[2, M]`` aligned pairs (KG1 id, KG2 id).
        train_mask, val_mask, test_mask: ``[M]`` bool masks; when all are
            omitted every link is a test link.
        uri, relation_uri: names per KG (default: ``'e<i>'``, ``'r<i>'``).
    """
    data = KGPair()
    if num_relations is None:
        num_relations = tuple(int(t.max()) + 1 if t.numel() else 0 for t in edge_type)
    for k, (node, rel) in enumerate(((SRC, SRC_TRIPLE), (TGT, TGT_TRIPLE))):
        n, r = int(num_nodes[k]), int(num_relations[k])
        if n <= 0:
            raise ValueError(f"KG{k + 1} has no entities")
        ei = torch.as_tensor(edge_index[k], dtype=torch.long).view(2, -1)
        et = torch.as_tensor(edge_type[k], dtype=torch.long).view(-1)
        if ei.size(1) != et.numel():
            raise ValueError(f"KG{k + 1}: edge_index has {ei.size(1)} edges but "
                             f"edge_type has {et.numel()}")
        _check_index(ei, n, f"KG{k + 1} edge_index")
        _check_index(et, r, f"KG{k + 1} edge_type")
        names = list(uri[k]) if uri is not None else [f'e{i}' for i in range(n)]
        rnames = (list(relation_uri[k]) if relation_uri is not None
                  else [f'r{i}' for i in range(r)])
        if len(names) != n or len(rnames) != r:
            raise ValueError(f"KG{k + 1}: {len(names)} entity names for {n} "
                             f"entities, {len(rnames)} relation names for {r}")
        data[node].num_nodes = n
        data[node].uri = names
        data[rel].edge_index = ei
        data[rel].edge_type = et
        data[rel].relation = et + (0 if k == 0 else int(num_relations[0]))
        data[rel].num_relations = r
        data[rel].relation_uri = rnames

    li = torch.as_tensor(link_index, dtype=torch.long).view(2, -1)
    fewest = min(int(num_nodes[0]), int(num_nodes[1]))
    if li.size(1) > fewest:
        raise ValueError(f"{li.size(1)} links but a KG has only {fewest} entities "
                         f"(alignment is one-to-one)")
    _check_index(li[0], int(num_nodes[0]), "link_index[0] (KG1)")
    _check_index(li[1], int(num_nodes[1]), "link_index[1] (KG2)")
    check_links(li)
    data[LINK].edge_index = li.new_empty(2, 0)  # nothing for message passing
    data[LINK].edge_label_index = li
    masks = dict(train=train_mask, val=val_mask, test=test_mask)
    if all(m is None for m in masks.values()):
        masks['test'] = torch.ones(li.size(1), dtype=torch.bool)
    for split, mask in masks.items():
        mask = (torch.zeros(li.size(1), dtype=torch.bool) if mask is None
                else torch.as_tensor(mask, dtype=torch.bool).view(-1))
        if mask.numel() != li.size(1):
            raise ValueError(f"{split}_mask has {mask.numel()} entries for "
                             f"{li.size(1)} links")
        data[LINK][f'{split}_mask'] = mask
    overlap = sum(data[LINK][f'{s}_mask'].long() for s in SPLITS)
    if bool((overlap > 1).any()):
        raise ValueError("a link is in more than one split")
    return data


def check_links(link_index: Tensor, where: str = 'links'):
    r"""Raises :class:`ValueError` on duplicate links or on an entity linked
    to two different partners (alignment is one-to-one)."""
    for side, name in ((0, 'KG1'), (1, 'KG2')):
        ids = link_index[side]
        uniq, counts = torch.unique(ids, return_counts=True)
        if bool((counts > 1).any()):
            e = int(uniq[counts > 1][0])
            partners = link_index[1 - side][ids == e].tolist()
            what = ('duplicate link' if len(set(partners)) == 1 else
                    'entity linked to two different partners')
            raise ValueError(f"{where}: {what}: {name} entity {e} -> {partners}")


def check_alignable(data: HeteroData, *, unlinked: bool = False):
    r"""Raises :class:`ValueError` unless the pair can be aligned: both KGs
    have entities and triples, and some links are for training. With
    ``unlinked`` (what :meth:`~torch_geometric_ea.Aligner.fit` predicts
    for), also unless each KG has entities without a seed link: a pair
    whose KG is seeded whole (a one-entity KG, say) has nothing to align,
    though a benchmark run on it would still train and evaluate."""
    for k, (node, rel) in enumerate(((SRC, SRC_TRIPLE), (TGT, TGT_TRIPLE))):
        if data[node].num_nodes == 0:
            raise ValueError(f"KG{k + 1} is empty: it has no entities")
        if data[rel].edge_index.size(1) == 0:
            raise ValueError(f"KG{k + 1} has no triples (no relations): its "
                             f"entities have no structure to align by")
    if not bool(data[LINK].train_mask.any()):
        raise ValueError("the pair has no training (seed) links")
    if not unlinked:
        return
    for k, free in enumerate(unlinked_entities(data)):
        if free.numel() > 0:
            continue
        if data[(SRC, TGT)[k]].num_nodes == 1:
            raise ValueError(f"KG{k + 1} has one entity, and it has a seed link: "
                             f"nothing to align")
        raise ValueError(f"nothing to align: every entity of KG{k + 1} has a "
                         f"seed link")


def split_links(num_links: int, train_ratio: float = 0.3, val_ratio: float = 0.0,
                seed: int = 0) -> Dict[str, Tensor]:
    r"""A seeded random split of ``num_links`` links into train / val / test
    masks: the first ``int(M * train_ratio)`` of a random permutation train,
    the next ``int(M * val_ratio)`` validation, the rest test."""
    perm = torch.randperm(num_links, generator=torch.Generator().manual_seed(seed))
    n_train, n_val = int(num_links * train_ratio), int(num_links * val_ratio)
    masks = {}
    for split, part in (('train', perm[:n_train]),
                        ('val', perm[n_train:n_train + n_val]),
                        ('test', perm[n_train + n_val:])):
        mask = torch.zeros(num_links, dtype=torch.bool)
        mask[part] = True
        masks[f'{split}_mask'] = mask
    return masks


def resplit(data: HeteroData, train_ratio: float = 0.3, val_ratio: float = 0.0,
            seed: int = 0) -> HeteroData:
    r"""Returns a shallow copy of ``data`` with a new seeded random split of
    all its links (see :func:`split_links`)."""
    out = data.clone()
    for key, mask in split_links(out[LINK].edge_label_index.size(1), train_ratio,
                                 val_ratio, seed).items():
        out[LINK][key] = mask
    return out


def links(data: HeteroData, split: str) -> Tensor:
    r"""The ``[2, M_split]`` links of one split (``'train'``, ``'val'``,
    ``'test'``)."""
    return data[LINK].edge_label_index[:, data[LINK][f'{split}_mask']]


def to_union(data: HeteroData) -> Data:
    r"""Merges the two KGs of a pair into one graph.

    KG1 entity ``i`` becomes node ``i``, KG2 entity ``j`` node ``N1 + j``;
    KG2 relation ``r`` becomes relation ``R1 + r``. The result carries
    ``edge_index``, ``edge_type``, ``num_nodes``, ``num_relations``,
    ``node_type`` (0 for KG1, 1 for KG2), ``offset = (N1, R1)`` and the links
    in union ids as ``link_index`` with the split masks.
    """
    n1, r1 = data[SRC].num_nodes, data[SRC_TRIPLE].num_relations
    n2, r2 = data[TGT].num_nodes, data[TGT_TRIPLE].num_relations
    edge_index = torch.cat([data[SRC_TRIPLE].edge_index,
                            data[TGT_TRIPLE].edge_index + n1], dim=1)
    edge_type = torch.cat([data[SRC_TRIPLE].edge_type,
                           data[TGT_TRIPLE].edge_type + r1])
    union = Data(edge_index=edge_index, edge_type=edge_type, num_nodes=n1 + n2)
    union.num_relations = r1 + r2
    union.node_type = torch.cat([torch.zeros(n1, dtype=torch.long),
                                 torch.ones(n2, dtype=torch.long)])
    union.offset = (n1, r1)
    li = data[LINK].edge_label_index
    union.link_index = torch.stack([li[0], li[1] + n1])
    for split in SPLITS:
        union[f'{split}_mask'] = data[LINK][f'{split}_mask']
    return union


def pair_fingerprint(data: HeteroData) -> str:
    r"""A SHA-256 of the two KGs (entity names, relation names, triples):
    checkpoints keep it, so that a model is never evaluated on a pair it
    was not trained on, even one with the same entity counts."""
    digest = hashlib.sha256()
    for node, rel in ((SRC, SRC_TRIPLE), (TGT, TGT_TRIPLE)):
        digest.update('\n'.join(data[node].uri).encode())
        digest.update('\n'.join(data[rel].relation_uri).encode())
        for tensor in (data[rel].edge_index, data[rel].edge_type):
            digest.update(tensor.detach().to('cpu', torch.int64).contiguous()
                          .numpy().tobytes())
    return digest.hexdigest()


def from_union(x: Tensor, data: HeteroData) -> Tuple[Tensor, Tensor]:
    r"""Splits node-level union values (for example embeddings) back into
    ``(x_src [N1, ...], x_tgt [N2, ...])``."""
    n1, n2 = data[SRC].num_nodes, data[TGT].num_nodes
    if x.size(0) != n1 + n2:
        raise ValueError(f"expected {n1 + n2} union rows, got {x.size(0)}")
    return x[:n1], x[n1:]


def unlinked_entities(data: HeteroData) -> Tuple[Tensor, Tensor]:
    r"""The entities of each KG without a training (seed) link, as local
    ids: those whose partner is still to be found."""
    link = data[LINK]
    out = []
    for side, node in enumerate((SRC, TGT)):
        free = torch.ones(data[node].num_nodes, dtype=torch.bool)
        free[link.edge_label_index[side, link.train_mask]] = False
        out.append(free.nonzero().view(-1))
    return out[0], out[1]


def union_to_local(index: Tensor, data: HeteroData) -> Tuple[Tensor, Tensor]:
    r"""Maps union node ids to ``(kg, local id)`` with ``kg`` 0 or 1."""
    n1 = data[SRC].num_nodes
    kg = (index >= n1).long()
    return kg, index - kg * n1


def entity_names(data: HeteroData, side: str, readable: bool = True) -> List[str]:
    r"""Entity names of one side (``'src'`` or ``'tgt'``): the labels in
    ``data[side].name`` where the pair has them, else the readable local
    names of the URIs, or the full URIs with ``readable=False``."""
    if readable and 'name' in data[side]:
        return list(data[side].name)
    uris = data[side].uri
    return [local_name(u) for u in uris] if readable else list(uris)
