"""`python -m ecsjob_operator.cli`."""

import sys

from ecsjob_operator.cli.commands import main

sys.exit(main())
