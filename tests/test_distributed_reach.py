"""A Ray cluster address that does not answer fails at once with one line (ray.init alone
retries it for minutes), before any Ray runtime starts."""

from __future__ import annotations

import socket
import time

import pytest

from squeezelens.engine.distributed import ClusterSpec
from squeezelens.engine.distributed.reach import check_reachable
from squeezelens.engine.distributed.runtime import Runtime
from squeezelens.engine.errors import InputError

pytest.importorskip("ray")


def _closed_port() -> int:
    with socket.socket() as s:  # a port nothing listens on once this socket closes
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_refused_address_fails_at_once_with_one_line():
    address = f"127.0.0.1:{_closed_port()}"
    start = time.monotonic()
    with pytest.raises(InputError) as err:
        with Runtime(ClusterSpec(address=address)):
            pass
    assert time.monotonic() - start < 10
    text = str(err.value)
    assert text.startswith(f"cannot reach the Ray cluster at {address}") and "\n" not in text


def test_a_malformed_address_is_named():
    with pytest.raises(InputError, match="cannot join the Ray cluster at no-port"):
        check_reachable("no-port")


def test_an_address_that_answers_passes():
    with socket.socket() as server:
        server.bind(("0.0.0.0", 0))  # Ray takes 127.0.0.1 for this node's own address
        server.listen(1)
        port = server.getsockname()[1]
        assert check_reachable(f"127.0.0.1:{port}").endswith(f":{port}")
