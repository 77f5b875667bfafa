"""`python -m compiler` is the `blockgraph` command."""

import sys

from .cli import main

sys.exit(main())
