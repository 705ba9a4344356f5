import sys

from torch_geometric_ea.entry import main

sys.exit(main())
