"""`python -m detectors`: the command line."""

from detectors.cli.main import main

if __name__ == "__main__":  # not when a worker process imports it (spawn)
    raise SystemExit(main())
