"""Reporting: each row's outcome, and the files a run leaves (results, errors, summary, the page, the workbook)."""
