"""report.html's "What changed": counts, examples old → new (escaped), a refused mass change, validate's forecast."""

from __future__ import annotations

from typing import Any

from importer.report.changes_view import changes_section


def test_counts_and_examples_with_every_value_escaped():
    summary = {"command": "run", "changes": {"created": 2, "phones": 1, "vehicles": 1, "name": 0}}
    phone = {"customer_key": "7", "key": "7", "old": "+13105550101 (cell)", "new": "<script>alert(1)</script>"}
    vehicle = {"customer_key": "8", "key": "8", "old": "(none)", "new": "Honda (1HGCM82633A004352)",
               "added": ["Honda (1HGCM82633A004352)"], "removed": []}
    examples: dict[str, list[dict[str, Any]]] = {"phones": [phone], "vehicles": [vehicle]}
    html = changes_section(summary, examples)
    assert 'data-change="created">2<' in html
    assert 'data-change="phones">1<' in html
    assert 'data-change="name"' not in html, "a category nothing changed in is not listed"
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "added Honda (1HGCM82633A004352)" in html


def test_a_refused_mass_change_says_how_to_send_it():
    summary = {"command": "run", "changes": {}, "max_changed": 25.0, "mass_change": {
        "known": 60, "over": [{"category": "name", "customers": 60, "share": 100.0, "examples": []}]}}
    html = changes_section(summary, {"name": [{"customer_key": "1", "key": "1", "old": "Ann Lee", "new": "Lee Ann"}]})
    assert "Nothing was sent" in html
    assert "name: 60 of 60 known customers (100.0%)" in html
    assert "--allow-mass-change" in html
    assert "25%" in html
    assert "name: 1 of 60 customers" in html


def test_validate_and_older_reports():
    assert "--state" in changes_section({"command": "validate"}, {})
    assert "would change" in changes_section({"command": "validate", "forecast": {"changes": {"phones": 3}}}, {})
    assert "earlier mk-import" in changes_section({"command": "run"}, {})
    assert "Nothing changed" in changes_section({"command": "run", "changes": {"created": 0}}, {})
