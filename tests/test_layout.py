"""edge/ is grouped by concern and its imports point one way: cli -> bench -> hearing/seeing -> core.

Read from the source (ast), so a lazy import inside a function counts as much as a top-level one.
"""
import ast
from pathlib import Path

import pytest

EDGE = Path(__file__).resolve().parent.parent / "edge"
#: what each layer may import from edge (besides itself and the package's __version__)
ALLOWED = {
    "core": {"core"},
    "hearing": {"core", "hearing"},
    "seeing": {"core", "seeing"},
    "bench": {"core", "hearing", "seeing", "bench"},
}
FORBIDDEN_ANYWHERE = {"tensorflow", "keras", "trainer", "export"}


def edge_imports(path: Path) -> list[tuple[str, int]]:
    """(module imported, line) for every import in a file, relative imports resolved."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found += [(node.module, node.lineno)]
            if node.module == "edge":  # from edge import X: X is a subpackage or a name of edge/__init__
                found += [(f"edge.{alias.name}", node.lineno) for alias in node.names if alias.name != "__version__"]
    return found


def layer_files():
    for layer in ALLOWED:
        for path in sorted((EDGE / layer).glob("*.py")):
            yield layer, path


def test_every_module_sits_in_a_concern():
    loose = sorted(p.name for p in EDGE.glob("*.py") if p.name not in {"__init__.py", "__main__.py", "cli.py"})
    assert loose == [], f"modules outside core/hearing/seeing/bench: {loose}"


@pytest.mark.parametrize("layer,path", list(layer_files()), ids=lambda v: getattr(v, "name", v))
def test_imports_point_one_way(layer, path):
    for module, line in edge_imports(path):
        top = module.split(".")[0]
        assert top not in FORBIDDEN_ANYWHERE, f"{path.name}:{line} imports {module} (edge runs without TensorFlow)"
        if top == "edge" and module != "edge":
            target = module.split(".")[1]
            assert target in ALLOWED[layer], f"{path.name}:{line}: edge.{layer} must not import {module}"
