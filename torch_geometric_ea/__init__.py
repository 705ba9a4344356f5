r"""Knowledge-graph entity alignment for PyTorch Geometric."""
__version__ = '0.1.0'

__all__ = ['__version__', 'Aligner', 'Candidates']


def __getattr__(name):
    # The API class on first use: importing the package stays cheap (no
    # torch_geometric import until one is needed).
    if name in ('Aligner', 'Candidates'):
        from torch_geometric_ea import align
        return getattr(align, name)
    raise AttributeError(f"module 'torch_geometric_ea' has no attribute {name!r}")
