"""``python -m pap_rec_core.cli``: the same as ``pap-rec``."""

import sys

from pap_rec_core.cli import main

sys.exit(main())
