r"""What a model declares to be trained, saved, reloaded, sized and scaled:
:class:`AlignerSpec`. A model is one subclass, registered with
:func:`~torch_geometric_ea.train.registry.register_model`; its class-level
methods describe the model (graph, module, memory, settings), its
instance is one run's trainer, whose hooks the one training loop
(:class:`~torch_geometric_ea.train.loop.Loop`) calls."""
from dataclasses import fields
from typing import Any, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Data, HeteroData

__all__ = ['AlignerSpec']


class AlignerSpec:
    r"""One aligner. Subclasses set :attr:`name`, :attr:`config_class` and
    :attr:`module_class` and implement :meth:`build_graph`,
    :meth:`estimate_memory` and the trainer's hooks (:meth:`run_epoch`
    and/or :meth:`begin_round`, :meth:`evaluate`); the rest has defaults.

    Class-level (the model):

    - :meth:`build_graph` turns the pair's union graph into the fixed
      structure the module runs on (``module(graph)`` embeds every entity);
    - :meth:`build_module` rebuilds the module from its saved arguments;
    - :meth:`embed` gives a trained model's entity embeddings
      (:class:`~torch_geometric_ea.Aligner`);
    - :meth:`estimate_memory`, :meth:`fitting_steps`,
      :meth:`scale_settings`, :meth:`keeps_freed_memory`,
      :meth:`huge_pages`: the memory terms and the size-aware settings.

    Instance-level (one run; ``loop`` is the running
    :class:`~torch_geometric_ea.train.loop.Loop`, whose ``train_pairs``,
    ``test_pairs``, ``graph``, ``device``, ``result`` and ``timed(key)``
    the hooks use): ``__init__(loop, **options)`` builds the module and
    its optimiser and sets :attr:`model`, :attr:`init_args` and
    :attr:`protocol`; :meth:`rounds` and :meth:`epochs` say how long the
    run is; :meth:`begin_round` (a feature round), :meth:`run_epoch` (the
    training steps of one epoch, calling ``loop.step()`` after each),
    :meth:`evaluate`, :meth:`propose` (bootstrapping), :meth:`finish`,
    :meth:`state_dict` / :meth:`load_state_dict` (what a checkpoint keeps
    beyond the loop's own state).
    """
    #: The registry name (``--model``).
    name: str = ''
    #: The config dataclass (its defaults: the paper's settings).
    config_class: type = None
    #: The module class; ``module_class(**init_args)`` rebuilds it.
    module_class: type = None
    #: How far a heap that keeps freed memory grows past the live tensors
    #: of the fullest repeated phase (measured; see
    #: :mod:`~torch_geometric_ea.train.memory`).
    heap_growth: float = 1.0
    #: Whether ``torchrun`` may run it on several processes.
    distributed: bool = False
    #: Whether it has relation embeddings to rank (``analyze``).
    relation_importance: bool = False

    # ----------------------------------------------------------- the model
    @classmethod
    def build_graph(cls, union: Data, data: HeteroData, config) -> Data:
        r"""The fixed structure the module runs on, from the pair's union
        graph (:func:`~torch_geometric_ea.data.pair.to_union`)."""
        raise NotImplementedError

    @classmethod
    def build_module(cls, init_args: Dict) -> torch.nn.Module:
        r"""The module, untrained, from the arguments a run saved."""
        return cls.module_class(**init_args)

    @classmethod
    def config_from_dict(cls, config: Dict) -> Any:
        r"""The config a model file saved (unknown keys of older files are
        dropped)."""
        known = {f.name for f in fields(cls.config_class)}
        return cls.config_class(**{k: v for k, v in config.items() if k in known})

    @classmethod
    def has_option(cls, name: str) -> bool:
        r"""Whether the config has the field ``name`` (e.g. ``'literal'``)."""
        return any(f.name == name for f in fields(cls.config_class))

    @classmethod
    def uses_names(cls, config) -> bool:
        r"""Whether a run with ``config`` reads the entities' names (a
        pair's names are loaded only then)."""
        return bool(getattr(config, 'literal', False))

    @classmethod
    @torch.no_grad()
    def embed(cls, aligner, literal: Optional[bool] = None) -> Tensor:
        r"""A trained model's union embeddings, :math:`L_2`-normalised;
        with names (``literal``, default: the config's), fused with the
        name vectors (:func:`~torch_geometric_ea.metrics.fuse_literal`)."""
        from torch_geometric_ea.metrics import fuse_literal
        out = aligner.model(aligner.graph)
        if aligner.literal if literal is None else literal:
            out = fuse_literal(out, aligner.name_vectors(out.device),
                               aligner.config.get('literal_weight', 1.0))
        return F.normalize(out, dim=-1)

    # ------------------------------------------------- memory and settings
    @classmethod
    def estimate_memory(cls, size, config, growth: float, candidates: bool):
        r"""The estimated peak of a CPU run
        (:class:`~torch_geometric_ea.train.memory.MemoryEstimate`) on a pair
        of ``size`` with ``config``; ``growth``: the heap growth to apply;
        ``candidates``: the run also ranks every unlinked entity's
        candidates (``align``)."""
        raise NotImplementedError

    @classmethod
    def fitting_steps(cls, size, config) -> List[Dict[str, Any]]:
        r"""Changes to try, in order, when the estimate is above a limit:
        the cheapest in accuracy first (each on top of the previous)."""
        return []

    @classmethod
    def scale_settings(cls, data: HeteroData) -> Dict[str, Any]:
        r"""The config fields to change for the size of ``data`` (empty:
        the paper's settings fit)."""
        return {}

    @classmethod
    def keeps_freed_memory(cls, data: HeteroData) -> bool:
        r"""Whether a CPU run on ``data`` should keep freed memory
        (:func:`~torch_geometric_ea.runtime.keep_freed_memory`)."""
        return True

    @classmethod
    def huge_pages(cls, config) -> bool:
        r"""Whether a CPU run with ``config`` runs better with transparent
        huge pages."""
        return True

    @classmethod
    def fit(cls, data: HeteroData, config=None, *, progress: bool = True,
            callback=None, checkpoints=None, **options):
        r"""Trains the model on ``data`` (see
        :func:`~torch_geometric_ea.train.loop.fit`)."""
        from torch_geometric_ea.train.loop import fit
        return fit(cls, data, config, progress=progress, callback=callback,
                   checkpoints=checkpoints, **options)

    # ------------------------------------------------- one run: the hooks
    def __init__(self, loop, **options):
        self.loop = loop
        self.config = loop.config
        #: Set by subclasses: the module, its arguments, its optimiser (if
        #: it trains) and how it ranks (``protocol['ranking']``).
        self.model: torch.nn.Module = None
        self.init_args: Dict = {}
        self.optimizer: Optional[torch.optim.Optimizer] = None
        self.protocol: Dict[str, Any] = {}

    def rounds(self) -> int:
        r"""Rounds of the run (more than one: bootstrapping between them)."""
        return 1

    def epochs(self, round_: int) -> int:
        r"""Training epochs of round ``round_``: the config's ``epochs``
        (none: a feature round)."""
        return getattr(self.config, 'epochs', 0)

    def eval_every(self) -> Optional[int]:
        r"""Evaluate also every that many epochs inside a round: the
        config's ``eval_every`` (none or 0: at the round's end only)."""
        return getattr(self.config, 'eval_every', 0) or None

    def begin_round(self, round_: int):
        r"""Work at the start of a round, before its epochs."""

    def run_epoch(self, epoch: int) -> float:
        r"""Trains one epoch; returns its loss. A model whose epochs are
        long may call ``self.loop.step()`` after each optimiser step, so
        that a stop request is served there; it must then keep the epoch's
        progress in :meth:`state_dict` and continue from it (a stop is
        otherwise served at the epoch's end)."""
        raise NotImplementedError

    def evaluate(self, pool: Optional[Tuple[Tensor, Tensor]]) -> Dict:
        r"""The metrics on the test links (keys with ``'->'`` are the
        directions'; others go to the round's history entry). ``pool``:
        the entities bootstrapping may pair next (:obj:`None` after the
        last round)."""
        raise NotImplementedError

    def propose(self, pool_src: Tensor, pool_tgt: Tensor) -> Tuple[Tensor, Tensor]:
        r"""Bootstrapping: positions in ``pool_src`` and ``pool_tgt`` of
        the new pairs (called after :meth:`evaluate` with that pool)."""
        raise NotImplementedError

    def finish(self):
        r"""Work after the last round (e.g. further decodings)."""

    def state_dict(self) -> Dict:
        r"""What a checkpoint keeps of this run beyond the loop's state:
        the module's and the optimiser's states (extend it with what the
        model's steps keep, e.g. negatives)."""
        state = dict(model=self.model.state_dict())
        if self.optimizer is not None:
            state['optimizer'] = self.optimizer.state_dict()
        return state

    def load_state_dict(self, state: Dict):
        r"""Restores :meth:`state_dict`."""
        self.model.load_state_dict(state['model'])
        if self.optimizer is not None:
            self.optimizer.load_state_dict(state['optimizer'])

    def where(self) -> str:
        r"""Where the run stands, in words (for a stop's message)."""
        at = self.loop.at
        return f"round {at['round']}, epoch {at['epoch']}"
