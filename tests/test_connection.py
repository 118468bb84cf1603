"""Every address form a Resque user already writes, against real redis-servers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from resque_compat import Resque
from resque_compat.connection import ConfigError, connect, default_spec, parse_address
from resque_compat.testing.redis_server import RedisServer

ENV = ("REDIS_URL", "REDIS_BACKEND", "REDIS_BACKEND_DB", "RESQUE_NAMESPACE", "PREFIX")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def port(redis_url: str) -> int:
    return int(redis_url.rsplit(":", 1)[1].split("/", maxsplit=1)[0])


def stored_in(r: redis.Redis, db: int) -> set[str]:
    kwargs = r.connection_pool.connection_kwargs
    client = redis.Redis(host=kwargs["host"], port=kwargs["port"], db=db)
    keys = {k.decode() for k in client.keys("*")}
    client.close()
    return keys


def test_default_is_localhost() -> None:
    assert default_spec() == "redis://localhost:6379/0"
    assert parse_address().url == "redis://localhost:6379/0"


def test_redis_url_wins_over_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_BACKEND", "h1:1")
    monkeypatch.setenv("REDIS_URL", "redis://h2:2/3")
    assert parse_address().url == "redis://h2:2/3"


def test_redis_backend_and_db(monkeypatch: pytest.MonkeyPatch, port: int, r: redis.Redis) -> None:
    """php-resque's REDIS_BACKEND=host:port with REDIS_BACKEND_DB=5 puts the keys in db 5."""
    monkeypatch.setenv("REDIS_BACKEND", f"127.0.0.1:{port}")
    monkeypatch.setenv("REDIS_BACKEND_DB", "5")
    assert parse_address().url == f"redis://127.0.0.1:{port}/5"
    Resque().enqueue("default", "X")
    assert "resque:queue:default" in stored_in(r, 5)
    assert "resque:queue:default" not in stored_in(r, 0)


def test_db_in_dsn_wins_over_backend_db(monkeypatch: pytest.MonkeyPatch, port: int) -> None:
    monkeypatch.setenv("REDIS_BACKEND", f"redis://127.0.0.1:{port}/3")
    monkeypatch.setenv("REDIS_BACKEND_DB", "5")
    assert parse_address().url == f"redis://127.0.0.1:{port}/3"


@pytest.mark.parametrize(
    ("form", "db"),
    [("tcp://127.0.0.1:{port}/2", 2), ("tcp://127.0.0.1:{port}/", 0), ("127.0.0.1:{port}:4", 4),
     ("127.0.0.1:{port}", 0), ("redis://127.0.0.1:{port}/6?timeout=5&persistent=p1&max_connect_retries=3", 6)],
)  # fmt: skip
def test_php_and_ruby_short_forms(form: str, db: int, port: int, r: redis.Redis) -> None:
    Resque(form.format(port=port)).enqueue("q", "X")
    assert "resque:queue:q" in stored_in(r, db)


def test_ruby_host_port_namespace(port: int, r: redis.Redis) -> None:
    """Ruby's ``Resque.redis = "host:port/myapp"`` sets the namespace."""
    address = parse_address(f"127.0.0.1:{port}/myapp")
    assert address.namespace == "myapp"
    resque = Resque(f"127.0.0.1:{port}/myapp")
    resque.enqueue("default", "X")
    assert {"myapp:queues", "myapp:queue:default"} <= stored_in(r, 0)
    assert Resque(f"127.0.0.1:{port}/myapp", namespace="other").keys.namespace == "other"


def test_prefix_env_sets_namespace(monkeypatch: pytest.MonkeyPatch, redis_url: str) -> None:
    monkeypatch.setenv("PREFIX", "myapp")
    assert Resque(redis_url).keys.queues == "myapp:queues"
    monkeypatch.setenv("RESQUE_NAMESPACE", "ns")
    assert Resque(redis_url).keys.queues == "ns:queues"


@pytest.fixture
def unix_server(tmp_path: Path) -> Iterator[tuple[RedisServer, Path]]:
    sock = tmp_path / "redis.sock"
    with RedisServer(None, "--unixsocket", str(sock), "--unixsocketperm", "700") as server:
        yield server, sock


def test_unix_socket(unix_server: tuple[RedisServer, Path]) -> None:
    server, sock = unix_server
    Resque(f"unix://{sock}").enqueue("default", "X")
    Resque(f"unix://{sock}?db=3").enqueue("three", "X")
    client = server.client()
    assert client.lrange("resque:queue:default", 0, -1) == [b'{"class":"X","args":[]}']
    client.select(3)
    assert client.exists("resque:queue:three")


def test_unix_socket_with_backend_db(monkeypatch: pytest.MonkeyPatch, unix_server: tuple[RedisServer, Path]) -> None:
    server, sock = unix_server
    monkeypatch.setenv("REDIS_BACKEND", f"unix://{sock}")
    monkeypatch.setenv("REDIS_BACKEND_DB", "2")
    Resque().enqueue("two", "X")
    client = server.client()
    client.select(2)
    assert client.exists("resque:queue:two")


@pytest.mark.parametrize(
    ("spec", "message"),
    [("foo://h:1", "unsupported Redis URL scheme"), ("redis://h:1/notadb", "database must be a number"),
     ("a b", "cannot parse"), ("h:port", "cannot parse"), ("redis+sentinel://h:26379", "service name")],
)  # fmt: skip
def test_bad_addresses(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        connect(spec)


def test_unreachable_redis_raises_connection_error() -> None:
    with RedisServer() as server:
        url = server.url
    with pytest.raises(redis.ConnectionError):
        Resque(url).queues()
