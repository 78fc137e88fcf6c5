"""Reading a spec file: at most MAX_SPEC_BYTES from whatever the path is (a file, a FIFO, a device such as
``/dev/zero``), within SPEC_READ_SECONDS, as UTF-8 YAML through a safe loader that builds plain data only."""
from __future__ import annotations

import os
import re
import select
import time
from pathlib import Path

import yaml

from orchestrator.spec.model import SweepSpec
from orchestrator.spec.problems import refuse
from orchestrator.spec.validation import parse_spec

MAX_SPEC_BYTES = 1 << 20  # a spec is a few hundred bytes; a bigger file is not a spec
SPEC_READ_SECONDS = 5  # a FIFO whose writer never finishes is not a spec either
MAX_DEPTH = 20  # flow nesting ([ or {); a spec needs 3


class _Refused(yaml.MarkedYAMLError):
    """Valid YAML that no spec has: a key given twice, nesting past MAX_DEPTH."""


class _SpecLoader(yaml.SafeLoader):
    """``yaml.safe_load``'s loader (plain data only: a tag such as ``!!python/object`` is an error, never run) that
    also refuses a key given twice in one mapping, which safe_load would silently resolve to the last value, and
    deep flow nesting (``[[[[...``), which PyYAML scans in quadratic time."""

    def fetch_flow_collection_start(self, token_class):
        if self.flow_level >= MAX_DEPTH:
            raise _Refused(None, None, f"more than {MAX_DEPTH} nested [ or {{", self.get_mark())
        super().fetch_flow_collection_start(token_class)

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, _ in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node)
                if key in seen:
                    raise _Refused(None, None, f"the key {key!r} is given twice", key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _yaml_problem(e: yaml.YAMLError) -> str:
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    tag = re.search(r"constructor for the tag '([^']*)'", problem)
    if tag:
        name = tag.group(1).replace("tag:yaml.org,2002:", "!!")
        return f"{where}the YAML tag {name} is not allowed (a spec is plain data; nothing is executed)"
    if isinstance(e, _Refused):
        return f"{where}{problem}"
    return f"{where}not valid YAML ({problem})"


def read_bounded(path: Path, limit: int = MAX_SPEC_BYTES, seconds: float = SPEC_READ_SECONDS) -> bytes:
    """At most ``limit`` + 1 bytes of ``path``, whatever it is. Opened without blocking, so a FIFO nobody writes
    reads as empty instead of waiting for a writer; raises TimeoutError past ``seconds``."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        os.set_blocking(fd, True)
        chunks, size, deadline = [], 0, time.monotonic() + seconds
        while size <= limit:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError(f"no end of the file within {seconds:g} s")
            chunk = os.read(fd, min(1 << 16, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def load_spec(path: str | Path, *, check_dataset: bool = True) -> SweepSpec:
    """Read and validate a YAML spec (safe loader: no tag builds an object). Raises SpecError, lines ``path: ...``.

    Relative ``dataset`` paths in the spec resolve against the current working directory, not the spec's folder.
    """
    path = Path(path)
    source = str(path)
    try:
        raw = read_bounded(path)
    except OSError as e:  # TimeoutError too
        raise refuse(source, f"cannot read the spec: {e.strerror or e}") from None
    if len(raw) > MAX_SPEC_BYTES:
        raise refuse(source, f"the file has more than {MAX_SPEC_BYTES} bytes; a sweep spec is at most "
                             f"{MAX_SPEC_BYTES}")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise refuse(source, f"not UTF-8 text (byte {e.start})") from None
    try:
        data = yaml.load(text, Loader=_SpecLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        raise refuse(source, _yaml_problem(e)) from None
    except RecursionError:
        raise refuse(source, "the YAML is nested too deeply") from None
    except ValueError as e:  # e.g. an integer past Python's digit limit
        raise refuse(source, f"not valid YAML ({e})") from None
    return parse_spec(data, source, check_dataset=check_dataset)
