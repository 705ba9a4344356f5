r"""The precision of the large matrix products: ``'float32'``, or
``'bfloat16'`` inputs with float32 accumulation where the hardware runs
them several times faster (NVIDIA tensor cores; Intel Xeons with AMX);
``'auto'`` (every config's default) picks per device.

A run enters its precision once (:func:`using`); the products that
dominate the time read it (:func:`product_dtype`) and cast their inputs
(:func:`for_products`), while what is numerically delicate (norms,
softmax and log-sum-exp, the loss's mean and deviation, Sinkhorn, tie
detection, optimiser state) stays in float32. Under :func:`torch.autocast`
the products take autocast's dtype instead. Outside a run everything is
float32.

On the CPU a bfloat16 product returns bfloat16 (PyTorch has no float32
output for it there): its entries are rounded to 8 significant bits
(relative error up to :math:`2^{-8}`), while the sum inside is float32.
"""
import contextlib
import contextvars
import functools
import time
from dataclasses import asdict, dataclass
from typing import Dict, Iterator, Optional, Tuple, Union

import torch
from torch import Tensor

__all__ = ['PRECISIONS', 'Precision', 'check_precision', 'resolve_precision',
           'using', 'current', 'product_dtype', 'for_products', 'bfloat16_speedup',
           'cpu_bf16_flags']

#: The precision settings every config, ``Aligner`` and command takes.
PRECISIONS = ('auto', 'float32', 'bfloat16')
#: ``auto`` takes bfloat16 on a CPU whose bfloat16 products run at least
#: this many times as fast as float32's.
MIN_SPEEDUP = 1.5
_DTYPES = {'float32': torch.float32, 'bfloat16': torch.bfloat16}


@dataclass(frozen=True)
class Precision:
    r"""The precision a run uses: ``used`` (``'float32'`` or
    ``'bfloat16'``), what was ``requested`` and why (``reason``)."""
    used: str = 'float32'
    requested: str = 'float32'
    reason: str = 'float32 requested'

    @property
    def dtype(self) -> torch.dtype:
        r"""The products' input dtype."""
        return _DTYPES[self.used]

    def as_dict(self) -> Dict[str, str]:
        r"""For ``results.json``."""
        return asdict(self)

    def __str__(self) -> str:
        return f'{self.used} ({self.reason})'


def cpu_bf16_flags() -> Tuple[str, ...]:
    r"""The CPU's bfloat16 instruction flags (``amx_bf16``, ``avx512_bf16``)
    from ``/proc/cpuinfo`` (none where it cannot be read)."""
    try:
        with open('/proc/cpuinfo') as f:
            flags = next((line.split(':', 1)[1].split() for line in f
                          if line.startswith('flags')), [])
    except OSError:
        return ()
    return tuple(flag for flag in ('amx_bf16', 'avx512_bf16') if flag in flags)


def _product_seconds(dtype: torch.dtype, size: int = 1024, repeat: int = 3) -> float:
    generator = torch.Generator().manual_seed(0)  # the runs' random state untouched
    a = torch.randn(size, size, generator=generator).to(dtype)
    b = torch.randn(size, size, generator=generator).to(dtype)
    a @ b  # warm-up: the kernels' one-time set-up
    best = float('inf')
    for _ in range(repeat):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return best


@functools.lru_cache(maxsize=None)
def bfloat16_speedup() -> float:
    r"""How many times as fast a bfloat16 product runs as a float32 one on
    this CPU: the best of three 1,024-square products each (about 10 ms,
    measured once per process)."""
    return _product_seconds(torch.float32) / _product_seconds(torch.bfloat16)


def _auto(device: torch.device) -> Tuple[str, str]:
    if device.type == 'cuda':
        major, _ = torch.cuda.get_device_capability(device)
        if major >= 8:
            return 'bfloat16', f'auto: tensor cores (compute capability {major}.x)'
        return 'float32', (f'auto: no bfloat16 tensor cores (compute capability '
                           f'{major}.x)')
    if device.type != 'cpu':
        return 'float32', f'auto: {device.type} device'
    flags = cpu_bf16_flags()
    speedup = bfloat16_speedup()
    named = '/'.join(flags) if flags else 'no amx_bf16 or avx512_bf16'
    used = 'bfloat16' if speedup >= MIN_SPEEDUP else 'float32'
    return used, (f'auto: bfloat16 products {speedup:.1f}x as fast as float32 '
                  f'on this CPU ({named})')


def check_precision(requested: str) -> str:
    r"""``requested`` if it is one of :data:`PRECISIONS`, else one
    :class:`ValueError` line."""
    if requested not in PRECISIONS:
        raise ValueError(f"'precision' must be one of {', '.join(PRECISIONS)} "
                         f"(got {requested!r})")
    return requested


def resolve_precision(requested: str = 'auto',
                      device: Union[str, torch.device, None] = 'cpu') -> Precision:
    r"""The :class:`Precision` of ``requested`` (one of :data:`PRECISIONS`)
    on ``device``: ``'auto'`` is bfloat16 on CUDA devices with bfloat16
    tensor cores (compute capability 8 and above) and on CPUs where a
    timed probe (:func:`bfloat16_speedup`) finds bfloat16 products at
    least :data:`MIN_SPEEDUP` times as fast, float32 elsewhere."""
    if check_precision(requested) != 'auto':
        return Precision(requested, requested, f'{requested} requested')
    used, reason = _auto(torch.device(device or 'cpu'))
    return Precision(used, requested, reason)


_CURRENT = contextvars.ContextVar('precision', default=Precision())


def current() -> Precision:
    r"""The precision entered with :func:`using` (float32 outside any)."""
    return _CURRENT.get()


@contextlib.contextmanager
def using(precision: Union[Precision, str, None]) -> Iterator[Precision]:
    r"""Runs the body's products in ``precision`` (a :class:`Precision`, or
    ``'float32'``/``'bfloat16'``; :obj:`None` keeps the current one)."""
    if precision is None:
        precision = current()
    elif isinstance(precision, str):
        precision = resolve_precision(precision)
    token = _CURRENT.set(precision)
    try:
        yield precision
    finally:
        _CURRENT.reset(token)


def product_dtype(device: Union[str, torch.device, None] = None) -> torch.dtype:
    r"""The dtype the large products take their inputs in: autocast's on
    ``device`` where autocast is on, else the current precision's."""
    kind = torch.device(device).type if device is not None else 'cpu'
    if torch.is_autocast_enabled(kind):
        return torch.get_autocast_dtype(kind)
    return current().dtype


def for_products(x: Tensor, dtype: Optional[torch.dtype] = None) -> Tensor:
    r"""``x`` as an input of a large product: a float32 tensor cast to
    ``dtype`` (default :func:`product_dtype` on its device); anything else
    (float64, integers, what is already low) as it is."""
    dtype = dtype or product_dtype(x.device)
    if x.dtype == torch.float32 and dtype != torch.float32:
        return x.to(dtype)
    return x
