"""Logging set-up: plain or JSON lines on stderr, and a filter that masks secrets in every record."""

from __future__ import annotations

import datetime
import json
import logging
import sys
from collections.abc import Iterable

#: Attributes every LogRecord has; anything else passed with `extra=` goes into the JSON line.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **{k: v for k, v in vars(record).items() if k not in _STANDARD},
        }
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info).splitlines()[-1]
        return json.dumps(line, default=str)


class RedactSecrets(logging.Filter):
    """Replaces every known secret in a record's message and arguments with `***`.

    Nothing in mk-import logs a secret; this guards what libraries might log at debug level.
    """

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def add(self, values: Iterable[str]) -> None:
        self.secrets.update(v for v in values if v and len(v) >= 4)

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            for secret in self.secrets:
                message = message.replace(secret, "***")
            record.msg, record.args = message, None
        return True


REDACT = RedactSecrets()


def setup_logging(verbosity: int, fmt: str) -> None:
    """`verbosity`: -1 warnings only, 0 progress and summaries, 1 debug detail."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(REDACT)
    handler.setFormatter(JsonFormatter() if fmt == "json" else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbosity > 0 else logging.WARNING)
    # Our own logger speaks at INFO by default; libraries stay at WARNING unless -v.
    logging.getLogger("mk_import").setLevel({-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG))
