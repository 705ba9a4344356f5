r"""Validating readers for the tab-separated files of entity-alignment data.

Four kinds of files are read, each one record per line, fields separated by
exactly one tab:

* id maps ``id<TAB>name`` (``ent_ids_1``, ``rel_ids_1``, ...):
  :func:`read_id_map`;
* integer triples ``head<TAB>relation<TAB>tail`` (``triples_1``):
  :func:`read_int_triples`;
* integer links ``id1<TAB>id2`` (``ref_ent_ids``, ``sup_ent_ids``):
  :func:`read_int_links`;
* string triples and string links, the same with names (URIs) instead of ids
  (OpenEA's ``rel_triples_1`` and ``ent_links``, or a user's own KGs):
  :func:`read_str_triples`, :func:`read_str_links`;
* entity names ``entity<TAB>name`` of one of a user's KGs:
  :func:`read_entity_names`.

Every problem raises :class:`ValueError` with a message
``"<path>:<line>: <problem>"`` (1-based line number), so the file and line
can be opened directly. The rules:

* The bytes must be UTF-8 (decoded strictly). A byte-order mark at the start
  of the file is ignored; lines end in ``\n`` or ``\r\n``.
* Text is normalised to Unicode NFC, so a name typed with combining marks
  (NFD) matches the same name precomposed.
* No control characters (``U+0000``-``U+001F`` other than tab, ``U+007F``-
  ``U+009F``) and no ``\r`` other than the one before ``\n``.
* Every non-blank line has exactly the expected number of fields.
* An id is 1 to 18 ASCII decimal digits (non-negative, fits ``int64``).
* A name is non-empty and is kept verbatim (no trimming).
* Id maps hold no id and no name twice.
* Links are one-to-one: no link twice, no entity linked to two partners.
* With ``entities=`` / ``relations=`` given, every id or name must be known.
* A file without any data line is an error (``"empty file"``).

Nothing is dropped silently. Blank lines (empty, or just ``\r``) carry no
data: they are skipped, counted in ``num_blank_lines`` and logged as a
warning; the newline that ends the last line is a terminator, not a blank
line. Repeated triple lines are not an error: later copies are removed,
counted in ``num_duplicates`` and logged as a warning.
"""
import gzip
import io
import logging
import re
import unicodedata
import zlib
from typing import (
    Callable,
    Collection,
    List,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import numpy as np
import torch
from torch import Tensor

__all__ = [
    'IdMap',
    'Records',
    'read_id_map',
    'read_int_triples',
    'read_int_links',
    'read_str_triples',
    'read_str_links',
    'read_entity_names',
    'concat_links',
]

log = logging.getLogger(__name__)

_BOM = b'\xef\xbb\xbf'
_ID = re.compile(r'[0-9]+')
_MAX_ID_DIGITS = 18
# Control characters anywhere, and '\r' not followed by '\n'.
_CONTROL = re.compile(r'[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]|\r(?!\n|\Z)')
_TRIPLE_COLUMNS = ('head', 'relation', 'tail')
_LINK_COLUMNS = ('KG1 entity', 'KG2 entity')


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


def _error(path, line: int, problem: str) -> ValueError:
    return ValueError(f"{path}:{line}: {problem}")


def _show(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + '...')


def _read_bytes(path) -> bytes:
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


def _decode(path, data: bytes) -> str:
    try:
        text = data.decode('utf-8')
    except UnicodeDecodeError as e:
        line = data.count(b'\n', 0, e.start) + 1
        raise _error(path, line, f"invalid UTF-8 byte 0x{data[e.start]:02x} "
                                 f"({e.reason})") from None
    bad = _CONTROL.search(text)
    if bad is not None:
        line = text.count('\n', 0, bad.start()) + 1
        column = bad.start() - text.rfind('\n', 0, bad.start())
        raise _error(path, line, f"stray control character "
                                 f"U+{ord(bad.group()):04X} at column {column}")
    # One spelling per name: 'São' typed as S, a, combining tilde, o (NFD)
    # is the same entity as the precomposed 'São' (NFC).
    return text if unicodedata.is_normalized('NFC', text) else \
        unicodedata.normalize('NFC', text)


def _report_blank(path, num_blank: int, first: int):
    if num_blank:
        log.warning("%s: skipped %d blank line(s), the first at line %d",
                    path, num_blank, first)


def _split_lines(path, text: str, columns: Sequence[str], delimiter: str = '\t'
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
            raise _error(path, number, f"malformed line: expected {len(columns)} "
                                       f"{sep}-separated columns ({', '.join(columns)}),"
                                       f" got {len(fields)}: {_show(line)}")
        rows.append(fields)
        numbers.append(number)
    if not rows:
        raise _error(path, 1, "empty file (no data lines)")
    _report_blank(path, len(blank), blank[0] if blank else 0)
    return rows, numbers, len(blank)


def _parse_ids(path, rows: List[List[str]], numbers: List[int],
               columns: Sequence[str], id_columns: Sequence[int]) -> np.ndarray:
    out = np.empty((len(rows), len(id_columns)), dtype=np.int64)
    for j, c in enumerate(id_columns):
        fields = [row[c] for row in rows]
        if all(f.isascii() and f.isdigit() and len(f) <= _MAX_ID_DIGITS
               for f in fields):
            out[:, j] = np.array(fields, dtype=np.int64)
            continue
        for field, number in zip(fields, numbers):
            if not (field.isascii() and field.isdigit()):
                raise _error(path, number, f"non-integer id {_show(field)} in "
                                           f"column {c + 1} ({columns[c]})")
            if len(field) > _MAX_ID_DIGITS:
                raise _error(path, number, f"id {_show(field)} in column {c + 1} "
                                           f"({columns[c]}) is out of range")
    return out


def _check_names(path, rows: List[List[str]], numbers: List[int],
                 columns: Sequence[str], name_columns: Sequence[int]):
    for fields, number in zip(rows, numbers):
        for c in name_columns:
            if not fields[c]:
                raise _error(path, number, f"empty name in column {c + 1} "
                                           f"({columns[c]})")


def _int_table(path, columns: Sequence[str], delimiter: str = '\t'
               ) -> Tuple[np.ndarray, np.ndarray, int]:
    r"""Reads a file of integer columns as ``[n, k]`` int64 rows, their line
    numbers and the blank count. Well-formed files take a vectorised path;
    anything else goes line by line to find and name the problem."""
    data = _read_bytes(path)
    k = len(columns)
    field = rb'[0-9]{1,%d}' % _MAX_ID_DIGITS
    row = field + (re.escape(delimiter.encode()) + field) * (k - 1)
    if data and re.fullmatch(rb'(?:%s\r?\n)*(?:%s\r?)?' % (row, row), data):
        rows = np.loadtxt(io.BytesIO(data), dtype=np.int64, delimiter=delimiter,
                          ndmin=2).reshape(-1, k)
        return rows, np.arange(1, rows.shape[0] + 1), 0
    fields, numbers, blank = _split_lines(path, _decode(path, data), columns,
                                          delimiter)
    rows = _parse_ids(path, fields, numbers, columns, range(k))
    return rows, np.asarray(numbers, dtype=np.int64), blank


def _first_repeat(keys: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
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


def _check_known(path, values: np.ndarray, line: np.ndarray, known: np.ndarray,
                 what: str, source: str):
    unknown = ~np.isin(values, known)
    if unknown.any():
        i = int(np.flatnonzero(unknown)[0])
        raise _error(path, int(line[i]), f"unknown {what} id {int(values[i])} "
                                         f"(not in {source})")


def read_id_map(path) -> IdMap:
    r"""Reads an ``id<TAB>name`` file (entity or relation ids).

    Args:
        path (str or os.PathLike): the file.

    Returns:
        IdMap: ids and names in file order.

    Raises:
        ValueError: on any problem listed in the module docstring, including
            an id or a name given twice.
    """
    columns = ('id', 'name')
    text = _decode(path, _read_bytes(path))
    rows, numbers, blank = _split_lines(path, text, columns)
    ids = _parse_ids(path, rows, numbers, columns, [0])[:, 0]
    _check_names(path, rows, numbers, columns, [1])
    repeat, first = _first_repeat(ids)
    if repeat.any():
        i = int(np.flatnonzero(repeat)[0])
        raise _error(path, numbers[i], f"duplicate id {int(ids[i])} (first on "
                                       f"line {numbers[first[i]]})")
    names = [fields[1] for fields in rows]
    seen = {}
    for name, number in zip(names, numbers):
        if seen.setdefault(name, number) != number:
            raise _error(path, number, f"duplicate name {_show(name)} (first on "
                                       f"line {seen[name]})")
    return IdMap(str(path), torch.from_numpy(ids), names, blank)


def _dedupe_triples(path, line: np.ndarray, keys: np.ndarray):
    repeat, _ = _first_repeat(keys)
    num_duplicates = int(repeat.sum())
    if num_duplicates:
        log.warning("%s: removed %d duplicate triple line(s), the first at "
                    "line %d", path, num_duplicates,
                    int(line[np.flatnonzero(repeat)[0]]))
    return ~repeat, num_duplicates


def read_int_triples(path, entities: Optional[IdMap] = None,
                     relations: Optional[IdMap] = None) -> Records:
    r"""Reads a ``head<TAB>relation<TAB>tail`` file of integer ids.

    Args:
        path (str or os.PathLike): the file.
        entities (IdMap, optional): when given, every head and tail must be
            one of its ids. (default: :obj:`None`)
        relations (IdMap, optional): when given, every relation must be one
            of its ids. (default: :obj:`None`)

    Returns:
        Records: ``rows`` of shape ``[E, 3]``, duplicates removed (the first
        copy is kept, in file order).
    """
    rows, line, blank = _int_table(path, _TRIPLE_COLUMNS)
    if entities is not None:
        known = entities.ids.numpy()
        for c in (0, 2):
            _check_known(path, rows[:, c], line, known,
                         f"{_TRIPLE_COLUMNS[c]} entity", entities.path)
    if relations is not None:
        _check_known(path, rows[:, 1], line, relations.ids.numpy(), 'relation',
                     relations.path)
    keep, num_duplicates = _dedupe_triples(path, line, rows)
    return Records(str(path), torch.from_numpy(rows[keep]),
                   torch.from_numpy(line[keep]), num_duplicates, blank)


def _check_one_to_one(keys: np.ndarray, paths: Sequence[str], part: np.ndarray,
                      line: np.ndarray, show: Callable[[int], Tuple[str, str]]):
    r"""Raises on a repeated link or an entity with two partners. ``keys`` is
    ``[M, 2]`` (one integer code per entity), ``part`` and ``line`` say which
    file and line each link comes from, ``show(i)`` prints link ``i``."""
    def where(i: int, of: int) -> str:
        return (f"line {line[i]}" if part[i] == part[of]
                else f"{paths[part[i]]}:{line[i]}")

    problems = []
    repeat, first = _first_repeat(keys)
    if repeat.any():
        i = int(np.flatnonzero(repeat)[0])
        a, b = show(i)
        problems.append((i, f"duplicate link ({a}, {b}) (first on "
                            f"{where(int(first[i]), i)})"))
    for side in (0, 1):
        side_repeat, side_first = _first_repeat(keys[:, side])
        side_repeat &= ~repeat
        if side_repeat.any():
            i = int(np.flatnonzero(side_repeat)[0])
            j = int(side_first[i])
            problems.append((i, f"{_LINK_COLUMNS[side]} {show(i)[side]} is linked "
                                f"to two different partners: {show(j)[1 - side]} "
                                f"({where(j, i)}) and {show(i)[1 - side]}"))
    if problems:
        i, problem = min(problems)
        raise _error(paths[part[i]], int(line[i]), problem)


def read_int_links(path, entities: Optional[Tuple[IdMap, IdMap]] = None
                   ) -> Records:
    r"""Reads an ``id1<TAB>id2`` file of integer entity links.

    Args:
        path (str or os.PathLike): the file.
        entities (Tuple[IdMap, IdMap], optional): when given, the ids of each
            column must be ids of the matching KG. (default: :obj:`None`)

    Returns:
        Records: ``rows`` of shape ``[M, 2]`` in file order.

    Raises:
        ValueError: also on a repeated link or an entity linked to two
            different partners.
    """
    rows, line, blank = _int_table(path, _LINK_COLUMNS)
    if entities is not None:
        for c in (0, 1):
            _check_known(path, rows[:, c], line, entities[c].ids.numpy(),
                         _LINK_COLUMNS[c], entities[c].path)
    _check_one_to_one(rows, [str(path)], np.zeros(len(rows), dtype=np.int64),
                      line, lambda i: tuple(map(str, rows[i])))
    return Records(str(path), torch.from_numpy(rows), torch.from_numpy(line), 0,
                   blank)


def _str_table(path, columns: Sequence[str]
               ) -> Tuple[List[Tuple[str, ...]], np.ndarray, int]:
    text = _decode(path, _read_bytes(path))
    rows, numbers, blank = _split_lines(path, text, columns)
    _check_names(path, rows, numbers, columns, range(len(columns)))
    return [tuple(r) for r in rows], np.asarray(numbers, dtype=np.int64), blank


def _codes(names: Sequence[str]) -> np.ndarray:
    index = {}
    return np.asarray([index.setdefault(n, len(index)) for n in names],
                      dtype=np.int64)


def read_str_triples(path) -> Records:
    r"""Reads a ``head<TAB>relation<TAB>tail`` file of names (URIs).

    Args:
        path (str or os.PathLike): the file.

    Returns:
        Records: ``rows`` a list of ``(head, relation, tail)`` tuples,
        duplicates removed (the first copy is kept, in file order).
    """
    rows, line, blank = _str_table(path, _TRIPLE_COLUMNS)
    entity = _codes([n for h, _, t in rows for n in (h, t)]).reshape(-1, 2)
    keys = np.stack([entity[:, 0], _codes([r for _, r, _ in rows]),
                     entity[:, 1]], axis=1)
    keep, num_duplicates = _dedupe_triples(path, line, keys)
    rows = [r for r, k in zip(rows, keep) if k]
    return Records(str(path), rows, torch.from_numpy(line[keep]),
                   num_duplicates, blank)


def read_str_links(path,
                   entities: Optional[Tuple[Collection[str], Collection[str]]] = None,
                   entity_source: Tuple[str, str] = ('the KG1 entities',
                                                     'the KG2 entities')
                   ) -> Records:
    r"""Reads a ``name1<TAB>name2`` file of entity links.

    Args:
        path (str or os.PathLike): the file.
        entities (Tuple[Collection[str], Collection[str]], optional): when
            given, the names of each column must be in the matching
            collection. (default: :obj:`None`)
        entity_source (Tuple[str, str]): how error messages name the two
            collections, for example their files.
            (default: :obj:`('the KG1 entities', 'the KG2 entities')`)

    Returns:
        Records: ``rows`` a list of ``(name1, name2)`` tuples in file order.

    Raises:
        ValueError: also on a repeated link or an entity linked to two
            different partners.
    """
    rows, line, blank = _str_table(path, _LINK_COLUMNS)
    if entities is not None:
        for number, row in zip(line.tolist(), rows):
            for c in (0, 1):
                if row[c] not in entities[c]:
                    raise _error(path, number, f"unknown {_LINK_COLUMNS[c]} "
                                               f"{_show(row[c])} (not in "
                                               f"{entity_source[c]})")
    keys = np.stack([_codes([r[0] for r in rows]), _codes([r[1] for r in rows])],
                    axis=1)
    _check_one_to_one(keys, [str(path)], np.zeros(len(rows), dtype=np.int64),
                      line, lambda i: tuple(map(_show, rows[i])))
    return Records(str(path), rows, torch.from_numpy(line), 0, blank)


def read_entity_names(path, entities: Sequence[str], kg: str = 'KG1',
                      other: Collection[str] = ()) -> List[str]:
    r"""Reads an ``entity<TAB>name`` file of one KG: the readable name of
    each entity (a label or a translation; its tokens are the words split
    on spaces and underscores).

    Args:
        path (str or os.PathLike): the file.
        entities (Sequence[str]): the KG's entities (URIs), in node order.
        kg (str): how error messages name the KG. (default: :obj:`'KG1'`)
        other (Collection[str]): the other KG's entities: a file whose first
            unknown entity is one of them is said to be of the wrong KG.
            (default: :obj:`()`)

    Returns:
        List[str]: the name of each entity of ``entities``, NFC-normalised;
        the empty string for an entity the file does not name.

    Raises:
        ValueError: on an entity not in the KG, an entity named twice, an
            empty name, or any problem of the module docstring.
    """
    columns = ('entity', 'name')
    rows, line, _ = _str_table(path, columns)
    index = {entity: i for i, entity in enumerate(entities)}
    names = [''] * len(entities)
    first: dict = {}
    for number, (entity, name) in zip(line.tolist(), rows):
        i = index.get(entity)
        if i is None:
            where = (f"it is a {'KG2' if kg == 'KG1' else 'KG1'} entity: is this "
                     f"the other KG's names file?" if entity in other
                     else f"not in {kg}'s triples")
            raise _error(path, number, f"unknown entity {_show(entity)} ({where})")
        if entity in first:
            raise _error(path, number, f"entity {_show(entity)} named twice "
                                       f"(first on line {first[entity]})")
        if not name.strip():
            raise _error(path, number, f"empty name for {_show(entity)}")
        first[entity] = number
        names[i] = name
    return names


def concat_links(parts: Sequence[Records]) -> Union[Tensor, List[Tuple[str, str]]]:
    r"""Concatenates the links of several files (for example the train and
    test files of one dataset), checking that together they stay one-to-one.

    Args:
        parts (Sequence[Records]): results of :func:`read_int_links` or of
            :func:`read_str_links`, all of the same kind.

    Returns:
        ``[M, 2]`` :obj:`torch.long` ids, or a list of ``M`` name pairs.

    Raises:
        ValueError: naming the later file and line of a link repeated across
            files, or of an entity linked to different partners in two files.
    """
    if all(isinstance(p.rows, Tensor) for p in parts):
        rows = torch.cat([p.rows for p in parts]).numpy()
        keys, out = rows, torch.from_numpy(rows)

        def show(i):
            return tuple(map(str, rows[i]))
    else:
        out = [r for p in parts for r in p.rows]
        keys = np.stack([_codes([r[0] for r in out]), _codes([r[1] for r in out])],
                        axis=1)

        def show(i):
            return tuple(map(_show, out[i]))
    part = np.concatenate([np.full(len(p.line), i) for i, p in enumerate(parts)])
    line = torch.cat([p.line for p in parts]).numpy()
    _check_one_to_one(keys.reshape(-1, 2), [p.path for p in parts], part, line,
                      show)
    return out
