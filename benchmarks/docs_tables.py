r"""The result tables of the docs pages, as the benchmark scripts rewrite
them (``run.py --docs BLOCK``, ``memory.py --docs``): each table sits on
its page between the comments ``.. BLOCK:begin`` and ``.. BLOCK:end``, as

.. code-block:: rst

    .. BLOCK:begin

    Command: ``python benchmarks/run.py ...``

    .. csv-table:: Caption
       :header: "model","data",...
       :widths: auto

       "dual-amn","dbp15k/zh_en",...

    Not run yet: ...

    .. BLOCK:end

(the ``Command:`` line and the paragraphs after the table are optional).
:func:`write_block` replaces the header, the rows, the command and the
paragraphs and keeps the caption and the other options, so the tests'
captions (``tests/test_docs.py``) stay; it writes the page atomically, and
the same table leaves the page byte for byte as it was.
"""
import csv
import os.path as osp
import re
import sys
from typing import List, NamedTuple, Optional, Sequence

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# Each block and the page that holds it (relative to the repository root).
PAGES = {
    'results': 'docs/results/models.rst',
    'bootstrapping': 'docs/results/bootstrapping.rst',
    'literal': 'docs/results/literal.rst',
    'candidates': 'docs/results/candidates.rst',
    'scale': 'docs/results/scale.rst',
    'memory': 'docs/results/memory.rst',
    'lightea': 'docs/results/lightea.rst',
    'lightea-names': 'docs/results/lightea.rst',
    'names-only': 'docs/datasets.rst',
    'precision': 'docs/results/precision.rst',
}
INDENT = '   '
COMMAND = re.compile(r'^Command: ``(.+)``$')
# A cell that reStructuredText would read as a list item (``-``, ``* x``).
BULLET = re.compile(r'^[-*+\u2022\u2023\u2043](\s|$)')


class Block(NamedTuple):
    r"""One block's table: its ``caption``, the directive's ``options``
    other than ``:header:`` (lines without the indent, e.g. ``:widths:
    auto``), ``header`` and ``rows`` (plain text cells), the ``command``
    before it (or :obj:`None`) and the ``notes`` after it (paragraphs)."""
    caption: str
    options: List[str]
    header: List[str]
    rows: List[List[str]]
    command: Optional[str]
    notes: List[str]


def page(block: str, root: str = ROOT) -> str:
    r"""The path of the page that holds ``block``."""
    return osp.join(root, PAGES[block])


def escape(cell) -> str:
    r"""A cell as reStructuredText text that reads back as ``cell``:
    backslashes doubled, a leading list marker (``-``) escaped."""
    text = str(cell).replace('\\', '\\\\')
    return '\\' + text if BULLET.match(text) else text


def unescape(text: str) -> str:
    r"""The inverse of :func:`escape`."""
    if text.startswith('\\') and BULLET.match(text[1:]):
        text = text[1:]
    return text.replace('\\\\', '\\')


def csv_line(cells: Sequence) -> str:
    r"""A csv-table line: every cell escaped (:func:`escape`) and quoted,
    quotes doubled, cells joined by commas."""
    return ','.join('"' + escape(c).replace('"', '""') + '"' for c in cells)


def parse_line(line: str) -> List[str]:
    r"""The cells of a line written by :func:`csv_line`."""
    (cells,) = csv.reader([line], skipinitialspace=True)
    return [unescape(c) for c in cells]


def _split(text: str, block: str, path: str):
    begin, end = f'.. {block}:begin\n', f'.. {block}:end\n'
    start = text.find(begin)
    if start < 0 or (start and text[start - 1] != '\n'):
        raise SystemExit(f'{path} has no .. {block}:begin ... .. {block}:end block')
    stop = text.find(end, start)
    if stop < 0 or text[stop - 1] != '\n':
        raise SystemExit(f'{path} has no .. {block}:begin ... .. {block}:end block')
    start += len(begin)
    return text[:start], text[start:stop], text[stop:]


def _paragraphs(lines: List[str]) -> List[str]:
    return [p.strip('\n') for p in '\n'.join(lines).split('\n\n') if p.strip()]


def parse_block(body: str, where: str = 'the block') -> Block:
    r"""The :class:`Block` of the text between a block's comments."""
    lines = body.split('\n')
    starts = [i for i, line in enumerate(lines) if line.startswith('.. csv-table::')]
    if len(starts) != 1:
        raise SystemExit(f'{where}: {len(starts)} csv-tables, not one')
    i = starts[0]
    before = _paragraphs(lines[:i])
    match = COMMAND.match(before[0]) if len(before) == 1 else None
    if before and not match:
        raise SystemExit(f'{where}: text before the table other than a Command line')
    caption = lines[i][len('.. csv-table::'):].strip()
    header, options, rows = None, [], []
    i += 1
    while i < len(lines) and lines[i].startswith(INDENT + ':'):
        option = lines[i][len(INDENT):]
        if option.startswith(':header:'):
            header = parse_line(option[len(':header:'):].strip())
        else:
            options.append(option)
        i += 1
    while i < len(lines) and (not lines[i].strip() or lines[i].startswith(INDENT)):
        if lines[i].strip():
            rows.append(parse_line(lines[i][len(INDENT):]))
        i += 1
    if header is None:
        raise SystemExit(f'{where}: the csv-table has no :header:')
    return Block(caption, options, header, rows, match.group(1) if match else None,
                 _paragraphs(lines[i:]))


def render_block(table: Block) -> str:
    r"""The text between a block's comments for ``table`` (inverse of
    :func:`parse_block`)."""
    parts = [f'Command: ``{table.command}``'] if table.command else []
    directive = [f'.. csv-table:: {table.caption}',
                 f'{INDENT}:header: {csv_line(table.header)}']
    directive += [INDENT + option for option in table.options]
    directive += [''] + [INDENT + csv_line(row) for row in table.rows]
    parts.append('\n'.join(directive))
    parts += table.notes
    return '\n' + '\n\n'.join(parts) + '\n\n'


def read_block(block: str, path: Optional[str] = None) -> Block:
    r"""The table of ``block`` on its page (or on the page ``path``)."""
    path = path or page(block)
    with open(path, encoding='utf-8') as f:
        text = f.read()
    return parse_block(_split(text, block, path)[1], f'{path}, block {block}')


def write_block(block: str, header: Sequence[str], rows: Sequence[Sequence],
                command: Optional[str] = None, notes: Sequence[str] = (),
                path: Optional[str] = None) -> str:
    r"""Rewrites ``block``'s table on its page (or on the page ``path``)
    with ``header`` and ``rows`` (cells as text), a ``Command:`` line
    naming ``command`` before it (none for :obj:`None`) and the paragraphs
    ``notes`` after it; the caption and the directive's other options
    stay. Atomic: the page is replaced whole or left as it was (and is not
    written at all when nothing changes). Returns the page's path."""
    from torch_geometric_ea.outputs import atomic_file
    path = path or page(block)
    with open(path, encoding='utf-8') as f:
        text = f.read()
    head, body, tail = _split(text, block, path)
    old = parse_block(body, f'{path}, block {block}')
    header = [str(c) for c in header]
    rows = [[str(c) for c in row] for row in rows]
    if any(len(row) != len(header) for row in rows):
        raise ValueError(f'{block}: a row without {len(header)} cells')
    new = old._replace(header=header, rows=rows, command=command,
                       notes=[n.strip('\n') for n in notes if n.strip()])
    updated = head + render_block(new) + tail
    if updated != text:
        with atomic_file(path, 'wb') as f:
            f.write(updated.encode('utf-8'))
    return path
