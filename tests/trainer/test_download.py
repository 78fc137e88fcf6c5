"""Downloading the archive from a local HTTP server: md5 check, reuse of a good copy, and failures that leave
nothing behind (hostile servers are in tests/faults/test_hostile_data.py)."""
import functools
import hashlib
import socket
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
from raw_trees import fake_tree, zip_tree

from trainer.data import DataError, prepare
from trainer.data.download import download


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def http_root(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_download_checks_md5_and_reuses_a_good_copy(http_root, tmp_path):
    root, base = http_root
    archive = zip_tree(fake_tree(tmp_path / "tree"), root / "tiny-imagenet-200.zip")
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    out = tmp_path / "dl"
    path = download(out, url=f"{base}/tiny-imagenet-200.zip", md5=md5, progress=False)
    assert path == out / "tiny-imagenet-200.zip" and path.read_bytes() == archive.read_bytes()
    assert [p.name for p in out.iterdir()] == ["tiny-imagenet-200.zip"]
    archive.unlink()
    assert download(out, url=f"{base}/tiny-imagenet-200.zip", md5=md5, progress=False) == path
    assert prepare(str(path), tmp_path / "prepared", progress=False).counts == {"train": 6, "val": 4}


def test_download_md5_mismatch_leaves_nothing(http_root, tmp_path):
    root, base = http_root
    (root / "tiny-imagenet-200.zip").write_bytes(b"x" * 5000)
    out = tmp_path / "dl"
    with pytest.raises(DataError, match="md5 .* does not match"):
        download(out, url=f"{base}/tiny-imagenet-200.zip", md5="0" * 32, progress=False)
    assert not out.exists()
    with pytest.raises(DataError, match="cannot reach .*404"):
        download(out, url=f"{base}/missing.zip", progress=False)
    assert not out.exists()


def test_download_unreachable_is_one_line_and_leaves_nothing(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "dl"
    with pytest.raises(DataError, match=f"cannot reach http://127.0.0.1:{port}/x.zip: ") as e:
        download(out, url=f"http://127.0.0.1:{port}/x.zip", progress=False)
    assert "\n" not in str(e.value) and not out.exists()
