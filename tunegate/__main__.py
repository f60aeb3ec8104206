"""``python -m tunegate`` runs the CLI."""

import sys

from tunegate.cli import main

sys.exit(main())
