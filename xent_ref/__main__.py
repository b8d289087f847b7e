"""``python -m xent_ref`` is the same program as ``xent-ref``."""

import sys

from xent_ref.cli import main

sys.exit(main())
