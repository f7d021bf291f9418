"""``python -m cti`` is the same as the ``cti`` command."""

from cti.cli import main

raise SystemExit(main())
