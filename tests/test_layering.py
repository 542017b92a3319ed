"""The package's import structure, read from the source (ast): one way, no cycles, the core apart from the lab.

Every part of ``ssync_lib`` has a layer: a top-level module or folder of the core (``data``, ``train``), a
module or folder of the lab (``lab.viz``, ``lab.run_cache``), or the command line (``__main__``). A module may
import only from lower layers or from its own part (e.g. ``data.movi`` from ``data.common``). A new module must
be given a layer here, which is the point: adding one is a decision about where it sits.

The core (the method and what runs it) never imports the lab (the apparatus of notebooks, sweeps, plots,
benchmarks and probes): the method reads on its own. Evaluation is imported by those that evaluate, and only by
them: the training loop (mid-run and final evaluation), the command line and the sweep (its runs scored on the
test split) (docs/architecture.md)."""
import ast
from pathlib import Path


PACKAGE = Path(__file__).resolve().parents[1] / "ssync_lib"

CORE = {
    "errors": 0,  # the errors raised on purpose (bad input), which every layer may raise
    "config": 1,  # the settings everything reads
    "runtime": 2, "cli_args": 2, "config_checks": 2,  # device, processes, seeds, commit; CLI arguments; validate
    "metrics": 2,  # the scores (the data's raw-pixel k-means reference is scored with them)
    "data": 3, "models": 3,  # the pipeline's inputs, the model
    "objectives": 4,  # losses over model outputs
    "optim": 5, "run_log": 5, "run_lock": 5,  # optimiser; what a run writes (logs, metrics.json); one writer per
    # run folder and the check that an output can be written
    "official": 5,  # the public checkpoints loaded
    "checkpoint": 6, "diagnostics": 6,  # saving, resuming, loading a trained model; SSync's premises vs ground truth
    "evaluate": 7,  # scoring a model, a checkpoint, a public checkpoint
    "train": 8,  # the one loop
    "pretrain": 9,  # self-supervised pretraining of the encoder's ViT (DINO + iBOT), on train's checks
}
LAB = {
    "lab": 9,  # the lab's face (docstring only)
    "lab.viz": 9,  # all plotting
    "lab.gradients": 9, "lab.run_cache": 9, "lab.claims": 10,  # per-term gradients; runs reused; the paper's claims
    "lab.bench": 10, "lab.experiment": 10,  # benchmarks; the sweep
    "lab.notebook": 10, "lab.widgets": 10, "lab.captions": 10,  # what the notebooks call; their sentences
}
LAYERS = {**CORE, **LAB, "__main__": 11}  # the command line
# the only importers of ssync_lib.evaluate: the loop, the command line, the sweep (its runs on the test split)
EVALUATORS = {"ssync_lib.train", "ssync_lib.__main__", "ssync_lib.lab.experiment.held_out"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """The ssync_lib modules a file imports (``from ssync_lib.lab import viz`` counts as ``ssync_lib.lab.viz``)."""
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
    """``ssync_lib.data.movi`` -> ``data``; ``ssync_lib.lab.viz.maps`` -> ``lab.viz``; the package itself -> ``""``."""
    names = module.split(".")
    return ".".join(names[1:3]) if len(names) > 2 and names[1] == "lab" else (names[1] if len(names) > 1 else "")


def core_imports_of_the_lab(graph: dict[str, set[str]]) -> list[str]:
    """Core modules (and the package root) that import a module of the lab."""
    return sorted(f"{m} imports {d}" for m, deps in graph.items() for d in deps
                  if part(m) in CORE | {"": 0} and part(d) in LAB)


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


def test_the_core_never_imports_the_lab():
    found = core_imports_of_the_lab(import_graph())
    assert not found, "the core imports the lab (move the code down into the core, or up into the lab):\n" + \
        "\n".join(found)


def test_only_the_loop_and_the_command_line_import_evaluate():
    importers = {m for m, deps in import_graph().items() if "ssync_lib.evaluate" in deps}
    assert importers <= EVALUATORS, \
        f"only {sorted(EVALUATORS)} import ssync_lib.evaluate, not {sorted(importers - EVALUATORS)}"


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
    assert [part(m) for m in ("ssync_lib.lab.viz.maps", "ssync_lib.lab", "ssync_lib.data.movi", "ssync_lib")] == \
        ["lab.viz", "lab", "data", ""]
    planted = {"ssync_lib.evaluate": {"ssync_lib.lab.viz.maps"}, "ssync_lib.lab.viz.maps": {"ssync_lib.config"},
               "ssync_lib.lab.experiment": {"ssync_lib.lab.viz"}}
    assert core_imports_of_the_lab(planted) == ["ssync_lib.evaluate imports ssync_lib.lab.viz.maps"]
