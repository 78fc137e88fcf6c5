"""The spec reference, generated from the pydantic models (``orchestrator.spec.model``): every key, its type and
limits, its default and its one-line meaning (each field's ``description``), as Markdown for ``docs/spec.md``.

``python -m orchestrator.spec.reference`` writes docs/spec.md; ``--check`` exits 1 when it is out of date, and a
test holds both the descriptions and the file current.
"""
from __future__ import annotations

import sys
import types
import typing
from pathlib import Path

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from orchestrator.spec.model import Grouping, ResourceOverride, ResourcesSpec, StudySpec, SweepSpec, TrainSpec

DOC = Path(__file__).resolve().parents[2] / "docs" / "spec.md"
# Each model's section, in the order of the file, and the key path it is found under.
SECTIONS: list[tuple[type[BaseModel], str]] = [
    (SweepSpec, "(top level)"), (TrainSpec, "train"), (StudySpec, "studies.<name>"), (Grouping, "defaults"),
    (ResourcesSpec, "resources"), (ResourceOverride, "resources.by_batch_size.<batch size>"),
]
_NAMES = {int: "integer", float: "number", str: "string", bool: "true or false", type(None): "null"}
_BOUNDS = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}


def missing_descriptions(models=tuple(m for m, _ in SECTIONS)) -> list[str]:
    """``Model.field`` for every field without a one-line description."""
    return [f"{m.__name__}.{name}" for m in models for name, f in m.model_fields.items()
            if not (f.description or "").strip() or "\n" in f.description]


def _limits(metadata) -> list[str]:
    out = []
    for item in metadata:
        for attr, sign in _BOUNDS.items():
            value = getattr(item, attr, None)
            if value is not None and not callable(value):
                out.append(f"{sign} {value:,}" if isinstance(value, int) and abs(value) >= 10_000 else f"{sign} {value}")
        if getattr(item, "min_length", None):
            out.append("not empty" if item.min_length == 1 else f"at least {item.min_length} long")
    return out


def type_text(annotation, metadata=()) -> str:
    """A type as a reader of the YAML sees it: ``list of integer >= 1``, ``one of bn, gn``, ``mapping of string to
    study (see studies.<name>)``."""
    limits = _limits(metadata)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return type_text(args[0], [*args[1:], *metadata])
    if origin in (typing.Union, types.UnionType):
        parts = [type_text(a) for a in args if a is not type(None)]
        text = " or ".join(parts) + (" or null" if type(None) in args else "")
    elif origin is typing.Literal:
        text = "one of " + ", ".join(str(a) for a in args)
    elif origin is list:
        text = f"list of {type_text(args[0])}"
    elif origin is dict:
        text = f"mapping of {type_text(args[0])} to {type_text(args[1])}"
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        where = next(w for m, w in SECTIONS if m is annotation)
        text = f"mapping (see `{where}`)"
    else:
        text = _NAMES.get(annotation, getattr(annotation, "__name__", str(annotation)))
    for item in metadata:
        for sub in getattr(item, "metadata", ()):  # a Field(...) inside Annotated carries its own bounds
            limits += _limits([sub])
    if not limits:
        return text
    return f"{text}, {', '.join(limits)}" if limits[0] == "not empty" else f"{text} {', '.join(limits)}"


def _default(field) -> str:
    if field.is_required():
        return "required"
    value = field.default
    if value is PydanticUndefined:
        return "required"
    if isinstance(value, BaseModel):
        return "see below"
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    return f"{value}" if not isinstance(value, (dict, list)) else (str(value) if value else "empty")


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def reference() -> str:
    """docs/spec.md's text."""
    lines = ["# Sweep spec reference", "",
             "Generated from `orchestrator/spec/model.py` by `python -m orchestrator.spec.reference`; do not edit by "
             "hand. Unknown keys are refused; every problem is reported as one line naming its key.", ""]
    for model, where in SECTIONS:
        doc = " ".join((model.__doc__ or "").split())
        lines += [f"## `{where}`", "", doc, "", "| key | type | default | meaning |", "|---|---|---|---|"]
        for name, field in model.model_fields.items():
            lines.append(f"| `{name}` | {_cell(type_text(field.annotation, field.metadata))} | "
                         f"{_cell(_default(field))} | {_cell(field.description or '')} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    text = reference()
    if missing_descriptions():
        print(f"fields without a description: {', '.join(missing_descriptions())}", file=sys.stderr)
        return 1
    if "--check" in argv:
        if not DOC.is_file() or DOC.read_text() != text:
            print(f"{DOC} is out of date: run python -m orchestrator.spec.reference", file=sys.stderr)
            return 1
        return 0
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text)
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
