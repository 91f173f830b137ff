"""The package's layers: data flows down, imports go up (to a layer above) or sideways, never down,
and no two modules import each other, directly or round a circle. Imports inside functions count.

The order (see docs/architecture.md):

0. basics: errors, _version, chem, tokenization, configuration, arguments, recipe, runs, sharding,
   threads
   (runs sits here because the trainer writes into the run folder; it only names files)
1. model: modeling, objectives, backbones
2. data: the seqvae.data package
3. training / generation: training, generation, conditions, inference
4. evaluation: metrics, evaluation, optimization, viz
5. workflow: train -> evaluate -> write
6. interfaces: the package face, pipeline, cli, integrations
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import seqvae

PACKAGE = Path(seqvae.__file__).parent

LAYERS = [
    ["errors", "_version", "chem", "tokenization", "configuration", "arguments", "recipe", "runs", "sharding", "threads"],
    ["modeling", "objectives", "backbones"],
    ["data"],
    ["training", "generation", "syntax", "conditions", "inference"],
    ["metrics", "evaluation", "optimization", "viz", "frames", "search", "filters", "decoration"],
    ["workflow"],
    ["__init__", "__main__", "pipeline", "cli", "integrations"],
]


def module_name(path: Path) -> str:
    """``seqvae/data/corpus.py`` -> ``data.corpus``; a package's ``__init__`` is the package."""
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def layer_of(module: str) -> int:
    top = module.split(".")[0]
    for index, names in enumerate(LAYERS):
        if top in names:
            return index
    raise AssertionError(f"seqvae/{module}: not in any layer; add it to LAYERS (and to docs/architecture.md)")


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """The seqvae modules ``path`` imports, anywhere in the file."""
    this = module_name(path)
    package = this.split(".") if path.name == "__init__.py" else this.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] + (node.module.split(".") if node.module else [])
            elif node.module and node.module.split(".")[0] == "seqvae":
                base = node.module.split(".")[1:]
            else:
                continue
            for alias in node.names:  # `from . import runs` names a module; `from .x import y` a member
                candidate = ".".join([*base, alias.name])
                found.add(candidate if candidate in modules else ".".join(base) or "__init__")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "seqvae":
                    found.add(".".join(alias.name.split(".")[1:]) or "__init__")
    found.discard(this)
    return {name for name in found if name in modules}


def import_graph() -> dict[str, set[str]]:
    files = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(path) for path in files}
    return {module_name(path): imported_modules(path, modules) for path in files}


def test_every_module_has_a_layer():
    for module in import_graph():
        layer_of(module)


def test_no_module_imports_from_a_layer_below_its_own():
    downward = [
        f"{module} (layer {layer_of(module)}) imports {target} (layer {layer_of(target)})"
        for module, targets in import_graph().items()
        for target in targets
        if layer_of(target) > layer_of(module)
    ]
    assert downward == []


def test_no_import_circles():
    graph = import_graph()
    # A package importing its own modules (its __init__ re-exporting them) is not a circle.
    edges = {m: {t for t in targets if not t.startswith(m + ".")} for m, targets in graph.items()}
    circles = []
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(edges[module]):
            if state.get(target) == "open":
                circles.append(" -> ".join(path[path.index(target):] + [target]))
            elif target not in state:
                visit(target, [*path, target])
        state[module] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert circles == []


@pytest.mark.parametrize(
    "source, expected",
    [
        ("from .data import prepare_corpus\n", {"data"}),
        ("from .data.corpus import run_split\n", {"data.corpus"}),
        ("from . import runs\n", {"runs"}),
        ("def late():\n    from .viz import run_report\n", {"viz"}),
        ("import seqvae.pipeline\n", {"pipeline"}),
        ("import numpy\nfrom collections import Counter\n", set()),
    ],
)
def test_the_import_reader_sees_every_kind_of_import(tmp_path, monkeypatch, source, expected):
    module = tmp_path / "seqvae" / "probe.py"
    module.parent.mkdir()
    module.write_text(source)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", module.parent)
    modules = {"data", "data.corpus", "runs", "viz", "pipeline", "probe"}
    assert imported_modules(module, modules) == expected


def test_an_upward_import_is_reported(monkeypatch):
    # The checks must be able to fail: a basics module importing the facade is caught.
    graph = {"runs": {"pipeline"}, "pipeline": {"runs"}}
    monkeypatch.setattr(sys.modules[__name__], "import_graph", lambda: graph)
    with pytest.raises(AssertionError, match="runs \\(layer 0\\) imports pipeline"):
        test_no_module_imports_from_a_layer_below_its_own()
    with pytest.raises(AssertionError, match="pipeline -> runs -> pipeline"):
        test_no_import_circles()
