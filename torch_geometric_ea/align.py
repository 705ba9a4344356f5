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
from torch import Tensor
from torch_geometric.data import HeteroData

from torch_geometric_ea.data.names import NameEncoder, default_name_encoder, encode_names
from torch_geometric_ea.data.pair import (
    LINK,
    SRC,
    TGT,
    check_alignable,
    from_union,
    to_union,
    unlinked_entities,
)
from torch_geometric_ea.metrics import evaluate_alignment
from torch_geometric_ea.metrics.decoding import (
    CANDIDATE_DECODERS,
    check_decoder,
    decode_candidates,
)
from torch_geometric_ea.metrics.similarity import DEFAULT_CHUNK_SIZE
from torch_geometric_ea.model_file import (
    check_same_pair,
    model_state,
    pair_from_state,
    read_model_file,
    save_model_file,
)
from torch_geometric_ea.outputs import atomic_file
from torch_geometric_ea.precision import (
    Precision,
    check_precision,
    resolve_precision,
    using,
)
from torch_geometric_ea.train import get_model, resolve_device

__all__ = ['Aligner', 'Candidates', 'DECODERS', 'read_checkpoint']

#: The decoders of :meth:`Aligner.candidates` (see
#: :data:`~torch_geometric_ea.metrics.decoding.DECODERS`).
DECODERS = CANDIDATE_DECODERS
#: Deprecated name of :func:`~torch_geometric_ea.model_file.read_model_file`.
read_checkpoint = read_model_file


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
    the ``align`` and ``evaluate`` commands, a thin facade over the model
    registry (:func:`~torch_geometric_ea.train.get_model`), the training
    loop, the model file (:mod:`~torch_geometric_ea.model_file`) and the
    decoders (:mod:`~torch_geometric_ea.metrics.decoding`).

    Args:
        model_name (str): A registered model's name (``'dual-amn'``, ...).
        model (torch.nn.Module): The trained model.
        graph: The structure the model runs on (``model(graph)``).
        data (HeteroData): The KG pair.
        config: The model's config (dataclass or dict).
        init_args (dict): The arguments that rebuild the model.
        name_encoder (callable, optional): The name encoder of a run with
            names (``config.literal``); the default is
            :func:`~torch_geometric_ea.data.names.default_name_encoder`.
        metrics (dict, optional): The test metrics of training.
        replay (dict, optional): LightEA: the seeds and random state its
            features are recomputed from.
    """
    def __init__(self, model_name: str, model: torch.nn.Module, graph, data: HeteroData,
                 config, init_args: Dict, name_encoder: Optional[NameEncoder] = None,
                 metrics: Optional[Dict] = None, replay: Optional[Dict] = None):
        self.model_name, self.model, self.graph = model_name, model, graph
        self.spec = get_model(model_name)
        self.replay, self.data = replay, data
        self.config = config if isinstance(config, dict) else asdict(config)
        self.init_args, self.metrics = init_args, metrics or {}
        self.name_encoder = name_encoder
        self._names: Optional[Tensor] = None
        self._precision: Optional[Precision] = None

    @classmethod
    def fit(cls, data: HeteroData, model: str = 'dual-amn', config=None, *,
            progress: bool = True, callback: Optional[Callable] = None,
            name_encoder: Optional[NameEncoder] = None,
            device: Optional[str] = None, precision: Optional[str] = None,
            checkpoints=None) -> 'Aligner':
        r"""Trains ``model`` (default config: the paper's) on the pair's
        training (seed) links, on ``device`` when given (else the config's:
        CUDA when available, else the CPU). Bootstrapping rounds are always
        inductive here (every entity without a seed link may be paired): a
        user's own KGs have no test entities to pool, and links given for
        evaluation must not steer training. ``precision`` (one of
        :data:`~torch_geometric_ea.precision.PRECISIONS`) replaces the
        config's for the products of training and of every later call.
        ``checkpoints``
        (:class:`~torch_geometric_ea.train.checkpoint.Checkpoints`) writes
        checkpoints while training, or resumes from one."""
        spec = get_model(model)
        check_alignable(data, unlinked=True)  # before any work: else it fails after
        config = config or spec.config_class()
        if device is not None:
            config = replace(config, device=str(device))
        if precision is not None:
            config = replace(config, precision=precision)
        if hasattr(config, 'bootstrap'):  # never pool the links it evaluates on
            config = replace(config, bootstrap='inductive')
        result = spec.fit(data, config, progress=progress, callback=callback,
                          checkpoints=checkpoints, name_encoder=name_encoder)
        return cls(model, result.model, result.graph, data, config,
                   result.init_args, name_encoder, result.metrics, result.replay)

    def save(self, path: str):
        r"""Saves the model, its config and the KG pair to ``path``, with a
        digest and atomically (see :mod:`~torch_geometric_ea.model_file`): a
        failed write raises :class:`OSError` and leaves the file there as it
        was."""
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        state = model_state(self.model_name, self.model, self.config, self.init_args,
                            self.data, with_pair=True, metrics=self.metrics,
                            replay=self.replay)
        with atomic_file(path, 'wb') as f:
            save_model_file(f, state)

    @classmethod
    def load(cls, path: str, data: Optional[HeteroData] = None,
             name_encoder: Optional[NameEncoder] = None,
             device: Optional[str] = None,
             precision: Optional[str] = None) -> 'Aligner':
        r"""Loads a model file of :meth:`save` or of ``train --out`` (which
        holds no pair: give ``data``, the pair it was trained on) onto
        ``device`` (default: CUDA when available, else the CPU), whatever
        device it was saved from; its products in ``precision`` (default:
        the saved config's, ``'auto'`` for files without one)."""
        device = resolve_device(device)
        state = read_model_file(path)
        spec = get_model(state['model'])
        if data is None:
            if 'pair' not in state:
                raise ValueError(f"{path} holds no KG pair (a 'train --out' "
                                 f"checkpoint): give the pair it was trained on")
            data = pair_from_state(state['pair'])
        check_same_pair(path, state, data)
        model = spec.build_module(state['init_args'])
        graph = spec.build_graph(to_union(data), data,
                                 spec.config_from_dict(state['config']))
        try:
            model.load_state_dict(state['state_dict'])
        except RuntimeError as e:
            raise ValueError(f"{path} does not fit this KG pair: {e}") from e
        model.to(device).eval()
        config = dict(state['config'], device=str(device))
        if precision is not None:
            config['precision'] = check_precision(precision)
        return cls(state['model'], model, graph.to(device), data, config,
                   state['init_args'], name_encoder, state.get('metrics'),
                   state.get('replay'))

    @property
    def precision(self) -> Precision:
        r"""The precision of the products (embedding, scores): the
        config's ``precision`` on the model's device (``'auto'``: see
        :func:`~torch_geometric_ea.precision.resolve_precision`)."""
        if self._precision is None:
            self._precision = resolve_precision(
                self.config.get('precision', 'auto'),
                resolve_device(self.config.get('device')))
        return self._precision

    @property
    def literal(self) -> bool:
        r"""Whether the model ranks by structure plus names."""
        return bool(self.config.get('literal'))

    @torch.no_grad()
    def embed(self, literal: Optional[bool] = None) -> Tuple[Tensor, Tensor]:
        r"""The entity embeddings of each KG, :math:`L_2`-normalised, as
        the model ranks them (:meth:`~torch_geometric_ea.train.spec.AlignerSpec.embed`):
        with its names when it has them, unless ``literal=False`` (the
        structure alone); ``literal=True`` adds the names to a model
        trained without."""
        self.model.eval()
        with using(self.precision):
            return from_union(self.spec.embed(self, literal), self.data)

    def name_vectors(self, device) -> Tensor:
        r"""The pair's name vectors in union order, encoded once."""
        if self._names is None:
            encoder = self.name_encoder or default_name_encoder(
                self.data, self.config.get('name_dim', 300))
            self._names = encode_names(self.data, encoder, union=True).to(device)
        return self._names

    def evaluate(self, links: Optional[Tensor] = None, **kwargs) -> Dict:
        r"""Hits@k and MRR in both directions on ``links`` :math:`(2, L)`
        (local ids; default: the pair's test links), as
        :func:`~torch_geometric_ea.metrics.evaluate_alignment` with
        ``kwargs``."""
        if links is None:
            links = self.data[LINK].edge_label_index[:, self.data[LINK].test_mask]
        x_src, x_tgt = self.embed()
        with using(self.precision):
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
        r"""The ``k`` best targets of each source by CSLS, in row chunks,
        and the predicted partner ``target[:, 0]`` by ``decoder`` (see
        :func:`~torch_geometric_ea.metrics.decoding.decode_candidates`:
        ``'greedy'``, ``'mutual'`` or ``'hungarian'``). By default the
        sources and targets are the entities without a seed link
        (:meth:`unlinked`)."""
        decoder = check_decoder(decoder, CANDIDATE_DECODERS)
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
        with using(self.precision):
            keep, index, score, rank = decode_candidates(
                x, y, k, decoder, csls_k=csls_k, chunk_size=chunk_size,
                progress=progress)
        return Candidates(sources[keep], targets[index[keep]], score[keep], rank[keep])
