"""`python -m peernet`: the command line."""

from .cli import main

raise SystemExit(main())
