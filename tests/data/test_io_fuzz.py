r"""Corrupts valid small files at random: every reader must either succeed
with output consistent with the file, or raise the documented ValueError."""
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from torch_geometric_ea.data.io import (
    read_id_map,
    read_int_links,
    read_int_triples,
    read_str_links,
    read_str_triples,
)

NAMES = st.text(st.sampled_from('abé中 _/:#%'), min_size=1, max_size=6)
IDS = st.integers(0, 60)
STRAY = [b'\xff', b'\xc3', b'\xe4\xb8', b'\x00', b'\x07', b'\t', b'\n', b'\r',
         b' ', b'\xef\xbb\xbf', b'-', b'9' * 20]


@st.composite
def valid_rows(draw, kind):
    if kind == 'id_map':
        ids = draw(st.lists(IDS, min_size=1, max_size=8, unique=True))
        names = draw(st.lists(NAMES, min_size=len(ids), max_size=len(ids),
                              unique=True))
        return [(str(i), n) for i, n in zip(ids, names)]
    if kind in ('int_triples', 'str_triples'):
        field = IDS.map(str) if kind == 'int_triples' else NAMES
        return draw(st.lists(st.tuples(field, field, field), min_size=1,
                             max_size=8))
    field = IDS.map(str) if kind == 'int_links' else NAMES
    left = draw(st.lists(field, min_size=1, max_size=8, unique=True))
    right = draw(st.lists(field, min_size=len(left), max_size=len(left),
                          unique=True))
    return list(zip(left, right))


@st.composite
def corrupt(draw, lines):
    r"""Applies 0 to 3 random corruptions to a list of byte lines."""
    lines = list(lines)
    for _ in range(draw(st.integers(0, 3))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(['truncate', 'stray', 'separator', 'swap',
                                   'delete', 'repeat', 'blank']))
        line = lines[i]
        if op == 'truncate':
            lines[i] = line[:draw(st.integers(0, len(line)))]
        elif op == 'stray':
            at = draw(st.integers(0, len(line)))
            lines[i] = line[:at] + draw(st.sampled_from(STRAY)) + line[at:]
        elif op == 'separator':
            lines[i] = line.replace(b'\t', draw(st.sampled_from([b' ', b',', b';',
                                                                 b'\t\t'])), 1)
        elif op == 'swap':
            lines[i] = b'\t'.join(reversed(line.split(b'\t')))
        elif op == 'delete':
            del lines[i]
        elif op == 'repeat':
            lines.insert(i, line)
        else:
            lines.insert(i, draw(st.sampled_from([b'', b'\r'])))
    return lines


def reference(data: bytes, columns: int):
    r"""An independent, plain parse of a file the reader accepted: the
    non-blank lines split into fields, and the blank-line count."""
    text = data.decode('utf-8')
    if text.startswith('\ufeff'):
        text = text[1:]
    lines = text.split('\n')
    if lines[-1] == '':
        lines.pop()
    lines = [line[:-1] if line.endswith('\r') else line for line in lines]
    rows = [tuple(line.split('\t')) for line in lines if line]
    assert all(len(r) == columns for r in rows)
    return rows, len(lines) - len(rows)


READERS = {
    'id_map': (read_id_map, 2),
    'int_triples': (read_int_triples, 3),
    'int_links': (read_int_links, 2),
    'str_triples': (read_str_triples, 3),
    'str_links': (read_str_links, 2),
}


def check(kind, result, data):
    rows, blank = reference(data, READERS[kind][1])
    assert result.num_blank_lines == blank
    if kind == 'id_map':
        assert result.ids.tolist() == [int(i) for i, _ in rows]
        assert result.names == [n for _, n in rows]
        return
    got = result.rows.tolist() if kind.startswith('int') else result.rows
    want = ([tuple(int(x) for x in r) for r in rows] if kind.startswith('int')
            else rows)
    got = [tuple(r) for r in got]
    if kind.endswith('links'):
        assert got == want
        assert result.num_duplicates == 0
    else:  # first copies kept, in file order
        assert got == list(dict.fromkeys(want))
        assert result.num_duplicates == len(want) - len(got)
    assert result.line.numel() == len(got)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), kind=st.sampled_from(sorted(READERS)),
       crlf=st.booleans(), final_newline=st.booleans())
def test_corrupted_files(tmp_path, data, kind, crlf, final_newline):
    rows = data.draw(valid_rows(kind))
    lines = [('\t'.join(r)).encode('utf-8') for r in rows]
    lines = data.draw(corrupt(lines))
    end = b'\r\n' if crlf else b'\n'
    content = end.join(lines) + (end if final_newline and lines else b'')
    path = tmp_path / kind
    path.write_bytes(content)
    reader = READERS[kind][0]
    try:
        result = reader(str(path))
    except ValueError as e:
        match = re.match(re.escape(str(path)) + r':(\d+): \S', str(e))
        assert match, str(e)
        assert 1 <= int(match.group(1)) <= content.count(b'\n') + 1
    else:
        check(kind, result, content)


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), kind=st.sampled_from(sorted(READERS)),
       crlf=st.booleans(), final_newline=st.booleans(), bom=st.booleans())
def test_uncorrupted_files_load(tmp_path, data, kind, crlf, final_newline, bom):
    rows = data.draw(valid_rows(kind))
    end = b'\r\n' if crlf else b'\n'
    content = end.join(('\t'.join(r)).encode('utf-8') for r in rows)
    content = (b'\xef\xbb\xbf' if bom else b'') + content + (end if final_newline
                                                            else b'')
    path = tmp_path / kind
    path.write_bytes(content)
    check(kind, READERS[kind][0](str(path)), content)  # no error, same rows
