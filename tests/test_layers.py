"""Layers point one way: no module of `xstilts` imports a package above its own, and no import cycle.

The walk reads every `import` in the source (module level, inside functions and under TYPE_CHECKING
alike: a lazy import still ties the two modules together) and resolves `from pkg import name` to the
submodule `pkg.name` where one exists.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

SOURCE = Path(__file__).resolve().parent.parent / "xstilts"

# Bottom to top; a module may import its own package and the ones listed before it.
LAYERS: tuple[tuple[str, str], ...] = (
    ("xstilts", "the package root: version and the error types every layer raises"),
    ("errors", "the error types"),
    ("tasks", "the task catalogue: formats, readers, adapters; pure declarations the sweep file names"),
    ("spec", "the sweep file: its models, the cluster settings types, validation against the catalogue"),
    ("store", "content-addressed objects (local or S3), _COMPLETE manifests, leases; data and train write"),
    ("data", "loading, fixtures, features and their cache"),
    ("augment", "text and example augmentation over loaded rows"),
    ("train", "the training loop, schedules, resumable checkpoints"),
    ("modeling", "encoders and heads (adversarial training wraps the train loop)"),
    ("evaluate", "prediction, decoding, metrics, statistics"),
    ("analysis", "typology and alignment analyses over evaluation results"),
    ("plan", "a sweep file expanded into the DAG of content-addressed phases"),
    ("render", "phases into Kubernetes objects: pure, objects in and objects out"),
    ("backends", "everything that talks to a cluster or starts processes: Kubernetes, local, reconcile"),
    ("phases", "the runner of one phase inside its Job"),
    ("suggest", "intermediate-task suggestions from task embeddings and the store's results"),
    ("report", "tables, plots and significance from the store"),
    ("testing", "test support (S3 servers, the loopback control plane); nothing below imports it"),
    ("cli", "the command line"),
    ("__main__", "`python -m xstilts`"),
)

# Import edges allowed against the rules above, each with why and who removes it.
ALLOWED: dict[tuple[str, str], str] = {}


# A function may import an xstilts module lazily when that module pulls in one of these (the controller
# image and `xstilts sweep plan` stay free of the training stack, the CLI starts fast); the walk checks it.
HEAVY = {
    "accelerate", "boto3", "botocore", "datasets", "deepspeed", "kubernetes", "matplotlib", "numpy",
    "scipy", "seqeval", "sklearn", "tokenizers", "torch", "transformers",
}  # fmt: skip

# Lazy imports of light modules, each with why; anything else goes at the top of its module.
LAZY_ALLOWED: dict[tuple[str, str], str] = {
    # Fixture generation (0.6 s of import) only where the data source is fixtures.
    ("xstilts.data.cache", "xstilts.data.fixtures"): "fixtures only when used",
    ("xstilts.augment.dictionaries", "xstilts.data.fixtures"): "fixtures only when used",
    ("xstilts.cli.assets", "xstilts.data.fixtures"): "fixtures only when used",
    # The runner imports its whole stack (transformers first) when it runs, beside the heavy imports.
    ("xstilts.phases.analysis", "xstilts.data.features"): "with the runner's training stack",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.AST, package: str, paths: dict[str, Path]) -> set[str]:
    """Every module `tree` imports, resolved (relative imports, `from pkg import submodule`)."""
    targets: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                targets.add(sub if sub in paths else module)
    return targets


@functools.cache
def _sources() -> dict[str, Path]:
    return {module_name(p): p for p in SOURCE.rglob("*.py")}


@functools.cache
def _tree(name: str) -> ast.Module:
    path = _sources()[name]
    return ast.parse(path.read_text(), str(path))


def _package(name: str, path: Path) -> str:
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def import_graph() -> dict[str, set[str]]:
    paths = _sources()
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        targets = _imports(_tree(name), _package(name, path), paths)
        graph[name] = {t for t in targets if t in paths and t != name}
    return graph


def lazy_imports() -> dict[str, set[str]]:
    """The xstilts modules each module imports inside a function."""
    paths = _sources()
    lazy: dict[str, set[str]] = {}
    for name, path in paths.items():
        functions = [
            node
            for node in ast.walk(_tree(name))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        ]
        targets = set().union(*(_imports(f, _package(name, path), paths) for f in functions))
        lazy[name] = {t for t in targets if t in paths and t != name}
    return lazy


@functools.cache
def heavy_libraries(module: str) -> frozenset[str]:
    """The HEAVY libraries `module` imports, itself or through the xstilts modules it imports."""
    paths, graph = _sources(), _graph()
    seen: set[str] = set()
    found: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        found |= {t.split(".")[0] for t in _imports(_tree(name), _package(name, paths[name]), paths)} & HEAVY
        todo.extend(graph[name])
    return frozenset(found)


@functools.cache
def _graph() -> dict[str, set[str]]:
    return import_graph()


def layer_of(module: str) -> int:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "xstilts"
    names = [name for name, _ in LAYERS]
    assert top in names, f"{module}: package {top!r} has no layer; add it to LAYERS in {__file__}"
    return names.index(top)


def test_every_package_has_a_layer():
    for module in import_graph():
        layer_of(module)


def test_no_module_imports_a_layer_above_its_own():
    upward = [
        f"{src} ({LAYERS[layer_of(src)][0]}) imports {dst} ({LAYERS[layer_of(dst)][0]})"
        for src, targets in sorted(import_graph().items())
        for dst in sorted(targets)
        if layer_of(dst) > layer_of(src) and (src, dst) not in ALLOWED
    ]
    assert not upward, "upward imports:\n" + "\n".join(upward)


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; returns the components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def test_no_import_cycle():
    graph = {src: {dst for dst in dsts if (src, dst) not in ALLOWED} for src, dsts in import_graph().items()}
    cycles = strongly_connected(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_a_lazy_import_keeps_a_heavy_library_out_or_says_why():
    unexplained = [
        f"{src} imports {dst} inside a function, but {dst} needs no heavy library: import it at the top"
        for src, targets in sorted(lazy_imports().items())
        for dst in sorted(targets)
        if (src, dst) not in LAZY_ALLOWED and not heavy_libraries(dst)
    ]
    assert not unexplained, "\n".join(unexplained)
    lazy = lazy_imports()
    stale = [pair for pair in LAZY_ALLOWED if pair[1] not in lazy.get(pair[0], set())]
    assert not stale, f"LAZY_ALLOWED lists imports that are gone: {stale}"


def test_the_cycle_finder_finds_cycles():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert strongly_connected(graph) == [["a", "b", "c"]]
    assert strongly_connected({"a": {"b"}, "b": set()}) == []


def test_the_walk_sees_lazy_and_relative_imports():
    graph = import_graph()
    # a module-level import resolved to its submodule, and a lazy import inside a function
    assert "xstilts.tasks.adapters" in graph["xstilts.tasks.registry"]
    assert "xstilts.store.s3" in graph["xstilts.store"]
