"""Helpers for the data fault tests: a small copy of the real Tiny ImageNet sample in its own layout (and as a zip)
to damage, and the check of a refused command."""
from __future__ import annotations

import shutil
import struct
import zipfile
from pathlib import Path


def cut_sample(tiny_sample: Path, root: Path, train_per_class: int = 4, val_per_class: int = 2) -> Path:
    """Copy the sample to ``root`` with ``train_per_class`` train and ``val_per_class`` val images of each of its
    10 classes (the real files and annotation lines, fewer of them, so that each prepare takes seconds)."""
    root.mkdir(parents=True)
    for name in ("wnids.txt", "words.txt"):
        shutil.copy(tiny_sample / name, root / name)
    wnids = (tiny_sample / "wnids.txt").read_text().split()
    for w in wnids:
        src, dst = tiny_sample / "train" / w / "images", root / "train" / w / "images"
        dst.mkdir(parents=True)
        for f in sorted(src.iterdir())[:train_per_class]:
            shutil.copy(f, dst / f.name)
    (root / "val" / "images").mkdir(parents=True)
    kept, per_class = [], {}
    for line in (tiny_sample / "val" / "val_annotations.txt").read_text().splitlines():
        file, wnid = line.split("\t")[:2]
        if per_class.get(wnid, 0) < val_per_class:
            per_class[wnid] = per_class.get(wnid, 0) + 1
            kept.append(line)
            shutil.copy(tiny_sample / "val" / "images" / file, root / "val" / "images" / file)
    (root / "val" / "val_annotations.txt").write_text("\n".join(kept) + "\n")
    return root


def zip_sample(root: Path, archive: Path, replace: dict | None = None) -> Path:
    """``root`` as the official zip lays it out (members under ``tiny-imagenet-200/``); ``replace`` maps a relative
    path to a function that writes that member itself, given the open ZipFile and the member name."""
    replace = replace or {}
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(root.rglob("*")):
            rel = f.relative_to(root).as_posix()
            if f.is_file():
                member = f"tiny-imagenet-200/{rel}"
                if rel in replace:
                    replace[rel](zf, member)
                else:
                    zf.write(f, member)
    return archive


def one_line_error(run, *names) -> str:
    """Exit 2 and one ``gnsweep:`` line naming ``names``, last on stderr. TensorFlow's native logging (CUDA probes,
    libjpeg's "Premature end of JPEG data") may come before it once TensorFlow is loaded; it cannot be silenced
    by TF_CPP_MIN_LOG_LEVEL in TF 2.21, so it is tolerated here but no Python traceback is."""
    assert run.returncode == 2, run.stdout + run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    ours = [line for line in run.stderr.splitlines() if line.startswith("gnsweep: ")]
    assert len(ours) == 1 and run.stderr.splitlines()[-1] == ours[0], run.stderr
    for name in names:
        assert str(name) in ours[0], (name, ours[0])
    return ours[0]


def patch_member(archive: Path, member: str, *, flag_bits: int = 0, method: int | None = None,
                 size: int | None = None) -> None:
    """Set ``flag_bits`` (0x1: encrypted), the compression ``method`` or the uncompressed ``size`` of ``member`` in
    its local header and its central directory record, as a zip tool that encrypts or uses an exotic method would
    have written them (or one that declares a size the data does not have)."""
    with zipfile.ZipFile(archive) as zf:
        local, central = zf.getinfo(member).header_offset, zf.start_dir
    blob = bytearray(archive.read_bytes())
    while blob[central + 46:central + 46 + struct.unpack_from("<H", blob, central + 28)[0]] != member.encode():
        central += 46 + sum(struct.unpack_from("<3H", blob, central + 28))
    for flags_at in (local + 6, central + 8):
        struct.pack_into("<H", blob, flags_at, struct.unpack_from("<H", blob, flags_at)[0] | flag_bits)
        if method is not None:
            struct.pack_into("<H", blob, flags_at + 2, method)
        if size is not None:  # the uncompressed size follows the flags, method, time, date, CRC and compressed size
            struct.pack_into("<I", blob, flags_at + 16, size)
    archive.write_bytes(bytes(blob))
