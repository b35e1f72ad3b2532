"""The house rules, checked on the source: layers, no import cycles, sizes, one definition per name.

Layers, bottom to top (a module may import its own layer and the ones below, never above):
  0 base       utils/log, files, callbacks, downloads, cli, onnx_graph, errors (no framework, no project deps)
  1 backend    utils/backend/ (the only framework importer)
  2 core       utils/checkpoint, boxes, nms, torch_utils, annotator, dist, segment/masks
  3 models     models/
  4 task       utils/data/, loss, metrics, plots, autoanchor, coco, runtime, export, autoshape, evolve, segment/,
               classify/ (datasets, losses, metrics, plots, inference runtimes, export), loggers/
  5 engine     utils/engine/ (trainers, validators, predictors, configs, launch)
  6 scripts    train.py val.py detect.py export.py hubconf.py benchmarks.py, segment/*.py, classify/*.py,
               utils/demo.py, utils/flask_rest_api/, benchmarks/
Imports inside functions count. The only exception: a module-level ``__getattr__`` that resolves an ultralytics
public name (``from models.common import DetectMultiBackend``) for outside scripts; nothing in the project may use
those paths itself.
"""

import ast
from collections import defaultdict

import pytest

from tests.conftest import ROOT

SKIP_DIRS = {"tests", ".venv", ".venv-torch", ".git", "runs", "data"}
LAYERS = [  # (layer, module-name prefixes), first match wins
    (1, ("utils.backend",)),
    (0, ("utils.log", "utils.files", "utils.callbacks", "utils.downloads", "utils.cli", "utils.onnx_graph",
         "utils.errors", "utils.checks")),
    (2, ("utils.checkpoint", "utils.boxes", "utils.nms", "utils.torch_utils", "utils.annotator", "utils.dist",
         "utils.segment.masks", "utils.autobatch")),
    (3, ("models",)),
    (5, ("utils.engine", "utils.general")),  # utils.general re-exports names that live in the engine
    (6, ("utils.demo", "utils.flask_rest_api", "benchmarks", "train", "val", "detect", "export", "hubconf",
         "segment", "classify")),
    (4, ("utils.data", "utils.loss", "utils.metrics", "utils.plots", "utils.train_plots", "utils.autoanchor",
         "utils.coco", "utils.runtime", "utils.export", "utils.autoshape", "utils.evolve", "utils.segment",
         "utils.classify", "utils.dataloaders", "utils.augmentations", "utils.ultralytics_format",
         "utils.loggers")),
]
SCRIPTS = ["train.py", "val.py", "detect.py", "export.py", "hubconf.py", "benchmarks.py", "segment/train.py",
           "segment/val.py", "segment/predict.py", "classify/train.py", "classify/val.py", "classify/predict.py"]
MAX_MODULE_LINES, MAX_SCRIPT_LINES = 600, 150


def _module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_files():
    return sorted(p for p in ROOT.rglob("*.py") if not (set(p.relative_to(ROOT).parts[:-1]) & SKIP_DIRS)
                  and p.relative_to(ROOT).parts[0] not in SKIP_DIRS)


def layer_of(name):
    if name == "utils":  # the package itself (an empty __init__)
        return 0
    for layer, prefixes in LAYERS:
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return layer
    return None


