"""Preparing: rows of text → mapped, normalized, checked rows → one request body per customer."""
