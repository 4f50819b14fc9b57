"""``python -m node_reporter``: the same as ``netsched reporter``."""

import sys

from node_reporter.main import main

sys.exit(main())
