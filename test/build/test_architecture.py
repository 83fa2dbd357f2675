"""The layering of docs/architecture.md holds for every import, and family names live in the registry only.

Both checks read the source (ast), so imports inside functions and `if TYPE_CHECKING` blocks count as
much as those at the top of a file.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from hand_object_pose.models.registry import family_names

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "hand_object_pose"
ARCHITECTURE = REPO / "docs" / "architecture.md"
REGISTRY = PACKAGE / "models" / "registry.py"


def allowed_imports() -> dict[str, set[str]]:
    """{sub-package: the sub-packages it may import}, from the layering table of docs/architecture.md."""
    rows = {}
    for line in ARCHITECTURE.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and re.fullmatch(r"`\w+`", cells[0]):
            rows[cells[0].strip("`")] = set(re.findall(r"`(\w+)`", cells[2]))
    assert len(rows) >= 10, f"the layering table of {ARCHITECTURE} was not found"
    return rows


def sub_package(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


def project_imports(path: Path, package_dir: Path = PACKAGE):
    """(line, imported sub-package) for every import of a `hand_object_pose.X` module in `path`, a file
    under `package_dir` (the `hand_object_pose` folder)."""
    module = ["hand_object_pose", *path.relative_to(package_dir).with_suffix("").parts]
    package = module[:-1] if module[-1] != "__init__" else module[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                names = [".".join(base + ([node.module] if node.module else []))]
                if not node.module:  # `from . import x`: x may be a sub-package of base
                    names = [".".join(base + [alias.name]) for alias in node.names]
            else:
                names = [node.module or ""]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "hand_object_pose" and len(parts) > 1:
                yield node.lineno, parts[1]


def test_the_layering_table_names_every_sub_package():
    table = allowed_imports()
    present = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    present |= {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    assert present - {"msg"} <= set(table), f"sub-packages missing from the table: {present - set(table)}"


def test_every_import_follows_the_layering():
    table = allowed_imports()
    violations = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.parent == PACKAGE and path.stem == "__init__":
            continue
        own = sub_package(path)
        for line, target in project_imports(path):
            if target != own and target not in table.get(own, set()):
                violations.append(f"{path.relative_to(REPO)}:{line}: {own} -> {target}")
    assert not violations, "imports against docs/architecture.md's layering:\n" + "\n".join(violations)


def test_the_checker_sees_imports_inside_functions(tmp_path):
    """The walk is not limited to top-level statements (a forbidden import hidden in a function is found)."""
    package = tmp_path / "hand_object_pose"
    source = package / "geometry" / "probe.py"
    source.parent.mkdir(parents=True)
    source.write_text("def f():\n    from ..inference import estimator\n    import hand_object_pose.ros.x\n")
    assert list(project_imports(source, package)) == [(2, "inference"), (3, "ros")]


def family_name_comparisons(path: Path, names: set[str]):
    """(line, text) of comparisons (==, !=, in, not in, match-case) against a family-name string literal."""
    tree = ast.parse(path.read_text(), str(path))
    found = []

    def literal_names(node) -> set[str]:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return {node.value} & names
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            return set().union(*(literal_names(e) for e in node.elts)) if node.elts else set()
        return set()

    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(literal_names(o) for o in operands):
                found.append((node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.match_case) and isinstance(node.pattern, ast.MatchValue):
            if literal_names(node.pattern.value):
                found.append((node.pattern.lineno, ast.unparse(node.pattern)))
    return found


def test_family_names_are_compared_only_in_the_registry():
    names = set(family_names())
    assert {"kpt", "occrobnet", "a2j", "dma"} <= names
    offenders = [f"{path.relative_to(REPO)}:{line}: {text}"
                 for path in sorted(PACKAGE.rglob("*.py")) if path != REGISTRY
                 for line, text in family_name_comparisons(path, names)]
    assert not offenders, "family names switched on outside models/registry.py:\n" + "\n".join(offenders)


@pytest.mark.parametrize("snippet", ['if family == "kpt": pass', 'x = name in ("a2j", "dma")',
                                     'match family:\n    case "occrobnet":\n        pass'])
def test_the_family_name_check_finds_switches(tmp_path, snippet):
    path = tmp_path / "switch.py"
    path.write_text(snippet + "\n")
    assert family_name_comparisons(path, set(family_names()))
