r"""Ctrl-C in a command: :func:`noting_interrupts` notes each SIGINT so
that one a library swallows still ends the command, and
:func:`interrupted` ends it (one line, status 130). Light on purpose: the
entry point imports it before torch."""
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Iterator, List

__all__ = ['interrupted', 'noting_interrupts']


def interrupted() -> int:
    r"""Ends a command on Ctrl-C: one line, status 130, and any further
    Ctrl-C ignored."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    print('interrupted', file=sys.stderr)
    return 130


@contextmanager
def noting_interrupts() -> Iterator[List[int]]:
    r"""Yields a list into which SIGINT's number goes each time one arrives
    (it still raises :class:`KeyboardInterrupt`), so that a Ctrl-C which
    some library's bare ``except:`` swallows still ends the command. Off
    the main thread, or under a SIGINT handler of the caller's, it notes
    nothing and changes nothing."""
    noted: List[int] = []
    previous = signal.getsignal(signal.SIGINT)
    if (threading.current_thread() is not threading.main_thread()
            or previous is not signal.default_int_handler):
        yield noted
        return

    def note(signum, frame):
        noted.append(signum)
        raise KeyboardInterrupt

    def unraisable(info):  # a Ctrl-C raised in a callback: noted, not printed
        if not isinstance(info.exc_value, KeyboardInterrupt):
            hook(info)

    hook = sys.unraisablehook
    signal.signal(signal.SIGINT, note)
    sys.unraisablehook = unraisable
    try:
        yield noted
    finally:
        signal.signal(signal.SIGINT, previous)
        sys.unraisablehook = hook
