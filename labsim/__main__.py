"""`python -m labsim`: see `labsim.cli`."""

from .cli import main

raise SystemExit(main())
