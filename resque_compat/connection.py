"""Connecting to Redis from every address form Resque users already write.

Accepted forms (``connect``'s ``spec``; default ``$REDIS_URL``, then php-resque's
``$REDIS_BACKEND`` + ``$REDIS_BACKEND_DB``, then ``localhost:6379``):

* ``redis://[user:pass@]host:port/db``, ``rediss://…`` (TLS), ``unix:///path.sock[?db=N]``;
* php-resque DSNs: ``tcp://host:port/db``, and ``redis://…?timeout=5&persistent=x``
  (php-only options are dropped, ``timeout`` becomes the socket timeout);
* Ruby/php short forms: ``host:port``, ``host:port:db``, and Ruby's ``host:port/namespace``;
* ``redis+sentinel://[:pass@]host:port[,host:port…]/service_name[/db]``: the master is found
  through Sentinel and followed across failovers;
* ``redis+cluster://[user:pass@]host:port[,host:port…][?options]`` and ``rediss+cluster://…``
  (TLS): a Redis Cluster, reached through any of the listed nodes. The namespace must carry a
  hash tag (``{resque}``) so that all its keys share one slot; the client talks to the primary
  serving that slot and follows it across failovers (:mod:`resque_compat.cluster`).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import redis
from redis.sentinel import Sentinel

from resque_compat.cluster import slot_pool
from resque_compat.protocol.keys import DEFAULT_NAMESPACE, hash_tag

DEFAULT_URL = "redis://localhost:6379/0"
_PHP_ONLY_OPTIONS = {"persistent", "max_connect_retries", "password-encoding"}
#: URL query options passed on to redis-py; anything else is refused (a typo would otherwise
#: reach redis-py's connection class as a keyword and fail at the first command)
_URL_OPTIONS = {
    "db", "timeout", "socket_timeout", "socket_connect_timeout", "socket_keepalive", "socket_read_size",
    "retry_on_timeout", "health_check_interval", "max_connections", "protocol", "client_name", "username",
    "password", "ssl_keyfile", "ssl_certfile", "ssl_cert_reqs", "ssl_ca_certs", "ssl_ca_path", "ssl_check_hostname",
    "ssl_min_version", "ssl_ciphers", "ssl_password",
}  # fmt: skip


class ConfigError(ValueError):
    """A Redis address or option that cannot be used; the message says why."""


@dataclass(frozen=True)
class RedisAddress:
    """A parsed address. ``namespace`` is set only by Ruby's ``host:port/namespace`` form."""

    url: str
    namespace: str | None = None
    sentinels: tuple[tuple[str, int], ...] = ()
    service: str = ""
    db: int = 0
    password: str | None = None
    #: the seed nodes of a ``redis+cluster://`` address, and the URL of the first one that
    #: carries the connection options for every node
    cluster: tuple[tuple[str, int], ...] = ()
    node_url: str = ""

    def redacted(self) -> str:
        """The address with any password hidden: safe for logs, titles and errors."""
        return redact(self.url)


_USERINFO = re.compile(r"//([^\s'\"<>]*)@")


def redact(url: str) -> str:
    """Hide the whole userinfo of every URL in ``url``, up to its last ``@`` (a password may
    hold ``@``, ``/`` or ``:``); the user name before the first ``:`` stays, to tell accounts apart."""

    def hide(match: re.Match[str]) -> str:
        user, sep, _ = match.group(1).partition(":")
        return f"//{user}:***@" if sep and "/" not in user else "//***@"

    return _USERINFO.sub(hide, url)


def default_spec() -> str:
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"]
    backend = os.environ.get("REDIS_BACKEND")
    if backend:
        db = os.environ.get("REDIS_BACKEND_DB")
        if db and not _names_db(backend):  # php-resque: a db in the DSN wins over REDIS_BACKEND_DB
            return _with_db(parse_address(backend).url, db)
        return backend
    return DEFAULT_URL


