r"""Settings picked from the size of the pair, for the options a user left
unset: the paper's settings stay on paper-size pairs (DBP15K, SRPRS: up
to 40K entities), and larger pairs get the settings that make a run
finish on the hardware users have (the README's scale rows).

Dual-AMN's loss scores every entity for each batch of 1,024 seed pairs;
at 200K entities that is about 600 s per epoch on two cores. Above
:data:`SCALE_ENTITIES` entities it scores ``num_candidates`` = 4,096
random entities instead, in batches grown with the seed links to keep
about the paper's five steps per epoch. Above :data:`MILLION_ENTITIES`
it takes 64 channels (the 1M run peaks at 12.45 GiB with them; 128 would
double the activations and the entity table, not measured) and ranks
each test link by cosine among its exact top-10 (one pass over the 630K
x 630K test products, 1.5e14 multiply-adds at 384 dimensions, instead of
CSLS's two passes and a comparison per score). LightEA scores every
test pair over ``rel_dim * mini_dim`` columns; above the same size it uses the
Kronecker projection and 1,024 columns (the 100K pair's 63K x 63K test
scores cost 8 TFLOP per 1,024 columns) and ranks src->tgt only, as the
official evaluation does (the columns' exact top-500 would add half the
products' time). Above :data:`MILLION_ENTITIES`
(the 1M pair's 630K x 630K test scores cost 100 TFLOP per 128 columns,
about 13 minutes on two AVX2 cores) it takes 128 columns from 256-column
labels and each source's 10 best candidates, src->tgt only, which the
blocked search finds exactly at little more than the cost of the
products (:func:`~torch_geometric_ea.metrics.topk.blocked_topk`; the
columns' top-10 for tgt->src would add a third).
"""
from typing import Any, Dict, Iterable

from torch_geometric.data import HeteroData

from torch_geometric_ea.data.pair import SRC, TGT
from torch_geometric_ea.train.registry import get_model

__all__ = ['SCALE_ENTITIES', 'MILLION_ENTITIES', 'num_entities', 'scale_settings',
           'keeps_freed_memory', 'scale_batch_size']

#: Pairs with more entities (both KGs) than this get the scale settings.
SCALE_ENTITIES = 60_000
#: Pairs with more entities than this get LightEA's million-scale settings.
MILLION_ENTITIES = 600_000


def num_entities(data: HeteroData) -> int:
    r"""The entities of both KGs of ``data``, the size the settings go by."""
    return data[SRC].num_nodes + data[TGT].num_nodes


def scale_batch_size(num_train: int) -> int:
    r"""The power of two nearest above a fifth of the seed links, between
    1,024 and 32,768 (about five steps per epoch)."""
    size = 1024
    while size < num_train / 5 and size < 32768:
        size *= 2
    return size


def scale_settings(model: str, data: HeteroData, explicit: Iterable[str]
                   ) -> Dict[str, Any]:
    r"""The config fields of ``model`` to change for the size of ``data``
    (its :meth:`~torch_geometric_ea.train.spec.AlignerSpec.scale_settings`),
    leaving out every field in ``explicit`` (those the user set); empty for
    pairs of at most :data:`SCALE_ENTITIES` entities."""
    if num_entities(data) <= SCALE_ENTITIES:
        return {}
    explicit = set(explicit)
    return {k: v for k, v in get_model(model).scale_settings(data).items()
            if k not in explicit}


def keeps_freed_memory(model: str, data: HeteroData) -> bool:
    r"""Whether a CPU run of ``model`` on ``data`` should keep freed memory
    (:func:`~torch_geometric_ea.runtime.keep_freed_memory`; the model's
    :meth:`~torch_geometric_ea.train.spec.AlignerSpec.keeps_freed_memory`)."""
    return get_model(model).keeps_freed_memory(data)
