"""docs/architecture.md names real code: every dotted name in backquotes is a module, or a name a module defines
(a class's method included), so a rename that leaves the page behind fails here. Read with ast: nothing imported."""
import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "architecture.md"
PREFIXES = ("", "orchestrator.", "orchestrator.launch.")  # the page writes rooms without orchestrator., launcher alone


def _module(dotted: str) -> Path | None:
    path = ROOT.joinpath(*dotted.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _defined(body: list[ast.stmt]) -> dict[str, ast.AST]:
    names: dict[str, ast.AST] = {}
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names[node.name] = node
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                if isinstance(target, ast.Name):
                    names[target.id] = node
                if getattr(target, "id", None) == "__all__":  # names a module __getattr__ gives, too
                    names.update({element.value: node for element in node.value.elts})
        elif isinstance(node, ast.ImportFrom):
            names.update({(a.asname or a.name): node for a in node.names})
        elif isinstance(node, ast.If):
            names.update(_defined(node.body))
    return names


def resolves(dotted: str) -> bool:
    """Whether ``dotted`` is a module, or a module then names defined in it (a class, then a method of it)."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        path = _module(".".join(parts[:cut]))
        if path is None:
            continue
        body = ast.parse(path.read_text()).body
        for name in parts[cut:]:
            node = _defined(body).get(name)
            if node is None:
                return False
            body = node.body if isinstance(node, ast.ClassDef) else []
        return True
    return False


def test_every_dotted_name_on_the_page_is_in_the_code():
    names = set(re.findall(r"`([A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)+)`", DOC.read_text()))
    names = {n for n in names if not n.endswith((".md", ".json", ".py", ".parquet", ".yaml"))
             and not n.startswith("ray.")}
    assert len(names) > 30
    missing = sorted(n for n in names if not any(resolves(p + n) for p in PREFIXES))
    assert missing == []


def test_the_check_catches_a_wrong_name():
    assert resolves("orchestrator.launch.launcher.pending_trials")
    assert resolves("results.records.EpochRow.of") and resolves("orchestrator.spec.model.SweepSpec.trial_resources")
    assert not resolves("orchestrator.launch.launcher.no_such_function")
    assert not resolves("results.analysis")
