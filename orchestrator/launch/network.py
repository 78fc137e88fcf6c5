"""What a local launch exposes to the network, and the refusal to expose it without a credential.

Measured with Ray 2.60 on Linux (listening sockets of every process of a local ``ray.init``): by default the GCS,
raylet, object manager, workers and driver listen on every interface (``::``), the metrics ports on ``0.0.0.0`` and
the dashboard agent and runtime-env agent on the node's address. ``ray.init(_node_ip_address="127.0.0.1")`` changes
nothing: Ray swaps a loopback node address for the machine's routable one. Ray takes the loopback address as the
node's address only where clusters are off (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, the Windows/macOS default), and
then every server binds to 127.0.0.1, except the dashboard, which binds to ``dashboard_host``. A local launch does
that; the dashboard leaves loopback only when ``--dashboard-host`` asks, and then Ray's token must guard it.
"""
from __future__ import annotations

import ipaddress
import os
from typing import Callable

CLUSTERS_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # ray._private.ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR
AUTH_ENV = "RAY_AUTH_MODE"
ALLOW_FLAG = "--allow-open-network"


class NetworkError(Exception):
    """A local launch that would open the machine to the network without a credential (one line)."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def token_auth_on() -> bool:
    """Ray 2.60 turns token authentication on for a cluster that ``ray.init`` starts unless ``RAY_AUTH_MODE`` says
    otherwise (ray/_private/authentication/authentication_token_setup.py)."""
    mode = os.environ.get(AUTH_ENV)
    return mode is None or mode.lower() == "token"


def check_exposure(dashboard: bool, dashboard_host: str, allow_open: bool, echo: Callable[[str], None]) -> None:
    """Refuse a local launch whose dashboard would listen beyond loopback with Ray's token turned off, unless the
    user said ``--allow-open-network``; warn whenever something listens beyond loopback."""
    if not dashboard or is_loopback(dashboard_host):
        return
    if token_auth_on():
        echo(f"warning: the Ray dashboard listens on {dashboard_host}; requests need Ray's token "
             f"(~/.ray/auth_token), which anyone who can read it can use")
        return
    if not allow_open:
        raise NetworkError(f"--dashboard-host {dashboard_host} with {AUTH_ENV}={os.environ[AUTH_ENV]}: anyone who "
                           f"can reach it could run code on this machine; unset {AUTH_ENV} (Ray's token then guards "
                           f"it), keep the dashboard on 127.0.0.1, or pass {ALLOW_FLAG}")
    echo(f"warning: {ALLOW_FLAG}: the Ray dashboard on {dashboard_host} has no authentication "
         f"({AUTH_ENV}={os.environ[AUTH_ENV]}); anyone who can reach it can run code on this machine")


def bind_to_loopback() -> None:
    """Make the local Ray about to start take 127.0.0.1 as its node address, so that its servers bind there. The
    variable reaches Ray's own processes through the environment; the driver reads Ray's constant at call time."""
    os.environ[CLUSTERS_ENV] = "0"
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False


def check_node_address(node_ip: str, allow_open: bool, echo: Callable[[str], None]) -> None:
    """After Ray started: if it did not take the loopback address after all (another Ray version), its servers listen
    on ``node_ip``; that is refused without Ray's token unless the user allowed it."""
    if is_loopback(node_ip):
        return
    if token_auth_on():
        echo(f"warning: Ray's servers listen on {node_ip}; Ray's token (~/.ray/auth_token) guards them")
    elif not allow_open:
        raise NetworkError(f"Ray's servers listen on {node_ip} with {AUTH_ENV}={os.environ[AUTH_ENV]}: anyone who "
                           f"can reach this machine could run code on it; unset {AUTH_ENV} or pass {ALLOW_FLAG}")
    else:
        echo(f"warning: {ALLOW_FLAG}: Ray's servers listen on {node_ip} without authentication")


def token_source() -> str:
    """Where Ray reads its token from (Ray 2.60: ``RAY_AUTH_TOKEN``, else the file ``RAY_AUTH_TOKEN_PATH``, else
    ``~/.ray/auth_token``), said without the token itself."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return "the RAY_AUTH_TOKEN variable"
    return os.environ.get("RAY_AUTH_TOKEN_PATH") or "~/.ray/auth_token"


def token_found() -> bool:
    """Whether Ray finds a token where it looks (as ``token_source`` says)."""
    if os.environ.get("RAY_AUTH_TOKEN", "").strip():
        return True
    path = os.environ.get("RAY_AUTH_TOKEN_PATH") or os.path.join(os.path.expanduser("~"), ".ray", "auth_token")
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return bool(f.read().strip())
    except OSError:
        return False


def check_local_token() -> None:
    """Refuse a local launch whose Ray could not read its token. Ray 2.60 makes ``~/.ray/auth_token`` for a local
    cluster where it finds no token, but a ``RAY_AUTH_TOKEN_PATH`` it cannot read ends ``ray.init`` with a traceback
    (after the plan was printed and the sweep's record written)."""
    path = os.environ.get("RAY_AUTH_TOKEN_PATH")
    if token_auth_on() and path and not token_found():
        raise NetworkError(f"RAY_AUTH_TOKEN_PATH {path}: cannot be read or holds no token, and the local Ray takes its "
                           f"token from there; unset it (Ray then makes ~/.ray/auth_token) or name a file that holds "
                           f"one")


def dashboard_lines(url: str, token_auth: bool) -> list[str]:
    """The dashboard's address and how to get in: with Ray's token authentication on (Ray 2.60 turns it on for every
    cluster ``ray.init`` starts, loopback included), the page asks for the token before it shows anything, and
    scripts send it as a header. Names where the token is, never the token."""
    if not token_auth:
        return [f"Ray dashboard: {url}", "  no authentication (RAY_AUTH_MODE=disabled): anyone who reaches it can "
                                         "run code on the cluster"]
    return [f"Ray dashboard: {url}",
            f"  token authentication is on, on loopback too: the page asks for Ray's token, which `ray "
            f"get-auth-token` prints (from {token_source()}); scripts send it as 'Authorization: Bearer <token>'"]
