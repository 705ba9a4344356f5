r"""Validating readers for the tab-separated files of entity-alignment data.

Four kinds of files are read, each one record per line, fields separated by
exactly one tab:

* id maps ``id<TAB>name`` (``ent_ids_1``, ``rel_ids_1``, ...):
  :func:`read_id_map`;
* integer triples ``head<TAB>relation<TAB>tail`` (``triples_1``):
  :func:`read_int_triples`;
* integer links ``id1<TAB>id2`` (``ref_ent_ids``, ``sup_ent_ids``):
  :func:`~torch_geometric_ea.data.link_files.read_int_links`;
* string triples and string links, the same with names (URIs) instead of ids
  (OpenEA's ``rel_triples_1`` and ``ent_links``, or a user's own KGs):
  :func:`read_str_triples`,
  :func:`~torch_geometric_ea.data.link_files.read_str_links`;
* entity names ``entity<TAB>name`` of one of a user's KGs:
  :func:`read_entity_names`.

The link readers live in :mod:`torch_geometric_ea.data.link_files`, the
rules every file obeys and the records returned
(:class:`~torch_geometric_ea.data.tsv.IdMap`,
:class:`~torch_geometric_ea.data.tsv.Records`) in
:mod:`torch_geometric_ea.data.tsv`; all are importable from here too.

Every problem raises :class:`ValueError` with a message
``"<path>:<line>: <problem>"`` (1-based line number), so the file and line
can be opened directly. Beyond the rules of every file (UTF-8, NFC, no
control characters, the expected number of fields, ids of 1 to 18 ASCII
digits, non-empty names, no empty file):

* Id maps hold no id and no name twice.
* Links are one-to-one: no link twice, no entity linked to two partners.
* With ``entities=`` / ``relations=`` given, every id or name must be known.

Nothing is dropped silently. Blank lines (empty, or just ``\r``) carry no
data: they are skipped, counted in ``num_blank_lines`` and logged as a
warning; the newline that ends the last line is a terminator, not a blank
line. Repeated triple lines are not an error: later copies are removed,
counted in ``num_duplicates`` and logged as a warning.
"""
import logging
from typing import Collection, List, Optional, Sequence

import numpy as np
import torch

from torch_geometric_ea.data.link_files import (
    concat_links,
    read_int_links,
    read_str_links,
)
from torch_geometric_ea.data.tsv import (
    IdMap,
    Records,
    check_known,
    check_names,
    decode_text,
    first_repeat,
    int_table,
    line_error,
    name_codes,
    parse_ids,
    read_bytes,
    show_field,
    split_lines,
    str_table,
)

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

_TRIPLE_COLUMNS = ('head', 'relation', 'tail')


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
    text = decode_text(path, read_bytes(path))
    rows, numbers, blank = split_lines(path, text, columns)
    ids = parse_ids(path, rows, numbers, columns, [0])[:, 0]
    check_names(path, rows, numbers, columns, [1])
    repeat, first = first_repeat(ids)
    if repeat.any():
        i = int(np.flatnonzero(repeat)[0])
        raise line_error(path, numbers[i], f"duplicate id {int(ids[i])} (first on "
                                           f"line {numbers[first[i]]})")
    names = [fields[1] for fields in rows]
    seen = {}
    for name, number in zip(names, numbers):
        if seen.setdefault(name, number) != number:
            raise line_error(path, number, f"duplicate name {show_field(name)} "
                                           f"(first on line {seen[name]})")
    return IdMap(str(path), torch.from_numpy(ids), names, blank)


def _dedupe_triples(path, line: np.ndarray, keys: np.ndarray):
    repeat, _ = first_repeat(keys)
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
    rows, line, blank = int_table(path, _TRIPLE_COLUMNS)
    if entities is not None:
        known = entities.ids.numpy()
        for c in (0, 2):
            check_known(path, rows[:, c], line, known,
                        f"{_TRIPLE_COLUMNS[c]} entity", entities.path)
    if relations is not None:
        check_known(path, rows[:, 1], line, relations.ids.numpy(), 'relation',
                    relations.path)
    keep, num_duplicates = _dedupe_triples(path, line, rows)
    return Records(str(path), torch.from_numpy(rows[keep]),
                   torch.from_numpy(line[keep]), num_duplicates, blank)


def read_str_triples(path) -> Records:
    r"""Reads a ``head<TAB>relation<TAB>tail`` file of names (URIs).

    Args:
        path (str or os.PathLike): the file.

    Returns:
        Records: ``rows`` a list of ``(head, relation, tail)`` tuples,
        duplicates removed (the first copy is kept, in file order).
    """
    rows, line, blank = str_table(path, _TRIPLE_COLUMNS)
    entity = name_codes([n for h, _, t in rows for n in (h, t)]).reshape(-1, 2)
    keys = np.stack([entity[:, 0], name_codes([r for _, r, _ in rows]),
                     entity[:, 1]], axis=1)
    keep, num_duplicates = _dedupe_triples(path, line, keys)
    rows = [r for r, k in zip(rows, keep) if k]
    return Records(str(path), rows, torch.from_numpy(line[keep]),
                   num_duplicates, blank)


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
    rows, line, _ = str_table(path, columns)
    index = {entity: i for i, entity in enumerate(entities)}
    names = [''] * len(entities)
    first: dict = {}
    for number, (entity, name) in zip(line.tolist(), rows):
        i = index.get(entity)
        if i is None:
            where = (f"it is a {'KG2' if kg == 'KG1' else 'KG1'} entity: is this "
                     f"the other KG's names file?" if entity in other
                     else f"not in {kg}'s triples")
            raise line_error(path, number, f"unknown entity {show_field(entity)} ({where})")
        if entity in first:
            raise line_error(path, number, f"entity {show_field(entity)} named twice "
                                           f"(first on line {first[entity]})")
        if not name.strip():
            raise line_error(path, number, f"empty name for {show_field(entity)}")
        first[entity] = number
        names[i] = name
    return names
