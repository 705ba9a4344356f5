r"""The command-line entry point shared by ``python -m torch_geometric_ea``
and the installed ``torch-geometric-ea`` script, so that both start the
process the same way.

It sets the host-memory allocator settings before torch is imported (torch
reads them once): transparent huge pages for large CPU tensors
(``THP_MEM_ALLOC_ENABLE``; first touches of fresh memory cost one fault per
2 MiB instead of per 4 KiB). They concern host memory only, so a run on a
GPU is unaffected; the glibc setting that keeps freed memory
(:func:`~torch_geometric_ea.runtime.keep_freed_memory`) is applied by the
commands themselves, and only when they run on the CPU.

Huge pages are left off for LightEA with names (``--model lightea
--literal``): there they raised the peak and slowed the run (DBP15K zh_en,
Intel Xeon with AMX, 2 threads, two runs each: 6.21 GiB and 53-61 s with
them, 5.63-5.92 GiB and 47-49 s without), while LightEA without names
peaks lower with them (3.05 against 3.86 GiB, 21-22 against 20-21 s).

It also has OpenMP threads wait passively (``OMP_WAIT_POLICY=PASSIVE``,
read once when torch loads its OpenMP runtime) unless the user set the
policy: a spinning thread holds its core after each parallel region, so
jobs sharing cores slowed each other down by 2.6-3.0x instead of the
fair 2x (README, *Speed levers*).
"""
import os
import signal
import sys

from torch_geometric_ea.interrupts import interrupted

__all__ = ['main', 'huge_pages', 'interrupted']


def main() -> int:
    r"""Runs the command line in :data:`sys.argv`; returns its exit status."""
    os.environ.setdefault('THP_MEM_ALLOC_ENABLE', '1' if huge_pages(sys.argv) else '0')
    os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
    noted = []
    # While torch loads (seconds), a Ctrl-C is noted and acted on after:
    # raised inside an import, a library's bare except or a garbage
    # collector's callback could swallow it (or print a traceback).
    signal.signal(signal.SIGINT, lambda signum, frame: noted.append(signum))
    from torch_geometric_ea.cli import main as cli_main
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        if noted:
            raise KeyboardInterrupt
        return cli_main()
    except KeyboardInterrupt:  # one the command's own handling did not end
        return interrupted()


def huge_pages(argv) -> bool:
    r"""Whether the command line ``argv`` runs better with transparent huge
    pages: all but LightEA with names (see the module's note)."""
    words = ' '.join(argv).replace('=', ' ').split()
    model = words[words.index('--model') + 1] if '--model' in words[:-1] else None
    return not (model == 'lightea' and '--literal' in words)
