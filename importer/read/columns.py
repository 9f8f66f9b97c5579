"""The names readers and reports agree on: the columns errors.csv adds to a row, and how header names match.

Kept apart from the reader (and from pandas) so that errors.xlsx's second process, which needs only these,
is ready in 50 ms instead of 330 (its start is on the path of a messy migration's validate).
"""

from __future__ import annotations


def header_key(name: str) -> str:
    """Header names match ignoring case and surrounding spaces (real exports carry "First Name ")."""
    return name.strip().casefold()


#: Columns that the error report adds after the original ones; a re-import drops them.
REPORT_COLUMNS = ("mk_source_row", "mk_status", "mk_error_code", "mk_error_message", "mk_warnings")
#: errors.csv's number of each row in the original export, through any number of fix loops (not in
#: REPORT_COLUMNS, which tell an error file: those written before it had none)
ORIGINAL_ROW_COLUMN = "mk_original_row"
#: An optional report column: the line as the export wrote it, for a row that could not be split into columns.
RAW_LINE_COLUMN = "mk_raw_line"
#: An optional report column: the row's customer key as the export had it, for a spreadsheet that rewrites the
#: key column (`0000082` saved as `82`) to be undone when the report is imported again.
EXPORT_KEY_COLUMN = "mk_customer_key"
#: What errors.csv puts before each mk_customer_key: a spreadsheet keeps a CSV cell that starts with it as text,
#: quote included (LibreOffice and Excel read `'0000082` as that text, where they read `0000082` as the number
#: 82). A re-import takes it off; errors.xlsx, whose cells are text, needs none.
KEY_QUOTE = "'"
#: Report columns on when a row's problem was first reported and by how many runs (absent from older reports).
SEEN_COLUMNS = ("mk_first_seen", "mk_times_seen")
