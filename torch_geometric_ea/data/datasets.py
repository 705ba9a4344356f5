r"""Entity-alignment benchmarks as PyG :class:`InMemoryDataset` s.

Each dataset holds one KG pair (see :mod:`torch_geometric_ea.data.pair`),
read from the dataset's published files by :mod:`torch_geometric_ea.data.formats`.

``download()`` fetches the raw files from their public source and verifies
their SHA-256 digests where known (a file without a recorded digest has its
digest logged instead). To use a local copy instead of the network, set the
environment variable ``TORCH_GEOMETRIC_EA_MIRROR`` to a folder laid out as::

    dbp15k/<pair>/<file>            (pair: zh_en, ja_en, fr_en)
    srprs/<pair>_15k_V1/<file>      (pair: en_fr, en_de, dbp_wd, dbp_yg)
    dwy100k/<pair>/<file>           (pair: dbp_wd, dbp_yg)
    openea/<name>/<file>            (name: for example D_W_15K_V1)

Files are copied from there and verified the same way. Any failure to
fetch, verify or load a dataset raises
:class:`~torch_geometric_ea.data.DatasetError` (a :class:`ValueError`) in
one line: the file, the problem, what to do. Nothing in a dataset folder is
unpickled (see :mod:`torch_geometric_ea.data.pair_dataset`).
"""
import os
import os.path as osp
import shutil
import zipfile
from typing import Callable, List, Optional

from torch_geometric.data import HeteroData

from torch_geometric_ea.data.download import (
    MIRROR_ENV,
    DatasetError,
    download_file,
    note_unchecked,
    verify,
)
from torch_geometric_ea.data.formats import (
    read_bootea,
    read_gcn_align,
    read_openea,
    read_rsn,
)
from torch_geometric_ea.data.pair_dataset import (  # noqa: F401 (NAMES: importable here)
    NAMES,
    PAIR_FORMAT,
    PairDataset,
)

__all__ = ['MIRROR_ENV', 'DatasetError', 'DBP15K', 'SRPRS', 'DWY100K', 'OpenEA']

_GCN_ALIGN_FILES = ['ent_ids_1', 'ent_ids_2', 'triples_1', 'triples_2',
                    'ref_ent_ids']
_RSN_FILES = _GCN_ALIGN_FILES + ['rel_ids_1', 'rel_ids_2', 'sup_ent_ids']


