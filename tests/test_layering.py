"""The house rules, checked on the source: layers, no import cycles, sizes, one definition per name.

The layers are the README's: the table of its "Layout" section is read here, so the document and the test cannot
disagree. Each row names a layer (bottom row: layer 0) and, in its "path" column, the files and folders it holds; a
module belongs to the row with the longest matching path (``utils/segment/masks.py`` is core although
``utils/segment/`` is a task module). Every module of the repository outside tests/ must be placed.

Every import statement counts, at module level or inside a function, ``__getattr__`` included. The only imports that
may point upward are the ultralytics names listed in ``COMPAT_GETATTR``: module-level ``__getattr__`` functions that
resolve ``from models.common import DetectMultiBackend`` (or ``import utils; utils.TryExcept``) for outside scripts.
They are checked by name; nothing else may join them, and nothing in the project goes through them.
"""

import ast
import re
from collections import defaultdict

import pytest

from tests.conftest import ROOT

SKIP_TOP = {"tests", ".venv", ".venv-torch", ".git", "runs", "data", "build", "dist"}  # top-level folders only
COMPAT_GETATTR = {  # module -> the ultralytics names its __getattr__ may resolve from a higher layer
    "models.common": {"DetectMultiBackend", "AutoShape", "Detections"},
    "utils": {"TryExcept", "threaded", "join_threads", "notebook_init", "emojis"},
}
INFERENCE_ONLY = ("utils.runtime",)  # the inference side: may not reach the export side below
EXPORT_SIDE = ("utils.export", "utils.backend.export", "utils.ultralytics_format", "utils.data.synthetic")
SCRIPTS = ["train.py", "val.py", "detect.py", "export.py", "hubconf.py", "benchmarks.py", "segment/train.py",
           "segment/val.py", "segment/predict.py", "classify/train.py", "classify/val.py", "classify/predict.py"]
MAX_MODULE_LINES, MAX_SCRIPT_LINES = 600, 150


