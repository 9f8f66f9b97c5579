"""`python -m importer` runs the command-line interface."""

from importer.cli import main

raise SystemExit(main())