def _names_db(spec: str) -> bool:
    """Does the address itself choose a database (URL path, ``?db=``, or ``host:port:db``)?"""
    if "://" in spec:
        parts = urlsplit(spec)
        return "db" in dict(parse_qsl(parts.query)) if parts.scheme == "unix" else bool(parts.path.strip("/"))
    return re.fullmatch(r".*:\d+:\d+", spec) is not None


def _unsplit(parts: SplitResult) -> str:
    """``urlunsplit`` drops the ``//`` of ``unix:///path`` (no netloc); redis-py needs it."""
    url = urlunsplit(parts)
    return "unix://" + url[len("unix:") :] if parts.scheme == "unix" and not url.startswith("unix://") else url


def _with_db(url: str, db: str) -> str:
    parts = urlsplit(url)
    if parts.scheme == "unix":
        query = dict(parse_qsl(parts.query))
        query["db"] = db
        return _unsplit(parts._replace(query=urlencode(query)))
    return urlunsplit(parts._replace(path="/" + db))


def parse_address(spec: str | None = None) -> RedisAddress:
    """Parse any accepted form into a redis-py URL (see the module docstring)."""
    spec = (spec or default_spec()).strip()
    if not spec:
        spec = DEFAULT_URL
    if spec.startswith("redis+sentinel://"):
        return _parse_sentinel(spec)
    if spec.startswith(("redis+cluster://", "rediss+cluster://")):
        return _parse_cluster(spec)
    if spec.startswith("tcp://"):
        spec = "redis://" + spec[len("tcp://") :]
    if re.match(r"^(redis|rediss|unix)://", spec):
        parts = urlsplit(spec)
        if parts.scheme != "unix" and parts.path.strip("/") and not parts.path.strip("/").isdigit():
            raise ConfigError(f"database must be a number in {redact(spec)!r}")
        if not parts.query:
            return RedisAddress(spec)
        query = []
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key in _PHP_ONLY_OPTIONS:
                continue
            if key not in _URL_OPTIONS:
                raise ConfigError(f"unknown Redis URL option {key!r} in {redact(spec)!r}")
            if not value.strip():
                raise ConfigError(f"Redis URL option {key!r} has no value in {redact(spec)!r}")
            if key in _SECONDS_OPTIONS and not _positive_number(value):
                raise ConfigError(f"Redis URL option {key!r} must be a positive number in {redact(spec)!r}")
            query.append(("socket_timeout", value) if key == "timeout" else (key, value))
        address = RedisAddress(_unsplit(parts._replace(query=urlencode(query))))
        _check_options(address)
        return address
    if "://" in spec:
        scheme = spec.split("://", 1)[0]
        raise ConfigError(
            f"unsupported Redis URL scheme {scheme!r} (use redis, rediss, unix, tcp, redis+sentinel or redis+cluster)"
        )
    m = re.fullmatch(r"\[?([^\]/]*?)\]?:(\d+)(?::(\d+))?(?:/(.+))?", spec)
    if not m:
        if re.fullmatch(r"[\w.-]+", spec):
            return RedisAddress(f"redis://{spec}:6379/0")
        raise ConfigError(f"cannot parse Redis address {redact(spec)!r} (expected host:port or a redis:// URL)")
    host, port, db, namespace = m.groups()
    return RedisAddress(f"redis://{host or 'localhost'}:{port}/{db or 0}", namespace=namespace)


_SECONDS_OPTIONS = {"timeout", "socket_timeout", "socket_connect_timeout", "health_check_interval"}


def _positive_number(value: str) -> bool:
    try:
        number = float(value)
    except ValueError:
        return False
    return math.isfinite(number) and number > 0


def _check_options(address: RedisAddress) -> None:
    """Let redis-py parse the options now, so a bad value is a one-line ConfigError here and
    not a traceback at the first command."""
    try:
        redis.ConnectionPool.from_url(address.url)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{exc} in {address.redacted()!r}") from None


