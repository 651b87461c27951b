"""The model layer never imports the precision layer (precision reads weights through it)."""

from __future__ import annotations

import ast
from pathlib import Path

import totowalk

PACKAGE_ROOT = Path(totowalk.__file__).resolve().parent
FORBIDDEN = ("totowalk.precision", "totowalk.loading")  # loading sits above precision


def imported_modules(source: str, module: str) -> list[str]:
    """Absolute names of everything ``source`` (the text of ``module``) imports, relative ones resolved."""
    package = module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module
            found.append(target)
            found += [f"{target}.{alias.name}" for alias in node.names]  # `from .. import precision`
    return found


def forbidden_imports(source: str, module: str) -> list[str]:
    return [name for name in imported_modules(source, module)
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)]


def test_the_scan_sees_relative_absolute_and_lazy_imports():
    module = "totowalk.model.checkpoint"
    assert forbidden_imports("from ..precision.gate import warn_if_not_gated", module) == ["totowalk.precision.gate",
                                                                                            "totowalk.precision.gate.warn_if_not_gated"]
    assert forbidden_imports("def f():\n    import totowalk.precision.convert\n", module) == ["totowalk.precision.convert"]
    assert forbidden_imports("from .. import precision", module) == ["totowalk.precision"]
    assert forbidden_imports("from .precision import x", module) == []  # totowalk.model.precision is the model's own
    assert forbidden_imports("from ..devices import resolve_device\nimport torch", module) == []


def test_no_module_of_the_model_layer_imports_the_precision_layer():
    files = sorted((PACKAGE_ROOT / "model").rglob("*.py"))
    assert len(files) > 5  # the scan really looked at the layer
    offenders = {}
    for path in files:
        parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        # a package's own name: relative imports resolve against the package itself
        source_module = module + ".__init__" if path.name == "__init__.py" else module
        bad = forbidden_imports(path.read_text(), source_module)
        if bad:
            offenders[str(path.relative_to(PACKAGE_ROOT))] = bad
    assert offenders == {}
