"""The package's import structure, read from the source (ast): one way, no cycles.

Every top-level part of ``ssync_lib`` has a layer; a module may import only from lower layers or from its own
part (e.g. ``data.movi`` from ``data.common``). A new module must be given a layer here, which is the point:
adding one is a decision about where it sits."""
import ast
from pathlib import Path


PACKAGE = Path(__file__).resolve().parents[1] / "ssync_lib"

LAYERS = {
    "errors": 0,  # the errors raised on purpose (bad input), which every layer may raise
    "config": 1,  # the settings everything reads
    "runtime": 2, "cli_args": 2, "config_checks": 2,  # device, processes, seeds, commit; CLI arguments; validate
    "data": 3, "models": 3, "metrics": 3,  # the pipeline's inputs, the model, the scores
    "objectives": 4,  # losses over model outputs
    "checkpoint": 5, "optim": 5, "run_log": 5, "run_lock": 5, "viz": 5,  # what training and the notebooks build on;
    # one writer per run folder and the check that an output can be written
    "diagnostics": 6, "official": 6, "claims": 6,  # SSync's premises against ground truth; the public checkpoints
    # loaded; the paper's claims stated from a sweep summary
    "bench": 7,  # benchmarks (and the gradient report's CLI)
    "evaluate": 7,  # scoring a model, a checkpoint, a public checkpoint
    "train": 8,  # the one loop
    "run_cache": 9, "experiment": 9,  # runs reused by the notebooks; the sweep
    "pretrain": 9,  # self-supervised pretraining of the encoder's ViT (DINO + iBOT), on train's checks
    "notebook": 10, "widgets": 10,  # what the notebooks call
    "__main__": 11,  # the command line
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """The ssync_lib modules a file imports (``from ssync_lib import viz`` counts as ``ssync_lib.viz``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "ssync_lib":
            subs = {f"{node.module}.{a.name}" for a in node.names} & modules
            found |= subs or {node.module}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "ssync_lib"}
    return found


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: imported_modules(path, set(files)) - {name} for name, path in files.items()}


def part(module: str) -> str:
    """``ssync_lib.data.movi`` -> ``data``; the package itself -> ``""``."""
    names = module.split(".")
    return names[1] if len(names) > 1 else ""


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{m} imports {d}" for m, deps in graph.items() for d in deps
                  if part(m) and part(d) and part(d) != part(m) and LAYERS.get(part(d), -1) >= LAYERS.get(part(m), -1))


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path (first node repeated at the end), None when the graph has none."""
    state: dict[str, int] = {}  # 1 on the current path, 2 finished

    def visit(node, path):
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return path[path.index(dep):] + [dep]
            if dep not in state and (cycle := visit(dep, path + [dep])):
                return cycle
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node, [node])):
            return cycle
    return None


def test_every_part_of_the_package_has_a_layer():
    unplaced = sorted({part(m) for m in import_graph()} - set(LAYERS) - {""})
    assert not unplaced, f"give these parts of ssync_lib a layer in LAYERS: {unplaced}"


def test_imports_only_go_down_the_layers():
    upward = upward_imports(import_graph())
    assert not upward, "imports that go up or sideways:\n" + "\n".join(upward)


def test_the_package_root_imports_only_the_config():
    assert import_graph()["ssync_lib"] <= {"ssync_lib.config"}


def test_no_import_cycles():
    assert find_cycle(import_graph()) is None


def test_the_checks_fail_on_a_planted_cycle_and_an_upward_import(tmp_path):
    """The checks above can fail: the same functions on a hand-made tree."""
    (tmp_path / "ssync_lib").mkdir()
    (tmp_path / "ssync_lib" / "config.py").write_text("from ssync_lib.train import train\n")
    modules = {"ssync_lib", "ssync_lib.config", "ssync_lib.train"}
    assert imported_modules(tmp_path / "ssync_lib" / "config.py", modules) == {"ssync_lib.train"}
    planted = {"ssync_lib.config": {"ssync_lib.train"}, "ssync_lib.train": {"ssync_lib.config"}}
    assert upward_imports(planted) == ["ssync_lib.config imports ssync_lib.train"]
    assert find_cycle(planted) == ["ssync_lib.config", "ssync_lib.train", "ssync_lib.config"]
    assert find_cycle({"ssync_lib.train": {"ssync_lib.config"}, "ssync_lib.config": set()}) is None
