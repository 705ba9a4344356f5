r"""The rules every tab-separated file of entity-alignment data obeys, the
records its readers return, and the checks they share.

The readers (:mod:`torch_geometric_ea.data.io` for id maps, triples and
entity names, :mod:`torch_geometric_ea.data.link_files` for links) read
one record per line, fields separated by exactly one tab (or another
``delimiter``, as in OGB's comma-separated files).

Every problem raises :class:`ValueError` with a message
``"<path>:<line>: <problem>"`` (1-based line number, made by
:func:`line_error`), so the file and line can be opened directly. The rules:

* The bytes must be UTF-8 (decoded strictly). A byte-order mark at the start
  of the file is ignored; lines end in ``\n`` or ``\r\n``.
* Text is normalised to Unicode NFC, so a name typed with combining marks
  (NFD) matches the same name precomposed.
* No control characters (``U+0000``-``U+001F`` other than tab, ``U+007F``-
  ``U+009F``) and no ``\r`` other than the one before ``\n``.
* Every non-blank line has exactly the expected number of fields.
* An id is 1 to 18 ASCII decimal digits (non-negative, fits ``int64``).
* A name is non-empty and is kept verbatim (no trimming).
* A file without any data line is an error (``"empty file"``).

Blank lines (empty, or just ``\r``) carry no data: they are skipped,
counted and logged as a warning; the newline that ends the last line is a
terminator, not a blank line. The warnings of all the readers go to the
``torch_geometric_ea.data.io`` logger.
"""
import gzip
import io
import logging
import re
import unicodedata
import zlib
from typing import List, NamedTuple, Sequence, Tuple, Union

import numpy as np
from torch import Tensor

__all__ = [
    'IdMap',
    'Records',
    'line_error',
    'show_field',
    'read_bytes',
    'decode_text',
    'split_lines',
    'parse_ids',
    'check_names',
    'int_table',
    'str_table',
    'first_repeat',
    'check_known',
    'name_codes',
]

# The readers' warnings keep the logger they had when they all lived in io.
log = logging.getLogger('torch_geometric_ea.data.io')

_BOM = b'\xef\xbb\xbf'
_MAX_ID_DIGITS = 18
# Control characters anywhere, and '\r' not followed by '\n'.
_CONTROL = re.compile(r'[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]|\r(?!\n|\Z)')


class IdMap(NamedTuple):
    r"""The records of an ``id<TAB>name`` file, in file order.

    Attributes:
        path (str): the file read.
        ids (Tensor): ``[N]`` the file ids.
        names (List[str]): the ``N`` names.
        num_blank_lines (int): blank lines skipped.
    """
    path: str
    ids: Tensor
    names: List[str]
    num_blank_lines: int


class Records(NamedTuple):
    r"""The records of a triple or link file, in file order.

    Attributes:
        path (str): the file read.
        rows: ``[n, k]`` :obj:`torch.long` ids (integer files) or a list of
            ``n`` tuples of ``k`` names (string files).
        line (Tensor): ``[n]`` the 1-based line of each row.
        num_duplicates (int): repeated lines removed (always ``0`` for
            links, where a repeat is an error).
        num_blank_lines (int): blank lines skipped.
    """
    path: str
    rows: Union[Tensor, List[Tuple[str, ...]]]
    line: Tensor
    num_duplicates: int
    num_blank_lines: int


def line_error(path, line: int, problem: str) -> ValueError:
    r"""The error of a file's line: a :class:`ValueError` with the message
    ``"<path>:<line>: <problem>"`` (``line`` 1-based), to be raised."""
    return ValueError(f"{path}:{line}: {problem}")


def show_field(text: str, limit: int = 60) -> str:
    r"""How an error message quotes a field: its ``repr``, cut after
    ``limit`` characters (marked by ``...``)."""
    return repr(text if len(text) <= limit else text[:limit] + '...')


