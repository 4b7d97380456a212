"""`python -m gateway.cli ...`, as the `gateway` console script."""

from gateway.cli import main

raise SystemExit(main())
