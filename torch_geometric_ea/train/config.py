r"""Configs that check themselves: every field's type and range is checked
when a config is made (``__post_init__``), so the Python API and the
command line stop a setting no run can use with the same one-line
:class:`ConfigError`, before any work."""
import math
import typing
from dataclasses import fields
from typing import Any, Dict, Iterable, Optional, Tuple

import torch

from torch_geometric_ea.precision import PRECISIONS

__all__ = ['ConfigError', 'check_config', 'field_type', 'DEVICE_TYPES']

#: The device types a run can use.
DEVICE_TYPES = ('cpu', 'cuda')
#: The largest seed torch's generators take.
MAX_SEED = 2 ** 63 - 1
#: The largest count a config takes (sizes, chunks, rounds): a tensor
#: dimension beyond it could never be allocated.
MAX_COUNT = 2 ** 31 - 1


class ConfigError(ValueError):
    r"""A setting no run can use: ``field`` must be ``requirement`` (the
    message is one line)."""
    def __init__(self, field: str, requirement: str, value: Any):
        super().__init__(f"{field!r} must be {requirement} (got {value!r})")
        self.field, self.requirement, self.value = field, requirement, value


def field_type(config_cls, name: str) -> Tuple[type, bool]:
    r"""``(type, optional)`` of a config field's annotation
    (``Optional[int]`` is ``(int, True)``)."""
    hint = typing.get_type_hints(config_cls)[name]
    args = typing.get_args(hint)
    if typing.get_origin(hint) is typing.Union and type(None) in args:
        return next(a for a in args if a is not type(None)), True
    return hint, False


def _check_type(name: str, kind: type, value: Any):
    if kind is bool:
        ok, what = isinstance(value, bool), 'true or false'
    elif kind is int:
        ok, what = isinstance(value, int) and not isinstance(value, bool), 'an integer'
    elif kind is float:
        ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
              and math.isfinite(value))
        what = 'a finite number'
    elif kind is str:
        ok, what = isinstance(value, str), 'a string'
    else:
        return
    if not ok:
        raise ConfigError(name, what, value)


def _check_device(value: Optional[str]):
    if value is None or value == 'auto':
        return
    try:
        device = torch.device(value)
    except (RuntimeError, TypeError):
        device = None
    if device is None or device.type not in DEVICE_TYPES:
        raise ConfigError('device', "'cpu', 'cuda' or 'cuda:<index>' (or None: "
                          "CUDA when available, else the CPU)", value)


def check_config(config, *, minimum: Dict[str, float] = {},
                 positive: Iterable[str] = (), fractions: Iterable[str] = (),
                 choices: Dict[str, tuple] = {}):
    r"""Raises :class:`ConfigError` for the first field of ``config`` (a
    dataclass) that is not of its annotated type (floats finite,
    :obj:`None` only where the annotation is ``Optional``), is below its
    ``minimum``, not above 0 (``positive``), outside :math:`[0, 1)`
    (``fractions``) or not one of its ``choices``; counts (integer fields
    with a ``minimum``) are at most :data:`MAX_COUNT`. A ``seed`` is checked to
    lie in :math:`[0, 2^{63})`, a ``device`` to name a CPU or CUDA device and
    a ``precision`` to be one of
    :data:`~torch_geometric_ea.precision.PRECISIONS`."""
    for f in fields(config):
        value = getattr(config, f.name)
        kind, optional = field_type(type(config), f.name)
        if value is None and optional:
            continue
        _check_type(f.name, kind, value)
    for name, low in minimum.items():
        value = getattr(config, name)
        if value is not None and value < low:
            raise ConfigError(name, f'at least {low}', value)
        if isinstance(value, int) and value > MAX_COUNT:
            raise ConfigError(name, f'at most {MAX_COUNT}', value)
    for name in positive:
        if getattr(config, name) <= 0:
            raise ConfigError(name, 'above 0', getattr(config, name))
    for name in fractions:
        if not 0 <= getattr(config, name) < 1:
            raise ConfigError(name, 'in [0, 1)', getattr(config, name))
    for name, allowed in choices.items():
        if getattr(config, name) not in allowed:
            raise ConfigError(name, 'one of ' + ', '.join(map(repr, allowed)),
                              getattr(config, name))
    seed = getattr(config, 'seed', 0)
    if not 0 <= seed <= MAX_SEED:
        raise ConfigError('seed', f'in [0, {MAX_SEED}]', seed)
    _check_device(getattr(config, 'device', None))
    precision = getattr(config, 'precision', 'float32')
    if precision not in PRECISIONS:
        raise ConfigError('precision', 'one of ' + ', '.join(map(repr, PRECISIONS)),
                          precision)
