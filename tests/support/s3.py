"""The tests' S3 server: moto's ThreadedMotoServer on 127.0.0.1 with one bucket, the fake credentials in the
environment while it runs (so subprocesses and Ray workers started meanwhile reach it too). The session fixture
``bucket`` (tests/conftest.py) is the one server of a test session."""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

BUCKET = "gnsweep-data"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@dataclass(frozen=True)
class Bucket:
    """A bucket on the server; ``uri(key)`` is what a user would type, endpoint options included."""

    name: str
    options: str  # endpoint_override=127.0.0.1:PORT&scheme=http&region=us-east-1

    def uri(self, key: str) -> str:
        return f"s3://{self.name}/{key}?{self.options}"


@contextmanager
def s3_server():
    """Start the server, create ``BUCKET``, yield its ``Bucket``; stop it and restore the environment after."""
    import pyarrow.fs as pafs
    import pytest
    from moto.server import ThreadedMotoServer

    with pytest.MonkeyPatch.context() as mp:  # restores these variables only (the server lives for the session)
        for key, value in CREDENTIALS.items():
            mp.setenv(key, value)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            options = f"endpoint_override={host}:{port}&scheme=http&region=us-east-1"
            pafs.S3FileSystem(endpoint_override=f"{host}:{port}", scheme="http", region="us-east-1",
                              allow_bucket_creation=True).create_dir(BUCKET)
            yield Bucket(BUCKET, options)
        finally:
            server.stop()
