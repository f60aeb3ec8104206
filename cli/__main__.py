"""``python -m cli`` runs the `tunegate` console script."""

import sys

from cli import main

sys.exit(main())
