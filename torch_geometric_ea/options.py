r"""What a command is asked to do, as plain values, and the model config
made from it.

- :class:`ModelOptions`: the model and the settings of its config
  (options named like the config's fields, and ``KEY=VALUE`` texts);
  :meth:`ModelOptions.config` makes the config, adding the settings the
  pair's size calls for;
- :class:`PairOptions`: where the KG pair comes from (a dataset, triple
  TSVs, a model file);
- :class:`RunOptions`: how the run goes (device, threads, memory limit,
  output folder, checkpoints, JSON output);
- :func:`model_spec` and :func:`model_choices`: the registered models.

The command line (:mod:`~torch_geometric_ea.cli`) fills them from its
options; the commands (:mod:`~torch_geometric_ea.commands`) take them.
"""
import sys
from dataclasses import dataclass, field, fields
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from torch_geometric.data import HeteroData

from torch_geometric_ea.errors import CommandError
from torch_geometric_ea.train.registry import get_model, model_names
from torch_geometric_ea.train.config import ConfigError, field_type
from torch_geometric_ea.train.scale import num_entities, scale_settings

__all__ = ['ModelOptions', 'PairOptions', 'RunOptions', 'parse_field',
           'model_spec', 'model_choices', 'uses_names']


def model_spec(name: str):
    r"""The model registered as ``name``: its spec class
    (:func:`~torch_geometric_ea.train.registry.get_model`; an unknown name
    raises one :class:`ValueError` line)."""
    return get_model(name)


def model_choices() -> List[str]:
    r"""The registered models' names, sorted
    (:func:`~torch_geometric_ea.train.registry.model_names`)."""
    return model_names()


def uses_names(config) -> bool:
    r"""Whether a run with ``config`` reads the entities' names (a name
    view, or RDGCN's name features): a pair's names are loaded only then.
    The model is the registered one whose config class ``config`` is."""
    spec = next(model_spec(name) for name in model_choices()
                if isinstance(config, model_spec(name).config_class))
    return spec.uses_names(config)


def parse_field(config_cls, key: str, text: str) -> Any:
    r"""``text`` read as the type of ``config_cls``'s field ``key`` (its
    annotation; ``none`` for an optional field, ``true``/``false``/``1``/
    ``0`` for a flag); a field it lacks or a text of another type raises
    one :class:`~torch_geometric_ea.errors.CommandError` line."""
    names = [f.name for f in fields(config_cls)]
    if key not in names:
        raise CommandError(f"--set: {config_cls.__name__} has no field {key!r}; "
                           f"fields: {', '.join(names)}")
    kind, optional = field_type(config_cls, key)
    if optional and text.lower() == 'none':
        return None
    if kind is bool:
        if text.lower() not in ('true', 'false', '1', '0'):
            raise CommandError(f"--set {key}: expected true or false, got {text!r}")
        return text.lower() in ('true', '1')
    try:
        return kind(text)
    except ValueError:
        raise CommandError(f"--set {key}: cannot read {text!r} as "
                           f"{kind.__name__}") from None


