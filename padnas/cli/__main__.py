"""``python -m padnas.cli`` (how torchrun starts every rank)."""

import sys

from padnas.cli import main

sys.exit(main())
