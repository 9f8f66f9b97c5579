"""Reading: an export file (text, workbook or archive) → chunks of text rows with their row numbers."""
