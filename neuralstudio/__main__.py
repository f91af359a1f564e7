"""``python -m neuralstudio`` is the ``neuralstudio`` command."""

import sys

from neuralstudio.cli import main

sys.exit(main())
