"""`python -m detectors`: the command line."""

from detectors.cli.main import main

raise SystemExit(main())
