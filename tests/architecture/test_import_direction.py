"""The packages import one way: normalization <- trainer <- results <- orchestrator <- bench, and Ray stays out of
normalization/, trainer/ and results/ (TensorFlow and Keras out of results/ too). Inside orchestrator/ the rooms
import one way too: spec <- tune <- cost <- watch <- launch <- cli; trainer/data/ needs only trainer.storage. Every import in every module
counts, at module level or inside a function, so a lazy import cannot hide a wrong direction."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("normalization", "trainer", "results", "orchestrator", "bench")
FORBIDDEN = {"normalization": {"ray"}, "trainer": {"ray"}, "results": {"ray", "tensorflow", "keras"}}
ROOMS = ("spec", "tune", "cost", "watch", "launch", "cli")  # orchestrator's rooms, lowest first
DATA_NEEDS = {"trainer.data", "trainer.storage"}  # all that trainer/data/ may import of trainer


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, dotted module) of every absolute import in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: relative import"
            found.append((node.lineno, node.module))
    return found


def imported_packages(path: Path) -> list[tuple[int, str]]:
    """(line, top-level package) of every absolute import in the file."""
    return [(line, name.split(".")[0]) for line, name in imported_modules(path)]


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", LAYERS)
def test_imports_point_down_the_layers(package):
    allowed = set(LAYERS[:LAYERS.index(package) + 1])
    wrong = [f"{path.relative_to(ROOT)}:{line} imports {name}" for path in modules(package)
             for line, name in imported_packages(path)
             if (name in LAYERS and name not in allowed) or name in FORBIDDEN.get(package, ())]
    assert modules(package) and wrong == []


def room(path: Path) -> str:
    """The orchestrator room a module lives in: its subpackage, or its own name at the top (``cli``)."""
    parts = path.relative_to(ROOT / "orchestrator").with_suffix("").parts
    return parts[0]


def test_orchestrator_rooms_point_down():
    wrong = []
    for path in modules("orchestrator"):
        if path.name == "__init__.py" and path.parent.name == "orchestrator":
            continue
        mine = room(path)
        assert mine in ROOMS, f"{path.relative_to(ROOT)}: a room not in ROOMS, add it in its place"
        allowed = set(ROOMS[:ROOMS.index(mine) + 1])
        for line, name in imported_modules(path):
            parts = name.split(".")
            if parts[0] == "orchestrator" and len(parts) > 1 and parts[1] not in allowed:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert wrong == []


def test_data_room_needs_only_storage():
    wrong = [f"{path.relative_to(ROOT)}:{line} imports {name}" for path in sorted((ROOT / "trainer/data").rglob("*.py"))
             for line, name in imported_modules(path)
             if name.startswith("trainer") and ".".join(name.split(".")[:2]) not in DATA_NEEDS]
    assert wrong == []


def test_the_walk_sees_function_level_imports(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("import os\n\ndef f():\n    from orchestrator.launch.launcher import launch\n    import ray.tune\n")
    assert imported_packages(path) == [(1, "os"), (4, "orchestrator"), (5, "ray")]


def test_importing_results_loads_neither_ray_nor_tensorflow():
    names = [f"results.{p.stem}" for p in modules("results") if p.stem != "__init__"]
    code = (f"import sys, {', '.join(names)}; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'ray', 'tensorflow', 'keras'}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
