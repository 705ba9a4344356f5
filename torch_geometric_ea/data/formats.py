r"""Readers for the published file layouts of entity-alignment datasets, each
returning a KG pair (see :mod:`torch_geometric_ea.data.pair`).

Integer-id layouts (:func:`read_gcn_align`, :func:`read_rsn`,
:func:`read_bootea`) use global file ids: the two KGs' ids may be offset or
interleave. Each KG's entities are re-indexed ``0..N-1`` in ``ent_ids`` file
order and its relations ``0..R-1`` sorted by file id; the file ids are kept
as ``data['src'].raw_id`` (``[N1]``) and
``data['src', 'triple', 'src'].relation_raw_id`` (``[R1]``), the same for
``'tgt'``. Relations are named by ``rel_ids_1/2`` when those files exist,
else ``'rel<file id>'``.

Name layouts (:func:`read_openea`, :func:`from_tsv`) number each KG's
entities and relations ``0..N-1`` / ``0..R-1`` in sorted name order.

Every pair also carries ``data[kg, 'triple', kg].num_duplicates`` (repeated
triple lines removed) and ``data.report``: for each file read, a dict with
``rows`` (records kept), ``duplicates`` and ``blank_lines``.
"""
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from torch_geometric_ea.data.io import (
    IdMap,
    Records,
    concat_links,
    read_id_map,
    read_int_links,
    read_entity_names,
    read_int_triples,
    read_str_links,
    read_str_triples,
)
from torch_geometric_ea.data.pair import (
    SPLITS,
    SRC,
    SRC_TRIPLE,
    TGT,
    TGT_TRIPLE,
    kg_pair,
    split_links,
)

__all__ = [
    'read_gcn_align',
    'read_rsn',
    'read_bootea',
    'read_openea',
    'from_tsv',
    'attach_names',
]


def _report_entry(records) -> Dict[str, int]:
    rows = records.names if isinstance(records, IdMap) else records.rows
    return dict(rows=len(rows), duplicates=getattr(records, 'num_duplicates', 0),
                blank_lines=records.num_blank_lines)


def _finish(data: HeteroData, triples: Sequence[Records],
            report: Dict[str, object]) -> HeteroData:
    for store, records in zip((SRC_TRIPLE, TGT_TRIPLE), triples):
        data[store].num_duplicates = records.num_duplicates
    data.report = {key: _report_entry(records) for key, records in report.items()}
    return data


def _require(folder: str, names: Sequence[str]):
    missing = [osp.join(folder, n) for n in names
               if not osp.isfile(osp.join(folder, n))]
    if missing:
        raise FileNotFoundError(f"missing dataset file(s): {', '.join(missing)}")


def _local(raw: np.ndarray, universe: np.ndarray) -> Tensor:
    r"""Maps ids of ``raw`` (all known to be in ``universe``) to their
    position in ``universe``."""
    order = np.argsort(universe, kind='stable')
    return torch.from_numpy(order[np.searchsorted(universe[order], raw)])


def _relations(rel: Optional[IdMap], used: np.ndarray
               ) -> Tuple[np.ndarray, List[str]]:
    r"""The relation file ids of a KG sorted, and their names: those of the
    ``rel_ids`` file when there is one, else those used by the triples."""
    if rel is None:
        raw = np.unique(used)
        return raw, [f'rel{i}' for i in raw.tolist()]
    order = np.argsort(rel.ids.numpy(), kind='stable')
    return rel.ids.numpy()[order], [rel.names[i] for i in order.tolist()]


