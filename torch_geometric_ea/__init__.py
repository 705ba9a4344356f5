r"""Knowledge-graph entity alignment for PyTorch Geometric."""
__version__ = '0.1.0'

from torch_geometric_ea.align import Aligner, Candidates  # noqa: E402

__all__ = ['__version__', 'Aligner', 'Candidates']
