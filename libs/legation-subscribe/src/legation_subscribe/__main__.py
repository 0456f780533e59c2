"""``python -m legation_subscribe``: the command line."""

import sys

from legation_subscribe.cli import main

sys.exit(main())
