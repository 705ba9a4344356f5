r"""Aligning two KGs of one's own: train a model on the seed links, save it,
load it again, and predict the rest of the alignment.

.. code-block:: python

    from torch_geometric_ea import Aligner
    from torch_geometric_ea.data import from_tsv

    data = from_tsv('kg1.tsv', 'kg2.tsv', train_links='seeds.tsv')
    aligner = Aligner.fit(data)                 # Dual-AMN, the paper's settings
    aligner.save('model.pt')
    candidates = Aligner.load('model.pt').candidates(k=10)
    candidates.write_tsv('candidates.tsv', data)  # source, target, score, rank
"""
import csv
import os
from dataclasses import asdict, dataclass, replace
from typing import Callable, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import HeteroData
from tqdm.auto import tqdm

from torch_geometric_ea.data.names import (
    NameEncoder,
    default_name_encoder,
    encode_names,
    name_source,
)
from torch_geometric_ea.data.pair import (
    LINK,
    SRC,
    SRC_TRIPLE,
    TGT,
    TGT_TRIPLE,
    check_alignable,
    from_union,
    kg_pair,
    pair_fingerprint,
    to_union,
    unlinked_entities,
)
from torch_geometric_ea.metrics import evaluate_alignment, fuse_literal, hungarian_matching
from torch_geometric_ea.metrics.similarity import (
    DEFAULT_CHUNK_SIZE,
    _score_chunks,
    _similarity_pass,
)
from torch_geometric_ea.nn import (
    RDGCN,
    DualAMN,
    GCNAlign,
    LightEA,
    dual_amn_graph,
    gcn_align_adjacency,
    lightea_graph,
    rdgcn_dual_graph,
)
from torch_geometric_ea.nn.functional import unit_rows_
from torch_geometric_ea.outputs import atomic_file
from torch_geometric_ea.train import MODELS, resolve_device
from torch_geometric_ea.train.checkpoint import read_digested, write_atomic

__all__ = ['Aligner', 'Candidates', 'DECODERS', 'read_checkpoint']

DECODERS = ('greedy', 'mutual', 'hungarian')


def _model_and_graph(name: str, data: HeteroData, config: Dict,
                     init_args: Dict) -> Tuple[torch.nn.Module, object]:
    r"""Rebuilds a trained model's module (untrained weights) and the graph
    structure it runs on, as its training function built them."""
    union = to_union(data)
    if name == 'dual-amn':
        return DualAMN(**init_args), dual_amn_graph(
            union.edge_index, union.edge_type, union.num_nodes, union.num_relations)
    if name == 'gcn-align':
        from torch_geometric_ea.train.gcn_align import _union_features
        graph = gcn_align_adjacency(union.edge_index, union.edge_type,
                                    union.num_nodes, union.num_relations,
                                    config['min_weight'])
        if init_args.get('in_channels') is not None:
            graph.x = _union_features(data)
        return GCNAlign(**init_args), graph
    if name == 'rdgcn':
        return RDGCN(**init_args), rdgcn_dual_graph(
            union.edge_index, union.edge_type, union.num_nodes, union.num_relations)
    if name == 'lightea':
        return LightEA(**init_args), lightea_graph(
            union.edge_index, union.edge_type, union.num_nodes, union.num_relations)
    raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")


def _pair_state(data: HeteroData) -> Dict:
    r"""The KG pair as plain tensors, lists and strings (loadable with
    ``torch.load(weights_only=True)``)."""
    return dict(
        num_nodes=(data[SRC].num_nodes, data[TGT].num_nodes),
        edge_index=(data[SRC_TRIPLE].edge_index, data[TGT_TRIPLE].edge_index),
        edge_type=(data[SRC_TRIPLE].edge_type, data[TGT_TRIPLE].edge_type),
        num_relations=(data[SRC_TRIPLE].num_relations, data[TGT_TRIPLE].num_relations),
        link_index=data[LINK].edge_label_index,
        train_mask=data[LINK].train_mask, val_mask=data[LINK].val_mask,
        test_mask=data[LINK].test_mask,
        uri=(list(data[SRC].uri), list(data[TGT].uri)),
        relation_uri=(list(data[SRC_TRIPLE].relation_uri),
                      list(data[TGT_TRIPLE].relation_uri)),
        name=tuple(list(data[s].name) if 'name' in data[s] else None
                   for s in (SRC, TGT)),
        name_source=name_source(data),
        x=tuple(data[s].x if 'x' in data[s] else None for s in (SRC, TGT)))


