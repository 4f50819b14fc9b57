"""``python -m node_reporter``: ``netsched reporter``, through the same command line (which
turns SIGTERM and SIGINT into a clean stop before it imports anything heavy)."""

import sys

from netsched.cli import main

sys.exit(main(["reporter", *sys.argv[1:]]))
