"""Joining the Ray cluster a user named (``--address`` or ``RAY_ADDRESS``), or saying in one line why not.

``ray.init`` waits without end on an address where nothing answers as a Ray cluster (measured with Ray 2.60: past
two minutes on a port that accepts connections, 40 s and more on a dead one) and raises a bare ValueError on a
malformed one. So the address is parsed here, its port tried with a plain TCP connection, and the cluster's GCS
asked whether it is alive, each within a few seconds, before ``ray.init`` runs.

Ray's token authentication (Ray 2.60) has two traps of its own. A cluster that checks tokens answers a driver that
sends none (``RAY_AUTH_MODE`` unset or ``disabled``) or a wrong one at once with an AuthenticationError, which read as
"no Ray cluster answered". And with ``RAY_AUTH_MODE=token`` but no token to be found, Ray's C++ client ends the
process at its first call (a failed check, exit 1, its message on the file descriptor gnsweep sends to its native
log): the launch exited 1 and printed nothing. Both are said here in one line.
"""
from __future__ import annotations

import os
import re
import socket
import threading

from orchestrator.launch.network import AUTH_ENV, token_found, token_source

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


def _token_mode() -> bool:
    """Whether this driver sends a token (Ray 2.60 sends one only with ``RAY_AUTH_MODE=token``)."""
    return (os.environ.get(AUTH_ENV) or "").strip().lower() == "token"


def _check_token(address: str, label: str) -> None:
    """Refuse, before Ray's client ends the process for it, a token mode with no token to send."""
    if _token_mode() and not token_found():
        raise AddressError(f"{label} {address}: {AUTH_ENV}=token, but Ray finds no token to send ({token_source()} "
                           f"holds none); put the cluster's token there (`ray get-auth-token` on its head prints it)")


def _refused(address: str, label: str) -> AddressError:
    """The one line for a cluster that answered and refused this driver's token (or its lack of one)."""
    if not _token_mode():
        return AddressError(f"{label} {address}: the Ray cluster there checks tokens and this launch sent none "
                            f"({AUTH_ENV} is {os.environ.get(AUTH_ENV) or 'unset'}): set {AUTH_ENV}=token with the "
                            f"cluster's token in ~/.ray/auth_token, RAY_AUTH_TOKEN_PATH or RAY_AUTH_TOKEN (`ray "
                            f"get-auth-token` on its head prints it)")
    return AddressError(f"{label} {address}: the Ray cluster there checks tokens and refused the one from "
                        f"{token_source()}: it is not this cluster's (`ray get-auth-token` on its head prints the "
                        f"right one)")


def _ask_gcs(address: str, seconds: float) -> bool | Exception:
    """True when the GCS at ``address`` answers within ``seconds`` that it is alive; the error it answered with
    instead; False when it does not answer in time. Ray's client waits 40 s and more before it gives up, so it runs
    on a daemon thread that is left behind when it does not answer in time."""
    answer: list[bool | Exception] = []

    def ask() -> None:
        from ray._raylet import GcsClient

        try:
            GcsClient(address=address).check_alive([], timeout=seconds)
            answer.append(True)
        except Exception as e:  # noqa: BLE001 - whatever the client raises is the answer
            answer.append(e)

    thread = threading.Thread(target=ask, name="gnsweep-gcs-probe", daemon=True)
    thread.start()
    thread.join(seconds)
    return answer[0] if answer else False


def _is_auth_error(error: BaseException) -> bool:
    try:
        from ray.exceptions import AuthenticationError
    except ImportError:  # a Ray without token authentication
        return False
    return isinstance(error, AuthenticationError)


def check_address(address: str, label: str, *, client_ok: bool = True, connect_seconds: float = CONNECT_SECONDS,
                  answer_seconds: float = ANSWER_SECONDS) -> str:
    """The address to pass to ``ray.init``, after checking that a Ray cluster answers there; raises AddressError
    (``label`` is ``--address`` or ``RAY_ADDRESS``) for a malformed address or one where none answers in time.

    ``client_ok=False`` refuses a Ray Client address (``ray://``), before any connection, for a launch that runs
    trials. Under Ray Client, Ray Tune runs its loop and gnsweep's callbacks on the head, not in this process:
    Ctrl-C and SIGTERM here were only noted, and the sweep went on to its end (measured with Ray 2.60: a SIGINT at
    the first epoch of a 30-epoch sweep, both trials still running 3 minutes later), its progress lines never came
    back, and its results were written on the head's disk. A dry run only reads the cluster's resources."""
    address = address.strip()
    if address == "auto":
        address = _resolve_auto(label)
    client = address.startswith("ray://")
    if client and not client_ok:
        raise AddressError(f"{label} {address!r}: ray:// is Ray Client, which runs Ray Tune's loop on the head, where "
                           f"this launch's Ctrl-C cannot stop it and its results land on the head's disk; run the "
                           f"launch on the cluster with the head's HOST:PORT (or auto), or submit it with `ray job "
                           f"submit` (cluster/README.md); --dry-run accepts ray://")
    host, port = _host_port(address[len("ray://"):] if client else address, label)
    try:
        socket.create_connection((host, port), timeout=connect_seconds).close()
    except socket.timeout:
        raise AddressError(f"{label} {address}: no answer within {connect_seconds:g} s; is the Ray head running "
                           f"there, and is its port open to this machine?") from None
    except OSError as e:  # refused, unreachable, unknown host
        raise AddressError(f"{label} {address}: cannot connect ({e.strerror or e}); is the Ray head running "
                           f"there?") from None
    _check_token(address, label)
    if not client:
        answer = _ask_gcs(f"{host}:{port}" if ":" not in host else f"[{host}]:{port}", answer_seconds)
        if isinstance(answer, Exception) and _is_auth_error(answer):
            raise _refused(address, label)
        if answer is not True:
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
    except Exception as e:  # noqa: BLE001 - Ray's AuthenticationError is none of the above
        if _is_auth_error(e):
            raise _refused(address, label) from None
        raise
