"""Downloading the official Tiny ImageNet archive: md5-checked, bounded in size and time, and never leaving a
partial file behind that nothing cleans (it is written in a scratch folder that the next run removes if this one
was killed)."""
from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

from trainer.data import scratch
from trainer.data.manifest import DataError
from trainer.data.progress import Progress
from trainer.storage import file_digest

TINY_IMAGENET_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
TINY_IMAGENET_MD5 = "90528d7ca1a48142e341f4ef8d21d0de"
TINY_IMAGENET_BYTES = 248_100_043
CONNECT_TIMEOUT_S = 30
DEADLINE_S = 3600
ARCHIVE = "tiny-imagenet-200.zip"


def download(out: str | Path, *, url: str = TINY_IMAGENET_URL, md5: str = TINY_IMAGENET_MD5,
             max_bytes: int = TINY_IMAGENET_BYTES, deadline_s: float = DEADLINE_S, progress: bool = True) -> Path:
    """Download the Tiny ImageNet archive to ``out/tiny-imagenet-200.zip`` and check its md5; reuse a good copy.

    The body may not exceed ``max_bytes`` (the official archive's size) and the whole download must finish within
    ``deadline_s`` seconds. A failed, oversized, late or interrupted download, or an md5 mismatch, leaves nothing
    behind (DataError, one line); one killed outright leaves a scratch folder that the next call removes.
    """
    out = Path(out)
    target = out / ARCHIVE
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: exists and is not a directory")
    scratch.remove_stale(out, ARCHIVE)
    if target.is_file() and file_digest(target, "md5") == md5:
        return target
    deadline = time.monotonic() + deadline_s
    try:
        response = urllib.request.urlopen(url, timeout=min(CONNECT_TIMEOUT_S, deadline_s))
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as e:
        raise DataError(f"cannot reach {url}: {_reason(e)}") from None
    total = int(response.headers.get("Content-Length") or 0)
    if total > max_bytes:
        response.close()
        raise DataError(f"{url}: announces {total:,} bytes, more than the {max_bytes:,} of the archive; not "
                        f"downloaded")
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    work = scratch.make(out, ARCHIVE)
    ok = False
    try:
        digest, size = hashlib.md5(), 0
        with response, open(work / ARCHIVE, "wb") as f, Progress("download", total, progress) as bar:
            while chunk := response.read1(1 << 20):
                size += len(chunk)
                if size > max_bytes:
                    raise DataError(f"{url}: sent more than the {max_bytes:,} bytes of the archive; stopped")
                if time.monotonic() > deadline:
                    raise DataError(f"{url}: not finished within {deadline_s:g} s ({size:,} bytes so far); stopped "
                                    f"(a slow link: give more time with --timeout)")
                f.write(chunk)
                digest.update(chunk)
                bar.advance(len(chunk))
        if digest.hexdigest() != md5:
            raise DataError(f"{url}: md5 {digest.hexdigest()} does not match the expected {md5}")
        os.replace(work / ARCHIVE, target)
        ok = True
        return target
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        raise DataError(f"cannot reach {url}: download failed ({_reason(e)})") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if not ok and created:
            shutil.rmtree(out, ignore_errors=True)


def _reason(e: Exception) -> str:
    reason = e if isinstance(e, urllib.error.HTTPError) else getattr(e, "reason", None) or e
    return " ".join(str(reason).split()) or type(e).__name__

