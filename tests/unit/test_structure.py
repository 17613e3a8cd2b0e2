"""The tree keeps the shape README's "Code layout" describes: small modules, no import circle,
every module listed, and dependency contracts that do catch a wrong import."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 400


def product_modules() -> list[Path]:
    return sorted(p for p in (ROOT / "sidecar").rglob("*.py") if "__pycache__" not in p.parts)


def test_no_module_of_the_product_is_over_400_lines() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in product_modules()
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_no_import_circle_among_the_products_modules() -> None:
    # Imports inside functions count: a lazy import that closes a circle is still a circle.
    graph = grimp.build_graph("sidecar", exclude_type_checking_imports=True)
    circles = []
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            back = graph.find_shortest_chain(importer=imported, imported=module)
            if back is not None:
                circles.append((module, *back))
    assert circles == []


def layout_section() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme.split("## Code layout", 1)[1].split("\n## ", 1)[0]


def test_readme_code_layout_has_a_line_for_every_module_of_the_product_and_dev_tools() -> None:
    listed = set(re.findall(r"^\s*((?:sidecar|devtools)/\S+\.py)\b", layout_section(), re.M))
    modules = {
        str(p.relative_to(ROOT))
        for p in [*product_modules(), *(ROOT / "devtools").rglob("*.py")]
        if p.name != "__init__.py" and "__pycache__" not in p.parts
    }
    assert sorted(modules - listed) == []
    assert sorted(listed - modules) == []  # no line for a module that is gone


@pytest.mark.skipif(shutil.which("lint-imports", path=str(Path(sys.executable).parent)) is None,
                    reason="import-linter is installed by scripts/bootstrap.sh")
def test_the_contracts_fail_on_torch_imported_by_the_cluster_adapter(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "sidecar", tmp_path / "sidecar")
    shutil.copytree(ROOT / "devtools", tmp_path / "devtools")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    queries = tmp_path / "sidecar" / "cluster" / "queries.py"
    queries.write_text(queries.read_text() + "\nimport torch  # a wrong import\n")
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1, result.stdout[-2000:]
    assert "The pipeline and the storage adapters never load torch BROKEN" in result.stdout
    assert "sidecar.cluster.queries -> torch" in result.stdout


def test_settings_know_exactly_the_models_the_catalog_has() -> None:
    # settings.py validates SIDECAR_MODELS without loading torch, so it keeps its own list.
    from sidecar.app.settings import KNOWN_MODELS
    from sidecar.models.catalog import KIND_PATHS, kinds

    assert sorted(KNOWN_MODELS) == sorted(KIND_PATHS) == sorted(kinds())