def _read_id_layout(folder: str, fixed_split: bool, require_rel_ids: bool,
                    train_ratio: float, seed: int) -> HeteroData:
    folder = str(folder)
    link_files = ['sup_ent_ids', 'ref_ent_ids'] if fixed_split else ['ref_ent_ids']
    _require(folder, ['ent_ids_1', 'ent_ids_2', 'triples_1', 'triples_2']
             + link_files + (['rel_ids_1', 'rel_ids_2'] if require_rel_ids else []))
    report, entities, triples = {}, [], []
    edge_index, edge_type, rel_raw, rel_names = [], [], [], []
    for k in ('1', '2'):
        ent = read_id_map(osp.join(folder, f'ent_ids_{k}'))
        rel_path = osp.join(folder, f'rel_ids_{k}')
        rel = read_id_map(rel_path) if osp.isfile(rel_path) else None
        tri = read_int_triples(osp.join(folder, f'triples_{k}'), ent, rel)
        report.update({f'ent_ids_{k}': ent, f'triples_{k}': tri})
        if rel is not None:
            report[f'rel_ids_{k}'] = rel
        entities.append(ent)
        triples.append(tri)

        h, r, t = tri.rows.numpy().T
        ids = ent.ids.numpy()
        raw, names = _relations(rel, r)
        edge_index.append(torch.stack([_local(h, ids), _local(t, ids)]))
        edge_type.append(torch.from_numpy(np.searchsorted(raw, r)))
        rel_raw.append(torch.from_numpy(raw))
        rel_names.append(names)

    parts = [read_int_links(osp.join(folder, name), (entities[0], entities[1]))
             for name in link_files]
    report.update(zip(link_files, parts))
    removed = 0
    if fixed_split:  # some public copies keep the training links in ref too
        parts[1], removed = _without_contained(parts[1], parts[0])
    raw_links = concat_links(parts).numpy()
    link_index = torch.stack([_local(raw_links[:, c], entities[c].ids.numpy())
                              for c in (0, 1)])
    if fixed_split:  # sup_ent_ids first
        is_train = torch.arange(link_index.size(1)) < len(parts[0].rows)
        masks = dict(train_mask=is_train, test_mask=~is_train)
    else:
        masks = split_links(link_index.size(1), train_ratio, seed=seed)
    data = kg_pair(
        num_nodes=(len(entities[0].names), len(entities[1].names)),
        edge_index=tuple(edge_index), edge_type=tuple(edge_type),
        num_relations=tuple(len(n) for n in rel_names), link_index=link_index,
        uri=(entities[0].names, entities[1].names), relation_uri=tuple(rel_names),
        **masks)
    for node, store, ent, raw in zip((SRC, TGT), (SRC_TRIPLE, TGT_TRIPLE),
                                     entities, rel_raw):
        data[node].raw_id = ent.ids
        data[store].relation_raw_id = raw
    data = _finish(data, triples, report)
    if removed:
        data.report['ref_ent_ids']['test_links'] = len(parts[1].rows)
        data.report['ref_ent_ids']['training_links_left_out'] = removed
    return data


def _without_contained(ref: Records, sup: Records) -> Tuple[Records, int]:
    r"""``ref`` without the links of ``sup`` when it holds every one of them
    (the SRPRS copies whose ``ref_ent_ids`` lists all links, training ones
    included: test = ref minus sup), and how many were left out; ``ref`` as
    it is otherwise (a partial overlap stays an error of the reader)."""
    if len(sup.rows) == 0 or len(ref.rows) < len(sup.rows):
        return ref, 0
    width = int(max(ref.rows.max(), sup.rows.max())) + 1
    ref_key, sup_key = (r[:, 0] * width + r[:, 1] for r in (ref.rows, sup.rows))
    in_sup = torch.isin(ref_key, sup_key)
    if int(in_sup.sum()) != len(sup.rows):
        return ref, 0
    keep = ~in_sup
    return ref._replace(rows=ref.rows[keep], line=ref.line[keep]), len(sup.rows)


def read_gcn_align(folder: str, *, train_ratio: float = 0.3,
                   seed: int = 0) -> HeteroData:
    r"""Reads the GCN-Align / JAPE layout of DBP15K: ``ent_ids_1``,
    ``ent_ids_2``, ``triples_1``, ``triples_2`` and ``ref_ent_ids`` (all
    links), with optional ``rel_ids_1`` / ``rel_ids_2``.

    Args:
        folder (str): the folder holding the files.
        train_ratio (float): fraction of the links drawn at random as
            training links, the rest are test links. (default: :obj:`0.3`)
        seed (int): seed of the split (see
            :func:`~torch_geometric_ea.data.pair.split_links`).
            (default: :obj:`0`)

    Returns:
        HeteroData: the KG pair, links in ``ref_ent_ids`` order.
    """
    return _read_id_layout(folder, False, False, train_ratio, seed)


def read_rsn(folder: str) -> HeteroData:
    r"""Reads the RSN layout of SRPRS: the GCN-Align layout plus
    ``rel_ids_1``, ``rel_ids_2`` (relation names) and ``sup_ent_ids``. The
    split is fixed: ``sup_ent_ids`` are the training links, ``ref_ent_ids``
    the test links.

    Args:
        folder (str): the folder holding the files.

    Returns:
        HeteroData: the KG pair, links ordered ``sup_ent_ids`` then
        ``ref_ent_ids``.
    """
    return _read_id_layout(folder, True, True, 0.0, 0)


