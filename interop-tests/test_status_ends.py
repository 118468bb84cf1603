"""php-resque's own ``Resque_Job_Status`` on a tracked job whose worker was killed mid-job:
once our pruner has taken the job, the status is final (3, with the 24 h expiry) or, when
the job went back on its queue (reliable mode), waiting (1): never "running" with nobody
running it (chrisboulton/php-resque#272, #149). The fork's status prefix included.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import uuid

import pytest
import redis
from harness import HERE, Peer, Peers
from waiting import wait_for

from resque_compat import JobStatus
from resque_compat.failures import Failures
from resque_compat.protocol import Keys
from resque_compat.worker import pruning

Q = "status-ends"


def _tracked_sleep(r: redis.Redis, prefix: str) -> str:
    """A tracked job as php-resque enqueues it (the fork's ``prefix`` when given)."""
    job_id = uuid.uuid4().hex
    now = int(time.time())
    payload = {"class": "Interop::Sleep", "args": [60], "id": job_id}
    if prefix:
        payload.update(prefix=prefix, queue_time=now)
    key = f"resque:job:{prefix}_{job_id}:status" if prefix else f"resque:job:{job_id}:status"
    r.set(key, json.dumps({"status": 1, "updated": now, "started": now, "result": None}, separators=(",", ":")))
    r.sadd("resque:queues", Q)
    r.rpush(f"resque:queue:{Q}", json.dumps(payload, separators=(",", ":")))
    return job_id


@pytest.mark.parametrize("reliable", [False, True], ids=["default", "reliable"])
def test_php_sees_the_status_end_after_our_worker_was_killed(
    php: Peer, python_worker: Peer, peers: Peers, r: redis.Redis, reliable: bool
) -> None:
    prefix = "acme" if php.name == "php-fork" else ""
    job_id = _tracked_sleep(r, prefix)
    args = [php.name, "status", job_id, *([prefix] if prefix else [])]
    cmd = [*python_worker.argv, "work", "--queues", Q, "--interval", "0.1", "--import", "pyjobs"]
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(
            [*cmd, *(["--reliable"] if reliable else [])], env=python_worker.environ(peers.server),
            stdout=subprocess.DEVNULL, stderr=log, cwd=HERE, start_new_session=True,
        )  # fmt: skip
        try:
            wait_for(lambda: peers.run(*args)["status"] == JobStatus.RUNNING, what="the job to run")
        finally:
            os.killpg(proc.pid, signal.SIGKILL)  # the worker and its job child: nobody left to record it
            proc.wait()
    assert peers.run(*args) == {"tracking": True, "status": JobStatus.RUNNING}  # what php-resque alone leaves
    me = f"{socket.gethostname()}:1:{Q}"  # a live worker of this host with the same queues prunes it
    keys = Keys()
    pruned = pruning.try_prune(r, keys, Failures(r, keys), me, [Q], heartbeat_interval=60, prune_interval=300)
    assert pruned and len(pruned) == 1
    key = f"resque:job:{prefix}_{job_id}:status" if prefix else f"resque:job:{job_id}:status"
    if reliable:
        assert peers.run(*args) == {"tracking": True, "status": JobStatus.WAITING}
        assert r.ttl(key) == -1 and r.llen(f"resque:queue:{Q}") == 1
    else:
        assert peers.run(*args) == {"tracking": True, "status": JobStatus.FAILED}
        assert 0 < r.ttl(key) <= 86400 and r.llen("resque:failed") == 1
