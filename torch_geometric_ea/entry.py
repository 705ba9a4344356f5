r"""The command-line entry point shared by ``python -m torch_geometric_ea``
and the installed ``torch-geometric-ea`` script, so that both start the
process the same way.

It sets what torch reads once, before torch is imported: transparent huge
pages for large CPU tensors (``THP_MEM_ALLOC_ENABLE=1``; first touches of
fresh memory cost one fault per 2 MiB instead of per 4 KiB; a model that
runs worse with them turns them off for its run, see
:func:`~torch_geometric_ea.resources.host_pages`), and OpenMP threads that
wait passively (``OMP_WAIT_POLICY=PASSIVE``: a spinning thread holds its
core after each parallel region, so jobs sharing cores slow each other
down more than they share them; docs: *Other levers*), unless the user
set either. The glibc setting that keeps freed memory
(:func:`~torch_geometric_ea.runtime.keep_freed_memory`) is applied by the
commands themselves, and only when they run on the CPU.
"""
import os
import signal

from torch_geometric_ea.interrupts import interrupted

__all__ = ['main', 'interrupted']


def main() -> int:
    r"""Runs the command line in :data:`sys.argv`; returns its exit status."""
    os.environ.setdefault('THP_MEM_ALLOC_ENABLE', '1')
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
