r"""The saved model (``model.pt`` of ``train --out``, ``align`` and
:meth:`~torch_geometric_ea.Aligner.save`): one writer and one reader.

A model file holds the model's registry name, its weights, config and
constructor arguments, the fingerprint and names' source of the KG pair it
was trained on, its test metrics, LightEA's replay state (the seeds and
random state its features are recomputed from) and, when asked, the pair
itself (plain tensors, lists and strings). It is written with a digest and
atomically, and read back only when whole, with
``torch.load(weights_only=True)`` (see
:mod:`~torch_geometric_ea.train.checkpoint`).
"""
from typing import Dict, Optional

from torch_geometric.data import HeteroData

from torch_geometric_ea.data.names import name_source
from torch_geometric_ea.data.pair import (
    LINK,
    SRC,
    SRC_TRIPLE,
    TGT,
    TGT_TRIPLE,
    kg_pair,
    pair_fingerprint,
)
from torch_geometric_ea.train.checkpoint import read_digested, save_digested

__all__ = ['MODEL_KEYS', 'model_state', 'save_model_file', 'read_model_file',
           'pair_state', 'pair_from_state', 'check_same_pair']

#: What every model file holds.
MODEL_KEYS = ('model', 'state_dict', 'config', 'init_args')


def pair_state(data: HeteroData) -> Dict:
    r"""The KG pair as plain tensors, lists and strings (loadable with
    ``torch.load(weights_only=True)``); :func:`pair_from_state` inverts it."""
    return dict(
        num_nodes=(data[SRC].num_nodes, data[TGT].num_nodes),
        edge_index=(data[SRC_TRIPLE].edge_index, data[TGT_TRIPLE].edge_index),
        edge_type=(data[SRC_TRIPLE].edge_type, data[TGT_TRIPLE].edge_type),
        num_relations=(data[SRC_TRIPLE].num_relations, data[TGT_TRIPLE].num_relations),
        link_index=data[LINK].edge_label_index,
        train_mask=data[LINK].train_mask, val_mask=data[LINK].val_mask,
        test_mask=data[LINK].test_mask,
        uri=(list(data[SRC].uri), list(data[TGT].uri)),
        relation_uri=(list(data[SRC_TRIPLE].relation_uri),
                      list(data[TGT_TRIPLE].relation_uri)),
        name=tuple(list(data[s].name) if 'name' in data[s] else None
                   for s in (SRC, TGT)),
        name_source=name_source(data),
        x=tuple(data[s].x if 'x' in data[s] else None for s in (SRC, TGT)))


def pair_from_state(state: Dict) -> HeteroData:
    r"""The KG pair :func:`pair_state` described."""
    state = dict(state)
    names, features = state.pop('name'), state.pop('x', (None, None))
    source = state.pop('name_source', None)
    data = kg_pair(**state)
    if source is not None and source != 'uri':
        data.name_source = source
    for side, name, x in zip((SRC, TGT), names, features):
        if name is not None:
            data[side].name = name
        if x is not None:
            data[side].x = x
    return data


def model_state(model_name: str, model, config: Dict, init_args: Dict,
                data: HeteroData, *, with_pair: bool = False,
                metrics: Optional[Dict] = None,
                replay: Optional[Dict] = None) -> Dict:
    r"""What a model file holds (see the module's description); the pair
    itself only ``with_pair``."""
    state = dict(model=model_name, state_dict=model.state_dict(), config=config,
                 init_args=init_args, pair_fingerprint=pair_fingerprint(data),
                 name_source=name_source(data), metrics=metrics or {},
                 replay=replay)
    if with_pair:
        state['pair'] = pair_state(data)
    return state


def save_model_file(file, state: Dict):
    r"""Writes :func:`model_state`'s ``state`` to the open binary ``file``
    with its digest (open it with
    :func:`~torch_geometric_ea.outputs.atomic_file` or
    :class:`~torch_geometric_ea.outputs.Outputs` for an atomic write)."""
    save_digested(file, state)


def read_model_file(path: str) -> Dict:
    r"""The contents of a model file, read only when its digest matches;
    anything else (garbage, a truncated, altered or empty file, one saved
    without a digest, another program's file) raises one
    :class:`ValueError` line naming the file."""
    state = read_digested(path, 'checkpoint', 'retrain or copy it again',
                          map_location='cpu')
    missing = [k for k in MODEL_KEYS if not isinstance(state, dict) or k not in state]
    if missing:
        raise ValueError(f"{path}: not a checkpoint of this package (it lacks "
                         f"{', '.join(missing)})")
    return state


def check_same_pair(path: str, state: Dict, data: HeteroData):
    r"""Raises :class:`ValueError` when ``data`` is not the pair the model
    file was trained on: its fingerprint differs, or (older files) its
    entity or relation counts do."""
    n = data[SRC].num_nodes + data[TGT].num_nodes
    r = data[SRC_TRIPLE].num_relations + data[TGT_TRIPLE].num_relations
    args = state['init_args']
    counts = [(what, args[key], have) for what, key, have in (
        ('entities', 'num_nodes', n), ('relations', 'num_relations', r))
        if key in args and args[key] != have]
    if counts:
        raise ValueError(f"{path} was trained on another KG pair: " + ', '.join(
            f"{want} {what} there, {have} here" for what, want, have in counts))
    kept = state.get('pair_fingerprint')
    if kept is not None and kept != pair_fingerprint(data):
        raise ValueError(f"{path} was trained on another KG pair (same sizes, "
                         f"other entities or triples)")