@dataclass(frozen=True)
class ModelOptions:
    r"""The model and its config's settings.

    Args:
        name (str): a registered model (:func:`model_choices`).
            (default: :obj:`"dual-amn"`)
        named (dict): settings by field name, as named options give them
            (:obj:`None`: not given; names that are no field of the
            model's config are ignored). (default: :obj:`{}`)
        settings (tuple of str): ``KEY=VALUE`` texts of any field
            (``--set``), read as the field's type and applied after
            ``named``. (default: :obj:`()`)
    """
    name: str = 'dual-amn'
    named: Mapping[str, Any] = field(default_factory=dict)
    settings: Tuple[str, ...] = ()

    @property
    def spec(self):
        r"""The model's spec class (:func:`model_spec`)."""
        return model_spec(self.name)

    def config(self, data: Optional[HeteroData] = None) -> Tuple[Any, Dict[str, Any]]:
        r"""The model's config: its defaults (the paper's), then
        :attr:`named`, then :attr:`settings`; given the pair ``data``, the
        fields left unset that its size calls for
        (:func:`~torch_geometric_ea.train.scale.scale_settings`), reported
        on stderr and returned beside the config. A value the config
        refuses raises one :class:`~torch_geometric_ea.errors.CommandError`
        line naming the option that gave it."""
        spec = self.spec
        config_cls = spec.config_class
        if self.named.get('literal') and not spec.has_option('literal'):
            having = [m for m in model_choices() if model_spec(m).has_option('literal')]
            raise CommandError(f"--literal is an option of {', '.join(having)} "
                               f"(got --model {self.name})")
        overrides = {f.name: self.named[f.name] for f in fields(config_cls)
                     if self.named.get(f.name) is not None}
        given = {}  # by settings
        for item in self.settings:
            key, sep, value = item.partition('=')
            if not sep:
                raise CommandError(f"--set expects key=value, got {item!r}")
            key = key.replace('-', '_')
            given[key] = parse_field(config_cls, key, value)
        overrides.update(given)
        auto = scale_settings(self.name, data, overrides) if data is not None else {}
        if auto:
            print(f"scale settings for a pair of {num_entities(data):,} entities "
                  f"(set them to override): "
                  + ', '.join(f'{k}={v}' for k, v in auto.items()), file=sys.stderr)
        try:
            return config_cls(**{**auto, **overrides}), auto
        except ConfigError as e:
            option = (f"--set {e.field}" if e.field in given or self.named.get(
                e.field) is None else f"--{e.field.replace('_', '-')}")
            raise CommandError(f"{option} must be {e.requirement} "
                               f"(got {e.value!r})") from None


@dataclass(frozen=True)
class PairOptions:
    r"""Where a command's KG pair comes from: a dataset of
    :data:`~torch_geometric_ea.data.DATASETS` (``dataset``, ``pair``,
    ``root``, ``seed``, ``num_entities``, ``names``: see
    :func:`~torch_geometric_ea.data.get_pair`), triple TSVs (``triples1``,
    ``triples2``, with the link TSVs ``seeds`` and ``test_links`` and the
    names TSVs ``names1`` and ``names2``), or a model file that holds its
    pair (``checkpoint``)."""
    dataset: Optional[str] = None
    pair: Optional[str] = None
    root: str = 'data'
    seed: int = 0
    num_entities: int = 2000
    names: str = 'translated'
    checkpoint: Optional[str] = None
    triples1: Optional[str] = None
    triples2: Optional[str] = None
    seeds: Optional[str] = None
    test_links: Optional[str] = None
    names1: Optional[str] = None
    names2: Optional[str] = None


@dataclass(frozen=True)
class RunOptions:
    r"""How a run goes.

    Args:
        device (str): a device :func:`~torch_geometric_ea.train.resolve_device`
            takes. (default: :obj:`"auto"`)
        threads (int, optional): torch threads (default: the usable CPUs).
        system_malloc (bool): leave glibc's allocator as it is.
        max_memory (float, optional): stop before any work when the
            estimated peak is above this many GiB (default: the memory
            available; 0: no limit).
        out (str, optional): the output folder.
        resume (str, optional): the folder of a stopped run to continue.
        overwrite (bool): start afresh in an output folder holding a
            stopped run's checkpoint (deleting it).
        checkpoint_every (int, optional): epochs between checkpoints.
        json (bool): print one JSON object, no progress bars.
        precision (str, optional): the products' precision, one of
            :data:`~torch_geometric_ea.precision.PRECISIONS` (default: the
            model config's, ``'auto'``).
        argv (tuple of str): the command line as :data:`sys.argv` holds it
            (recorded; a stopped run's resume command is made from it).
    """
    device: str = 'auto'
    threads: Optional[int] = None
    system_malloc: bool = False
    max_memory: Optional[float] = None
    out: Optional[str] = None
    resume: Optional[str] = None
    overwrite: bool = False
    checkpoint_every: Optional[int] = None
    json: bool = False
    precision: Optional[str] = None
    argv: Sequence[str] = ()
