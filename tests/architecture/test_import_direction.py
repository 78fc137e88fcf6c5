"""The packages import one way: normalization <- trainer <- results <- orchestrator <- bench, and Ray stays out of
normalization/, trainer/ and results/ (TensorFlow and Keras out of results/ too). Every import in every module
counts, at module level or inside a function, so a lazy import cannot hide a wrong direction."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("normalization", "trainer", "results", "orchestrator", "bench")
FORBIDDEN = {"normalization": {"ray"}, "trainer": {"ray"}, "results": {"ray", "tensorflow", "keras"}}


def imported_packages(path: Path) -> list[tuple[int, str]]:
    """(line, top-level package) of every absolute import in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: relative import"
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", LAYERS)
def test_imports_point_down_the_layers(package):
    allowed = set(LAYERS[:LAYERS.index(package) + 1])
    wrong = [f"{path.relative_to(ROOT)}:{line} imports {name}" for path in modules(package)
             for line, name in imported_packages(path)
             if (name in LAYERS and name not in allowed) or name in FORBIDDEN.get(package, ())]
    assert modules(package) and wrong == []


def test_the_walk_sees_function_level_imports(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("import os\n\ndef f():\n    from orchestrator.launch import launch\n    import ray.tune\n")
    assert imported_packages(path) == [(1, "os"), (4, "orchestrator"), (5, "ray")]


def test_importing_results_loads_neither_ray_nor_tensorflow():
    names = [f"results.{p.stem}" for p in modules("results") if p.stem != "__init__"]
    code = (f"import sys, {', '.join(names)}; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'ray', 'tensorflow', 'keras'}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