def read_bytes(path) -> bytes:
    r"""The file's bytes (decompressed for a ``.gz`` name), without a BOM. A
    missing file raises :class:`FileNotFoundError`; a folder, an unreadable
    file or a bad ``.gz`` a one-line :class:`ValueError` naming it."""
    try:
        with (gzip.open if str(path).endswith('.gz') else open)(path, 'rb') as f:
            data = f.read()
    except FileNotFoundError:
        raise
    except IsADirectoryError:
        raise ValueError(f"{path}: a folder, not a file; give the file's "
                         f"path") from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise ValueError(f"{path}: not a whole gzip file ({e}); fetch it again, "
                         f"or give it uncompressed without the .gz") from None
    except OSError as e:  # no permission, an I/O error
        raise ValueError(f"{path}: cannot read it ({e.strerror or e})") from None
    return data[len(_BOM):] if data.startswith(_BOM) else data


def decode_text(path, data: bytes) -> str:
    r"""The file's ``data`` as NFC-normalised text; raises :func:`line_error`
    on invalid UTF-8, a control character or a stray ``\r``."""
    try:
        text = data.decode('utf-8')
    except UnicodeDecodeError as e:
        line = data.count(b'\n', 0, e.start) + 1
        raise line_error(path, line, f"invalid UTF-8 byte 0x{data[e.start]:02x} "
                                     f"({e.reason})") from None
    bad = _CONTROL.search(text)
    if bad is not None:
        line = text.count('\n', 0, bad.start()) + 1
        column = bad.start() - text.rfind('\n', 0, bad.start())
        raise line_error(path, line, f"stray control character "
                                     f"U+{ord(bad.group()):04X} at column {column}")
    # One spelling per name: 'São' typed as S, a, combining tilde, o (NFD)
    # is the same entity as the precomposed 'São' (NFC).
    return text if unicodedata.is_normalized('NFC', text) else \
        unicodedata.normalize('NFC', text)


def _report_blank(path, num_blank: int, first: int):
    if num_blank:
        log.warning("%s: skipped %d blank line(s), the first at line %d",
                    path, num_blank, first)


def split_lines(path, text: str, columns: Sequence[str], delimiter: str = '\t'
                ) -> Tuple[List[List[str]], List[int], int]:
    r"""Splits ``text`` into rows of ``len(columns)`` fields, skipping blank
    lines; returns the rows, their line numbers and the blank count."""
    lines = text.split('\n')
    if lines[-1] == '':
        lines.pop()  # the newline that ends the last line
    rows, numbers, blank = [], [], []
    for number, line in enumerate(lines, 1):
        if line.endswith('\r'):
            line = line[:-1]
        if not line:
            blank.append(number)
            continue
        fields = line.split(delimiter)
        if len(fields) != len(columns):
            sep = 'tab' if delimiter == '\t' else repr(delimiter)
            raise line_error(path, number,
                             f"malformed line: expected {len(columns)} "
                             f"{sep}-separated columns ({', '.join(columns)}),"
                             f" got {len(fields)}: {show_field(line)}")
        rows.append(fields)
        numbers.append(number)
    if not rows:
        raise line_error(path, 1, "empty file (no data lines)")
    _report_blank(path, len(blank), blank[0] if blank else 0)
    return rows, numbers, len(blank)


def parse_ids(path, rows: List[List[str]], numbers: List[int],
              columns: Sequence[str], id_columns: Sequence[int]) -> np.ndarray:
    r"""The ids in the ``id_columns`` of ``rows`` (split by
    :func:`split_lines`, on lines ``numbers``) as ``[n, len(id_columns)]``
    int64; raises :func:`line_error` on a field that is not an id."""
    out = np.empty((len(rows), len(id_columns)), dtype=np.int64)
    for j, c in enumerate(id_columns):
        fields = [row[c] for row in rows]
        if all(f.isascii() and f.isdigit() and len(f) <= _MAX_ID_DIGITS
               for f in fields):
            out[:, j] = np.array(fields, dtype=np.int64)
            continue
        for field, number in zip(fields, numbers):
            if not (field.isascii() and field.isdigit()):
                raise line_error(path, number,
                                 f"non-integer id {show_field(field)} in "
                                 f"column {c + 1} ({columns[c]})")
            if len(field) > _MAX_ID_DIGITS:
                raise line_error(path, number,
                                 f"id {show_field(field)} in column {c + 1} "
                                 f"({columns[c]}) is out of range")
    return out


