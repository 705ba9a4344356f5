r"""Settings picked from the size of the pair, for the options a user left
unset: the paper's settings stay on paper-size pairs (DBP15K, SRPRS: up
to 40K entities); above :data:`SCALE_ENTITIES` entities (both KGs) each
model's :meth:`~torch_geometric_ea.train.spec.AlignerSpec.scale_settings`
apply (fewer loss candidates, smaller products, one-way ranking), with
further ones above :data:`MILLION_ENTITIES`. Why each setting, with the
runs that chose it: the docs' *Scale* results page
(``docs/results/scale.rst``)."""
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