def _resolve(name, modules):
    """The project module an import of ``name`` loads (the longest known prefix), or None for third-party code."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        candidate = ".".join(parts[:i])
        if candidate in modules:
            return candidate
    return None


def _compat_getattr_nodes(tree):
    return {id(n) for f in tree.body if isinstance(f, ast.FunctionDef) and f.name == "__getattr__" for n in ast.walk(f)}


def import_graph():
    """{module: {imported project module: first line}} over every import statement, and the compat edges apart."""
    files = {_module_name(p): p for p in project_files()}
    modules = set(files)
    graph, compat = defaultdict(dict), defaultdict(dict)
    for name, path in files.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        skip = _compat_getattr_nodes(tree)
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for t in targets:
                dep = _resolve(t, modules)
                if dep and dep != name:
                    (compat if id(node) in skip else graph)[name].setdefault(dep, node.lineno)
    return graph, compat, files


def _cycles(graph):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


@pytest.fixture(scope="module")
def graph():
    return import_graph()


def test_every_module_has_a_layer(graph):
    _, _, files = graph
    assert [m for m in files if layer_of(m) is None] == [], "place new modules in LAYERS"


def test_no_import_cycles(graph):
    g, _, _ = graph
    assert _cycles(g) == []


def test_nothing_imports_upward(graph):
    g, _, files = graph
    bad = [f"{files[m].relative_to(ROOT)}:{line} imports {dep} (layer {layer_of(dep)} > {layer_of(m)})"
           for m, deps in g.items() for dep, line in deps.items() if layer_of(dep) > layer_of(m)]
    assert bad == [], "\n".join(bad)


def test_models_import_nothing_above_them(graph):
    g, _, _ = graph
    bad = [(m, dep) for m, deps in g.items() if m.startswith("models") for dep in deps if layer_of(dep) > 3]
    assert bad == []


def test_library_never_imports_a_script(graph):
    g, _, _ = graph
    bad = [(m, dep) for m, deps in g.items() if layer_of(m) < 6 for dep in deps if layer_of(dep) == 6]
    assert bad == []


def test_compat_names_are_only_for_outside_scripts(graph):
    """The upward __getattr__ re-exports exist (ultralytics paths) and nothing in the project goes through them."""
    _, compat, _ = graph
    assert set(compat.get("models.common", {})) - {"utils"} == {"utils.runtime", "utils.autoshape"}
    moved = {"DetectMultiBackend", "AutoShape", "Detections"}
    users = [f"{p.relative_to(ROOT)}:{n.lineno}" for p in project_files() for n in ast.walk(ast.parse(p.read_text()))
             if isinstance(n, ast.ImportFrom) and n.module == "models.common" and moved & {a.name for a in n.names}]
    assert users == [], "import these from their defining modules (utils.runtime, utils.autoshape)"


def test_module_and_script_sizes():
    long = {str(p.relative_to(ROOT)): n for p in project_files()
            if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert long == {}, f"modules over {MAX_MODULE_LINES} lines: split them by responsibility"
    scripts = {s: len((ROOT / s).read_text().splitlines()) for s in SCRIPTS if (ROOT / s).exists()}
    assert {s: n for s, n in scripts.items() if n > MAX_SCRIPT_LINES} == {}


def test_each_function_is_defined_once():
    """No two library modules define the same top-level function (one box maths module, one fitness, ...)."""
    allowed = {"main", "parse_opt", "run", "__getattr__", "__dir__"}
    seen = defaultdict(list)
    for path in project_files():
        if layer_of(_module_name(path)) == 6:
            continue
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name not in allowed and not node.name.startswith("_"):
                seen[node.name].append(str(path.relative_to(ROOT)))
    assert {k: v for k, v in seen.items() if len(v) > 1} == {}


def test_docstrings_do_not_point_outside_the_repository():
    """FACTS.md / DESIGN.md / STYLE.md live outside the repository: state the fact instead of pointing there."""
    bad = [str(p.relative_to(ROOT)) for p in project_files()
           if any(f in p.read_text() for f in ("FACTS.md", "DESIGN.md", "STYLE.md"))]
    assert bad == []


def test_the_checker_sees_function_level_imports_and_cycles(tmp_path):
    g = {"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}
    assert _cycles(g) == [["a", "b", "c"]]
    src = "def f():\n    from utils.engine import trainer\n"
    tree = ast.parse(src)
    node = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)][0]
    assert _resolve(node.module, {"utils.engine", "utils.engine.trainer"}) == "utils.engine"
    assert layer_of("utils.engine.trainer") == 5 and layer_of("models.yolo") == 3
