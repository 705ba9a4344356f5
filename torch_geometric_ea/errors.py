r"""How a command ends early: :class:`CommandError` for input or state it
refuses, :class:`RunStopped` for a run stopped by a signal. The command
line (:func:`torch_geometric_ea.cli.main`) turns the first into one line,
``error: <message>``, with status 1, and the second into its status; the
library raises them and never exits the process itself. :func:`error_line`
and :func:`out_of_memory` say how any other error reads as one line."""

__all__ = ['CommandError', 'RunStopped', 'error_line', 'out_of_memory']


class CommandError(ValueError):
    r"""A command's input or state refused before (or instead of) its work,
    in one message that the command line prints whole (a line break in a
    path it names is escaped, never cut)."""


class RunStopped(Exception):
    r"""A run stopped by SIGINT or SIGTERM, after writing what resumes it
    and printing how; ``status`` is the command's exit status (128 + the
    signal)."""
    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


def error_line(e: Exception) -> str:
    r"""An exception as one line: an OS error with the file it concerns,
    anything else by its first line (or its type's name)."""
    if isinstance(e, OSError) and e.filename is not None and e.strerror:
        return f'{e.filename}: {e.strerror}'
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


def out_of_memory(e: BaseException) -> bool:
    r"""Whether ``e`` is an allocation that failed (host or device)."""
    import torch
    return (isinstance(e, (MemoryError, torch.OutOfMemoryError))
            or "can't allocate memory" in str(e))
