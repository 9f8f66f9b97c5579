"""mk-import: load dealer CSV exports into myKaarma's create-or-update Customer API."""

__version__ = "0.3.0"
