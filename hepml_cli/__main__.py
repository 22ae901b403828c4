"""``python -m hepml_cli`` is the same as the ``hepml`` command."""

import sys

from hepml_cli.main import main

sys.exit(main())
