"""``python -m fvcore`` -> :func:`fvcore.cli.main`."""
import sys

from fvcore.cli import main

sys.exit(main())
