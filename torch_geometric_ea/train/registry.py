r"""The one list of aligners: each is a registered :class:`AlignerSpec`
subclass that says, in one place, its config, how its fixed graph is built
from a pair, its module, its training step or feature round (the hooks of
:class:`~torch_geometric_ea.train.loop.Trainer`), its memory terms and its
size-aware settings. The command line, :class:`~torch_geometric_ea.Aligner`,
the memory estimate, the scale settings and the benchmarks look models up
here and never branch on a name.

.. code-block:: python

    from torch_geometric_ea.train import get_model, model_names

    spec = get_model('lightea')          # the class registered as 'lightea'
    result = spec.fit(data, spec.config_class(iterations=3))

A model of one's own is registered with :func:`register_model` (see
``tests/test_registry.py`` for a whole one in 60 lines).
"""
from typing import Dict, List, Type

__all__ = ['register_model', 'get_model', 'model_names', 'REGISTRY']

#: Registry name -> spec class, in registration order.
REGISTRY: Dict[str, Type] = {}


def register_model(spec: Type) -> Type:
    r"""Registers ``spec`` (an :class:`AlignerSpec` subclass) under its
    ``name``; usable as a class decorator. A name registered again is
    replaced (so a test or a notebook may redefine its model)."""
    if not getattr(spec, 'name', None):
        raise ValueError(f"{spec.__name__} has no 'name' to register it by")
    REGISTRY[spec.name] = spec
    return spec


def model_names() -> List[str]:
    r"""The registered models' names, sorted."""
    return sorted(REGISTRY)


def get_model(name: str) -> Type:
    r"""The spec class registered as ``name``; :class:`ValueError` with one
    line naming the registered ones otherwise."""
    if name not in REGISTRY:
        raise ValueError(f"unknown model {name!r}; choose from "
                         f"{', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]
