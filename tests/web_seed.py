"""Peer-shaped Redis data for the dashboard tests: the literal records the reference observed
from Ruby Resque 3.0, php-resque (chrisboulton and resque/php-resque), node-resque 9.7.1,
pyres 1.5 and resque-scheduler 5.0, plus broken ones and hostile text."""

from __future__ import annotations

import json
import time

import redis

NS = "resque:"

RUBY_WORKER = "vm:10947:default"
PHP_WORKER = "vm:12167:default"
PHP_FORK_WORKER = "vm:13450:default"
NODE_WORKER = "nodebox:22178:math"
PYRES_WORKER = "pybox:22400:math"
IDLE_WORKER = "vm:11371:default,other"
BROKEN_WORKER = "vm:999:default"

XSS = '<script>alert("x")</script>'

QUEUE_ITEMS = {
    "default": [
        b'{"class":"GoodJob","args":[1,"two",{"k":"v","sym":"val"},3.5,null,true]}',
        b'{"class":"PHP_Job","args":[{"time":1764188400,"array":{"test":"test"},"path":"a\\/b","utf":"\\u00e9"}],'
        b'"id":"8f7086daa1acfe723bebc6851dcceaa2","queue_time":1795724486.560175}',
        b'{"class":"ActiveJob::QueueAdapters::ResqueAdapter::JobWrapper","args":[{"job_class":"WelcomeMailJob",'
        b'"job_id":"b6b4","queue_name":"default","arguments":[7]}]}',
        b"not json",
        json.dumps({"class": XSS, "args": [XSS]}, separators=(",", ":")).encode(),
    ],
    "math": [
        b'{"class":"add","queue":"math","args":[1,2]}',
        b'{"class": "jobs.Add", "args": [1, 2], "enqueue_timestamp": 1795725915.497698}',
    ],
    "other": [b'{"class":"BadJob","args":["x"]}'],
}

FAILURES = [
    # Ruby Resque 3.0
    b'{"failed_at":"2026/11/26 20:20:42 UTC","payload":{"class":"BadJob","args":["x"]},"exception":"ArgumentError",'
    b'"error":"boom: [\\"x\\"]","backtrace":["<scripts>/jobs.rb:13:in `perform\'"],"worker":"vm:10947:default",'
    b'"queue":"default"}',
    # Ruby, already retried
    b'{"failed_at":"2026/11/26 20:21:41 UTC","payload":{"class":"BadJob","args":[1]},"exception":"RuntimeError",'
    b'"error":"e1","backtrace":[],"worker":"vm:12291:default","queue":"default",'
    b'"retried_at":"2026/11/26 20:21:41 UTC"}',
    # php-resque (chrisboulton)
    b'{"failed_at":"Thu Nov 26 20:21:39 UTC 2026","payload":{"class":"Bad_PHP_Job","args":[{"n":1}],'
    b'"id":"3aabe8b46114aeaa9e784281ddb8d1da","queue_time":1795724498.904539},"exception":"Exception",'
    b'"error":"Unable to run this job!","backtrace":['
    b'"#0 <harness>\\/vendor\\/chrisboulton\\/php-resque\\/lib\\/Resque\\/Job.php(194): '
    b'Bad_PHP_Job->perform()","#1 {main}"],"worker":"vm:12167:default","queue":"default"}',
    # resque/php-resque 1.3.6
    b'{"failed_at":"2026-11-26T20:23:05+00:00","payload":{"class":"PHP_Error_Job","args":[{"n":1}],'
    b'"id":"df12a501d9e8117acd35c83c251356bd","prefix":"","queue_time":1795724576.491525},"exception":"Error",'
    b'"error":"Call to undefined function callToUndefinedFunction()","backtrace":[],"worker":"vm:13450:default",'
    b'"queue":"default"}',
    # node-resque 9.7.1
    b'{"worker":"vm:22178","queue":"math","payload":{"class":"boom","queue":"math","args":["intentional failure"]},'
    b'"exception":"Error","error":"intentional failure",'
    b'"backtrace":["    at Worker.perform (<scratch>/nr/demo.js:15:43)"],'
    b'"failed_at":"Thu Nov 26 2026 20:45:03 GMT+0000 (Coordinated Universal Time)"}',
    # pyres 1.5
    b'{"failed_at": "2026/11/26 20:45:16", "payload": {"class": "jobs.Boom", "args": ["intentional failure"], '
    b'"enqueue_timestamp": 1795725915.4980042}, "exception": "type", "error": "type: <class \'ValueError\'>", '
    b'"backtrace": ["Traceback (most recent call last):"], "queue": "math", "worker": "vm:22400:math"}',
    # broken
    b"{not a failure",
    # hostile text
    json.dumps(
        {
            "failed_at": "2026/11/26 20:20:42 UTC",
            "payload": {"class": "Evil", "args": [XSS]},
            "exception": XSS,
            "error": "<img src=x onerror=alert(1)>",
            "backtrace": [],
            "worker": "vm:1:default",
            "queue": "default",
        },
        separators=(",", ":"),
    ).encode(),
]