class DBP15K(PairDataset):
    r"""The DBP15K benchmark from the `"Cross-lingual Entity Alignment via
    Joint Attribute-Preserving Embedding" <https://arxiv.org/abs/1708.05045>`_
    paper: Chinese, Japanese and French DBpedia each aligned to English
    DBpedia by 15,000 links, in the GCN-Align layout
    (:func:`~torch_geometric_ea.data.formats.read_gcn_align`).

    The files come from the GCN-Align repository at a fixed commit. The
    links are split at random: ``train_ratio`` of them for training, the
    rest for testing. Each ``(train_ratio, seed)`` is processed into its own
    file.

    Args:
        root (str): root directory; files go to ``root/<pair>/raw`` and
            ``root/<pair>/processed``.
        pair (str): :obj:`"zh_en"`, :obj:`"ja_en"` or :obj:`"fr_en"`.
        train_ratio (float): fraction of training links. (default: :obj:`0.3`)
        seed (int): seed of the split. (default: :obj:`0`)
        transform (callable, optional): applied on every access.
            (default: :obj:`None`)
        pre_transform (callable, optional): applied before saving.
            (default: :obj:`None`)
        force_reload (bool): whether to process again. (default: :obj:`False`)
        names (str): ``'translated'``: ``data[side].name`` holds the pair's
            published machine-translated names (see
            :mod:`~torch_geometric_ea.data.translated`); ``'uri'``: none,
            models name entities by their URIs, and the translated names
            are never fetched. (default: :obj:`'translated'`)
    """
    pairs = ('zh_en', 'ja_en', 'fr_en')
    url = ('https://raw.githubusercontent.com/1049451037/GCN-Align/'
           '2928e0a77b71dc470f778b7493efd738f5a2988b/data/{pair}/{file}')
    mirror = 'dbp15k/{pair}/{file}'
    translations = 'dbp15k'
    checksums = {
        ('zh_en', 'ent_ids_1'):
            '6d230db7922b58f6fe31fb75b478d5edcbb3cc7d3f76763b5af8232ff1940082',
        ('zh_en', 'ent_ids_2'):
            '68d7cccc5334881d386094df3e4f9af479eedf3161ed00ec4d06e0685d510f69',
        ('zh_en', 'ref_ent_ids'):
            'f6fc5f4b4c162eb21119697561b38686c48935222c11d07f08edc6efc5414507',
        ('zh_en', 'triples_1'):
            '5bd1df6af7b51a0bc1111809c980364455e42f2cc27946cd664861f0d95aafcb',
        ('zh_en', 'triples_2'):
            'bbab07e5d97247221d742a7ab4e14c20ffdb3125667b2bac2b317a714a07bc48',
        ('ja_en', 'ent_ids_1'):
            'c0163c3e4d1a1173fde4941c6c3752e659ff54c50149fbe8776e10c78077f1ad',
        ('ja_en', 'ent_ids_2'):
            'b6e8aa468861daa932f5bbb50c4743273418331839543de8889b13cc267a84a2',
        ('ja_en', 'ref_ent_ids'):
            '60edbd1d05d65e80cc81957eb6efa06fa53901a2a3042cfb0a115abccb2dff91',
        ('ja_en', 'triples_1'):
            '5c9396f4bc18f62f395bdea897228285be85f3590d89c336739877d7fc0eeae5',
        ('ja_en', 'triples_2'):
            'aeb66ed5e3dd1588f4d7e2cae50bc930794dbc29063f71365242c924ae27c2d6',
        ('fr_en', 'ent_ids_1'):
            '8c5c96ba6ef3b3a7791f2ee33e0a779049e4fee36aac77c813814964a23b4401',
        ('fr_en', 'ent_ids_2'):
            '9e14e2ae75c45d18fc1fd310657dfd2b84925e625ceb89f96b7775f6218e042c',
        ('fr_en', 'ref_ent_ids'):
            'ba1c4b07e67ab2581d6ca11038e9f527b08666fe5bedad3a95cb7f61579a3c64',
        ('fr_en', 'triples_1'):
            '318c50b356055ccfdbb98d6733ecb8213b3f0ee8f2222cd9733e2d6ef04f5718',
        ('fr_en', 'triples_2'):
            '38508926b2e93dae9bb9b066e308cbb11545e62fa93239b574b53f496aeb2f1c',
    }

    def __init__(self, root: str, pair: str, train_ratio: float = 0.3,
                 seed: int = 0, transform: Optional[Callable] = None,
                 pre_transform: Optional[Callable] = None,
                 force_reload: bool = False, names: str = 'translated'):
        self.train_ratio = train_ratio
        self.seed = seed
        super().__init__(root, pair, transform, pre_transform, force_reload, names)

    @property
    def raw_file_names(self) -> List[str]:
        r"""The GCN-Align files: ``ent_ids_1``, ``ent_ids_2``, ``triples_1``,
        ``triples_2`` and ``ref_ent_ids``."""
        return _GCN_ALIGN_FILES

    @property
    def processed_file_names(self) -> str:
        r"""One file per split,
        :obj:`"data_v<format>_train<train_ratio>_seed<seed>.pt"`."""
        return f'data_v{PAIR_FORMAT}_train{self.train_ratio}_seed{self.seed}.pt'

    def read(self) -> HeteroData:
        r"""Reads the raw files with
        :func:`~torch_geometric_ea.data.formats.read_gcn_align`, splitting the
        links at random by :obj:`train_ratio` and :obj:`seed`."""
        return read_gcn_align(self.raw_dir, train_ratio=self.train_ratio,
                              seed=self.seed)


