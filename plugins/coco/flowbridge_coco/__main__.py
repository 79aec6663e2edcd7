"""``python -m flowbridge_coco``: the ``flowbridge-coco`` command."""

import sys

from .cli import main

sys.exit(main())