def read_bootea(folder: str) -> HeteroData:
    r"""Reads the BootEA layout of DWY100K (``dataset/DWY100K/<pair>/
    mapping/0_3``): the GCN-Align layout plus ``sup_ent_ids``, with optional
    ``rel_ids_1`` / ``rel_ids_2``. The split is fixed: ``sup_ent_ids`` are
    the training links, ``ref_ent_ids`` the test links.

    Args:
        folder (str): the folder holding the files.

    Returns:
        HeteroData: the KG pair, links ordered ``sup_ent_ids`` then
        ``ref_ent_ids``.
    """
    return _read_id_layout(folder, True, False, 0.0, 0)


Vocab = Tuple[Dict[str, int], Dict[str, int]]


def _vocabulary(triples: Records) -> Vocab:
    r"""Entity and relation names of a string triple file, each numbered in
    sorted name order (the dicts keep that order)."""
    entities = sorted({n for h, _, t in triples.rows for n in (h, t)})
    relations = sorted({r for _, r, _ in triples.rows})
    return ({n: i for i, n in enumerate(entities)},
            {n: i for i, n in enumerate(relations)})


def _read_str_links(path: str, triples: Sequence[Records],
                    vocab: Sequence[Vocab]) -> Records:
    return read_str_links(path, (vocab[0][0], vocab[1][0]),
                          (triples[0].path, triples[1].path))


def _name_pair(triples: Sequence[Records], vocab: Sequence[Vocab],
               links: List[Tuple[str, str]], masks: Dict[str, Tensor]
               ) -> HeteroData:
    edge_index, edge_type = [], []
    for (entity, relation), t in zip(vocab, triples):
        edge_index.append(torch.tensor([[entity[h] for h, _, _ in t.rows],
                                        [entity[o] for _, _, o in t.rows]]))
        edge_type.append(torch.tensor([relation[r] for _, r, _ in t.rows]))
    link_index = torch.tensor([[vocab[0][0][a] for a, _ in links],
                               [vocab[1][0][b] for _, b in links]],
                              dtype=torch.long).view(2, -1)
    return kg_pair(
        num_nodes=tuple(len(e) for e, _ in vocab), edge_index=tuple(edge_index),
        edge_type=tuple(edge_type), num_relations=tuple(len(r) for _, r in vocab),
        link_index=link_index, uri=tuple(list(e) for e, _ in vocab),
        relation_uri=tuple(list(r) for _, r in vocab), **masks)


def read_openea(folder: str, *, fold: int = 1) -> HeteroData:
    r"""Reads the OpenEA layout: ``rel_triples_1``, ``rel_triples_2``
    (``head<TAB>relation<TAB>tail`` URIs), ``ent_links`` (URI pairs, all
    links) and ``721_5fold/<fold>/{train,valid,test}_links``.

    Every link of a fold file must be in ``ent_links``, and no link may be in
    two fold files. Links in no fold file get no split.

    Args:
        folder (str): the dataset folder (for example ``.../D_W_15K_V1``).
        fold (int): which of the five folds gives the split.
            (default: :obj:`1`)

    Returns:
        HeteroData: the KG pair, links in ``ent_links`` order with
        ``train_mask``, ``val_mask`` and ``test_mask`` from the fold.
    """
    folder = str(folder)
    split_files = {split: osp.join('721_5fold', str(fold), f'{name}_links')
                   for split, name in zip(SPLITS, ('train', 'valid', 'test'))}
    _require(folder, ['rel_triples_1', 'rel_triples_2', 'ent_links',
                      *split_files.values()])
    triples = [read_str_triples(osp.join(folder, f'rel_triples_{k}'))
               for k in (1, 2)]
    vocab = [_vocabulary(t) for t in triples]
    links = _read_str_links(osp.join(folder, 'ent_links'), triples, vocab)
    index = {link: i for i, link in enumerate(links.rows)}
    report = {'rel_triples_1': triples[0], 'rel_triples_2': triples[1],
              'ent_links': links}
    masks, seen = {}, {}
    for split, name in split_files.items():
        part = _read_str_links(osp.join(folder, name), triples, vocab)
        report[name] = part
        mask = torch.zeros(len(links.rows), dtype=torch.bool)
        for link, line in zip(part.rows, part.line.tolist()):
            i = index.get(link)
            if i is None:
                raise ValueError(f"{part.path}:{line}: link {link} is not in "
                                 f"{links.path}")
            if i in seen:
                raise ValueError(f"{part.path}:{line}: link {link} is also in "
                                 f"{seen[i]}")
            seen[i] = f"{part.path}:{line}"
            mask[i] = True
        masks[f'{split}_mask'] = mask
    data = _name_pair(triples, vocab, links.rows, masks)
    return _finish(data, triples, report)


