"""``python -m seqvae`` is the ``seqvae`` command."""

import sys

from .cli import main

sys.exit(main())
