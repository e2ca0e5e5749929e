"""``python -m owui_meter`` is the ``owui-meter`` command."""

import sys

from .cli import main

sys.exit(main())
