import sys

from torch_geometric_ea.cli import main

sys.exit(main())