CHECKPOINT_KEYS = ('model', 'state_dict', 'config', 'init_args')


def read_checkpoint(path: str) -> Dict:
    r"""The contents of a checkpoint of :meth:`Aligner.save` or of ``train
    --out``, read only when its digest matches (see
    :func:`~torch_geometric_ea.train.checkpoint.read_digested`), with
    ``torch.load(weights_only=True)``; anything else (garbage, a truncated,
    altered or empty file, one saved without a digest, another program's
    checkpoint) raises one :class:`ValueError` line naming the file."""
    state = read_digested(path, 'checkpoint', 'retrain or copy it again',
                          map_location='cpu')
    missing = [k for k in CHECKPOINT_KEYS
               if not isinstance(state, dict) or k not in state]
    if missing:
        raise ValueError(f"{path}: not a checkpoint of this package (it lacks "
                         f"{', '.join(missing)})")
    return state


def _check_pair(path: str, state: Dict, data: HeteroData):
    r"""Raises :class:`ValueError` when ``data`` is not the pair the
    checkpoint was trained on: its fingerprint differs, or (older
    checkpoints) its entity or relation counts do."""
    n = data[SRC].num_nodes + data[TGT].num_nodes
    r = data[SRC_TRIPLE].num_relations + data[TGT_TRIPLE].num_relations
    args = state['init_args']
    counts = [(what, args[key], have) for what, key, have in (
        ('entities', 'num_nodes', n), ('relations', 'num_relations', r))
        if key in args and args[key] != have]
    if counts:
        raise ValueError(f"{path} was trained on another KG pair: " + ', '.join(
            f"{want} {what} there, {have} here" for what, want, have in counts))
    kept = state.get('pair_fingerprint')
    if kept is not None and kept != pair_fingerprint(data):
        raise ValueError(f"{path} was trained on another KG pair (same sizes, "
                         f"other entities or triples)")


def _pair_from_state(state: Dict) -> HeteroData:
    state = dict(state)
    names, features = state.pop('name'), state.pop('x', (None, None))
    source = state.pop('name_source', None)
    data = kg_pair(**state)
    if source is not None and source != 'uri':
        data.name_source = source
    for side, name, x in zip((SRC, TGT), names, features):
        if name is not None:
            data[side].name = name
        if x is not None:
            data[side].x = x
    return data


@dataclass
class Candidates:
    r"""The :math:`k` best targets of each source entity, best first, by
    CSLS score (local entity ids of each KG); with a one-to-one decoder,
    ``target[:, 0]`` is the decoded partner and ``rank`` its place in the
    source's CSLS ranking.

    Attributes:
        source (torch.Tensor): Source entities :math:`(S)`.
        target (torch.Tensor): Their candidate targets :math:`(S, k)`.
        score (torch.Tensor): The candidates' CSLS scores :math:`(S, k)`.
        rank (torch.Tensor): The 1-based rank of each candidate in its
            source's CSLS ranking :math:`(S, k)`.
    """
    source: Tensor
    target: Tensor
    score: Tensor
    rank: Tensor

    def rows(self, data: HeteroData, top: Optional[int] = None) -> List[Tuple]:
        r"""``(source, target, score, rank)`` rows with the entities' names
        (URIs), the first ``top`` candidates of each source."""
        top = self.target.size(1) if top is None else top
        src, tgt = data[SRC].uri, data[TGT].uri
        out = []
        for i, s in enumerate(self.source.tolist()):
            for j in range(min(top, self.target.size(1))):
                t = int(self.target[i, j])
                if t >= 0:
                    out.append((src[s], tgt[t], float(self.score[i, j]),
                                int(self.rank[i, j])))
        return out

    def write_tsv(self, path: str, data: HeteroData, top: Optional[int] = None):
        r"""Writes :meth:`rows` as a TSV file with a header line."""
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with atomic_file(path) as f:
            writer = csv.writer(f, delimiter='\t', lineterminator='\n')
            writer.writerow(('source', 'target', 'score', 'rank'))
            for s, t, score, rank in self.rows(data, top):
                writer.writerow((s, t, f'{score:.6f}', rank))


