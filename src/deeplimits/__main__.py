"""Entry point of ``python -m deeplimits``; the same as the ``deeplimits`` command."""

from deeplimits.cli import main

raise SystemExit(main())
