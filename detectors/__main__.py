"""`python -m detectors`: the command line."""

from detectors.cli import main

raise SystemExit(main())