def seed(client: redis.Redis, now: int | None = None) -> dict[str, int]:
    """Write every peer's records under ``resque:``; returns a few facts the tests check."""
    t = int(time.time()) if now is None else now
    pipe = client.pipeline(transaction=False)
    for queue, items in QUEUE_ITEMS.items():
        pipe.sadd(NS + "queues", queue)
        pipe.rpush(NS + "queue:" + queue, *items)
    pipe.rpush(NS + "failed", *FAILURES)
    pipe.set(NS + "stat:processed", 12)
    pipe.set(NS + "stat:failed", 5)

    workers = {
        RUBY_WORKER: (
            b'{"queue":"default","run_at":"2026-11-26T20:20:39Z","payload":{"class":"GoodJob","args":["slow"]}}',
            "2026-11-26 20:20:39 +0000",
            "2026-11-26T20:20:39+00:00",
        ),
        PHP_WORKER: (
            b'{"queue":"default","run_at":"Thu Nov 26 20:21:31 UTC 2026","payload":{"class":"PHP_Job","args":[{"n":1}],'
            b'"id":"8f7086daa1acfe723bebc6851dcceaa2","queue_time":1795724486.560175}}',
            "Thu Nov 26 20:21:31 UTC 2026",
            None,
        ),
        PHP_FORK_WORKER: (None, "2026-11-26T20:22:56+00:00", None),
        NODE_WORKER: (
            b'{"run_at":"Thu Nov 26 2026 20:45:03 GMT+0000 (Coordinated Universal Time)","worker":"nodebox:22178",'
            b'"payload":{"class":"slow","args":{},"queue":"math"},"queue":"math"}',
            "1795725904",
            None,
        ),
        PYRES_WORKER: (
            b'{"queue": "math", "run_at": "1795725916", "payload": {"class": "jobs.Slow", "args": [], '
            b'"enqueue_timestamp": 1795725915.4981325}}',
            "1795725916",
            None,
        ),
        IDLE_WORKER: (None, "2026-11-26 21:20:57 +0100", "2026-11-26T21:20:57+01:00"),
        BROKEN_WORKER: (b"{broken", "yesterday-ish", None),
    }
    for wid, (job, started, beat) in workers.items():
        pipe.sadd(NS + "workers", wid)
        if job is not None:
            pipe.set(NS + "worker:" + wid, job)
        pipe.set(NS + "worker:" + wid + ":started", started)
        if beat is not None:
            pipe.hset(NS + "workers:heartbeat", wid, beat)
    pipe.set(NS + "stat:processed:" + RUBY_WORKER, 1)
    pipe.set(NS + "stat:failed:" + RUBY_WORKER, 1)
    pipe.set(NS + "stat:processed:nodebox:22178", 4)
    pipe.set(NS + "worker:ping:nodebox:22178", f'{{"time":{t},"name":"nodebox:22178","queues":"math"}}')

    # php-resque status records (cb and fork)
    pipe.set(NS + "job:8f7086daa1acfe723bebc6851dcceaa2:status", '{"status":2,"updated":1795724491}')
    pipe.set(
        NS + "job:df12a501d9e8117acd35c83c251356bd:status",
        '{"status":4,"updated":1795724579,"started":1795724576,"result":{"ok":true}}',
        ex=86400,
    )

    # resque-scheduler: delayed items (Ruby and node shapes) and a persisted schedule
    soon, later = t + 3600, t + 7200
    ruby_item = '{"class":"GoodJob","args":["later",{"id":7}],"queue":"default"}'
    node_item = '{"class":"add","queue":"math","args":[3,4]}'
    pipe.rpush(NS + f"delayed:{soon}", ruby_item, '{"class":"GoodJob","args":["later2"],"queue":"default"}')
    pipe.sadd(NS + "timestamps:" + ruby_item, f"delayed:{soon}")
    pipe.rpush(NS + f"delayed:{later}", node_item)
    pipe.sadd(NS + "timestamps:" + node_item, f"delayed:{later}")
    pipe.zadd(NS + "delayed_queue_schedule", {str(soon): soon, str(later): later})
    pipe.hset(
        NS + "persistent_schedules",
        "tick",
        '{"class":"GoodJob","every":"1m","queue":"default","args":["tick"],"description":"every minute"}',
    )
    pipe.hset(
        NS + "persistent_schedules",
        "nightly",
        '{"class":"Report","cron":"0 3 * * *","queue":"reports","args":"one-arg"}',
    )
    pipe.hset(NS + "persistent_schedules", "broken", "{oops")
    pipe.hset(NS + "delayed:last_enqueued_at", "tick", "2026-11-26 20:20:39 +0000")
    pipe.execute()
    return {"soon": soon, "later": later}
