"""``python -m glacierd.cli``."""

import sys

from glacierd.cli import main

sys.exit(main())
