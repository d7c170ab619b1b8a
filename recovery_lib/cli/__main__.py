"""``python -m recovery_lib.cli``: the same as the ``recovery`` script."""

import sys

from recovery_lib.cli.main import main

sys.exit(main())
