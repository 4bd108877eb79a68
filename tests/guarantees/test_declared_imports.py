"""Every third-party import belongs to a distribution that ``pyproject.toml`` declares.

A green CI on a machine with packages installed by hand proves nothing for a fresh machine; this
test does. It reads the imports of the package, the tests, the benchmarks and the notebooks' code
cells with :mod:`ast`, and maps each top-level module to its distributions with
:func:`importlib.metadata.packages_distributions`. The standard library and the project's own
modules are exempt.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

# tomllib is standard from Python 3.11 on; the check needs it, the package does not.
tomllib = pytest.importorskip("tomllib")

REPO = Path(__file__).resolve().parents[2]
SCANNED = ("unlearn_pl", "tests", "benchmarks", "notebooks")


def canonical(name: str) -> str:
    """A distribution name as PEP 503 normalizes it (``PyYAML`` → ``pyyaml``, ``a_b.c`` → ``a-b-c``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def declared_distributions(pyproject: Path) -> set[str]:
    """The distributions named in ``dependencies`` and every optional-dependency group."""
    project = tomllib.loads(pyproject.read_text())["project"]
    requirements = list(project.get("dependencies", []))
    for group in project.get("optional-dependencies", {}).values():
        requirements += group
    # A requirement's name ends at its first version, extra, marker or space character.
    return {canonical(re.split(r"[\s<>=!~;\[(]", r, maxsplit=1)[0]) for r in requirements}


def top_level_imports(source: str) -> set[str]:
    """The top-level module names that ``source`` imports (absolute imports only)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def notebook_source(path: Path) -> str:
    """The code cells of a notebook, without IPython's ``%magic`` and ``!shell`` lines."""
    cells = json.loads(path.read_text())["cells"]
    lines = []
    for cell in cells:
        if cell["cell_type"] == "code":
            source = "".join(cell["source"])
            lines += [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    return "\n".join(lines)


def project_sources() -> dict[Path, str]:
    """Every Python file and notebook of the scanned folders, with its source."""
    sources = {}
    for folder in SCANNED:
        for path in sorted((REPO / folder).rglob("*.py")):
            sources[path] = path.read_text()
        for path in sorted((REPO / folder).rglob("*.ipynb")):
            if ".ipynb_checkpoints" not in path.parts:
                sources[path] = notebook_source(path)
    return sources


def local_modules() -> set[str]:
    """Names that resolve to the project's own files (the package, test and benchmark helpers)."""
    names = {"unlearn_pl"}
    for folder in SCANNED:
        names |= {path.stem for path in (REPO / folder).rglob("*.py")}
    return names


def undeclared_imports(sources: dict[Path, str], declared: set[str]) -> dict[str, str]:
    """``{module: "where (why)"}`` for each import that no declared distribution provides."""
    exempt = set(sys.stdlib_module_names) | local_modules() | {"__future__"}
    providers = packages_distributions()
    problems: dict[str, str] = {}
    for path, source in sources.items():
        where = path.relative_to(REPO) if path.is_relative_to(REPO) else path
        for module in sorted(top_level_imports(source) - exempt):
            distributions = {canonical(d) for d in providers.get(module, [])}
            if not distributions:
                problems.setdefault(module, f"{where} (no installed distribution provides it)")
            elif not distributions & declared:
                problems.setdefault(module, f"{where} (provided by {sorted(distributions)}, none declared)")
    return problems


def test_every_import_is_declared() -> None:
    problems = undeclared_imports(project_sources(), declared_distributions(REPO / "pyproject.toml"))
    assert not problems, "imports that pyproject.toml does not declare:\n" + "\n".join(
        f"  {module}: {where}" for module, where in sorted(problems.items())
    )


def test_scan_finds_an_undeclared_import(tmp_path: Path) -> None:
    # The check must be able to fail: an import of an installed but undeclared distribution
    # (pytest, with an empty declaration set) is reported with its file.
    source = tmp_path / "probe.py"
    problems = undeclared_imports({source: "import pytest\nimport json\n"}, declared=set())
    assert set(problems) == {"pytest"}
    assert "none declared" in problems["pytest"]


def test_scan_reads_notebooks_and_requirement_syntax(tmp_path: Path) -> None:
    notebook = tmp_path / "n.ipynb"
    notebook.write_text(
        json.dumps({"cells": [{"cell_type": "code", "source": ["%matplotlib inline\n", "import pandas as pd\n"]}]})
    )
    assert top_level_imports(notebook_source(notebook)) == {"pandas"}
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[project]\ndependencies = ["jsonargparse[signatures]>=4", "PyYAML >=6", "torch; python_version>\'3\'"]\n'
        '[project.optional-dependencies]\ndev = ["Scikit_Learn~=1.5"]\n'
    )
    assert declared_distributions(pyproject) == {"jsonargparse", "pyyaml", "torch", "scikit-learn"}


@pytest.mark.parametrize("requirement", ["torch", "torchvision"])
def test_core_requirements_are_ranges_not_pins(requirement: str) -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    spec = next(
        r for r in project["dependencies"] if canonical(re.split(r"[\s<>=!~;\[]", r, maxsplit=1)[0]) == requirement
    )
    assert "==" not in spec and ">=" in spec, f"{spec!r} should declare a supported range"
