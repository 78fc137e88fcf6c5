"""Joining the Ray cluster a user named (``--address`` or ``RAY_ADDRESS``), or saying in one line why not.

``ray.init`` waits without end on an address where nothing answers as a Ray cluster (measured with Ray 2.60: past
two minutes on a port that accepts connections, 40 s and more on a dead one) and raises a bare ValueError on a
malformed one. So the address is parsed here, its port tried with a plain TCP connection, and the cluster's GCS
asked whether it is alive, each within a few seconds, before ``ray.init`` runs.
"""
from __future__ import annotations

import os
import re
import socket
import threading

CONNECT_SECONDS = 5.0  # a TCP connection to the head's port
ANSWER_SECONDS = 15.0  # the GCS's answer once connected
FORMS = "HOST:PORT (the head's GCS port, 6379 by default), ray://HOST:PORT or auto"
_HOST_PORT = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^\s:/\[\]?#@]+)):(?P<port>\d{1,5})$")


class AddressError(Exception):
    """The named Ray cluster cannot be joined (one line naming the address and where it came from)."""


def named_address(option: str | None) -> tuple[str, str] | None:
    """The cluster the user named and where (``--address`` wins over ``RAY_ADDRESS``); None for a local Ray."""
    if option is not None:
        return option, "--address"
    env = os.environ.get("RAY_ADDRESS")
    return (env, "RAY_ADDRESS") if env else None


def _host_port(address: str, label: str) -> tuple[str, int]:
    match = _HOST_PORT.match(address)
    if match is None or not 0 < int(match["port"]) < 65536:
        raise AddressError(f"{label} {address!r}: not a Ray cluster address; expected {FORMS}")
    return match["v6"] or match["host"], int(match["port"])


def _resolve_auto(label: str) -> str:
    from ray._private.services import canonicalize_bootstrap_address_or_die

    try:
        return canonicalize_bootstrap_address_or_die("auto")
    except (ConnectionError, ValueError) as e:
        raise AddressError(f"{label} auto: no running Ray cluster found on this machine ({e.__class__.__name__}: "
                           f"{str(e).splitlines()[0][:160]})") from None


def _gcs_alive(address: str, seconds: float) -> bool:
    """Whether the GCS at ``address`` answers within ``seconds``. Ray's client waits 40 s and more before it gives
    up, so it runs on a daemon thread that is left behind when it does not answer in time."""
    answer: list[bool] = []

    def ask() -> None:
        from ray._raylet import GcsClient

        try:
            GcsClient(address=address).check_alive([], timeout=seconds)
            answer.append(True)
        except Exception:
            answer.append(False)

    thread = threading.Thread(target=ask, name="gnsweep-gcs-probe", daemon=True)
    thread.start()
    thread.join(seconds)
    return bool(answer and answer[0])


def check_address(address: str, label: str, *, connect_seconds: float = CONNECT_SECONDS,
                  answer_seconds: float = ANSWER_SECONDS) -> str:
    """The address to pass to ``ray.init``, after checking that a Ray cluster answers there; raises AddressError
    (``label`` is ``--address`` or ``RAY_ADDRESS``) for a malformed address or one where none answers in time."""
    address = address.strip()
    if address == "auto":
        address = _resolve_auto(label)
    client = address.startswith("ray://")
    host, port = _host_port(address[len("ray://"):] if client else address, label)
    try:
        socket.create_connection((host, port), timeout=connect_seconds).close()
    except socket.timeout:
        raise AddressError(f"{label} {address}: no answer within {connect_seconds:g} s; is the Ray head running "
                           f"there, and is its port open to this machine?") from None
    except OSError as e:  # refused, unreachable, unknown host
        raise AddressError(f"{label} {address}: cannot connect ({e.strerror or e}); is the Ray head running "
                           f"there?") from None
    if not client and not _gcs_alive(f"{host}:{port}" if ":" not in host else f"[{host}]:{port}", answer_seconds):
        raise AddressError(f"{label} {address}: something listens there, but no Ray cluster answered within "
                           f"{answer_seconds:g} s; name the head's GCS port (6379 by default)")
    return address


def connect(address: str, label: str, **init_kwargs):
    """``ray.init`` on a checked ``address``; its context. Raises AddressError in one line for whatever Ray raises
    on the way (a version mismatch, a refused token, a Ray Client that times out)."""
    import ray

    checked = check_address(address, label)
    try:
        return ray.init(address=checked, **init_kwargs)
    except (ConnectionError, ValueError, RuntimeError, TimeoutError) as e:
        raise AddressError(f"{label} {address}: cannot join the Ray cluster ({e.__class__.__name__}: "
                           f"{' '.join(str(e).split())[:200]})") from None
