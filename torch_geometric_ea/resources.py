r"""What a run takes of the machine, settled before any work: the device
(:func:`check_device`), torch's threads (:func:`set_threads`), the host
allocator (:func:`host_allocator`), the memory foresight that stops a run
which would not fit (:func:`foresee_memory`), and the process group of a
``torchrun`` launch (:func:`init_distributed`)."""
import os
import sys
from dataclasses import replace
from typing import Optional

import torch
from torch_geometric.data import HeteroData

from torch_geometric_ea.errors import CommandError
from torch_geometric_ea.options import model_choices, model_spec
from torch_geometric_ea.runtime import disable_huge_pages, keep_freed_memory, usable_cpus
from torch_geometric_ea.train import resolve_device
from torch_geometric_ea.train.memory import (
    GIB,
    available_memory,
    estimate_memory,
    fitting_settings,
    pair_size,
    settings_text,
)
from torch_geometric_ea.train.scale import keeps_freed_memory

__all__ = ['check_device', 'set_threads', 'host_allocator', 'host_pages',
           'foresee_memory', 'init_distributed']


def check_device(device: str) -> str:
    r"""The device a command runs on (``'auto'``: CUDA when available, else
    the CPU), checked before any work; one that this machine lacks raises
    one :class:`~torch_geometric_ea.errors.CommandError` line."""
    try:
        return str(resolve_device(device))
    except ValueError as e:
        raise CommandError(str(e)) from None


def set_threads(threads: Optional[int] = None):
    r"""Uses ``threads`` torch threads (default: the usable CPUs); more than
    the CPUs this process may use only wait on each other (and very many
    crash OpenMP), so they are capped there with a warning."""
    usable = usable_cpus()
    threads = threads or usable
    if threads > usable:
        print(f"warning: --threads {threads} is above the {usable} CPUs this "
              f"process may use; using {usable}", file=sys.stderr)
        threads = usable
    torch.set_num_threads(threads)


def host_allocator(model: str, device: str, data: Optional[HeteroData] = None,
                   system_malloc: bool = False) -> bool:
    r"""On the CPU, has the allocator keep freed memory, unless
    ``system_malloc`` or the size of ``data`` says not to
    (:func:`~torch_geometric_ea.train.scale.keeps_freed_memory`). Returns
    whether freed memory is kept."""
    if (device.startswith('cpu') and not system_malloc
            and (data is None or keeps_freed_memory(model, data))):
        return keep_freed_memory()
    return False


def host_pages(model: str, device: str, config) -> bool:
    r"""On the CPU, turns transparent huge pages off for the process when
    the model runs worse with them with ``config``
    (:meth:`~torch_geometric_ea.train.spec.AlignerSpec.huge_pages`, e.g.
    LightEA with names); returns whether the run has them."""
    if device.startswith('cpu') and not model_spec(model).huge_pages(config):
        return not disable_huge_pages()
    return os.environ.get('THP_MEM_ALLOC_ENABLE') == '1'


def foresee_memory(model: str, data: HeteroData, config, *, device: str,
                   max_memory: Optional[float] = None, kept: bool = False,
                   candidates: bool = False) -> Optional[dict]:
    r"""For a CPU run, the estimated peak memory
    (:func:`~torch_geometric_ea.train.memory.estimate_memory`; ``kept``:
    the allocator keeps freed memory, ``candidates``: the run ranks every
    unlinked entity's candidates), printed on stderr and returned for
    ``results.json``; :obj:`None` on other devices. A run whose estimate is
    above ``max_memory`` GiB (default: the memory available; 0: no limit)
    stops here, before any work, with a
    :class:`~torch_geometric_ea.errors.CommandError` naming settings that
    would fit."""
    if torch.device(device).type != 'cpu':
        return None
    size = pair_size(data)
    estimate = estimate_memory(model, size, config, kept, candidates)
    print(f"memory estimate: {estimate.describe()}", file=sys.stderr)
    limit = (available_memory() if max_memory is None
             else int(max_memory * GIB) or None)
    if limit is not None and estimate.peak > limit:
        fit = fitting_settings(model, size, config, limit, kept, candidates)
        if fit:
            fitted = estimate_memory(model, size, replace(config, **fit), kept,
                                     candidates)
            advice = (f"these settings would fit (estimate {fitted.gib:.2f} "
                      f"GiB): {settings_text(fit)}")
        else:
            advice = "none of the smaller settings tried would fit"
        what = '--max-memory' if max_memory is not None else 'the memory available'
        raise CommandError(f"the estimated peak memory, {estimate.gib:.2f} GiB, is "
                           f"above {what}, {limit / GIB:.2f} GiB; {advice} "
                           f"(--max-memory 0 runs anyway)")
    return dict(estimate.as_dict(), max_memory_gib=None if limit is None
                else round(limit / GIB, 2))


def init_distributed(model: str, config) -> int:
    r"""Joins the process group that ``torchrun`` describes in the
    environment (``WORLD_SIZE`` above 1): NCCL with one GPU per process
    (``LOCAL_RANK``, set as ``config.device``) when the run is on CUDA,
    gloo on CPUs. Returns this process's rank (0 without a group). A model
    that does not train on several processes raises one
    :class:`~torch_geometric_ea.errors.CommandError` line."""
    if int(os.environ.get('WORLD_SIZE', '1')) <= 1:
        return 0
    if not model_spec(model).distributed:
        supported = ', '.join(n for n in model_choices() if model_spec(n).distributed)
        raise CommandError(f"distributed training supports {supported} only "
                           f"(got --model {model})")
    if torch.device(config.device).type == 'cuda':
        local = int(os.environ.get('LOCAL_RANK', '0'))
        config.device = f'cuda:{local}'
        torch.cuda.set_device(local)
        torch.distributed.init_process_group('nccl')
    else:
        torch.distributed.init_process_group('gloo')
    return torch.distributed.get_rank()
