"""``python -m asyncjax``: the asyncjax command."""

import sys

from asyncjax.cli import main

sys.exit(main())