def from_tsv(triples_1: str, triples_2: str, links: Optional[str] = None, *,
             train_links: Optional[str] = None, val_links: Optional[str] = None,
             test_links: Optional[str] = None, train_ratio: float = 0.3,
             val_ratio: float = 0.0, seed: int = 0) -> HeteroData:
    r"""Builds a KG pair from one's own KGs given as string TSV files:
    ``head<TAB>relation<TAB>tail`` triples per KG and ``name1<TAB>name2``
    links whose names occur in the triples.

    Give either ``links`` (all links, split at random by ``train_ratio``,
    ``val_ratio`` and ``seed``) or ``train_links`` (and optionally
    ``val_links`` and ``test_links``) as a fixed split. With
    ``train_links`` alone, every link is a seed link: the setting of
    aligning two KGs of one's own, where the rest is unknown (evaluation
    figures are then NaN). With no link file at all the pair has no links:
    the KGs a trained model embeds, evaluated on links given apart.

    Args:
        triples_1 (str): KG1 triples file.
        triples_2 (str): KG2 triples file.
        links (str, optional): all links. (default: :obj:`None`)
        train_links (str, optional): training links. (default: :obj:`None`)
        val_links (str, optional): validation links. (default: :obj:`None`)
        test_links (str, optional): test links. (default: :obj:`None`)
        train_ratio (float): training fraction of a random split.
            (default: :obj:`0.3`)
        val_ratio (float): validation fraction of a random split.
            (default: :obj:`0.0`)
        seed (int): seed of a random split. (default: :obj:`0`)

    Returns:
        HeteroData: the KG pair; ``data.report`` is keyed by the paths given.
    """
    fixed = {split: path for split, path in zip(SPLITS, (train_links, val_links,
                                                         test_links))
             if path is not None}
    if links is not None and fixed:
        raise ValueError("give either 'links' or the split files, not both")
    if links is None and fixed and 'train' not in fixed:
        raise ValueError("give 'links', or 'train_links' (and optionally "
                         "'val_links' and 'test_links')")
    triples = [read_str_triples(p) for p in (triples_1, triples_2)]
    vocab = [_vocabulary(t) for t in triples]
    report = {str(triples_1): triples[0], str(triples_2): triples[1]}
    if links is not None:
        part = _read_str_links(links, triples, vocab)
        report[str(links)] = part
        rows = part.rows
        masks = split_links(len(rows), train_ratio, val_ratio, seed)
    else:
        parts = [_read_str_links(p, triples, vocab) for p in fixed.values()]
        report.update({str(p): part for p, part in zip(fixed.values(), parts)})
        rows = concat_links(parts) if parts else []
        split = torch.cat([torch.full((len(p.rows),), i)
                           for i, p in enumerate(parts)] + [torch.zeros(0)])
        order = list(fixed)  # a split without a file has an all-False mask
        masks = {f'{s}_mask': (split == order.index(s)) if s in fixed
                 else torch.zeros(len(rows), dtype=torch.bool) for s in SPLITS}
    data = _name_pair(triples, vocab, rows, masks)
    return _finish(data, triples, report)


def attach_names(data: HeteroData, names_1: str, names_2: str) -> HeteroData:
    r"""Gives a pair of one's own KGs the names of two ``entity<TAB>name``
    files, one per KG (:func:`~torch_geometric_ea.data.io.read_entity_names`):
    ``data[side].name`` (empty for an entity a file does not name; the
    encoders give it a zero vector), ``data.name_source = 'file'``, and
    per file the number of entities without a name in
    ``data.report[path]['entities_without_name']``.

    Raises:
        ValueError: ``"<path>:<line>: <problem>"`` for the first bad line.
    """
    src, tgt = list(data[SRC].uri), list(data[TGT].uri)
    data[SRC].name = read_entity_names(names_1, src, 'KG1', other=set(tgt))
    data[TGT].name = read_entity_names(names_2, tgt, 'KG2', other=set(src))
    data.name_source = 'file'
    report = dict(getattr(data, 'report', None) or {})
    for path, side in ((names_1, SRC), (names_2, TGT)):
        report[str(path)] = dict(entities_without_name=sum(
            not name for name in data[side].name))
    data.report = report
    return data