# ----------------------------------------------------------------------------------------------- the README's layers
def readme_layers(text=None):
    """[(layer number, layer name, [module-name prefixes])] from the README's Layout table, bottom layer first."""
    text = (ROOT / "README.md").read_text() if text is None else text
    section = text.split("\n## Layout", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")][2:]  # past the header and its rule
    layers = []
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        if cells[0] == "tests":
            continue
        paths = [p for quoted in re.findall(r"`([^`]+)`", cells[1]) for p in quoted.split()]
        layers.append((cells[0], [path_to_module(p) for p in paths]))
    return [(i, name, prefixes) for i, (name, prefixes) in enumerate(reversed(layers))]


def path_to_module(path):
    """'utils/segment/masks.py' -> 'utils.segment.masks'; 'utils/engine/' -> 'utils.engine'; 'utils/__init__.py'
    -> 'utils'."""
    parts = path.strip("/").removesuffix(".py").split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


LAYERS = readme_layers()
LAYER = {name: i for i, name, _ in LAYERS}


def layer_of(module, layers=LAYERS):
    """The layer number of ``module`` (longest matching prefix of the table), or None when no row holds it."""
    best = None
    for i, _, prefixes in layers:
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and (best is None or len(p) > len(best[1])):
                best = (i, p)
    return best[0] if best else None


# -------------------------------------------------------------------------------------------------- the import graph
def _module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_files():
    return sorted(p for p in ROOT.rglob("*.py") if p.relative_to(ROOT).parts[0] not in SKIP_TOP)


def _resolve(name, modules):
    """The project module an import of ``name`` loads (the longest known prefix), or None for third-party code."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        candidate = ".".join(parts[:i])
        if candidate in modules:
            return candidate
    return None


def _getattr_function(tree):
    return next((f for f in tree.body if isinstance(f, ast.FunctionDef) and f.name == "__getattr__"), None)


def getattr_names(func):
    """The names a module-level ``__getattr__`` answers: the strings it compares ``name`` with."""
    names = set()
    for n in ast.walk(func):
        if isinstance(n, ast.Compare):
            for c in ast.walk(n):
                if isinstance(c, ast.Constant) and isinstance(c.value, str):
                    names.add(c.value)
    return names


def import_graph():
    """({module: {imported project module: first line}}, {module: same for its __getattr__'s imports}, files)."""
    files = {_module_name(p): p for p in project_files()}
    modules = set(files)
    graph, via_getattr = defaultdict(dict), defaultdict(dict)
    for name, path in files.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        func = _getattr_function(tree)
        inside = {id(n) for n in ast.walk(func)} if func else set()
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{path}:{node.lineno}: use absolute imports"
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for t in targets:
                dep = _resolve(t, modules)
                if dep and dep != name:
                    graph[name].setdefault(dep, node.lineno)
                    if id(node) in inside:
                        via_getattr[name].setdefault(dep, node.lineno)
    return graph, via_getattr, files


def compat_edges(graph, via_getattr):
    """The upward edges COMPAT_GETATTR allows: (module, dependency) pairs inside those modules' __getattr__."""
    return {(m, d) for m, deps in via_getattr.items() if m in COMPAT_GETATTR for d in deps
            if layer_of(d) > layer_of(m)}


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


def _without(graph, edges):
    return {m: {d: n for d, n in deps.items() if (m, d) not in edges} for m, deps in graph.items()}


def _reachable(graph, start):
    seen, todo = set(), [start]
    while todo:
        for d in graph.get(todo.pop(), {}):
            if d not in seen:
                seen.add(d)
                todo.append(d)
    return seen


@pytest.fixture(scope="module")
def graph():
    return import_graph()


# ------------------------------------------------------------------------------------------------------------- tests
def test_the_readme_places_every_module_and_names_only_real_paths(graph):
    _, _, files = graph
    assert [m for m in files if layer_of(m) is None] == [], "place new modules in the README's Layout table"
    for _, name, prefixes in LAYERS:
        stale = [p for p in prefixes if not any(m == p or m.startswith(p + ".") for m in files)]
        assert stale == [], f"the README's '{name}' row names paths that hold no module"
    assert len(files) > 100 and any(m.startswith("utils.data.") for m in files)  # utils/data/ is covered


def test_no_import_cycles(graph):
    """No cycle, counting function-level imports; only the listed compat edges are left out."""
    g, via_getattr, _ = graph
    assert _cycles(_without(g, compat_edges(g, via_getattr))) == []


def test_nothing_imports_upward(graph):
    g, via_getattr, files = graph
    allowed = compat_edges(g, via_getattr)
    bad = [f"{files[m].relative_to(ROOT)}:{line} imports {dep} (layer {layer_of(dep)} > {layer_of(m)})"
           for m, deps in g.items() for dep, line in deps.items()
           if layer_of(dep) > layer_of(m) and (m, dep) not in allowed]
    assert bad == [], "\n".join(bad)


def test_upward_getattr_resolves_only_the_listed_names(graph):
    """The compat __getattr__ functions answer exactly the COMPAT_GETATTR names, and no other module has one that
    reaches upward."""
    g, via_getattr, files = graph
    for m, deps in via_getattr.items():
        upward = [d for d in deps if layer_of(d) > layer_of(m)]
        if m not in COMPAT_GETATTR:
            assert upward == [], f"{m}: its __getattr__ imports from a higher layer: {upward}"
    for m, names in COMPAT_GETATTR.items():
        assert getattr_names(_getattr_function(ast.parse(files[m].read_text()))) == names, m


def test_nothing_in_the_project_goes_through_the_compat_names():
    users = []
    for p in project_files():
        for n in ast.walk(ast.parse(p.read_text())):
            if isinstance(n, ast.ImportFrom) and n.module in COMPAT_GETATTR:
                hit = COMPAT_GETATTR[n.module] & {a.name for a in n.names}
                if hit:
                    users.append(f"{p.relative_to(ROOT)}:{n.lineno} {sorted(hit)}")
    assert users == [], "import these from their defining modules"


def test_models_import_nothing_above_them(graph):
    g, via_getattr, _ = graph
    allowed = compat_edges(g, via_getattr)
    bad = [(m, d) for m, deps in g.items() if m.startswith("models") for d in deps
           if layer_of(d) > LAYER["models"] and (m, d) not in allowed]
    assert bad == []


def test_library_never_imports_a_script_or_the_compat_layer(graph):
    g, via_getattr, _ = graph
    allowed, top = compat_edges(g, via_getattr), {LAYER["scripts"], LAYER["compat"]}
    bad = [(m, d) for m, deps in g.items() if layer_of(m) < LAYER["scripts"] for d in deps
           if layer_of(d) in top and (m, d) not in allowed]
    assert bad == []
    scripts_on_compat = [(m, d) for m, deps in g.items() if layer_of(m) == LAYER["scripts"] for d in deps
                         if layer_of(d) == LAYER["compat"]]
    assert scripts_on_compat == [], "the compat layer is for outside callers only"


def test_inference_imports_nothing_of_export(graph):
    """The runtimes (one per format) reach no writer, converter or synthetic data, even indirectly; the export side
    may use the runtimes to check what it wrote."""
    g, via_getattr, _ = graph
    g = _without(g, compat_edges(g, via_getattr))
    for m in [m for m in g if m.startswith(INFERENCE_ONLY)]:
        bad = sorted(d for d in _reachable(g, m) if d.startswith(EXPORT_SIDE))
        assert bad == [], f"{m} reaches {bad}"


def test_module_and_script_sizes():
    long = {str(p.relative_to(ROOT)): n for p in project_files()
            if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert long == {}, f"modules over {MAX_MODULE_LINES} lines: split them by responsibility"
    scripts = {s: len((ROOT / s).read_text().splitlines()) for s in SCRIPTS}
    assert {s: n for s, n in scripts.items() if n > MAX_SCRIPT_LINES} == {}


def test_each_function_is_defined_once():
    """No two library modules define the same top-level function (one box maths module, one fitness, ...)."""
    allowed = {"main", "parse_opt", "run", "__getattr__", "__dir__"}
    seen = defaultdict(list)
    for path in project_files():
        if layer_of(_module_name(path)) >= LAYER["scripts"]:
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


# ------------------------------------------------------------------------------------------- the checker, checked
def test_the_checker_sees_function_level_imports_and_cycles():
    g = {"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}
    assert _cycles(g) == [["a", "b", "c"]]
    assert _reachable(g, "d") == {"a", "b", "c"}
    src = "def f():\n    from utils.engine import trainer\n"
    node = [n for n in ast.walk(ast.parse(src)) if isinstance(n, ast.ImportFrom)][0]
    assert _resolve(node.module, {"utils.engine", "utils.engine.trainer"}) == "utils.engine"
    assert layer_of("utils.engine.trainer") == LAYER["engine"] and layer_of("models.yolo") == LAYER["models"]


def test_the_checker_reads_the_readme_table_by_longest_path():
    table = ("\n## Layout\n\n| layer | path | owns |\n|---|---|---|\n| top | `a.py b.py`, `pkg/` | x |\n"
             "| low | `pkg/sub.py` | y |\n| tests | `tests/` | z |\n\n## Next\n")
    layers = readme_layers(table)
    assert [(i, n) for i, n, _ in layers] == [(0, "low"), (1, "top")]
    assert layer_of("pkg.sub", layers) == 0 and layer_of("pkg.other", layers) == 1 and layer_of("b", layers) == 1
    assert layer_of("pkg.sub.deeper", layers) == 0 and layer_of("c", layers) is None
    func = ast.parse("def __getattr__(name):\n    if name in ('A', 'B') or name == 'C':\n        pass\n").body[0]
    assert getattr_names(func) == {"A", "B", "C"}
