r"""Process-wide settings that make CPU training faster and share a
machine fairly."""
import ctypes
import ctypes.util
import math
import os
import sys
from typing import Optional

__all__ = ['keep_freed_memory', 'return_freed_memory', 'disable_huge_pages', 'usable_cpus',
           'cgroup_cpu_limit', 'cgroup_memory_limit', 'proc_bytes']

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
_PR_SET_THP_DISABLE = 41


def keep_freed_memory() -> bool:
    r"""Tells glibc's allocator to serve large blocks from the heap and keep
    freed memory instead of returning it to the system.

    By default every tensor above 32 MiB is a fresh ``mmap``, whose pages
    the kernel zeroes on first touch; training allocates and frees hundreds
    of such tensors per step, and this first-touch cost made a Dual-AMN
    step on DBP15K about 1.5 times slower (docs: *Where the time goes*). The trade-off
    is that the process keeps its peak heap until it exits. Returns whether
    the setting took effect (only on Linux with glibc).
    """
    libc = _glibc()
    try:
        return libc is not None and bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(
            libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
    except AttributeError:  # a C library without mallopt
        return False


def return_freed_memory():
    r"""Gives the whole free pages of the heap back to the system (glibc's
    ``malloc_trim``) where freed memory is kept (:func:`keep_freed_memory`).
    For phases that each free GiB-sized blocks whose holes the next
    phase's blocks, of other sizes, do not fit (LightEA's: on DBP15K zh_en
    with names, 3 GiB kept beside 5 GiB of live tensors); a phase frees
    few blocks, so the pages faulted in again cost little."""
    libc = _glibc()
    if libc is not None and hasattr(libc, 'malloc_trim'):
        libc.malloc_trim(0)


def disable_huge_pages() -> bool:
    r"""Turns transparent huge pages off for this process from now on
    (Linux's ``prctl(PR_SET_THP_DISABLE)``: the kernel then ignores the
    huge-page hint torch gives its large CPU blocks), for runs whose model
    does worse with them (see
    :meth:`~torch_geometric_ea.train.spec.AlignerSpec.huge_pages`).
    Returns whether it took effect."""
    libc = _glibc()
    try:
        return libc is not None and libc.prctl(_PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0
    except AttributeError:  # a C library without prctl
        return False


def _glibc() -> Optional[ctypes.CDLL]:
    r"""The C library on Linux, else :obj:`None`."""
    if not sys.platform.startswith('linux'):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
    except OSError:
        return None


def cgroup_cpu_limit(root: str = '/sys/fs/cgroup') -> Optional[float]:
    r"""The CPUs a cgroup quota allows this process (quota / period, as a
    fraction), from cgroup v2's ``cpu.max`` or v1's
    ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``; :obj:`None` without a
    quota."""
    try:
        with open(os.path.join(root, 'cpu.max')) as f:
            quota, period = f.read().split()[:2]
        return None if quota == 'max' else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        with open(os.path.join(root, 'cpu', 'cpu.cfs_quota_us')) as f:
            quota = int(f.read())
        with open(os.path.join(root, 'cpu', 'cpu.cfs_period_us')) as f:
            period = int(f.read())
        return None if quota <= 0 else quota / period
    except (OSError, ValueError):
        return None


def cgroup_memory_limit(root: str = '/sys/fs/cgroup') -> Optional[int]:
    r"""The bytes a cgroup allows this process, from cgroup v2's
    ``memory.max`` or v1's ``memory.limit_in_bytes``; :obj:`None` without
    a limit."""
    for path in (os.path.join(root, 'memory.max'),
                 os.path.join(root, 'memory', 'memory.limit_in_bytes')):
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2 ** 60:  # v1 says "no limit" so
            return int(text)
    return None


def proc_bytes(path: str, key: str) -> Optional[int]:
    r"""A size field of a Linux ``/proc`` file in bytes, e.g.
    ``proc_bytes('/proc/self/status', 'VmHWM')``; :obj:`None` where the
    file or the field is missing."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key + ':'):
                    return int(line.split()[1]) * 1024  # the kernel's kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def usable_cpus(root: str = '/sys/fs/cgroup') -> int:
    r"""How many CPUs this process may use: the CPUs of its affinity mask
    (``taskset``, a scheduler's CPU set), capped by a cgroup CPU quota
    rounded up (:func:`cgroup_cpu_limit`), at least 1. The default thread
    count of the commands: more threads than this only wait on each
    other."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity on this platform
        count = os.cpu_count() or 1
    limit = cgroup_cpu_limit(root)
    if limit is not None:
        count = min(count, math.ceil(limit))
    return max(count, 1)
