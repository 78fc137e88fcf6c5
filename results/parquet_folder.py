"""A folder of Parquet files read as one table: listed once per read, its files fetched in parallel, each checked
against the table's schema.

Each file is fetched whole (on an object store: its size, then one GET of all of it); a file replaced between the two
does not parse as Parquet, is seen to have changed since the listing, and is fetched again after a new listing, so a
file is read as the old one or the new one, never a mix, and a replacement is never taken for damage. The folder
object keeps what it read: the next read lists again and fetches only the files whose size or time changed, which
is what lets ``status --watch`` redraw a sweep of thousands of rows by fetching the few files its running trials
rewrote. A cached file is trusted only once it was already a second
older than the newest file of its listing (object stores stamp whole seconds: a file replaced within the second it
was read could keep its time).
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

import pyarrow as pa
import pyarrow.parquet as pq

from results.damage import damaged
from results.schema import ADDED_LATER, EPOCH_SCHEMA
from trainer.storage import Location

ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError)
SETTLED_NS = 1_000_000_000
WORKERS = 16  # requests in flight: an object store answers each in tens of milliseconds
RELISTS = 5  # a file deleted between listing and fetching (a fold) sends the read back to the listing


class StoreError(Exception):
    """A results file could not be written (disk full, read-only or missing directory); one line naming the file.
    What was written before stays readable."""


def write_file(table: pa.Table, where: Location) -> None:
    """Write ``table`` as the Parquet file ``where``, whole: readers see the old file or the new one, never a part
    (``Location.write_bytes``)."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    try:
        where.write_bytes(sink.getvalue().to_pybytes())
    except OSError as e:
        reason = os.strerror(e.errno) if e.errno else str(e).splitlines()[0]
        raise StoreError(f"cannot write {where}: {reason}") from e


def delete_file(where: Location) -> None:
    """Remove a file that is there (a file already gone is fine: a fold run again after a kill)."""
    try:
        where.fs.delete_file(where.path)
    except FileNotFoundError:
        pass
    except OSError as e:
        reason = os.strerror(e.errno) if e.errno else str(e).splitlines()[0]
        raise StoreError(f"cannot delete {where}: {reason}") from e


@dataclass(frozen=True)
class Part:
    """One file of the folder and its rows; ``name`` is relative to the folder (``k.parquet``,
    ``_folding/k.parquet``)."""

    where: Location
    name: str
    table: pa.Table


class _Changed(Exception):
    """A file replaced between its listing and its fetch."""


@dataclass(frozen=True)
class _Seen:
    size: int | None
    mtime_ns: int | None
    settled: bool
    part: Part


def conform(table: pa.Table, schema: pa.Schema, where, what: str) -> pa.Table:
    """``table`` as ``schema``: every column it must have present and castable, columns added later null in files
    written before them, and the key columns never null."""
    if not table.schema.equals(schema):
        missing = [n for n in schema.names if n not in table.column_names]
        if [n for n in missing if n not in ADDED_LATER]:
            raise damaged(where, what, f"no column {', '.join(n for n in missing if n not in ADDED_LATER)[:120]}")
        columns = [table[n] if n in table.column_names else pa.nulls(len(table), schema.field(n).type)
                   for n in schema.names]
        try:
            table = pa.Table.from_arrays(columns, names=schema.names).cast(schema)
        except ARROW_ERRORS as e:
            raise damaged(where, what, e) from None
    for key in ("trial_key", "epoch") if schema is EPOCH_SCHEMA else ("trial_key", "status"):
        if table[key].null_count:
            raise damaged(where, what, f"a row without {key}")
    return table


class ParquetFolder:
    """The ``.parquet`` files directly in ``folder`` whose names do not start with '.' or '_' (what pyarrow and
    pandas read there), and those in the named hidden ``subfolders``."""

    def __init__(self, folder: Location, schema: pa.Schema, what: str, *, subfolders: tuple[str, ...] = (),
                 check: Callable[[pa.Table, Location], None] | None = None):
        self.folder = folder
        self.schema = schema
        self.what = what
        self.subfolders = subfolders
        self.check = check  # the rows' sense (results.sense), run once per file fetched
        self._seen: dict[str, _Seen] = {}

    def _name(self, path: str) -> str | None:
        """The file's name relative to the folder if it is one of the folder's files, else None."""
        prefix = self.folder.path.rstrip("/") + "/"
        if not path.startswith(prefix) or not path.endswith(".parquet"):
            return None
        name = path[len(prefix):]
        parent, _, base = name.rpartition("/")
        if base.startswith((".", "_")) or (parent and parent not in self.subfolders):
            return None
        return name

    def _list(self) -> list:
        import pyarrow.fs as pafs

        selector = pafs.FileSelector(self.folder.path, allow_not_found=True, recursive=bool(self.subfolders))
        try:
            infos = self.folder.fs.get_file_info(selector)
        except NotADirectoryError as e:
            raise damaged(self.folder, f"a folder of {self.what.removeprefix('a table of ')}", e.strerror or e) \
                from None
        return [i for i in infos if i.type == pafs.FileType.File]

    def _fetch(self, name: str, listed) -> tuple[pa.Table, bool]:
        """The file's rows, and whether they are the listed version (same size). A file that does not parse is
        damaged unless it changed since it was listed (replaced under the read: read again after a new listing)."""
        where = self.folder / name
        data = where.read_bytes()
        try:
            table = pq.ParquetFile(pa.BufferReader(data)).read(use_threads=False)  # small: threads cost more
        except ARROW_ERRORS + (OSError,) as e:
            now = where.fs.get_file_info(where.path)
            if (now.size, now.mtime_ns) != (listed.size, listed.mtime_ns):
                raise _Changed() from None
            raise damaged(where, self.what, e) from None
        table = conform(table, self.schema, where, self.what)
        if self.check is not None:
            self.check(table, where)
        return table, len(data) == listed.size

    def read(self, match=None) -> list[Part]:
        """The folder's files (those whose relative name ``match`` accepts, if given) and their rows, by name.
        Raises DamagedResults naming the first file that is not a table of the schema."""
        for _ in range(RELISTS):
            infos = {n: i for i in self._list() if (n := self._name(i.path)) and (match is None or match(n))}
            newest = max((i.mtime_ns or 0 for i in infos.values()), default=0)
            stale = [n for n, i in infos.items() if not self._fresh(n, i)]
            try:
                with ThreadPoolExecutor(max_workers=max(1, min(WORKERS, len(stale)))) as pool:
                    fetched = dict(zip(stale, pool.map(lambda n: self._fetch(n, infos[n]), stale)))
            except (FileNotFoundError, _Changed):
                continue  # a file went or was replaced between the listing and its fetch: list again
            for n, (table, as_listed) in fetched.items():
                i = infos[n]
                settled = as_listed and i.mtime_ns is not None and i.mtime_ns <= newest - SETTLED_NS
                self._seen[n] = _Seen(i.size, i.mtime_ns, settled, Part(self.folder / n, n, table))
            if match is None:
                for n in set(self._seen) - set(infos):
                    del self._seen[n]
            return [self._seen[n].part for n in sorted(infos)]
        raise damaged(self.folder, f"a folder of {self.what.removeprefix('a table of ')}",
                      f"its files kept changing while read, {RELISTS} times; read again")

    def _fresh(self, name: str, info) -> bool:
        seen = self._seen.get(name)
        return seen is not None and seen.settled and (seen.size, seen.mtime_ns) == (info.size, info.mtime_ns)
