r"""Validating readers for the link files of entity-alignment data: integer
links ``id1<TAB>id2`` (``ref_ent_ids``, ``sup_ent_ids``) and string links
``name1<TAB>name2`` (OpenEA's ``ent_links``, or a user's own links), and
:func:`concat_links` for the files of one dataset together.

The files obey the rules of :mod:`torch_geometric_ea.data.tsv`, and links
are one-to-one: no link twice, no entity linked to two partners. With
``entities=`` given, every id or name must be known. Every problem raises
:class:`ValueError` with a message ``"<path>:<line>: <problem>"``.
"""
from typing import Callable, Collection, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from torch_geometric_ea.data.tsv import (
    IdMap,
    Records,
    check_known,
    first_repeat,
    int_table,
    line_error,
    name_codes,
    show_field,
    str_table,
)

__all__ = ['read_int_links', 'read_str_links', 'concat_links']

_LINK_COLUMNS = ('KG1 entity', 'KG2 entity')


def _check_one_to_one(keys: np.ndarray, paths: Sequence[str], part: np.ndarray,
                      line: np.ndarray, show: Callable[[int], Tuple[str, str]]):
    r"""Raises on a repeated link or an entity with two partners. ``keys`` is
    ``[M, 2]`` (one integer code per entity), ``part`` and ``line`` say which
    file and line each link comes from, ``show(i)`` prints link ``i``."""
    def where(i: int, of: int) -> str:
        return (f"line {line[i]}" if part[i] == part[of]
                else f"{paths[part[i]]}:{line[i]}")

    problems = []
    repeat, first = first_repeat(keys)
    if repeat.any():
        i = int(np.flatnonzero(repeat)[0])
        a, b = show(i)
        problems.append((i, f"duplicate link ({a}, {b}) (first on "
                            f"{where(int(first[i]), i)})"))
    for side in (0, 1):
        side_repeat, side_first = first_repeat(keys[:, side])
        side_repeat &= ~repeat
        if side_repeat.any():
            i = int(np.flatnonzero(side_repeat)[0])
            j = int(side_first[i])
            problems.append((i, f"{_LINK_COLUMNS[side]} {show(i)[side]} is linked "
                                f"to two different partners: {show(j)[1 - side]} "
                                f"({where(j, i)}) and {show(i)[1 - side]}"))
    if problems:
        i, problem = min(problems)
        raise line_error(paths[part[i]], int(line[i]), problem)


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
    rows, line, blank = int_table(path, _LINK_COLUMNS)
    if entities is not None:
        for c in (0, 1):
            check_known(path, rows[:, c], line, entities[c].ids.numpy(),
                        _LINK_COLUMNS[c], entities[c].path)
    _check_one_to_one(rows, [str(path)], np.zeros(len(rows), dtype=np.int64),
                      line, lambda i: tuple(map(str, rows[i])))
    return Records(str(path), torch.from_numpy(rows), torch.from_numpy(line), 0,
                   blank)


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
    rows, line, blank = str_table(path, _LINK_COLUMNS)
    if entities is not None:
        for number, row in zip(line.tolist(), rows):
            for c in (0, 1):
                if row[c] not in entities[c]:
                    raise line_error(path, number, f"unknown {_LINK_COLUMNS[c]} "
                                                   f"{show_field(row[c])} (not in "
                                                   f"{entity_source[c]})")
    keys = np.stack([name_codes([r[0] for r in rows]),
                     name_codes([r[1] for r in rows])], axis=1)
    _check_one_to_one(keys, [str(path)], np.zeros(len(rows), dtype=np.int64),
                      line, lambda i: tuple(map(show_field, rows[i])))
    return Records(str(path), rows, torch.from_numpy(line), 0, blank)


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
        keys = np.stack([name_codes([r[0] for r in out]),
                         name_codes([r[1] for r in out])], axis=1)

        def show(i):
            return tuple(map(show_field, out[i]))
    part = np.concatenate([np.full(len(p.line), i) for i, p in enumerate(parts)])
    line = torch.cat([p.line for p in parts]).numpy()
    _check_one_to_one(keys.reshape(-1, 2), [p.path for p in parts], part, line,
                      show)
    return out