class Aligner:
    r"""A trained alignment model bound to its KG pair: the Python API behind
    the ``align`` and ``evaluate`` commands.

    Args:
        model_name (str): A key of :data:`~torch_geometric_ea.train.MODELS`.
        model (torch.nn.Module): The trained model.
        graph: The structure the model runs on (``model(graph)``).
        data (HeteroData): The KG pair.
        config: The model's config (dataclass or dict).
        init_args (dict): The arguments that rebuild the model.
        name_encoder (callable, optional): The name encoder of a literal
            (``config.literal``) Dual-AMN; the default is
            :func:`~torch_geometric_ea.data.names.default_name_encoder`.
        metrics (dict, optional): The test metrics of training.
    """
    def __init__(self, model_name: str, model: torch.nn.Module, graph, data: HeteroData,
                 config, init_args: Dict, name_encoder: Optional[NameEncoder] = None,
                 metrics: Optional[Dict] = None, replay: Optional[Dict] = None):
        self.model_name, self.model, self.graph = model_name, model, graph
        self.replay = replay  # LightEA: the seeds and random state of its features
        self.data = data
        self.config = config if isinstance(config, dict) else asdict(config)
        self.init_args, self.metrics = init_args, metrics or {}
        self.name_encoder = name_encoder
        self._names: Optional[Tensor] = None

    @classmethod
    def fit(cls, data: HeteroData, model: str = 'dual-amn', config=None, *,
            progress: bool = True, callback: Optional[Callable] = None,
            name_encoder: Optional[NameEncoder] = None,
            device: Optional[str] = None, checkpoints=None) -> 'Aligner':
        r"""Trains ``model`` (default config: the paper's) on the pair's
        training (seed) links, on ``device`` when given (else the config's:
        CUDA when available, else the CPU). Bootstrapping rounds are always
        inductive here (every entity without a seed link may be paired): a
        user's own KGs have no test entities to pool, and links given for
        evaluation must not steer training. ``checkpoints``
        (:class:`~torch_geometric_ea.train.checkpoint.Checkpoints`) writes
        checkpoints while training, or resumes from one."""
        if model not in MODELS:
            raise ValueError(f"unknown model {model!r}; choose from {', '.join(MODELS)}")
        check_alignable(data, unlinked=True)  # before any work: else it fails after
        config_cls, train = MODELS[model]
        config = config or config_cls()
        if device is not None:
            config = replace(config, device=str(device))
        if hasattr(config, 'bootstrap'):  # never pool the links it evaluates on
            config = replace(config, bootstrap='inductive')
        kwargs = dict(name_encoder=name_encoder) if model == 'dual-amn' else {}
        result = train(data, config, progress=progress, callback=callback,
                       checkpoints=checkpoints, **kwargs)
        return cls(model, result.model, result.graph, data, config,
                   result.init_args, name_encoder, result.metrics, result.replay)

    def save(self, path: str):
        r"""Saves the model, its config and the KG pair to ``path``, with a
        digest and atomically (see
        :func:`~torch_geometric_ea.train.checkpoint.write_atomic`): a failed
        write raises :class:`OSError` and leaves the file there as it was."""
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        write_atomic(path, dict(
            model=self.model_name, state_dict=self.model.state_dict(),
            config=self.config, init_args=self.init_args, pair=_pair_state(self.data),
            pair_fingerprint=pair_fingerprint(self.data), metrics=self.metrics,
            replay=self.replay))

    @classmethod
    def load(cls, path: str, data: Optional[HeteroData] = None,
             name_encoder: Optional[NameEncoder] = None,
             device: Optional[str] = None) -> 'Aligner':
        r"""Loads a checkpoint of :meth:`save` or of ``train --out`` (which
        holds no pair: give ``data``, the pair it was trained on) onto
        ``device`` (default: CUDA when available, else the CPU), whatever
        device it was saved from."""
        device = resolve_device(device)
        state = read_checkpoint(path)
        if data is None:
            if 'pair' not in state:
                raise ValueError(f"{path} holds no KG pair (a 'train --out' "
                                 f"checkpoint): give the pair it was trained on")
            data = _pair_from_state(state['pair'])
        _check_pair(path, state, data)
        model, graph = _model_and_graph(state['model'], data, state['config'],
                                        state['init_args'])
        try:
            model.load_state_dict(state['state_dict'])
        except RuntimeError as e:
            raise ValueError(f"{path} does not fit this KG pair: {e}") from e
        model.to(device).eval()
        config = dict(state['config'], device=str(device))
        return cls(state['model'], model, graph.to(device), data, config,
                   state['init_args'], name_encoder, state.get('metrics'),
                   state.get('replay'))

    @property
    def literal(self) -> bool:
        r"""Whether the model ranks by structure plus names (Dual-AMN (Lit))."""
        return bool(self.config.get('literal'))

    @torch.no_grad()
    def embed(self, literal: Optional[bool] = None) -> Tuple[Tensor, Tensor]:
        r"""The entity embeddings of each KG, :math:`L_2`-normalised; for a
        literal Dual-AMN (or with ``literal=True``), fused with the name
        vectors (:func:`~torch_geometric_ea.metrics.fuse_literal`);
        ``literal=False`` gives the structure embeddings alone."""
        self.model.eval()
        if isinstance(self.model, LightEA):  # no weights: features from seeds
            out = unit_rows_(self._lightea_features(literal))  # its own matrix
        else:
            out = self.model(self.graph)
            if self.literal if literal is None else literal:
                out = fuse_literal(out, self._name_vectors(out.device),
                                   self.config.get('literal_weight', 1.0))
            out = F.normalize(out, dim=-1)
        x_src, x_tgt = from_union(out, self.data)
        return x_src, x_tgt

    def _name_vectors(self, device) -> Tensor:
        r"""The pair's name vectors in union order, encoded once."""
        if self._names is None:
            encoder = self.name_encoder or default_name_encoder(
                self.data, self.config.get('name_dim', 300))
            self._names = encode_names(self.data, encoder, union=True).to(device)
        return self._names

    def _lightea_features(self, literal: Optional[bool]) -> Tensor:
        r"""LightEA's features replayed from the seeds and random states
        of the run; with its name view unless ``literal=False``."""
        def replay(state, labels=None, out=None):
            generator = torch.Generator()
            generator.set_state(state['generator_state'])
            pairs = state['pairs'].to(self.graph.ent_ent.device)
            return self.model(self.graph, pairs, generator, labels=labels, out=out)

        if 'names' not in self.replay or literal is False:
            return replay(self.replay)
        # [structure || name view], each written into its columns (as trained)
        names = self._name_vectors(self.graph.ent_ent.device)
        width = self.model.num_features()
        out = names.new_empty(names.size(0),
                              width + self.model.num_features(names.size(1)))
        replay(self.replay['names'], names, out=out[:, width:])
        replay(self.replay, out=out[:, :width])
        return out

    def evaluate(self, links: Optional[Tensor] = None, **kwargs) -> Dict:
        r"""Hits@k and MRR in both directions on ``links`` :math:`(2, L)`
        (local ids; default: the pair's test links), as
        :func:`~torch_geometric_ea.metrics.evaluate_alignment` with
        ``kwargs``."""
        if links is None:
            links = self.data[LINK].edge_label_index[:, self.data[LINK].test_mask]
        x_src, x_tgt = self.embed()
        return evaluate_alignment(x_src, x_tgt, links.to(x_src.device), **kwargs)

    def unlinked(self) -> Tuple[Tensor, Tensor]:
        r"""The entities of each KG without a training (seed) link (see
        :func:`~torch_geometric_ea.data.pair.unlinked_entities`)."""
        return unlinked_entities(self.data)

    @torch.no_grad()
    def candidates(self, k: int = 10, sources: Optional[Tensor] = None,
                   targets: Optional[Tensor] = None, *, decoder: str = 'greedy',
                   csls_k: int = 10, chunk_size: int = DEFAULT_CHUNK_SIZE,
                   progress: bool = False) -> Candidates:
        r"""The ``k`` best targets of each source by CSLS, in row chunks.

        By default the sources and targets are the entities without a seed
        link (:meth:`unlinked`). ``decoder`` picks the predicted partner,
        ``target[:, 0]``: the best candidate (``'greedy'``), the best
        candidate only where the two are mutual best candidates
        (``'mutual'``, the paper's bootstrapping rule: fewer, surer pairs;
        the other sources are dropped), or a one-to-one matching of
        largest total cosine (``'hungarian'``, SciPy), whose partner need
        not be the best candidate (its ``rank`` says where it stands).
        """
        if decoder not in DECODERS:
            raise ValueError(f"'decoder' must be one of {DECODERS} (got {decoder!r})")
        free_src, free_tgt = self.unlinked()
        sources = free_src if sources is None else torch.as_tensor(sources).view(-1)
        targets = free_tgt if targets is None else torch.as_tensor(targets).view(-1)
        if sources.numel() == 0 or targets.numel() == 0:
            raise ValueError("no entities to align: every entity of a KG has a "
                             "seed link (or the given list is empty)")
        x_src, x_tgt = self.embed()
        sources, targets = sources.to(x_src.device), targets.to(x_src.device)
        x, y = x_src[sources], x_tgt[targets]
        del x_src, x_tgt  # the embeddings of every entity: only these rows count
        radii, _ = _similarity_pass(x, y, csls_k, chunk_size)
        k = min(k, y.size(0))
        score = x.new_empty(x.size(0), k)
        index = torch.empty(x.size(0), k, dtype=torch.long, device=x.device)
        best_of_target = y.new_full((y.size(0),), float('-inf'))
        best_source = torch.zeros(y.size(0), dtype=torch.long, device=x.device)
        chunks = _score_chunks(x, y, radii, chunk_size)
        total = -(-x.size(0) // chunk_size)
        for rows, scores in tqdm(chunks, total=total, desc='scoring', disable=not progress,
                                 leave=False):
            score[rows], index[rows] = scores.topk(k, dim=1)
            value, arg = scores.max(dim=0)
            better = value > best_of_target
            best_of_target[better] = value[better]
            best_source[better] = arg[better] + rows.start
        row_ids = torch.arange(x.size(0), device=x.device)
        rank = torch.arange(1, k + 1, device=x.device).expand(x.size(0), k).clone()
        keep = torch.ones(x.size(0), dtype=torch.bool, device=x.device)
        if decoder == 'mutual':
            keep = best_source[index[:, 0]] == row_ids
        elif decoder == 'hungarian':
            match = hungarian_matching(x, y)
            matched = match >= 0
            partner = match.clamp(min=0)
            partner_score = self._csls_of(x, y, radii, partner)
            above = torch.zeros(x.size(0), dtype=torch.long, device=x.device)
            for rows, scores in _score_chunks(x, y, radii, chunk_size):
                # above the partner by more than float rounding of the product
                above[rows] = (scores > partner_score[rows, None] + 1e-6).sum(1)
            # the partner first, then the best candidates other than it: the
            # first k columns of [partner | top-k] that are not a repeat
            take = torch.cat([torch.ones(x.size(0), 1, dtype=torch.bool,
                                         device=x.device),
                              index != partner[:, None]], 1)
            cols = take.long().argsort(dim=1, descending=True, stable=True)[:, :k]
            index = torch.cat([partner[:, None], index], 1).gather(1, cols)
            score = torch.cat([partner_score[:, None], score], 1).gather(1, cols)
            rank = torch.cat([above[:, None] + 1, rank], 1).gather(1, cols)
            keep = matched
        return Candidates(sources[keep], targets[index[keep]], score[keep], rank[keep])

    @staticmethod
    def _csls_of(x: Tensor, y: Tensor, radii, partner: Tensor) -> Tensor:
        cos = (x * y[partner]).sum(1)
        if radii is None:
            return cos
        r_x, r_y = radii
        return cos.mul(2).sub_(r_x).sub_(r_y[partner])
