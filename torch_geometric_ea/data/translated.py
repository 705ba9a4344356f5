r"""Machine-translated entity names of the DBP15K and SRPRS pairs, the name
input of RDGCN, Dual-AMN (Lit) and LightEA: per pair one JSON list of
``[id, [token, ...]]``, one entry per entity of both KGs, ids as in
``ent_ids_1`` and ``ent_ids_2``, published in the ``translated_ent_name/``
folder of the LightEA repository (MaoXinn/LightEA). Files are fetched
like the datasets' own (from ``TORCH_GEOMETRIC_EA_MIRROR/names/<file>``
when mirrored) and verified by SHA-256.
"""
import json
import os.path as osp
import unicodedata
from typing import Dict, List, Optional, Tuple

from torch_geometric.data import HeteroData

from torch_geometric_ea.data.download import DatasetError, fetch, verify
from torch_geometric_ea.data.pair import SRC, TGT

__all__ = ['TRANSLATED_NAMES', 'read_translated_names', 'translated_names',
           'pair_names']

_URL = ('https://raw.githubusercontent.com/MaoXinn/LightEA/'
        'dd8e2a3304c1da6c09c31a512bd455d6c24b1417/translated_ent_name/{}')

#: ``(dataset, pair)`` -> (file name, SHA-256) of its translated names.
TRANSLATED_NAMES = {
    ('dbp15k', 'zh_en'): ('dbp_zh_en.json', 'd187deebecf6406527b3a15757e93a78'
                                            '2ec7de25e05872e54c1e59d1949424fd'),
    ('dbp15k', 'ja_en'): ('dbp_ja_en.json', 'd5b6501885f5184d25bd0ebcab6e689c'
                                            'd295c8ac8efd1c7aef113ba56c72428e'),
    ('dbp15k', 'fr_en'): ('dbp_fr_en.json', '9a76ccc43353f9e8e27c214d6fef401d'
                                            'e866dbda751d39c176470adc5cce35c0'),
    ('srprs', 'en_fr'): ('srprs_fr_en.json', '320ba43f7b7281b1d1b7ae264466a193'
                                             'fd3fdff735adc5372a7b824c43cd7e06'),
    ('srprs', 'en_de'): ('srprs_de_en.json', 'af57f0cb9303dce9d17e75c7aa0c271f'
                                             '0309c85f0732946fb69adf6aec523082'),
}


def _entry_name(path: str, position: int, entry) -> str:
    r"""The name of one ``[id, [token, ...]]`` entry: its tokens joined by
    spaces, NFC-normalised (empty without tokens)."""
    if (not isinstance(entry, list) or len(entry) != 2 or type(entry[0]) is not int
            or entry[0] < 0 or not isinstance(entry[1], list)):
        raise ValueError(f"{path}: entry {position}: expected [id, [token, ...]] "
                         f"with a non-negative integer id, got {str(entry)[:80]}")
    if not all(isinstance(token, str) for token in entry[1]):
        raise ValueError(f"{path}: entry {position} (id {entry[0]}): every token "
                         f"must be a string")
    return unicodedata.normalize('NFC', ' '.join(entry[1]))


def read_translated_names(path: str) -> Dict[int, str]:
    r"""Reads a translated-names file: entity id -> name (its tokens joined
    by spaces, NFC-normalised; an entity listed without tokens has the
    empty name). Raises :class:`ValueError` with the file and the entry (or
    the line, for malformed JSON or UTF-8) on bad input, including
    duplicate ids."""
    try:
        with open(path, encoding='utf-8') as f:
            entries = json.load(f)
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: invalid UTF-8 at byte {e.start}") from None
    except OSError as e:  # a folder, no permission
        raise DatasetError(f"{path}: cannot read it ({e.strerror or e})") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{e.lineno}: invalid JSON: {e.msg}") from None
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a JSON list of [id, [token, ...]]")
    names: Dict[int, str] = {}
    for position, entry in enumerate(entries):
        name = _entry_name(path, position, entry)
        if entry[0] in names:
            raise ValueError(f"{path}: entry {position}: duplicate id {entry[0]}")
        names[entry[0]] = name
    return names


def translated_names(dataset: str, pair: str, folder: str) -> Optional[Dict[int, str]]:
    r"""The translated names of ``dataset``'s ``pair`` (``'dbp15k'``,
    ``'zh_en'``; see :data:`TRANSLATED_NAMES`), fetched into ``folder``
    once and verified by SHA-256 on every read (a changed file is removed
    and refused);
    :obj:`None` for a pair without published translations.

    Raises:
        DatasetError: the file cannot be fetched or differs from the
            published one; the message says that a dataset made with
            ``names='uri'`` does without it.
    """
    known = TRANSLATED_NAMES.get((dataset.lower(), pair))
    if known is None:
        return None
    file, digest = known
    path = osp.join(folder, file)
    try:
        if osp.isfile(path):
            verify(path, digest, path)
        else:
            fetch(_URL.format(file), osp.join('names', file), path, digest)
    except DatasetError as e:
        raise DatasetError(f"{e}; or do without the translated names: "
                           f"names='uri' (--names uri, or a model that uses "
                           f"no names)") from None
    return read_translated_names(path)


def pair_names(data: HeteroData, names: Dict[int, str]) -> Tuple[List[str], List[str]]:
    r"""The names of each KG's entities in ``data``'s order, looked up by
    the ids of the published files (``data[SRC].raw_id``, as read from
    ``ent_ids_1``/``ent_ids_2``); an entity without one gets the empty
    name."""
    return tuple([names.get(int(i), '') for i in data[node].raw_id.tolist()]
                 for node in (SRC, TGT))
