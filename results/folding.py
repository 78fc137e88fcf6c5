"""The epochs folder's layout: one file per trial, ``epochs/<trial_key>.parquet``, and how sweeps written one file per
row (``epochs/<trial_key>-e0001.parquet``, ... before it) are folded into it.

Rows never need folding once written this way: the results writer replaces the trial's whole file at each epoch (a
hidden temporary file renamed over it locally, one upload on an object store), so a reader sees the file before the
epoch or after it, each (trial, epoch) once, at every moment and whatever is killed when.

Folding the old layout cannot be one step: nothing replaces many files at once on an object store (nor, by name, on
a local disk), so while N row files give way to one file, a reader of the whole folder (``pd.read_parquet``) either
misses rows for a moment or sees them twice. The protocol chooses missing over twice, and gnsweep's own readers see
every row exactly once throughout. For each trial with row files:

1. write all its rows to ``epochs/_folding/<trial_key>.parquet``: a folder pyarrow and pandas skip ('_' prefix);
2. delete its row files;
3. write ``epochs/<trial_key>.parquet``;
4. delete the ``_folding/`` copy.

gnsweep's readers read ``_folding/`` too and take from it only the (trial, epoch) rows no visible file holds
(``assemble``), so after every step, and after a kill at any instant, they see each row once. ``pd.read_parquet``
never sees a row twice; from the first deletion of step 2 to the end of step 3 (milliseconds locally; on an object
store, the time to delete the trial's row files, 16 at a time, and upload one file) it misses the trial's deleted
rows, and a kill inside that window leaves them missing there until the next fold. Folding runs again from step 1
with whatever a kill left (``fold``): ``gnsweep launch`` folds every trial that needs it before it runs anything,
and the results writer before it writes a trial's rows.
"""
from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa

from results.parquet_folder import WORKERS, Part, delete_file, write_file
from results.sense import EPOCHS_WHAT, check_unique
from trainer.storage import Location

STAGED = "_folding"
KEY = ("trial_key", "epoch")


def trial_file_name(trial_key: str) -> str:
    return f"{trial_key}.parquet"


def row_file_name(trial_key: str, epoch: int) -> str:
    """The old layout's name of one (trial, epoch) row."""
    return f"{trial_key}-e{epoch:04d}.parquet"


def names_of(trial_key: str):
    """Which names in the epochs folder may hold the trial's rows (a predicate for ``ParquetFolder.read``)."""
    row_files = re.compile(re.escape(trial_key) + r"-e\d{4,}\.parquet")
    own = {trial_file_name(trial_key), f"{STAGED}/{trial_file_name(trial_key)}"}
    return lambda name: name in own or row_files.fullmatch(name) is not None


def row_file_key(part: Part) -> str | None:
    """The trial whose one row this old-layout file holds, or None if it is not such a file (told by its row as well
    as its name; trial keys end with the seed or the precision, never like ``-e0001``, so a trial's own file is
    never named like another's row file)."""
    if "/" in part.name or part.table.num_rows != 1:
        return None
    key, epoch = part.table["trial_key"][0].as_py(), part.table["epoch"][0].as_py()
    return key if part.name == row_file_name(key, epoch) else None


def staged_key(part: Part) -> str | None:
    prefix = f"{STAGED}/"
    return part.name[len(prefix):-len(".parquet")] if part.name.startswith(prefix) else None


def assemble(parts: list[Part], schema: pa.Schema) -> pa.Table:
    """The rows gnsweep reads from the epochs folder's files: those of the visible files, each (trial, epoch) in
    one of them only (a second one is damage), and from the ``_folding/`` copies the rows no visible file holds."""
    visible = [p for p in parts if "/" not in p.name]
    staged = [p for p in parts if staged_key(p) is not None]
    check_unique([(p.where, p.table) for p in visible], KEY, EPOCHS_WHAT)
    tables = [p.table for p in visible]
    if staged:
        check_unique([(p.where, p.table) for p in staged], KEY, EPOCHS_WHAT)
        have = {k for t in tables for k in zip(t["trial_key"].to_pylist(), t["epoch"].to_pylist())}
        for p in staged:
            keep = [i for i, k in enumerate(zip(p.table["trial_key"].to_pylist(), p.table["epoch"].to_pylist()))
                    if k not in have]
            tables.append(p.table.take(pa.array(keep, pa.int64())))
    return pa.concat_tables(tables) if tables else schema.empty_table()


def needs_fold(parts: list[Part]) -> dict[str, list[Part]]:
    """The trials that have row files or a ``_folding/`` copy, each with all the files that hold its rows."""
    keys = {k for p in parts if (k := row_file_key(p) or staged_key(p)) is not None}
    return {k: [p for p in parts if p.name in (trial_file_name(k), f"{STAGED}/{trial_file_name(k)}")
                or row_file_key(p) == k] for k in sorted(keys)}


def _first_per_epoch(tables: list[pa.Table]) -> pa.Table:
    table = pa.concat_tables(tables)
    seen, keep = set(), []
    for i, epoch in enumerate(table["epoch"].to_pylist()):
        if epoch not in seen:
            seen.add(epoch)
            keep.append(i)
    return table.take(pa.array(keep, pa.int64())).sort_by("epoch")


def fold(folder: Location, trial_key: str, parts: list[Part]) -> pa.Table:
    """Fold the trial's files (``parts``: its own file, ``_folding/`` copy and row files, as read) into its own file
    by the protocol above; returns its rows. Run again after a kill at any step, it finishes the fold."""
    own = [p for p in parts if p.name == trial_file_name(trial_key)]
    staged = [p for p in parts if p.name == f"{STAGED}/{trial_file_name(trial_key)}"]
    rows = [p for p in parts if row_file_key(p) == trial_key]
    table = _first_per_epoch([p.table for p in own + staged + rows])
    if rows:
        write_file(table, folder / STAGED / trial_file_name(trial_key))
        with ThreadPoolExecutor(max_workers=min(WORKERS, len(rows))) as pool:
            list(pool.map(delete_file, [p.where for p in rows]))
    write_file(table, folder / trial_file_name(trial_key))
    delete_file(folder / STAGED / trial_file_name(trial_key))
    _remove_staged_if_empty(folder)
    return table


def remove_dead_temporaries(folder: Location) -> None:
    """Delete what writers killed mid-write left in the epochs folder ``folder`` and its staging folder, then the
    staging folder if that left it empty."""
    for where in (folder, folder / STAGED):
        where.remove_dead_temporaries()
    _remove_staged_if_empty(folder)


def _remove_staged_if_empty(folder: Location) -> None:
    if folder.local:  # an object store has no empty folders to leave behind
        try:
            os.rmdir((folder / STAGED).path)
        except OSError:
            pass  # not empty (another trial's copy), or gone
