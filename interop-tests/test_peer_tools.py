"""The peers' own tools on data resque-compat wrote, and our tools on theirs.

Ruby's ``Resque::Failure`` (all / requeue / remove) and node-resque's ``queue.failed`` /
``retryAndRemoveFailed`` on failures our worker recorded; php-resque's ``Resque_Job_Status`` on
statuses we wrote and our worker updated; resque-web's pages on our queues, workers, working
records and failures; Ruby's ``Resque::Job.destroy`` and php-resque's ``Resque::dequeue`` on
jobs we enqueued, and our ``destroy`` / ``dequeue`` on jobs they enqueued.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest
import redis
from harness import Peer, Peers, Running, text
from waiting import wait_for

from resque_compat import JobStatus, Resque
from resque_compat.protocol import JobPayload

Q = "tools"
ARGS = [{"text": "héllo ✓ 😀", "path": "a/b", "nested": {"m": {}, "l": []}, "big": 2**64}, "x/y", 3.25, None, True]


def queue_items(r: redis.Redis, queue: str = Q) -> list[dict[str, object]]:
    return [json.loads(x) for x in r.lrange(f"resque:queue:{queue}", 0, -1)]


# -- removing jobs: theirs on ours, ours on theirs ---------------------------------------------------


def test_ruby_destroy_removes_jobs_we_enqueued(ruby: Peer, peers: Peers, resque: Resque, r: redis.Redis) -> None:
    resque.enqueue(Q, "Interop::Echo", *ARGS)
    resque.enqueue(Q, "Interop::Echo", 1)
    resque.enqueue(Q, "Interop::Echo", 2, track=True)  # php-style payload: matched by class only
    resque.enqueue(Q, "Other::Job", *ARGS)
    # with args, Ruby LREMs its own encoding: our bytes must equal Ruby's
    assert peers.run("ruby", "destroy", Q, "Interop::Echo", json.dumps(ARGS)) == {"removed": 1}
    assert [i["args"] for i in queue_items(r)] == [[1], [2], ARGS]
    assert peers.run("ruby", "destroy", Q, "Interop::Echo") == {"removed": 2}
    assert [i["class"] for i in queue_items(r)] == ["Other::Job"]


def test_php_dequeue_removes_jobs_we_enqueued(php: Peer, peers: Peers, resque: Resque, r: redis.Redis) -> None:
    first = resque.enqueue(Q, "App\\Jobs\\Echo", {"to": "a/b", "n": 1}, track=True)
    second = resque.enqueue(Q, "App\\Jobs\\Echo", {"to": "c", "n": 2}, track=True)
    resque.enqueue(Q, "Interop_Echo", {"keep": True})
    resque.enqueue(Q, "App\\Jobs\\Echo", {"to": "d", "n": 3})
    assert first and second
    assert peers.run(php.name, "dequeue", Q, "App\\Jobs\\Echo", second) == {"removed": 1}
    assert [i.get("id") for i in queue_items(r)][:2] == [first, None]
    assert peers.run(php.name, "dequeue", Q, "App\\Jobs\\Echo") == {"removed": 2}
    assert queue_items(r) == [{"class": "Interop_Echo", "args": [{"keep": True}]}]


def test_our_destroy_and_dequeue_on_ruby_jobs(ruby: Peer, peers: Peers, resque: Resque, r: redis.Redis) -> None:
    jobs = [[Q, "Interop::Echo", ARGS], [Q, "Interop::Echo", [7]], [Q, "Interop::Sleep", [0]]]
    assert peers.run("ruby", "enqueue_many", json.dumps(jobs)) == {"ok": [True, True, True]}
    assert resque.destroy(Q, "Interop::Echo", *ARGS) == 1  # exact bytes of Ruby's encoding
    assert resque.dequeue(Q, "Interop::Echo") == 1
    assert queue_items(r) == [{"class": "Interop::Sleep", "args": [0]}]


def test_our_dequeue_on_php_jobs(php: Peer, peers: Peers, resque: Resque, r: redis.Redis) -> None:
    jobs = [[Q, "App\\Jobs\\Echo", {"n": 1, "who": "a"}, True], [Q, "App\\Jobs\\Echo", {"n": 2, "who": "b"}, True],
            [Q, "App\\Jobs\\Echo", {"n": 3, "who": "c"}, False], [Q, "Interop_Echo", {"n": 4}, False]]  # fmt: skip
    ids = peers.run(php.name, "enqueue_many", json.dumps(jobs))["ids"]
    assert resque.dequeue(Q, "App\\Jobs\\Echo", job_id=ids[0]) == 1
    assert resque.dequeue(Q, "App\\Jobs\\Echo", args={"n": 2, "who": "b", "other": 0}) == 1
    assert [i["id"] for i in queue_items(r)] == ids[2:]
    assert resque.dequeue(Q, "\\App\\Jobs\\Echo") == 1  # php-resque's leading backslash is the same class
    assert [i["class"] for i in queue_items(r)] == ["Interop_Echo"]


def test_node_and_us_remove_each_others_jobs(node: Peer, peers: Peers, resque: Resque, r: redis.Redis) -> None:
    peers.run("node", "enqueue_many", json.dumps([[Q, "echo", [1]], [Q, "echo", [2]], [Q, "Interop::Echo", [3]]]))
    resque.enqueue(Q, "Interop::Echo", 4)
    assert resque.dequeue(Q, "echo") == 2
    assert peers.run("node", "del_by_class", Q, "Interop::Echo") == {"removed": 2}
    assert r.llen(f"resque:queue:{Q}") == 0


# -- statuses --------------------------------------------------------------------------------------


def test_php_reads_statuses_we_write(php: Peer, peers: Peers, resque: Resque) -> None:
    job_id = resque.enqueue(Q, "App\\Jobs\\Echo", {"n": 1}, track=True)
    assert job_id
    assert peers.run(php.name, "status", job_id) == {"tracking": True, "status": JobStatus.WAITING}
    resque.stop_tracking(job_id)
    assert peers.run(php.name, "status", job_id) == {"tracking": False, "status": False}


def test_php_reads_statuses_our_worker_updated(
    php: Peer, python_worker: Peer, peers: Peers, resque: Resque, r: redis.Redis
) -> None:
    ok = resque.enqueue(Q, "App\\Jobs\\Echo", {"n": 1}, track=True)
    ruby_style = resque.enqueue(Q, "Interop::Echo", {"n": 2}, track=True)
    bad = resque.enqueue(Q, "Interop::Fail", {"n": 3}, track=True)
    assert ok and ruby_style and bad
    peers.work("python", Q)
    for job_id, want in ((ok, JobStatus.COMPLETE), (ruby_style, JobStatus.COMPLETE), (bad, JobStatus.FAILED)):
        assert peers.run(php.name, "status", job_id) == {"tracking": True, "status": want}
        assert 0 < r.ttl(f"resque:job:{job_id}:status") <= 86400


def test_our_worker_updates_statuses_php_enqueued(php: Peer, python_worker: Peer, peers: Peers) -> None:
    jobs = [[Q, "App\\Jobs\\Echo", {"n": 1}, True], [Q, "Interop_Fail", {"n": 2}, True]]
    ok, bad = peers.run(php.name, "enqueue_many", json.dumps(jobs))["ids"]
    peers.work("python", Q)
    assert peers.run(php.name, "status", ok) == {"tracking": True, "status": JobStatus.COMPLETE}
    assert peers.run(php.name, "status", bad) == {"tracking": True, "status": JobStatus.FAILED}


# -- failures --------------------------------------------------------------------------------------


def test_ruby_failure_tools_on_our_failures(
    ruby: Peer, python_worker: Peer, peers: Peers, resque: Resque, r: redis.Redis
) -> None:
    resque.enqueue(Q, "Interop::Fail", "first", {"m": {}})
    resque.enqueue(Q, "Interop::Fail", "second")
    peers.work("python", Q)
    listed = peers.run("ruby", "failures")
    assert [f["payload"]["args"][0] for f in listed] == ["first", "second"]
    for entry in listed:
        assert entry["queue"] == Q and entry["error"] == "interop failure" and entry["worker"]
        assert isinstance(entry["backtrace"], list) and entry["failed_at"]
    assert peers.run("ruby", "requeue", "0") == {"ok": True}
    assert queue_items(r) == [{"class": "Interop::Fail", "args": ["first", {"m": {}}]}]
    assert resque.failures.get(0).record.retried_at  # type: ignore[union-attr]
    assert peers.run("ruby", "remove_failure", "1") == {"ok": True}
    assert [bytes(e.record.payload) for e in resque.failures.iter() if e.record] == [
        json.dumps(listed[0]["payload"], ensure_ascii=False, separators=(",", ":")).encode()
    ]


def test_node_failure_tools_on_our_failures(node: Peer, python_worker: Peer, peers: Peers, r: redis.Redis) -> None:
    Resque(r).enqueue(Q, "Interop::Fail", "from python", {"path": "a/b"})
    peers.work("python", Q)
    [entry] = peers.run("node", "failures")
    assert entry["queue"] == Q and entry["payload"]["class"] == "Interop::Fail"
    # retryAndRemoveFailed LREMs JSON.stringify(entry): only works if our bytes are what JS re-encodes
    assert peers.run("node", "retry_failure", "0") == {"ok": True}
    assert r.llen("resque:failed") == 0
    [item] = queue_items(r)
    assert (item["class"], item["args"]) == ("Interop::Fail", ["from python", {"path": "a/b"}])


def test_our_failure_tools_on_ruby_failures(ruby: Peer, peers: Peers, resque: Resque, r: redis.Redis) -> None:
    peers.run("ruby", "enqueue_many", json.dumps([[Q, "Interop::Fail", ["a"]], [Q, "Interop::Fail", ["b"]]]))
    peers.run("ruby", "work", Q)
    entries = list(resque.failures.iter())
    assert [JobPayload.decode(bytes(e.record.payload)).args for e in entries if e.record] == [["a"], ["b"]]
    assert resque.failures.retry(0) == Q
    assert queue_items(r) == [{"class": "Interop::Fail", "args": ["a"]}]
    resque.failures.remove(1)
    listed = peers.run("ruby", "failures")
    assert len(listed) == 1 and listed[0]["retried_at"]


# -- resque-web --------------------------------------------------------------------------------------


def web(peers: Peers, pages: dict[str, str | None]) -> dict[str, str]:
    """Render resque-web pages in one Ruby process; returns the problems, by path (none: {})."""
    seen = peers.run("ruby", "web_many", json.dumps(pages))
    problems = {path: f"HTTP {page['status']}" for path, page in seen.items() if page["status"] != 200}
    problems |= {path: f"no {pages[path]!r} in the page" for path, page in seen.items() if not page["has_text"]}
    return problems


def test_resque_web_renders_our_queues(ruby: Peer, peers: Peers, resque: Resque) -> None:
    resque.enqueue(Q, "Interop::Echo", *ARGS)
    resque.enqueue(Q, "App\\Jobs\\Echo", {"to": "a/b"}, track=True)
    pages: dict[str, str | None] = {
        "/overview": Q, "/queues": Q, f"/queues/{Q}": "App\\Jobs\\Echo",
        "/stats/resque": None, "/stats.txt": f"queues.{Q}=2", "/stats/keys": None,
    }  # fmt: skip
    assert web(peers, pages) == {}


@pytest.fixture
def busy_python_worker(python_worker: Peer, peers: Peers, resque: Resque, r: redis.Redis) -> Iterator[str]:
    """Our worker, registered and in the middle of a job; yields its id."""
    resque.enqueue(Q, "Interop::Fail", "for the failed page")
    resque.enqueue(Q, "Interop::Sleep", 30)
    worker: Running = peers.start_worker("python", Q)
    try:
        prefix = f"{socket.gethostname()}:{worker.proc.pid}:"

        def working() -> bool:
            return any(r.exists(f"resque:worker:{text(w)}") for w in r.smembers("resque:workers"))

        wait_for(working, what="our worker to pick up the sleep job")
        mine = [text(w) for w in r.smembers("resque:workers") if text(w).startswith(prefix)]
        assert len(mine) == 1, f"our worker is not registered as {prefix}…: {mine}"
        yield mine[0]
    finally:
        worker.proc.kill()  # the sleep job is not waited for
        worker.proc.wait()


def test_resque_web_renders_our_workers(ruby: Peer, peers: Peers, busy_python_worker: str) -> None:
    wid = busy_python_worker
    pid = wid.split(":", 2)[1]
    pages: dict[str, str | None] = {
        "/overview": "Interop::Sleep", "/working": "Interop::Sleep", "/workers": pid, f"/workers/{wid}": pid,
        "/workers/all": pid, "/failed": "interop failure", "/failed?start=0": "Interop::Fail",
        "/stats/resque": None, "/stats.txt": "resque.working=1",
    }  # fmt: skip
    assert web(peers, pages) == {}