def _parse_sentinel(spec: str) -> RedisAddress:
    parts = urlsplit("redis://" + spec[len("redis+sentinel://") :])
    netloc = parts.netloc.rsplit("@", 1)
    password = unquote(netloc[0].split(":", 1)[-1]) if len(netloc) == 2 else None
    hosts = []
    for item in netloc[-1].split(","):
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"bad sentinel address {item!r} in {redact(spec)!r}")
        hosts.append((host.strip("[]"), int(port)))
    path = [p for p in parts.path.split("/") if p]
    if not path:
        raise ConfigError("redis+sentinel:// needs the service name: redis+sentinel://host:26379/mymaster")
    db = int(path[1]) if len(path) > 1 and path[1].isdigit() else 0
    return RedisAddress(spec, sentinels=tuple(hosts), service=path[0], db=db, password=password or None)


def _parse_cluster(spec: str) -> RedisAddress:
    scheme, _, rest = spec.partition("://")
    parts = urlsplit("redis://" + rest)
    userinfo, at, hostlist = parts.netloc.rpartition("@")
    seeds = []
    for item in hostlist.split(","):
        host, _, port = item.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"bad cluster node address {item!r} in {redact(spec)!r} (expected host:port)")
        seeds.append((host.strip("[]"), int(port)))
    if parts.path.strip("/") not in ("", "0"):
        raise ConfigError(f"Redis Cluster has only database 0, not {parts.path.strip('/')!r} in {redact(spec)!r}")
    first = hostlist.split(",")[0].strip()
    node = parse_address(
        urlunsplit(("rediss" if scheme == "rediss+cluster" else "redis", userinfo + at + first, "/0", parts.query, ""))
    )
    return RedisAddress(spec, cluster=tuple(seeds), node_url=node.url)


def check_cluster_namespace(namespace: str) -> None:
    """Refuse a namespace whose keys would spread over the cluster's slots: Lua scripts and
    MULTI/EXEC may only touch keys of one slot."""
    if hash_tag(namespace) is None:
        tagged = "{" + (namespace.rstrip(":") or DEFAULT_NAMESPACE) + "}"
        raise ConfigError(
            f"namespace {namespace!r} has no hash tag: on Redis Cluster every key of a namespace must share "
            f"one slot, so use a namespace like {tagged!r} (--namespace, $RESQUE_NAMESPACE or $PREFIX)"
        )


def build_client(
    spec: str | RedisAddress | None,
    client_class: Any,
    sentinel_class: Any,
    namespace: str | None = None,
    **options: Any,
) -> Any:
    """A client of ``client_class`` (redis-py's sync or asyncio ``Redis``) for any accepted address,
    through ``sentinel_class`` for ``redis+sentinel://``: one place for both APIs. ``namespace``
    picks the hash slot on a ``redis+cluster://`` address (and must have a hash tag there)."""
    address = spec if isinstance(spec, RedisAddress) else parse_address(spec)
    options.setdefault("health_check_interval", 30)
    if address.cluster:
        if namespace is None:
            raise ConfigError("a redis+cluster:// client needs its namespace, to find the namespace's hash slot")
        check_cluster_namespace(namespace)
        client = client_class.from_url(address.node_url, **options)
        slot_pool(client.connection_pool, address.cluster, namespace)
        return client
    if address.sentinels:
        sentinel = sentinel_class(list(address.sentinels), socket_timeout=options.get("socket_timeout", 5))
        return sentinel.master_for(address.service, db=address.db, password=address.password, **options)
    try:
        return client_class.from_url(address.url, **options)
    except ValueError as exc:
        raise ConfigError(f"{exc} in {address.redacted()!r}") from None


def connect(spec: str | RedisAddress | None = None, namespace: str | None = None, **options: Any) -> redis.Redis:
    """A redis-py client for ``spec``. Fork-safe: redis-py reconnects in a child process."""
    client: redis.Redis = build_client(spec, redis.Redis, Sentinel, namespace, **options)
    return client
