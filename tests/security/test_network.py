"""Network isolation: no path from a handler to the host's services or the outside.

Listeners are real (a redis-server, plain TCP sockets for the API and the
emulator), and the test process connects to each as a control, so a refusal in
the jail is the jail's doing. A function without `network=True` gets its own
network namespace with no route: expect an immediate ECONNREFUSED/ENETUNREACH
(or EPERM/EACCES if seccomp denies the socket), never a connection or a timeout.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable

from sandbox import FunctionSpec, Pool

from .conftest import MakeFunction
from .helpers import (
    RedisServer,
    assert_healthy,
    assert_refused,
    host_connects,
    host_primary_ip,
    invoke,
    report,
)

NO_ROUTE = {"ECONNREFUSED", "ENETUNREACH", "EHOSTUNREACH", "EPERM", "EACCES", "EADDRNOTAVAIL"}

CONNECT_PROBE = """
import socket
import uuid
import time


def connect(host, port, send):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(1.0)
    try:
        s.connect((host, port))
        if send:
            s.sendall(send.encode())
            return s.recv(256).decode("utf-8", "replace")
        return "connected"
    finally:
        s.close()


def probe(event):
    out = {}
    for key, (host, port, send) in event["targets"].items():
        t0 = time.monotonic()
        out[key] = attempt(connect, host, port, send)
        out[key]["elapsed_s"] = round(time.monotonic() - t0, 3)
    if event.get("dns"):
        out["dns"] = attempt(socket.getaddrinfo, event["dns"], 443)
    return out
"""


def test_connect_redis_port(
    pool: Pool, make_function: MakeFunction, trivial_spec: FunctionSpec, redis_server: RedisServer
) -> None:
    """The handler cannot reach the broker's Redis (which the host can, and which answers PING)."""
    assert redis_server.command("PING").startswith(b"+PONG")  # control
    spec = make_function("connect-redis", CONNECT_PROBE)
    data = report(
        invoke(pool, spec, {"targets": {"redis": ["127.0.0.1", redis_server.port, "PING\r\n"]}})
    )
    assert_refused(data["redis"], NO_ROUTE, "connect to Redis")
    assert data["redis"]["elapsed_s"] < 0.9, f"expected an immediate refusal: {data['redis']}"
    assert_healthy(pool, spec, trivial_spec)


def test_connect_api_and_emulator_ports(
    pool: Pool,
    make_function: MakeFunction,
    trivial_spec: FunctionSpec,
    tcp_listener: Callable[[str], socket.socket],
) -> None:
    """Neither the API port nor the emulator port is reachable, on loopback or on the host's own IP."""
    api = tcp_listener("127.0.0.1")
    emulator = tcp_listener("0.0.0.0")  # listens on every host address
    api_port = int(api.getsockname()[1])
    emu_port = int(emulator.getsockname()[1])
    assert host_connects("127.0.0.1", api_port) and host_connects("127.0.0.1", emu_port)
    targets: dict[str, list[object]] = {
        "api": ["127.0.0.1", api_port, ""],
        "emulator": ["127.0.0.1", emu_port, ""],
    }
    host_ip = host_primary_ip()
    if host_ip is not None:
        assert host_connects(host_ip, emu_port)  # control for the non-loopback path
        targets["emulator_host_ip"] = [host_ip, emu_port, ""]

    spec = make_function("connect-api", CONNECT_PROBE)
    data = report(invoke(pool, spec, {"targets": targets}))
    for key in targets:
        assert_refused(data[key], NO_ROUTE, f"connect to {key} {targets[key]}")
        assert data[key]["elapsed_s"] < 0.9, f"expected an immediate refusal: {data[key]}"
    assert_healthy(pool, spec, trivial_spec)


def test_connect_outside_address(
    pool: Pool, make_function: MakeFunction, trivial_spec: FunctionSpec
) -> None:
    """A TEST-NET address (never routed) fails at once with no route; DNS does not resolve."""
    spec = make_function("connect-outside", CONNECT_PROBE)
    data = report(
        invoke(
            pool,
            spec,
            {"targets": {"testnet": ["192.0.2.1", 80, ""]}, "dns": "example.com"},
        )
    )
    out = data["testnet"]
    # ENETUNREACH: the jail's net namespace has no route at all. A timeout would mean
    # packets left the jail (a route exists), which is exactly the leak.
    assert_refused(out, {"ENETUNREACH", "EHOSTUNREACH", "EPERM", "EACCES"}, "connect to 192.0.2.1")
    assert out["elapsed_s"] < 0.5, f"expected an immediate refusal: {out}"
    assert "ok" not in data["dns"] and data["dns"]["exc"] == "gaierror", data["dns"]
    assert_healthy(pool, spec, trivial_spec)


def test_connect_host_abstract_unix_socket(
    pool: Pool, make_function: MakeFunction, trivial_spec: FunctionSpec
) -> None:
    """Abstract AF_UNIX sockets (no file to hide) belong to the host's network namespace."""
    name = b"\0eventmill-sec-" + uuid.uuid4().hex.encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(name)
        server.listen(4)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as control:
            control.connect(name)  # control: the host reaches it
        spec = make_function(
            "connect-abstract",
            """
            import socket

            def connect(name):
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.connect(name)
                    return "connected"

            def probe(event):
                return {"abstract": attempt(connect, "\\0" + event["name"])}
            """,
        )
        data = report(invoke(pool, spec, {"name": name[1:].decode()}))
    assert_refused(data["abstract"], {"ECONNREFUSED", "EPERM", "EACCES"}, "connect to host abstract socket")
    assert_healthy(pool, spec, trivial_spec)
