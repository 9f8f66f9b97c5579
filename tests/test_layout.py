"""The layout shows the design: stages in order, each importing only from itself, earlier stages and the base
modules; no import cycle; small modules; a short top level (docs/development.md)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parent.parent
PACKAGE = ROOT / "importer"

#: The base modules every stage may use; they import no stage.
BASE = ("config", "errors", "status", "error_codes", "logs", "memory")
#: Stages in the order data flows through them: a stage imports from the ones before it, never after.
STAGES = ("read", "prepare", "send", "report", "onboard", "ops")
#: Modules that wire the stages together: they may import any of them.
WIRING = ("pipeline", "cli", "arguments", "__main__", "__init__")


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every `importer...` module this file imports (at run time or in functions), by its dotted name."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("importer"):
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if (ROOT / candidate.replace(".", "/")).with_suffix(".py").exists()
                          else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("importer"))
    return found


def _graph() -> dict[str, set[str]]:
    return {_module(p): _imports(p) for p in PACKAGE.rglob("*.py")}


def _place(module: str) -> tuple[str, int]:
    """(kind, rank): base modules rank lowest, then the stages in order, then the sandbox and the wiring."""
    parts = module.split(".")
    if len(parts) == 1:
        return "package", 0
    head = parts[1]
    if head in BASE:
        return "base", 0
    if head in STAGES:
        return "stage", 1 + STAGES.index(head)
    if head == "sandbox":
        return "sandbox", len(STAGES) + 1
    if head == "mappings":
        return "data", 0
    assert head in WIRING, f"{module}: a top-level module that is neither base, stage nor wiring"
    return "wiring", len(STAGES) + 2


def test_no_stage_imports_a_later_one_and_base_modules_import_no_stage():
    wrong = []
    for module, imports in _graph().items():
        kind, rank = _place(module)
        for imported in imports:
            other_kind, other_rank = _place(imported)
            if imported == "importer" or other_kind in ("base", "data"):
                continue
            if kind == "base" or (kind in ("stage", "sandbox") and other_kind == "wiring") or other_rank > rank:
                wrong.append(f"{module} imports {imported}")
    assert not wrong, wrong


def test_the_sandbox_uses_only_base_modules_and_the_vin_rules():
    for module, imports in _graph().items():
        if module.startswith("importer.sandbox"):
            assert {i for i in imports if not i.startswith("importer.sandbox") and _place(i)[0] != "base"} \
                <= {"importer.prepare.vin"}, module


def test_no_import_cycle():
    graph = _graph()
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, " → ".join((*path, module))
        if module in done:
            return
        for imported in graph.get(module, ()):
            visit(imported, (*path, module))
        done.add(module)

    for module in graph:
        visit(module, ())


def test_modules_are_small_and_the_top_level_is_short():
    assert len(list(PACKAGE.glob("*.py"))) <= 12
    assert sum(1 for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists() and p.name in STAGES) >= 4
    long = {str(p.relative_to(ROOT)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 600}
    assert not long, long


def test_development_page_names_every_subpackage_and_module():
    page = (ROOT / "docs" / "development.md").read_text(encoding="utf-8")
    for path in PACKAGE.rglob("*.py"):
        if path.name not in ("__init__.py", "__main__.py"):
            assert f"`{path.stem}`" in page or f"{path.stem}.py" in page, path
    for folder in [*STAGES, "sandbox"]:
        assert f"{folder}/" in page, folder
