"""The package's floors: no module imports one on a higher floor, and no import circle.

Floors, bottom first (a module may import its own floor and the floors below it):

    0  _version _native errors devices options aggregation provenance   no totowalk imports above
    1  data model kernels scoring                                         prices, the network, kernels, scores
    2  precision                                                          reduced weights (reads model)
    3  loading kronos engine                                              a model ready to use, forecasts
    4  backtest                                                           walk-forward backtests
    5  quality skill compat benchmarks                                    whole runs judged or embedded
    6  commands cli _build_info, the package face                         what a user calls

Inside ``backtest`` the stages stand in the order data flows, and the same rule holds among them:
``inputs < forecast < stats < profiles < report < run``. (Statistics are pure functions of
return series, so the profiles may compute with them; nothing of them knows a profile.)

Every import counts, lazy ones inside functions too: a lazy import still ties the floors.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import totowalk

PACKAGE_ROOT = Path(totowalk.__file__).resolve().parent
EXTENSIONS = {"totowalk._C"}  # compiled modules: no .py file, but modules all the same

FLOORS = {
    0: (
        "_version",
        "_native",
        "_C",
        "errors",
        "devices",
        "options",
        "aggregation",
        "provenance",
        "memory",
        "file_names",
    ),
    1: ("data", "model", "kernels", "scoring"),
    2: ("precision",),
    3: ("loading", "kronos", "engine"),
    4: ("backtest",),
    5: ("quality", "skill", "compat", "benchmarks"),
    6: ("commands", "cli", "_build_info", ""),  # "" = the package face, totowalk/__init__.py
}
STAGES = ("inputs", "forecast", "stats", "profiles", "report", "run")  # inside backtest, in data-flow order
# the run stage: the call (run.py), its loop over chunks of symbols (chunks.py), what it keeps of
# each chunk for the summaries (kept.py) and the worker processes that may evaluate a chunk (host_workers.py)
RUN_MODULES = ("run", "chunks", "kept", "host_workers")


def _imports(source: str, module: str):
    """(target, names) of every import in ``source`` (the text of ``module``), relative ones resolved;
    ``names`` is empty for ``import x``."""
    package = module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module
            yield target, [alias.name for alias in node.names]


def imported_modules(source: str, module: str) -> list[str]:
    """Absolute names of everything ``source`` (the text of ``module``) imports, relative ones resolved."""
    found = []
    for target, names in _imports(source, module):
        found.append(target)
        found += [f"{target}.{name}" for name in names]  # `from .. import precision`
    return found


def package_modules() -> dict[str, Path]:
    """{dotted name: file} of every module of the package (a package's name for its __init__)."""
    out = {}
    for path in sorted(PACKAGE_ROOT.rglob("*.py")):
        parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def import_graph() -> dict[str, set[str]]:
    """{module: the package's modules it imports}. ``from pkg import name`` ties to ``pkg.name`` when
    that is a module, else to ``pkg`` itself (the name comes from its __init__)."""
    modules = package_modules()
    known = set(modules) | EXTENSIONS

    def resolved(name: str) -> str:  # `pkg.attr` -> `pkg`; "" outside the package
        while name and name not in known:
            name = name.rsplit(".", 1)[0] if "." in name else ""
        return name

    graph = {}
    for name, path in modules.items():
        source_module = name + ".__init__" if path.name == "__init__.py" else name
        targets = set()
        for target, names in _imports(path.read_text(), source_module):
            if not names:
                targets.add(resolved(target))
            for item in names:
                submodule = f"{target}.{item}"
                targets.add(submodule if submodule in known else resolved(target))
        graph[name] = targets - {"", name}
    return graph


def floor_of(module: str) -> int:
    rest = module.removeprefix("totowalk").removeprefix(".")
    top = rest.split(".", 1)[0]
    for floor, names in FLOORS.items():
        if top in names:
            return floor
    raise AssertionError(f"{module} is on no floor: add its top-level name to FLOORS in {__file__}")


def stage_of(module: str) -> int | None:
    parts = module.split(".")
    if parts[:2] != ["totowalk", "backtest"]:
        return None
    if len(parts) == 2:
        return len(STAGES)  # backtest/__init__: the face, on top
    return STAGES.index("run" if parts[2] in RUN_MODULES else parts[2])


def upward_imports(graph: dict) -> list[str]:
    bad = []
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            if floor_of(target) > floor_of(module):
                bad.append(f"{module} -> {target} (floor {floor_of(module)} imports floor {floor_of(target)})")
            elif stage_of(module) is not None and stage_of(target) is not None and stage_of(target) > stage_of(module):
                bad.append(
                    f"{module} -> {target} (backtest stage {STAGES[stage_of(module)] if stage_of(module) < len(STAGES) else 'face'}"
                    f" imports a later stage)"
                )
    return bad


def circles(graph: dict) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_scan_sees_relative_absolute_and_lazy_imports():
    module = "totowalk.model.checkpoint"
    assert imported_modules("from ..precision.gate import warn_if_not_gated", module) == [
        "totowalk.precision.gate",
        "totowalk.precision.gate.warn_if_not_gated",
    ]
    assert imported_modules("def f():\n    import totowalk.precision.convert\n", module) == [
        "totowalk.precision.convert"
    ]
    assert imported_modules("from .. import precision", module) == ["totowalk", "totowalk.precision"]
    assert imported_modules("from .keys import x", module) == ["totowalk.model.keys", "totowalk.model.keys.x"]


def test_the_checks_catch_an_upward_import_and_a_circle():
    graph = {
        "totowalk.model.toto": {"totowalk.precision.convert"},
        "totowalk.precision.convert": set(),
        "totowalk.backtest.stats.daily": {"totowalk.backtest.profiles.profile"},
        "totowalk.backtest.profiles.profile": set(),
        "totowalk.errors": set(),
    }
    assert upward_imports(graph) == [
        "totowalk.backtest.stats.daily -> totowalk.backtest.profiles.profile (backtest stage stats imports a later stage)",
        "totowalk.model.toto -> totowalk.precision.convert (floor 1 imports floor 2)",
    ]
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_a_higher_floor():
    graph = import_graph()
    assert len(graph) > 120  # the scan really read the package
    assert upward_imports(graph) == []


def test_no_import_circle():
    assert circles(import_graph()) == []


def test_backtest_holds_only_its_face_and_run_beside_the_stages():
    folder = PACKAGE_ROOT / "backtest"
    assert sorted(p.name for p in folder.glob("*.py")) == sorted(["__init__.py", *(f"{m}.py" for m in RUN_MODULES)])
    assert sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name != "__pycache__") == sorted(STAGES[:-1])


def test_commands_holds_every_subcommand():
    from totowalk import cli

    modules = {p.stem for p in (PACKAGE_ROOT / "commands").glob("*.py") if p.stem != "__init__"}
    assert {c.__name__.rsplit(".", 1)[1] for c in cli.COMMANDS} == modules
    parser = cli.build_parser()
    subcommands = next(a for a in parser._actions if a.dest == "command").choices
    assert set(subcommands) == modules


def test_importing_the_package_loads_no_optional_or_plotting_library():
    heavy = ("ray", "plotly", "matplotlib", "arch", "scipy", "statsforecast", "gluonts")
    code = f"import sys, totowalk; print([m for m in {heavy!r} if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
