"""The core runs in a bare interpreter: no module under atlas/core imports Flask, SQLAlchemy, Redis or RQ."""
import ast
from pathlib import Path

import atlas.core

CORE = Path(atlas.core.__file__).parent
FORBIDDEN = ("flask", "sqlalchemy", "redis", "rq")


def imported_modules(path: Path) -> list[str]:
    """Absolute names of every module a file imports (relative imports resolved within atlas.core)."""
    package = "atlas." + ".".join(path.relative_to(CORE.parent).with_suffix("").parts[:-1])
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            names.append(base)
    return names


def is_forbidden(name: str) -> bool:
    root = name.split(".")[0]
    return root in FORBIDDEN or root.startswith("flask_") or (root == "atlas" and not name.startswith("atlas.core"))


def test_the_core_has_modules_to_check():
    assert {"definition.py", "validation.py"} <= {p.name for p in CORE.rglob("*.py")}


def test_no_core_module_imports_a_framework_or_the_app():
    offenders = {f"{path.relative_to(CORE.parent)}: {name}"
                 for path in CORE.rglob("*.py") for name in imported_modules(path) if is_forbidden(name)}

    assert offenders == set()


def test_the_guard_catches_what_it_should():
    assert all(is_forbidden(n) for n in ("flask", "flask_smorest", "sqlalchemy.orm", "redis", "rq.job",
                                         "atlas.models", "atlas.extensions", "atlas"))
    assert not any(is_forbidden(n) for n in ("atlas.core.definition", "jinja2", "json", "dataclasses", "rquery"))
