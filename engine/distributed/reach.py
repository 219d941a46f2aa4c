"""Check that a Ray cluster's address answers before joining it.

``ray.init(address=...)`` retries an address that does not answer (a typo, a
stopped head node, a firewalled port) for minutes before it gives up, and a GUI
job or a CLI command would hang that long.  :func:`check_reachable` resolves the
address the way Ray does (``auto``: ``RAY_ADDRESS``, then the cluster last
started on this machine) and opens one TCP connection to it, so a wrong address
fails at once with a one-line message.
"""

from __future__ import annotations

import socket

from squeezelens.engine.errors import InputError

CONNECT_TIMEOUT_S = 5.0


def bootstrap_address(address: str) -> str:
    """``address`` as host:port (``auto`` resolved as Ray resolves it); InputError when
    no cluster is found or the address is malformed."""
    try:
        from ray._private.services import canonicalize_bootstrap_address_or_die
    except ImportError:  # a Ray without this helper: let ray.init resolve it
        return address
    try:
        return canonicalize_bootstrap_address_or_die(address)
    except (ConnectionError, ValueError, OSError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"cannot join the Ray cluster at {address} ({reason})") from None


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> str:
    """The cluster's host:port once a TCP connection to it succeeds within ``timeout``
    seconds; else a one-line InputError naming the address and why."""
    resolved = bootstrap_address(address)
    host, sep, port = resolved.rpartition(":")
    if not sep or not port.isdigit():
        return resolved  # not host:port (a ray:// client address): ray.init decides
    shown = address if resolved == address else f"{address} ({resolved})"
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return resolved
    except TimeoutError:
        why = f"no answer within {timeout:g} s"
    except OSError as exc:
        why = exc.strerror or str(exc) or type(exc).__name__
    raise InputError(f"cannot reach the Ray cluster at {shown}: {why}")
