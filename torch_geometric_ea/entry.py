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

It also has OpenMP threads wait passively (``OMP_WAIT_POLICY=PASSIVE``,
read once when torch loads its OpenMP runtime) unless the user set the
policy: a spinning thread holds its core after each parallel region, so
jobs sharing cores slowed each other down by 2.6-3.0x instead of the
fair 2x (README, *Speed levers*).
"""
import os
import signal
import sys

__all__ = ['main']


def main() -> int:
    r"""Runs the command line in :data:`sys.argv`; returns its exit status."""
    os.environ.setdefault('THP_MEM_ALLOC_ENABLE', '1')
    os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
    noted = []

    def note(signum, frame):  # kept even where an import swallows the exception
        noted.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, note)
    try:  # Ctrl-C while torch loads is no error either
        from torch_geometric_ea.cli import main as cli_main
    except KeyboardInterrupt:
        noted.append(signal.SIGINT)
    if noted:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second one changes nothing
        print('interrupted', file=sys.stderr)
        return 130
    signal.signal(signal.SIGINT, signal.default_int_handler)
    return cli_main()
