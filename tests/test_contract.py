"""What the README and the packaging promise is what the code does: the tables of statuses, exit codes and
error codes, the error codes the code writes, the dependency floors CI tests, one version, a lazy sandbox."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.version import Version

from importer import __version__
from importer.arguments import build_parser
from importer.error_codes import EXPLANATIONS, ErrorCode, explain, readme_table, warnings_table
from importer.prepare.schema import ROW_RULES
from importer.status import ExitCode, Status, StopCode

ROOT = Path(__file__).parent.parent
REPORTS = (ROOT / "docs" / "reports.md").read_text(encoding="utf-8")
QUICK_START = (
    "python3 -m venv .venv && .venv/bin/pip install -q . && .venv/bin/mk-import run "
    "sample_data/dealervault_sales.csv --mapping dealervault --sandbox",
    "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && .venv/bin/python -m pytest",
)


def _section(title: str) -> str:
    start = REPORTS.index(f"### {title}\n")
    end = REPORTS.find("\n#", start + 4)
    return REPORTS[start:end if end > 0 else None]


def _first_cells(section: str) -> list[str]:
    """The first cell of every body row of the section's tables, without backquotes."""
    cells = [line.split("|")[1].strip().strip("`") for line in section.splitlines() if line.startswith("| ")]
    return [c for c in cells if c not in ("status", "code")]


def test_reports_page_statuses_are_the_codes_statuses():
    assert _first_cells(_section("Statuses")) == [s.value for s in Status]


def test_reports_page_exit_codes_are_the_codes_exit_codes():
    assert [int(c) for c in _first_cells(_section("Exit codes"))] == [int(e) for e in ExitCode]
    epilog = build_parser().epilog or ""
    for code in ExitCode:
        assert re.search(rf"\b{int(code)}\b", epilog), f"exit code {int(code)} missing from --help"


def test_reports_page_error_code_table_is_generated_from_codes():
    assert readme_table() in _section("Error codes")
    assert _first_cells(_section("Error codes")) == [c.value for c in ErrorCode]


def test_reports_page_warning_table_is_generated_from_codes():
    assert warnings_table() in _section("Warnings")


def test_reports_page_names_every_stop_code():
    for code in StopCode:
        assert f"`{code.value}`" in REPORTS


def test_readme_is_short_starts_with_the_quick_start_and_links_every_docs_page():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = readme.splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; move detail into docs/"
    top = lines[:40]
    for command in QUICK_START:
        assert command in top, f"the Quick-start command is not in README.md's first 40 lines: {command}"
    pages = sorted((ROOT / "docs").glob("*.md"))
    assert pages
    for page in pages:
        assert f"](docs/{page.name})" in readme, f"README.md does not link docs/{page.name}"


def test_every_error_code_has_words():
    assert set(EXPLANATIONS) == set(ErrorCode)
    for code in ErrorCode:
        words = explain(code.value)
        assert words == EXPLANATIONS[code]
        assert words.meaning
        assert words.fix


def test_every_error_code_the_code_writes_is_a_member():
    # Row rules, and every upper-case literal on a line of the package that sets or tests an error code.
    written = set(ROW_RULES)
    for path in (ROOT / "importer").rglob("*.py"):
        if "sandbox" in path.parts or path.name == "error_codes.py":
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if "error_code" in line or "codes." in line:
                written.update(re.findall(r"\"([A-Z][A-Z_]{3,})\"", line))
    assert written
    assert written <= {c.value for c in ErrorCode}, written - {c.value for c in ErrorCode}


def _floors() -> dict[str, str]:
    """The floor of every runtime dependency."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    floors = {}
    for requirement in project["dependencies"]:
        found = re.fullmatch(r"([A-Za-z0-9_.-]+)>=([0-9][0-9A-Za-z.]*)", requirement.split(";")[0].strip())
        assert found, f"{requirement}: every dependency has a floor, and only a floor"
        floors[found.group(1).lower()] = found.group(2)
    return floors


def test_ci_tests_every_dependency_at_its_floor():
    pins = {}
    for line in (ROOT / ".ci" / "lowest-constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.strip().lower()] = version.strip()
    floors = _floors()
    assert set(pins) == set(floors)
    assert all(Version(pins[name]) == Version(floor) for name, floor in floors.items()), (pins, floors)
    assert "-c .ci/lowest-constraints.txt" in (ROOT / ".ci" / "run").read_text()


def test_the_version_is_written_once():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "version" not in project
    assert project["dynamic"] == ["version"]
    assert importlib.metadata.version("mk-import") == __version__


def test_only_the_commands_that_start_the_sandbox_import_it(write_csv, tmp_path):
    from tests.helpers import DV_HEADER, dv_row

    source = write_csv([DV_HEADER, dv_row("1")])
    script = ("import sys\nfrom importer.cli import main\nimport importer.pipeline\n"
              f"code = main(['validate', {str(source)!r}, '-m', 'dealervault', '--out', {str(tmp_path / 'out')!r}])\n"
              "print(code, sorted(m for m in sys.modules if m.startswith('importer.sandbox')))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT)
    assert done.stdout.strip() == "0 []"
