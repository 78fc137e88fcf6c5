"""How a spec's problems are worded: one ``FILE: field: message`` line each, in plain words, naming the user's value
briefly and never echoing control characters. Knows nothing of the spec's models, so every module can use it."""
from __future__ import annotations

import re
from typing import Any

MAX_PROBLEMS = 50  # a generated spec can be wrong everywhere; past this many lines, one summary line


class SpecError(Exception):
    """A spec that cannot run; ``problems`` holds one ``FILE: field: message`` line per problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


def describe(value: Any) -> str:
    """A short, one-line description of a user's value (containers by type only: they may be huge or cyclic)."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"the string {value[:60]!r}" + ("..." if len(value) > 60 else "")
    if isinstance(value, (int, float)):
        return "a huge integer" if isinstance(value, int) and value.bit_length() > 200 else repr(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def message(err: dict, expected: list[str] | None = None) -> str:
    """One pydantic error in plain words; ``expected`` lists the fields allowed where an unknown one was given."""
    kind, ctx, given = err["type"], err.get("ctx") or {}, err.get("input")
    got = f", got {describe(given)}"
    unknown = f"unknown field; expected one of {', '.join(expected)}" if expected else "unknown field"
    messages = {
        "missing": "required field is missing",
        "extra_forbidden": unknown,
        "int_type": "must be an integer" + got,
        "float_type": "must be a number" + got,
        "finite_number": "must be a finite number" + got,
        "bool_type": "must be true or false" + got,
        "string_type": "must be a string" + got,
        "list_type": "must be a list" + got,
        "dict_type": "must be a mapping" + got,
        "model_type": "must be a mapping" + got,
        "literal_error": f"must be one of {str(ctx.get('expected', '')).replace(chr(39), '')}" + got,
        "too_short": "must not be empty",
        "string_too_short": "must not be empty",
        "greater_than": f"must be > {_number(ctx.get('gt'))}" + got,
        "greater_than_equal": f"must be >= {_number(ctx.get('ge'))}" + got,
        "less_than": f"must be < {_number(ctx.get('lt'))}" + got,
        "less_than_equal": f"must be <= {_number(ctx.get('le'))}" + got,
    }
    if kind in messages:
        return messages[kind]
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    return err["msg"]


def field_name(loc) -> str:
    return ".".join(str(p) for p in loc if p != "[key]") or "(top level)"


def one_line(text: str) -> str:
    """Control characters (newlines, NUL, terminal escapes) from the user's file shown escaped, never emitted."""
    return re.sub(r"[\x00-\x1f\x7f-\x9f]", lambda m: repr(m.group())[1:-1], text)


def problem_lines(source: str, problems: list[tuple[str, str]]) -> list[str]:
    """``source: field: message`` lines, duplicates dropped, at most MAX_PROBLEMS and a summary line."""
    lines = list(dict.fromkeys(one_line(f"{source}: {field}: {msg}") for field, msg in problems))
    if len(lines) > MAX_PROBLEMS:
        lines = lines[:MAX_PROBLEMS] + [one_line(f"{source}: (top level): {len(lines) - MAX_PROBLEMS} more "
                                                 f"problems not shown")]
    return lines


def refuse(source: str, problem: str) -> SpecError:
    """A SpecError of one problem with the whole file."""
    return SpecError(problem_lines(source, [("(top level)", problem)]))
