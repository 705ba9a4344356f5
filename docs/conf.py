# Sphinx configuration: the API reference from the docstrings, and the
# tutorials (whose code the test suite runs, tests/test_docs.py).
import os
import sys

sys.path.insert(0, os.path.abspath('..'))

project = 'torch_geometric_ea'
author = 'torch_geometric_ea developers'
copyright = '2026, torch_geometric_ea developers'
from torch_geometric_ea import __version__ as release  # noqa: E402

extensions = [
    'sphinx.ext.autodoc',
    'sphinx.ext.napoleon',
    'sphinx.ext.mathjax',
    'sphinx.ext.viewcode',
]
autodoc_member_order = 'bysource'
autodoc_default_options = {'members': True, 'undoc-members': False}
autodoc_typehints = 'none'  # the docstrings name the types
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True
napoleon_custom_sections = [('Shapes', 'params_style')]
exclude_patterns = ['_build', 'index.md']
html_theme = 'furo'
html_static_path = []
