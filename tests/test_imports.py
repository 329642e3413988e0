"""The package's modules import in one direction only: no cycle, counting imports inside
functions too (docs/architecture.md draws the layers)."""
import ast
import os
import subprocess
import sys

import pytest

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "mlp")


def _module_imports(path: str, module: str) -> set:
    """The mlp modules `module` (a file of the package) imports, anywhere in the file."""
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0:
                if node.module and node.module.split(".")[0] == "mlp":
                    parts = node.module.split(".")[1:]
                    found.add(parts[0] if parts else "__init__")
                continue
            if node.level != 1:
                continue  # the package is flat
            if node.module:
                found.add(node.module.split(".")[0])
            else:  # from . import a, b
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "mlp":
                    found.add(parts[1] if len(parts) > 1 else "__init__")
    found.discard(module)
    return found


def import_graph() -> dict:
    modules = {name[:-3] for name in os.listdir(PACKAGE) if name.endswith(".py")}
    graph = {}
    for module in sorted(modules):
        deps = _module_imports(os.path.join(PACKAGE, module + ".py"), module)
        # `from . import _core` names the compiled extension, which imports nothing of ours.
        graph[module] = {d for d in deps if d in modules}
    return graph


def find_cycle(graph: dict):
    """One import cycle as a list of modules, or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == "open":
                return stack[stack.index(dep):] + [dep]
            if dep not in state:
                cycle = visit(dep)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_no_import_cycle():
    graph = import_graph()
    # __init__ and __main__ sit on top: nothing of the package may import them.
    assert not [m for m, deps in graph.items() if deps & {"__init__", "__main__"}]
    graph.pop("__init__")
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_cycles():
    # The check above must be able to fail: a cycle through an import inside a function counts.
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    src = "def f():\n    from . import model\nfrom .io import save\nimport mlp.layers\n"
    path = os.path.join(os.path.dirname(__file__), "_import_probe.py")
    try:
        with open(path, "w") as f:
            f.write(src)
        assert _module_imports(path, "_import_probe") == {"model", "io", "layers"}
    finally:
        os.unlink(path)


def test_the_fronts_do_not_import_each_other():
    graph = import_graph()
    fronts = {"model", "sklearn"}
    for front in fronts:
        assert not graph[front] & (fronts - {front}), (front, graph[front])
    assert not graph["_format"] & {"model", "sklearn", "layers", "optimizers", "io"}


def test_import_mlp_without_scikit_learn():
    # numpy is the core API's only requirement: without scikit-learn, mlp imports, and asking
    # for an estimator says what to install.
    code = ("import sys; sys.modules['sklearn'] = None\n"
            "import mlp\n"
            "assert 'MLPClassifier' not in mlp.__all__\n"
            "try:\n"
            "    mlp.MLPClassifier\n"
            "except ImportError as exc:\n"
            "    print(exc)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=os.path.dirname(PACKAGE) + "/tests")
    assert done.returncode == 0, done.stderr
    assert "scikit-learn" in done.stdout and 'pip install "mlp[sklearn]"' in done.stdout


@pytest.mark.parametrize("module", ["io", "_format", "_spec", "_engine", "callbacks"])
def test_low_modules_import_no_front(module):
    assert not import_graph()[module] & {"model", "sklearn", "cli", "onnx_export", "plot"}