class SRPRS(PairDataset):
    r"""The SRPRS benchmark from the `"Learning to Exploit Long-term
    Relational Dependencies in Knowledge Graphs"
    <https://arxiv.org/abs/1905.04914>`_ paper: 15,000-entity KGs sampled to
    keep real-world degree distributions, in the RSN layout
    (:func:`~torch_geometric_ea.data.formats.read_rsn`) with its fixed split
    (4,500 training, 10,500 test links).

    The files come from the Dual-AMN repository at a fixed commit
    (``data/<pair>_15k_V1/``). Checksums are recorded for :obj:`"en_fr"`
    only; for the other pairs the digest is logged.

    Args:
        root (str): root directory; files go to ``root/<pair>/raw`` and
            ``root/<pair>/processed``.
        pair (str): :obj:`"en_fr"`, :obj:`"en_de"`, :obj:`"dbp_wd"` or
            :obj:`"dbp_yg"`.
        transform (callable, optional): applied on every access.
            (default: :obj:`None`)
        pre_transform (callable, optional): applied before saving.
            (default: :obj:`None`)
        force_reload (bool): whether to process again. (default: :obj:`False`)
        names (str): ``'translated'``: ``data[side].name`` holds the pair's
            published machine-translated names (see
            :mod:`~torch_geometric_ea.data.translated`); ``'uri'``: none,
            models name entities by their URIs, and the translated names
            are never fetched. (default: :obj:`'translated'`)
    """
    pairs = ('en_fr', 'en_de', 'dbp_wd', 'dbp_yg')
    url = ('https://raw.githubusercontent.com/MaoXinn/Dual-AMN/'
           'b42a2e69d78e3378626ff20c9224c6cce40b8c01/data/{pair}_15k_V1/{file}')
    mirror = 'srprs/{pair}_15k_V1/{file}'
    translations = 'srprs'
    checksums = {
        ('en_fr', 'ent_ids_1'):
            'a762a21c0e31d580ed31be262e57a190c4ccb5f7ee85087145ee3c4d38745be6',
        ('en_fr', 'ent_ids_2'):
            'c11e024cf0851ab11cfb7936d930e4d1420f106f6f3064054c4d3b12c0a1281a',
        ('en_fr', 'ref_ent_ids'):
            '47f14527a95598bef4c84164a0692d3e8737dc0fa952b2ba30fd89f2fc68b5f2',
        ('en_fr', 'rel_ids_1'):
            '6fbc43a3025bd77d125a11a6078806a4a5d330db9ab51631ebeb435ca27906ab',
        ('en_fr', 'rel_ids_2'):
            'f0bf2eee347b7ccfd1709e48ab96e1b004ff180f1a6c3fe2b9e3605355fcd05d',
        ('en_fr', 'sup_ent_ids'):
            '248370650cf11046a49500068ef7d561a7cf6bec131f9651991ae11539a0d857',
        ('en_fr', 'triples_1'):
            '2fb0b1c49cc9f2887c9614dc973db4002e6bfb7e0a91d6eaa4f1e88bf71f72d1',
        ('en_fr', 'triples_2'):
            'f147b88abd9f46520c3319bd56f62f90cbdf9ddd8bafd31bc4580bd802f14f0b',
    }

    @property
    def raw_file_names(self) -> List[str]:
        r"""The RSN files: the GCN-Align files plus ``rel_ids_1``,
        ``rel_ids_2`` and ``sup_ent_ids``."""
        return _RSN_FILES

    def read(self) -> HeteroData:
        r"""Reads the raw files with
        :func:`~torch_geometric_ea.data.formats.read_rsn` (fixed split:
        ``sup_ent_ids`` for training, ``ref_ent_ids`` for testing)."""
        return read_rsn(self.raw_dir)


class DWY100K(PairDataset):
    r"""The DWY100K benchmark from the `"Bootstrapping Entity Alignment with
    Knowledge Graph Embedding" <https://www.ijcai.org/proceedings/2018/0611>`_
    paper: 100,000 DBpedia entities aligned to Wikidata (:obj:`"dbp_wd"`) or
    YAGO3 (:obj:`"dbp_yg"`), in the BootEA layout
    (:func:`~torch_geometric_ea.data.formats.read_bootea`) with its fixed
    30% / 70% split.

    The files come from the BootEA repository
    (``dataset/DWY100K/<pair>/mapping/0_3/``) at a fixed commit. No checksums
    are recorded: the digests are logged.

    Args:
        root (str): root directory; files go to ``root/<pair>/raw`` and
            ``root/<pair>/processed``.
        pair (str): :obj:`"dbp_wd"` or :obj:`"dbp_yg"`.
        transform (callable, optional): applied on every access.
            (default: :obj:`None`)
        pre_transform (callable, optional): applied before saving.
            (default: :obj:`None`)
        force_reload (bool): whether to process again. (default: :obj:`False`)
    """
    pairs = ('dbp_wd', 'dbp_yg')
    url = ('https://raw.githubusercontent.com/nju-websoft/BootEA/'
           '2538d9d0a69ebbbac65bb78b2150d14a7dbc642e/dataset/DWY100K/{pair}/'
           'mapping/0_3/{file}')
    mirror = 'dwy100k/{pair}/{file}'

    @property
    def raw_file_names(self) -> List[str]:
        r"""The BootEA files: ``ent_ids_1``, ``ent_ids_2``, ``triples_1``,
        ``triples_2``, ``ref_ent_ids``, ``rel_ids_1``, ``rel_ids_2`` and
        ``sup_ent_ids``."""
        return _RSN_FILES

    def read(self) -> HeteroData:
        r"""Reads the raw files with
        :func:`~torch_geometric_ea.data.formats.read_bootea` (fixed split:
        ``sup_ent_ids`` for training, ``ref_ent_ids`` for testing)."""
        return read_bootea(self.raw_dir)


