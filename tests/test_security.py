"""Security: TLS and ACL users against a real redis-server configured for them, secrets kept
out of errors, logs and process titles, and only registered job classes ever run.

TLS options ride in the ``rediss://`` URL's query, as redis-py's ``from_url`` reads them:
``ssl_ca_certs`` (CA bundle), ``ssl_certfile`` / ``ssl_keyfile`` (client certificate for
``tls-auth-clients yes``), ``ssl_cert_reqs`` (``required`` | ``optional`` | ``none``),
``ssl_check_hostname`` (bool), ``ssl_min_version``. Certificates are made here with openssl.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st
from skip_policy import needs_binary, not_applicable_reason
from tls_certs import make_certs
from waiting import wait_for

from resque_compat import Resque
from resque_compat.connection import redact
from resque_compat.testing.redis_server import RedisServer, free_port

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-c", "from resque_compat.cli import main; main()"]
PASSWORD = "Sup3r-s3cret-pw"
JOB_MODULE = """
import os
from resque_compat import job

@job("Touch")
def touch(path):
    open(path, "w").close()
"""

needs_openssl = needs_binary("openssl")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "QUEUE", "QUEUES", "RESQUE_NAMESPACE")}
    env.update(PYTHONPATH=str(REPO), **extra)
    return env


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=_env(), cwd=cwd, timeout=60, check=False)


def burst_worker(url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "sec_jobs.py").write_text(JOB_MODULE)
    return cli("--redis", url, "work", "-q", "q", "--burst", "-i", str(tmp_path / "sec_jobs.py"), *args, cwd=tmp_path)


# -- TLS ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_certs(tmp_path_factory.mktemp("certs"))


def _tls_server(certs: Path, auth_clients: str) -> tuple[RedisServer, int]:
    port = free_port()
    server = RedisServer(
        None,
        "--tls-port", str(port),
        "--tls-cert-file", str(certs / "server.crt"),
        "--tls-key-file", str(certs / "server.key"),
        "--tls-ca-cert-file", str(certs / "ca.crt"),
        "--tls-auth-clients", auth_clients,
    )  # fmt: skip  # the plain port stays, on loopback, for the fixture's readiness probe
    return server.start(), port


@pytest.fixture(scope="module")
def tls_server(certs: Path) -> Iterator[int]:
    server, port = _tls_server(certs, "no")
    yield port
    server.close()


@pytest.fixture(scope="module")
def mtls_server(certs: Path) -> Iterator[int]:
    server, port = _tls_server(certs, "yes")
    yield port
    server.close()


@needs_openssl
def test_tls_client_and_worker(tls_server: int, certs: Path, tmp_path: Path) -> None:
    url = f"rediss://127.0.0.1:{tls_server}/0?ssl_ca_certs={certs / 'ca.crt'}"
    resque = Resque(url)
    resque.redis.flushall()
    marker = tmp_path / "ran"
    job_id = resque.enqueue("q", "Touch", str(marker), track=True)
    assert job_id is not None and resque.size("q") == 1
    proc = cli("--redis", url, "queues")
    assert proc.returncode == 0 and "q" in proc.stdout, proc.stderr
    proc = burst_worker(url, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert marker.exists()
    status = resque.status(job_id)
    assert status is not None and status.status == 4


@needs_openssl
def test_tls_with_client_certificate(mtls_server: int, certs: Path, tmp_path: Path) -> None:
    base = f"rediss://127.0.0.1:{mtls_server}/0?ssl_ca_certs={certs / 'ca.crt'}"
    with_cert = f"{base}&ssl_certfile={certs / 'client.crt'}&ssl_keyfile={certs / 'client.key'}"
    resque = Resque(with_cert)
    resque.redis.flushall()
    resque.enqueue("q", "Touch", str(tmp_path / "ran"))
    proc = burst_worker(with_cert, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "ran").exists()
    with pytest.raises(redis.ConnectionError):  # no client certificate: the server refuses
        Resque(base).enqueue("q", "Touch", "x")
    proc = cli("--redis", base, "enqueue", "q", "Touch", '["x"]')
    assert proc.returncode != 0 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


@needs_openssl
def test_tls_refuses_an_unknown_certificate_authority(tls_server: int) -> None:
    url = f"rediss://127.0.0.1:{tls_server}/0"  # the system CAs do not know our test CA
    with pytest.raises(redis.ConnectionError, match=r"(?i)certificate"):
        Resque(url).enqueue("q", "Touch", "x")
    proc = cli("--redis", url, "enqueue", "q", "Touch", '["x"]')
    assert proc.returncode != 0
    line = proc.stderr.strip()
    assert len(line.splitlines()) == 1 and "certificate" in line.lower(), line


@needs_openssl
def test_plain_client_on_the_tls_port_fails_cleanly(tls_server: int) -> None:
    url = f"redis://127.0.0.1:{tls_server}/0?socket_timeout=2&socket_connect_timeout=2"
    with pytest.raises(redis.ConnectionError):
        Resque(url).enqueue("q", "Touch", "x")


# -- ACL users and secrets --------------------------------------------------------------------


def _alive(proc: subprocess.Popen[Any], log: Path) -> bool:
    assert proc.poll() is None, log.read_text()
    return True


@pytest.fixture
def acl_server() -> Iterator[RedisServer]:
    """``app`` may touch ``resque:*`` keys only, with all non-dangerous commands."""
    with RedisServer() as server:
        admin = server.client()
        _grant(admin)
        yield server


def _grant(admin: redis.Redis) -> None:
    admin.execute_command(  # type: ignore[no-untyped-call]
        "ACL", "SETUSER", "app", "on", f">{PASSWORD}", "~resque:*", "&*", "+@all", "-@dangerous"
    )


def _acl_url(server: RedisServer, password: str = PASSWORD) -> str:
    return f"redis://app:{quote(password, safe='')}@127.0.0.1:{server.port}/0"


def test_acl_user_runs_client_and_worker_within_its_keys(acl_server: RedisServer, tmp_path: Path) -> None:
    url = _acl_url(acl_server)
    resque = Resque(url)
    marker = tmp_path / "ran"
    job_id = resque.enqueue("q", "Touch", str(marker), track=True)
    assert job_id is not None
    proc = burst_worker(url, tmp_path, "--reliable")
    assert proc.returncode == 0, proc.stderr
    assert marker.exists()
    status = resque.status(job_id)
    assert status is not None and status.status == 4
    assert all(str(k).startswith("b'resque:") for k in acl_server.client().keys("*"))


def test_wrong_password_is_a_clear_error_without_the_password(acl_server: RedisServer) -> None:
    wrong = "Wr0ng-pass-" + PASSWORD
    with pytest.raises(redis.AuthenticationError) as caught:
        Resque(_acl_url(acl_server, wrong)).enqueue("q", "Touch", "x")
    assert wrong not in str(caught.value)
    proc = cli("--redis", _acl_url(acl_server, wrong), "enqueue", "q", "Touch", '["x"]')
    assert proc.returncode != 0
    assert wrong not in proc.stderr + proc.stdout
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_password_stays_out_of_errors_when_redis_is_down() -> None:
    url = f"redis://app:{PASSWORD}@127.0.0.1:{free_port()}/0"
    proc = cli("--redis", url, "queues")
    assert proc.returncode != 0 and "cannot reach Redis" in proc.stderr
    assert PASSWORD not in proc.stderr + proc.stdout
    assert "***" in proc.stderr  # the address is shown, redacted


def _cmdline(pid: int) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as fh:
        return fh.read().replace(b"\0", b" ").decode(errors="replace")


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason=not_applicable_reason("needs /proc"))
def test_worker_hides_the_password_from_ps_and_logs(acl_server: RedisServer, tmp_path: Path) -> None:
    url = _acl_url(acl_server)
    (tmp_path / "sec_jobs.py").write_text(JOB_MODULE)
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        worker = subprocess.Popen(
            [*CLI, "--redis", url, "work", "-q", "q", "--interval", "0.1", "-vv", "-i", str(tmp_path / "sec_jobs.py")],
            env=_env(), stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path,
        )  # fmt: skip
    try:
        admin = acl_server.client()
        wait_for(lambda: _alive(worker, log) and admin.smembers("resque:workers"), what="the worker to register")
        title = _cmdline(worker.pid)
        assert "resque" in title and PASSWORD not in title, title
        # Redis goes away and comes back: the reconnect messages name the address, redacted.
        acl_server.kill()
        time.sleep(1.5)
        acl_server.start()
        _grant(acl_server.client())
        Resque(url).enqueue("q", "Touch", str(tmp_path / "after"))
        wait_for(lambda: _alive(worker, log) and (tmp_path / "after").exists(), what="the job after the restart")
    finally:
        worker.send_signal(signal.SIGQUIT)
        worker.wait(30)
    text = log.read_text()
    assert "reconnect" in text.lower() or "connection" in text.lower(), text
    assert PASSWORD not in text


@settings(max_examples=300, deadline=None)
@given(
    password=st.text(min_size=6, max_size=30).filter(lambda p: p.strip() == p and "127.0.0.1" not in p),
    user=st.sampled_from(["", "app", "worker-1"]),
    scheme=st.sampled_from(["redis", "rediss", "redis+sentinel"]),
)
def test_redact_hides_any_password(password: str, user: str, scheme: str) -> None:
    quoted = quote(password, safe="")
    url = f"{scheme}://{user}:{quoted}@127.0.0.1:6379/0"
    shown = redact(url)
    assert quoted not in shown
    assert shown == f"{scheme}://{user}:***@127.0.0.1:6379/0"


# -- only registered jobs run -------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["--fork", "--no-fork"])
def test_only_registered_job_classes_run(redis_url: str, tmp_path: Path, mode: str) -> None:
    """A payload naming any importable callable runs nothing: it fails as an unknown class."""
    marker = tmp_path / "pwned"
    resque = Resque(redis_url)
    hostile: list[tuple[str, list[Any]]] = [
        ("os.system", [f"touch {marker}"]),
        ("subprocess.call", [["touch", str(marker)]]),
        ("builtins.exec", [f"open({str(marker)!r}, 'w')"]),
        ("sec_jobs.os.system", [f"touch {marker}"]),
        ("pathlib.Path.touch", [str(marker)]),
        ("Touch.__globals__", [str(marker)]),
        ("__import__", ["os"]),
    ]
    for class_name, args in hostile:
        resque.enqueue("q", class_name, *args)
    proc = burst_worker(redis_url, tmp_path, mode)
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists()
    failures = resque.failures.all(0, 100)
    assert len(failures) == len(hostile)
    for entry in failures:
        assert entry.record is not None
        assert "Could not find job class" in entry.record.error
