"""Wires the stages: validate(config) and run_import(config) → a summary (also written as summary.json)."""

from __future__ import annotations

import datetime
import platform
import time
from pathlib import Path
from typing import Any

import pandas as pd

from importer import __version__
from importer.config import ValidateConfig
from importer.mapping import load_mapping
from importer.prepare import Prepared, prepare
from importer.reader import InputFile, open_input
from importer.records import encode_body
from importer.report import make_private_dir, write_errors, write_payloads, write_results, write_summary
from importer.status import Status, exit_code_for


def default_out_dir(root: Path = Path("mk-import-out")) -> Path:
    """./mk-import-out/<timestamp>/, with a suffix if a run in the same second took the name."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    candidate, n = root / stamp, 1
    while candidate.exists():
        n += 1
        candidate = root / f"{stamp}-{n}"
    return candidate


def _summary(command: str, source: InputFile, mapping: str, table: pd.DataFrame, prepared: Prepared,
             started: float, out: Path, **extra: Any) -> dict[str, Any]:
    counts = {str(k): int(v) for k, v in table["status"].value_counts().items()}
    duration = time.monotonic() - started
    valid = table["status"] != Status.INVALID
    summary: dict[str, Any] = {
        "command": command,
        "program": f"mk-import {__version__}",
        "python": platform.python_version(),
        "input": {"file": source.name, "sha256": source.sha256, "encoding": source.encoding,
                  "delimiter": source.delimiter},
        "mapping": mapping,
        "rows": len(table),
        "customers": int(table.loc[valid, "customer_key"].nunique()),
        "counts": counts,
        "requests_sent": 0,
        "retries": 0,
        "rate_limited": 0,
        "duration_s": round(duration, 3),
        "rows_per_s": round(len(table) / duration, 1) if duration > 0 else None,
        "problems": prepared.problems.most_common(),
        "reports": str(out),
        **extra,
    }
    summary["exit_code"] = int(exit_code_for(counts, stopped=summary.get("stopped", False),
                                             interrupted=summary.get("interrupted", False)))
    return summary


def validate(config: ValidateConfig) -> dict[str, Any]:
    """Read, map, validate and group; send nothing; write the reports a run would, with valid/invalid."""
    started = time.monotonic()
    mapping = load_mapping(config.prepare.mapping)
    with open_input(config.prepare.input) as source:
        prepared = prepare(source, mapping, config.prepare, keep_rows=config.payloads is not None)
        out = make_private_dir(config.out_dir or default_out_dir())
        if config.payloads is not None:
            write_payloads(config.payloads, (encode_body(r.body) for r in
                                             prepared.requests(mapping, config.prepare.validate_vin)))
        table = prepared.rows.assign(customer_uuid="", customer_id="")
        write_results(out / "results.csv", table)
        write_errors(out / "errors.csv", source, table, prepared.invalid_raw)
        summary = _summary("validate", source, mapping.name, table, prepared, started, out, api_url=None)
        write_summary(out / "summary.json", summary)
    return summary
