"""The package's import direction (DESIGN.md, Layout), read from the source with ast:
building blocks below models, models below data-free training, no module reaching up."""

import ast
import pathlib

import pytest

ZOO = pathlib.Path(__file__).resolve().parents[1] / "zoo"

# package -> zoo packages its modules must not import (directly, at any place in the file).
FORBIDDEN = {
    "zoo.nn": (
        "zoo.models",
        "zoo.data",
        "zoo.train",
        "zoo.bench",
        "zoo.cli",
        "zoo.interop",
        "zoo.registry",
        "zoo.explain",
    ),
    # zoo's own kernels sit below the building blocks that call them.
    "zoo.native": ("zoo.nn", "zoo.models", "zoo.data", "zoo.train", "zoo.bench", "zoo.cli", "zoo.registry"),
    "zoo.models": ("zoo.data", "zoo.train", "zoo.bench", "zoo.cli", "zoo.interop"),
    "zoo.data": ("zoo.models", "zoo.train", "zoo.bench", "zoo.cli", "zoo.registry"),
    "zoo.interop": ("zoo.train", "zoo.bench", "zoo.cli", "zoo.data"),
    # Loading weights sits beside the registry: create_model(pretrained=...) stays light.
    "zoo.pretrained": ("zoo.train", "zoo.bench", "zoo.cli", "zoo.data"),
}


def _module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(ZOO.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: pathlib.Path) -> set[str]:
    """Every zoo module named by an import statement anywhere in ``path`` (lazy imports
    inside functions included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)  # from zoo import models
    return {n for n in names if n == "zoo" or n.startswith("zoo.")}


def _violations(package: str, forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for path in sorted(ZOO.rglob("*.py")):
        module = _module_name(path)
        if module != package and not module.startswith(package + "."):
            continue
        for name in _imports(path):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                found.append(f"{module} imports {name}")
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_run_one_way(package):
    assert _violations(package, FORBIDDEN[package]) == []


def test_the_registry_imports_no_model_and_no_trainer():
    assert not {n for n in _imports(ZOO / "registry.py") if n.startswith(("zoo.models", "zoo.train", "zoo.data"))}


def test_the_checker_sees_lazy_imports(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from zoo.train.loop import fit\n    import zoo.data\nfrom zoo import models\n")
    assert _imports(source) >= {"zoo.train.loop", "zoo.data", "zoo.models"}
