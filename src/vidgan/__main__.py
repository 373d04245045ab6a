"""`python -m vidgan ...` (and `torchrun -m vidgan train ...`)."""

import sys

from vidgan.cli import main

sys.exit(main())
