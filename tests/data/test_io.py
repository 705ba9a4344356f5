import gzip
import logging
import re

import pytest
import torch

from torch_geometric_ea.data.io import (
    concat_links,
    read_id_map,
    read_int_links,
    read_int_triples,
    read_str_links,
    read_str_triples,
)


def write(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes)
                     else content.encode('utf-8'))
    return str(path)


def raises_at(path, line, problem):
    r"""``pytest.raises`` for a ValueError naming ``path``, ``line`` and a
    ``problem`` regex."""
    return pytest.raises(ValueError, match=re.escape(f"{path}:{line}: ") + problem)


ENTITIES = '10\thttp://a/x\n11\thttp://a/y\n12\thttp://a/z\n'


# ---------------------------------------------------------------- id maps --

@pytest.mark.parametrize('content, line, problem', [
    ('0\ta\n1 b\n', 2, r"malformed line: expected 2 tab-separated columns "
                       r"\(id, name\), got 1: '1 b'"),
    ('0\ta\tb\n', 1, r"malformed line: expected 2 .* got 3"),
    ('0\ta\nx1\tb\n', 2, r"non-integer id 'x1' in column 1 \(id\)"),
    ('-1\ta\n', 1, r"non-integer id '-1'"),
    (' 1\ta\n', 1, r"non-integer id ' 1'"),
    ('١\ta\n', 1, r"non-integer id '١'"),  # a non-ASCII digit
    ('0\ta\n1234567890123456789\tb\n', 2, r"id '1234567890123456789' in column "
                                         r"1 \(id\) is out of range"),
    ('0\ta\n1\tb\n0\tc\n', 3, r"duplicate id 0 \(first on line 1\)"),
    ('0\ta\n1\tb\n2\ta\n', 3, r"duplicate name 'a' \(first on line 1\)"),
    ('0\ta\n1\t\n', 2, r"empty name in column 2 \(name\)"),
    ('', 1, r"empty file \(no data lines\)"),
    ('\n\r\n\n', 1, r"empty file"),
    (b'0\ta\n1\tb\xff\n', 2, r"invalid UTF-8 byte 0xff"),
    (b'0\ta\n\n1\t\xc3\n', 3, r"invalid UTF-8 byte 0xc3"),
    ('0\ta\n1\tb\x00c\n', 2, r"stray control character U\+0000 at column 4"),
    ('0\ta\rb\n', 1, r"stray control character U\+000D at column 4"),
    ('0\ta\x85\n', 1, r"stray control character U\+0085"),
])
def test_id_map_errors(tmp_path, content, line, problem):
    path = write(tmp_path, 'ent_ids_1', content)
    with raises_at(path, line, problem):
        read_id_map(path)


def test_id_map_reads_in_file_order(tmp_path):
    path = write(tmp_path, 'ent_ids_1', '7\thttp://a/Kim_Dae-jung\n3\t中文 名\n')
    ids, names = read_id_map(path)[1:3]
    assert ids.tolist() == [7, 3]
    assert names == ['http://a/Kim_Dae-jung', '中文 名']


@pytest.mark.parametrize('content', [
    '0\ta\n1\tb',  # no final newline
    '0\ta\r\n1\tb\r\n',  # CRLF
    '\ufeff0\ta\n1\tb\n',  # byte-order mark
    '0\ta\r\n1\tb\r',  # CRLF, last line cut after '\r'
])
def test_id_map_line_endings(tmp_path, content):
    m = read_id_map(write(tmp_path, 'ids', content))
    assert m.ids.tolist() == [0, 1] and m.names == ['a', 'b']
    assert m.num_blank_lines == 0


def test_blank_lines_are_counted_and_logged(tmp_path, caplog):
    path = write(tmp_path, 'ids', '0\ta\n\n1\tb\r\n\r\n\n')
    with caplog.at_level(logging.WARNING):
        m = read_id_map(path)
    assert m.names == ['a', 'b']
    assert m.num_blank_lines == 3
    assert f"{path}: skipped 3 blank line(s), the first at line 2" in caplog.text


# ---------------------------------------------------------------- triples --