def check_names(path, rows: List[List[str]], numbers: List[int],
                columns: Sequence[str], name_columns: Sequence[int]):
    r"""Raises :func:`line_error` on an empty field in the ``name_columns``
    of ``rows`` (on lines ``numbers``)."""
    for fields, number in zip(rows, numbers):
        for c in name_columns:
            if not fields[c]:
                raise line_error(path, number, f"empty name in column {c + 1} "
                                               f"({columns[c]})")


def int_table(path, columns: Sequence[str], delimiter: str = '\t'
              ) -> Tuple[np.ndarray, np.ndarray, int]:
    r"""Reads a file of integer columns as ``[n, k]`` int64 rows, their line
    numbers and the blank count. Well-formed files take a vectorised path;
    anything else goes line by line to find and name the problem."""
    data = read_bytes(path)
    k = len(columns)
    field = rb'[0-9]{1,%d}' % _MAX_ID_DIGITS
    row = field + (re.escape(delimiter.encode()) + field) * (k - 1)
    if data and re.fullmatch(rb'(?:%s\r?\n)*(?:%s\r?)?' % (row, row), data):
        rows = np.loadtxt(io.BytesIO(data), dtype=np.int64, delimiter=delimiter,
                          ndmin=2).reshape(-1, k)
        return rows, np.arange(1, rows.shape[0] + 1), 0
    fields, numbers, blank = split_lines(path, decode_text(path, data), columns,
                                         delimiter)
    rows = parse_ids(path, fields, numbers, columns, range(k))
    return rows, np.asarray(numbers, dtype=np.int64), blank


def str_table(path, columns: Sequence[str]
              ) -> Tuple[List[Tuple[str, ...]], np.ndarray, int]:
    r"""Reads a file of name columns as a list of ``n`` tuples of names,
    their line numbers and the blank count."""
    text = decode_text(path, read_bytes(path))
    rows, numbers, blank = split_lines(path, text, columns)
    check_names(path, rows, numbers, columns, range(len(columns)))
    return [tuple(r) for r in rows], np.asarray(numbers, dtype=np.int64), blank


def first_repeat(keys: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    r"""For ``keys`` (``[n]`` or ``[n, k]`` integers) returns a bool mask of
    the rows that repeat an earlier row, and for every row the index of its
    first occurrence."""
    if keys.ndim > 1:
        keys = _row_codes(keys)
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    first_of = first[inverse]
    return first_of != np.arange(keys.shape[0]), first_of


def _row_codes(keys: np.ndarray) -> np.ndarray:
    r"""One integer per row of ``keys`` ``[n, k]``, equal iff the rows are
    equal (rows ranked lexicographically when the column codes would
    overflow)."""
    codes = np.zeros(keys.shape[0], dtype=np.int64)
    size = 1
    for column in keys.T:
        values, inverse = np.unique(column, return_inverse=True)
        size *= max(len(values), 1)
        if size >= 2 ** 62:
            return np.unique(keys, axis=0, return_inverse=True)[1].reshape(-1)
        codes = codes * len(values) + inverse.reshape(-1)
    return codes


def check_known(path, values: np.ndarray, line: np.ndarray, known: np.ndarray,
                what: str, source: str):
    r"""Raises :func:`line_error` at the first of ``values`` (read on lines
    ``line``) that is not in ``known``, naming it an unknown ``what`` id
    (not in ``source``)."""
    unknown = ~np.isin(values, known)
    if unknown.any():
        i = int(np.flatnonzero(unknown)[0])
        raise line_error(path, int(line[i]), f"unknown {what} id {int(values[i])} "
                                             f"(not in {source})")


def name_codes(names: Sequence[str]) -> np.ndarray:
    r"""One integer per name, equal iff the names are equal (numbered in
    order of first appearance), as ``[n]`` int64."""
    index = {}
    return np.asarray([index.setdefault(n, len(index)) for n in names],
                      dtype=np.int64)
