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
"""
import os

__all__ = ['main']


def main() -> int:
    r"""Runs the command line in :data:`sys.argv`; returns its exit status."""
    os.environ.setdefault('THP_MEM_ALLOC_ENABLE', '1')
    from torch_geometric_ea.cli import main as cli_main
    return cli_main()