@pytest.mark.parametrize('content, line, problem', [
    ('10\t0\t11\n10\t0\n', 2, r"malformed line: expected 3 tab-separated "
                              r"columns \(head, relation, tail\), got 2"),
    ('10\t0\t11\n10 0 11\n', 2, r"malformed line: .* got 1"),
    ('10\t0\t11\t\n', 1, r"malformed line: .* got 4"),
    ('10\t0\t11\n10\tr\t11\n', 2, r"non-integer id 'r' in column 2 \(relation\)"),
    ('10\t0\t1.5\n', 1, r"non-integer id '1.5' in column 3 \(tail\)"),
    ('10\t0\t\n', 1, r"non-integer id '' in column 3"),
    ('10\t0\t11\n10\t0\t12\n13\t0\t11\n', 3, r"unknown head entity id 13 "
                                             r"\(not in .*ent_ids\)"),
    ('10\t0\t11\n10\t0\t99\n', 2, r"unknown tail entity id 99"),
    ('', 1, r"empty file"),
    (b'10\t0\t11\n\xe4\xb8\n', 2, r"invalid UTF-8 byte 0xe4"),
])
def test_int_triple_errors(tmp_path, content, line, problem):
    entities = read_id_map(write(tmp_path, 'ent_ids', ENTITIES))
    path = write(tmp_path, 'triples', content)
    with raises_at(path, line, problem):
        read_int_triples(path, entities)


def test_int_triples_unknown_relation(tmp_path):
    relations = read_id_map(write(tmp_path, 'rel_ids', '5\tr5\n6\tr6\n'))
    path = write(tmp_path, 'triples', '1\t5\t2\n1\t6\t2\n1\t7\t2\n')
    with raises_at(path, 3, r"unknown relation id 7 \(not in .*rel_ids\)"):
        read_int_triples(path, relations=relations)


def test_int_triples_duplicates_are_removed_counted_and_logged(tmp_path, caplog):
    path = write(tmp_path, 'triples', '1\t0\t2\n3\t0\t4\n1\t0\t2\n\n1\t0\t2\n'
                                      '2\t0\t1\n')
    with caplog.at_level(logging.WARNING):
        r = read_int_triples(path)
    assert r.rows.tolist() == [[1, 0, 2], [3, 0, 4], [2, 0, 1]]
    assert r.line.tolist() == [1, 2, 6]
    assert r.num_duplicates == 2 and r.num_blank_lines == 1
    assert f"{path}: removed 2 duplicate triple line(s), the first at line 3" \
        in caplog.text


def test_int_triples_fast_and_slow_paths_agree(tmp_path):
    rows = torch.randint(0, 10**6, (500, 3))
    text = ''.join(f'{h}\t{r}\t{t}\n' for h, r, t in rows.tolist())
    fast = read_int_triples(write(tmp_path, 'fast', text))
    slow = read_int_triples(write(tmp_path, 'slow', '\n' + text))  # blank first line
    assert torch.equal(fast.rows, slow.rows)
    assert torch.equal(fast.line + 1, slow.line)
    assert fast.rows.dtype == torch.long


# ------------------------------------------------------------------ links --

@pytest.mark.parametrize('content, line, problem', [
    ('10\t20\n11\t21\n10\t20\n', 3, r"duplicate link \(10, 20\) \(first on "
                                    r"line 1\)"),
    ('10\t20\n10\t21\n', 2, r"KG1 entity 10 is linked to two different "
                            r"partners: 20 \(line 1\) and 21"),
    ('10\t20\n11\t21\n12\t20\n', 3, r"KG2 entity 20 is linked to two different "
                                    r"partners: 10 \(line 1\) and 12"),
    ('10\t20\n11\n', 2, r"malformed line: expected 2 tab-separated columns "
                        r"\(KG1 entity, KG2 entity\), got 1"),
    ('10\t20\n11\tx\n', 2, r"non-integer id 'x' in column 2 \(KG2 entity\)"),
    ('10\t20\n13\t21\n', 2, r"unknown KG1 entity id 13 \(not in .*ent_ids_1\)"),
    ('10\t20\n11\t23\n', 2, r"unknown KG2 entity id 23 \(not in .*ent_ids_2\)"),
    ('\n', 1, r"empty file"),
])
def test_int_link_errors(tmp_path, content, line, problem):
    kg1 = read_id_map(write(tmp_path, 'ent_ids_1', ENTITIES))
    kg2 = read_id_map(write(tmp_path, 'ent_ids_2', '20\tb\n21\tc\n22\td\n'))
    path = write(tmp_path, 'ref_ent_ids', content)
    with raises_at(path, line, problem):
        read_int_links(path, (kg1, kg2))


def test_the_earliest_link_problem_is_reported(tmp_path):
    path = write(tmp_path, 'links', '1\t2\n3\t4\n3\t5\n1\t2\n')
    with raises_at(path, 3, r"KG1 entity 3 is linked to two"):
        read_int_links(path)


