"""``python -m gancourse`` is the ``gancourse`` command."""
import sys

from gancourse.cli import main

sys.exit(main())
