"""`python -m importer` runs the command-line interface."""

from importer.cli import entry

raise SystemExit(entry())