def test_concat_links_checks_across_files(tmp_path):
    sup = read_int_links(write(tmp_path, 'sup_ent_ids', '1\t2\n3\t4\n'))
    ref = read_int_links(write(tmp_path, 'ref_ent_ids', '5\t6\n7\t2\n'))
    with raises_at(ref.path, 2, re.escape(f"KG2 entity 2 is linked to two "
                                          f"different partners: 1 ({sup.path}:1)"
                                          f" and 7")):
        concat_links([sup, ref])
    again = read_int_links(write(tmp_path, 'again', '9\t9\n3\t4\n'))
    with raises_at(again.path, 2, re.escape(f"duplicate link (3, 4) (first on "
                                            f"{sup.path}:2)")):
        concat_links([sup, again])
    ok = read_int_links(write(tmp_path, 'ok', '5\t6\n'))
    assert concat_links([sup, ok]).tolist() == [[1, 2], [3, 4], [5, 6]]


# ---------------------------------------------------------- string files --

@pytest.mark.parametrize('content, line, problem', [
    ('a\tr\tb\na\tr\n', 2, r"malformed line: expected 3"),
    ('a\tr\tb\na r b\n', 2, r"malformed line: .* got 1"),
    ('a\t\tb\n', 1, r"empty name in column 2 \(relation\)"),
    ('\ta\tb\n', 1, r"empty name in column 1 \(head\)"),
    (b'a\tr\tb\nc\tr\t\xfe\n', 2, r"invalid UTF-8 byte 0xfe"),
    ('a\tr\tb\nc\tr\x07\td\n', 2, r"stray control character U\+0007 at "
                                  r"column 4"),
    ('\r\n', 1, r"empty file"),
])
def test_str_triple_errors(tmp_path, content, line, problem):
    path = write(tmp_path, 'rel_triples_1', content)
    with raises_at(path, line, problem):
        read_str_triples(path)


def test_str_triples_keep_names_and_dedupe(tmp_path, caplog):
    path = write(tmp_path, 'kg', 'Barack Obama\tborn in\tHonolulu\n'
                                 'a\tr\tb\nBarack Obama\tborn in\tHonolulu\n'
                                 'b\tr\ta\n')
    with caplog.at_level(logging.WARNING):
        r = read_str_triples(path)
    assert r.rows == [('Barack Obama', 'born in', 'Honolulu'), ('a', 'r', 'b'),
                      ('b', 'r', 'a')]
    assert r.num_duplicates == 1 and r.line.tolist() == [1, 2, 4]
    assert 'removed 1 duplicate triple line(s), the first at line 3' in caplog.text


@pytest.mark.parametrize('content, line, problem', [
    ('a\tx\nb\ty\na\tx\n', 3, r"duplicate link \('a', 'x'\) \(first on line 1\)"),
    ('a\tx\na\ty\n', 2, r"KG1 entity 'a' is linked to two different partners: "
                        r"'x' \(line 1\) and 'y'"),
    ('a\tx\nb\tx\n', 2, r"KG2 entity 'x' is linked to two different partners"),
    ('a\tx\nq\ty\n', 2, r"unknown KG1 entity 'q' \(not in kg1.tsv\)"),
    ('a\tx\nb\tq\n', 2, r"unknown KG2 entity 'q' \(not in kg2.tsv\)"),
    ('a\tx\tz\n', 1, r"malformed line: expected 2"),
])
def test_str_link_errors(tmp_path, content, line, problem):
    path = write(tmp_path, 'ent_links', content)
    with raises_at(path, line, problem):
        read_str_links(path, ({'a', 'b'}, {'x', 'y'}), ('kg1.tsv', 'kg2.tsv'))


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_id_map(tmp_path / 'nope')


# ------------------------------------------------- files that cannot be read --

READERS = [read_id_map, read_int_triples, read_int_links, read_str_triples,
           read_str_links]


def one_line_value_error(read, path) -> str:
    with pytest.raises(ValueError) as info:
        read(path)
    message = str(info.value)
    assert '\n' not in message and str(path) in message
    return message


@pytest.mark.parametrize('read', READERS, ids=lambda f: f.__name__)
def test_a_folder_is_one_line_naming_it(tmp_path, read):
    message = one_line_value_error(read, tmp_path)
    assert message == f"{tmp_path}: a folder, not a file; give the file's path"


GZ = gzip.compress(b'0\t1\t2\n' * 500)


@pytest.mark.parametrize('content', [
    b'0\t1\t2\n',  # plain text named .gz
    GZ[:len(GZ) // 2],  # cut short
    GZ[:12] + bytes(b ^ 0xFF for b in GZ[12:40]) + GZ[40:],  # damaged
], ids=['not gzip', 'truncated', 'damaged'])
@pytest.mark.parametrize('read', READERS, ids=lambda f: f.__name__)
def test_a_bad_gz_is_one_line_naming_it(tmp_path, read, content):
    path = write(tmp_path, 'triples.gz', content)
    message = one_line_value_error(read, path)
    assert 'not a whole gzip file' in message and 'fetch it again' in message
