"""The package's import structure: no cycles, dependencies along the data flow, readable without imports.

Every ``import`` of an openmm-hybrid module counts, at module level or inside a function, so a
cycle cannot hide behind a late import.
"""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "openmm_hybrid"

# Layers along the data flow, lowest first: a module may import its own layer and the ones below.
LAYERS = [
    {"errors", "_util", "_files"},
    {"models"},
    {"forces"},
    {"mm"},
    {"embeddings"},
    {"hybrid"},
    {"dynamics"},
    {"analysis"},
    {"freeenergy"},
    {"forcefield"},
    {"integrations"},
    {"cli", "testing"},
    {""},  # the package itself (its public API)
]


def module_name(path: Path) -> str:
    parts = ["openmm_hybrid", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules():
    return {module_name(p): p for p in PACKAGE.rglob("*.py") if "_lib" not in p.parts}


def imports_of(name: str, path: Path, known) -> set:
    """The openmm-hybrid modules ``name`` imports, anywhere in the file."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            # "from package import module" imports the module; "from module import name" the module
            targets = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in known else source
                       for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t in known and t != name)
    return found


def graph():
    known = modules()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def layer(name: str) -> int:
    top = name.split(".")[1] if "." in name else ""
    for index, members in enumerate(LAYERS):
        if top in members:
            return index
    raise AssertionError(f"module {name} is in no layer of tests/test_architecture.py")


def test_no_import_cycles():
    edges = graph()
    state, stack, cycles = {}, [], []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in sorted(edges[node]):
            if state.get(target) == "open":
                cycles.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_dependencies_point_down_the_data_flow():
    upward = [f"{source} -> {target}" for source, targets in graph().items() for target in targets
              if layer(target) > layer(source)]
    assert not upward, "imports against the data flow: " + ", ".join(sorted(upward))


def test_the_checks_can_fail():
    """The graph sees function-level and relative imports (what the two tests above rely on)."""
    edges = graph()
    assert "openmm_hybrid.forces.plugin" in edges["openmm_hybrid.forces.serialization"]
    assert "openmm_hybrid.mm.parameters" in edges["openmm_hybrid.mm.templates"]
    assert layer("openmm_hybrid.cli.run") > layer("openmm_hybrid.mm.builder")


@pytest.mark.parametrize("first", ["openmmml", "openmm_hybrid", "openmm_hybrid.integrations.openmmml",
                                   "openmm_hybrid.embeddings.mechanical"])
def test_any_import_order_works(first):
    """openmm-ml loads openmm-hybrid's entry points at its own first import; whichever module a
    script imports first, everything ends up importable and registered."""
    script = (f"import {first}\n"
              "import openmmml, openmm_hybrid\n"
              "assert 'electrostatic' in openmmml.MLPotential('ani2x').getSupportedEmbeddings()\n"
              "assert openmm_hybrid.embeddings.available_embeddings() == ['electrostatic', 'mechanical']\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


def test_old_documented_paths_still_work():
    import openmm_hybrid
    from openmm_hybrid.ml_force import create_module_force, for_platform  # noqa: F401
    from openmm_hybrid.plugin import TorchModuleForce  # noqa: F401
    from openmm_hybrid.serialization import load_system  # noqa: F401
    assert openmm_hybrid.serialization.load_system is load_system
