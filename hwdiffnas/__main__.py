"""``python -m hwdiffnas``."""

import sys

from hwdiffnas.cli import main

sys.exit(main())