class OpenEA(PairDataset):
    r"""A benchmark of the `"A Benchmarking Study of Embedding-based Entity
    Alignment for Knowledge Graphs" <https://arxiv.org/abs/2003.07743>`_
    (OpenEA) paper, in the OpenEA layout
    (:func:`~torch_geometric_ea.data.formats.read_openea`) with the split of
    one of its five folds (20% training, 10% validation, 70% test links).

    Without a mirror, ``download()`` fetches the OpenEA v2.0 archive from
    figshare (:attr:`archive_url`, about 250 MB, the "recommended" download
    of the OpenEA README, https://github.com/nju-websoft/OpenEA), keeps it
    as ``root/OpenEA_dataset_v2.0.zip`` for the other datasets and extracts
    this dataset's files. No checksum is recorded: the digests are logged.

    Args:
        root (str): root directory; files go to ``root/<name>/raw`` and
            ``root/<name>/processed``.
        name (str): ``<pair>_<size>_<version>`` with pair :obj:`"D_W"`,
            :obj:`"D_Y"`, :obj:`"EN_DE"` or :obj:`"EN_FR"`, size
            :obj:`"15K"` or :obj:`"100K"`, version :obj:`"V1"` or
            :obj:`"V2"`, for example :obj:`"D_W_15K_V1"`.
        fold (int): the fold, 1 to 5. (default: :obj:`1`)
        transform (callable, optional): applied on every access.
            (default: :obj:`None`)
        pre_transform (callable, optional): applied before saving.
            (default: :obj:`None`)
        force_reload (bool): whether to process again. (default: :obj:`False`)
    """
    pairs = tuple(f'{p}_{s}_{v}' for p in ('D_W', 'D_Y', 'EN_DE', 'EN_FR')
                  for s in ('15K', '100K') for v in ('V1', 'V2'))
    archive_url = 'https://ndownloader.figshare.com/files/34234391'
    archive_folder = 'OpenEA_dataset_v2.0'
    mirror = 'openea/{pair}/{file}'

    def __init__(self, root: str, name: str, fold: int = 1,
                 transform: Optional[Callable] = None,
                 pre_transform: Optional[Callable] = None,
                 force_reload: bool = False):
        if fold not in range(1, 6):
            raise DatasetError(f"OpenEA: fold must be 1 to 5, got {fold}")
        self.fold = fold
        super().__init__(root, name, transform, pre_transform, force_reload)

    @property
    def raw_file_names(self) -> List[str]:
        r"""``rel_triples_1``, ``rel_triples_2``, ``ent_links`` and the
        ``721_5fold/<fold>/{train,valid,test}_links`` files of the fold."""
        fold = f'721_5fold/{self.fold}'
        return ['rel_triples_1', 'rel_triples_2', 'ent_links',
                f'{fold}/train_links', f'{fold}/valid_links', f'{fold}/test_links']

    @property
    def processed_file_names(self) -> str:
        r"""One file per fold, :obj:`"data_v<format>_fold<fold>.pt"`."""
        return f'data_v{PAIR_FORMAT}_fold{self.fold}.pt'

    def download(self):
        r"""Copies the raw files from the mirror when
        ``TORCH_GEOMETRIC_EA_MIRROR`` is set; otherwise downloads the OpenEA
        archive to ``root`` (once, shared by all datasets) and extracts this
        dataset's raw files from it into :obj:`raw_dir`."""
        if os.environ.get(MIRROR_ENV):
            return super().download()
        archive = osp.join(self.root, f'{self.archive_folder}.zip')
        if not osp.isfile(archive):
            download_file(self.archive_url, archive, self.mirror.format(
                pair=self.pair, file=self.raw_file_names[0]))
            note_unchecked(repr(self), self.root, {
                osp.basename(archive): verify(archive, None, self.archive_url)})
        try:
            zf = zipfile.ZipFile(archive)
        except (zipfile.BadZipFile, OSError) as e:
            raise DatasetError(f"{archive}: not a zip archive ({e}); delete it "
                               f"to download it again") from None
        with zf:
            for file in self.raw_file_names:
                member = f'{self.archive_folder}/{self.pair}/{file}'
                dst = osp.join(self.raw_dir, file)
                os.makedirs(osp.dirname(dst), exist_ok=True)
                if member not in zf.namelist():
                    raise DatasetError(f"{archive}: missing member {member}; "
                                       f"delete the archive to download it again")
                with zf.open(member) as src, open(dst, 'wb') as out:
                    shutil.copyfileobj(src, out)

    def read(self) -> HeteroData:
        r"""Reads the raw files with
        :func:`~torch_geometric_ea.data.formats.read_openea`, using the split
        of :obj:`fold`."""
        return read_openea(self.raw_dir, fold=self.fold)
