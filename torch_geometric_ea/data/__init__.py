r"""KG pairs, their file formats, benchmark datasets and a synthetic
generator."""
from torch_geometric_ea.data.pair import (
    LINK,
    SPLITS,
    SRC,
    SRC_TRIPLE,
    TGT,
    TGT_TRIPLE,
    KGPair,
    check_links,
    entity_names,
    from_union,
    kg_pair,
    links,
    local_name,
    pair_to_homogeneous,
    resplit,
    split_links,
    to_union,
    union_to_local,
    unlinked_entities,
)
from torch_geometric_ea.data.io import (
    IdMap,
    Records,
    concat_links,
    read_id_map,
    read_int_links,
    read_int_triples,
    read_entity_names,
    read_str_links,
    read_str_triples,
)
from torch_geometric_ea.data.formats import (
    attach_names,
    from_tsv,
    read_bootea,
    read_gcn_align,
    read_openea,
    read_rsn,
)
from torch_geometric_ea.data.download import DatasetError
from torch_geometric_ea.data.datasets import (
    MIRROR_ENV,
    DBP15K,
    DWY100K,
    SRPRS,
    OpenEA,
)
from torch_geometric_ea.data.synthetic import synthetic_pair, two_views
from torch_geometric_ea.data.convert import from_pyg_dbp15k
from torch_geometric_ea.data.ogb import ogb_pair, read_ogb_kg
from torch_geometric_ea.data.names import (
    HybridNameEncoder,
    NGramNameEncoder,
    char_ngrams,
    encode_names,
    hashed_ngram_features,
    name_features,
    transliterator,
)
from torch_geometric_ea.data.registry import (
    DATASET_NAMES,
    DATASETS,
    DatasetInfo,
    dataset_pairs,
    get_pair,
)
from torch_geometric_ea.data.translated import (
    TRANSLATED_NAMES,
    read_translated_names,
    translated_names,
)

__all__ = [
    # translated names
    'TRANSLATED_NAMES',
    'read_translated_names',
    'translated_names',
    # pair
    'from_pyg_dbp15k',
    'SRC',
    'TGT',
    'SRC_TRIPLE',
    'TGT_TRIPLE',
    'LINK',
    'SPLITS',
    'kg_pair',
    'KGPair',
    'pair_to_homogeneous',
    'check_links',
    'split_links',
    'resplit',
    'links',
    'to_union',
    'from_union',
    'union_to_local',
    'unlinked_entities',
    'entity_names',
    'local_name',
    # io
    'IdMap',
    'Records',
    'read_id_map',
    'read_int_triples',
    'read_int_links',
    'read_str_triples',
    'read_str_links',
    'read_entity_names',
    'concat_links',
    # formats
    'read_gcn_align',
    'read_rsn',
    'read_bootea',
    'read_openea',
    'from_tsv',
    'attach_names',
    # datasets
    'MIRROR_ENV',
    'DatasetError',
    'DBP15K',
    'SRPRS',
    'DWY100K',
    'OpenEA',
    # registry
    'DATASETS',
    'DATASET_NAMES',
    'DatasetInfo',
    'dataset_pairs',
    'get_pair',
    # synthetic
    'synthetic_pair',
    'two_views',
    'ogb_pair',
    'read_ogb_kg',
    # names
    'NGramNameEncoder',
    'encode_names',
    'HybridNameEncoder',
    'name_features',
    'hashed_ngram_features',
    'char_ngrams',
    'transliterator',
]
