"""Recurring schedules: file and persistent_schedules, dynamic changes, firing, clock jumps."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import redis

from resque_compat import Resque
from resque_compat.protocol import ScheduleEntry, timefmt
from resque_compat.scheduler import Recurring, RecurringSchedule, ScheduleError, ScheduleStore, load_schedule_file

YAML = """
every_minute:
  class: GoodJob
  every: 1m
  queue: default
  args: tick
nightly:
  cron: "0 3 * * * UTC"
  class: Report
  queue: reports
  args:
    kind: daily
  description: the nightly report
NoClassGiven:
  every: ["1h", {first_in: "10s"}]
  queue: default
"""


def test_schedule_file_yaml(tmp_path: Path) -> None:
    path = tmp_path / "schedule.yml"
    path.write_text(YAML)
    schedules = load_schedule_file(path)
    assert set(schedules) == {"every_minute", "nightly", "NoClassGiven"}
    assert schedules["every_minute"].every == 60
    assert schedules["every_minute"].args == ["tick"]  # scalar -> [scalar]
    assert schedules["nightly"].args == [{"kind": "daily"}]  # hash -> [hash]
    assert schedules["nightly"].cron is not None
    assert schedules["nightly"].description == "the nightly report"
    assert schedules["NoClassGiven"].class_name == "NoClassGiven"  # Ruby: the name is the class
    assert schedules["NoClassGiven"].first_in == 10


def test_schedule_file_json(tmp_path: Path) -> None:
    path = tmp_path / "schedule.json"
    path.write_text(json.dumps({"j": {"class": "J", "cron": "*/5 * * * *", "queue": "q", "args": [1, 2]}}))
    assert load_schedule_file(path)["j"].args == [1, 2]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "bad:\n  class: J\n  queue: q\n  cron: '61 * * * *'\n",
            "schedule 'bad': invalid cron '61 \\* \\* \\* \\*': minute",
        ),
        ("bad:\n  class: J\n  queue: q\n  every: soon\n", "schedule 'bad': invalid every"),
        ("bad:\n  class: J\n  queue: q\n", "schedule 'bad': needs 'cron' or 'every'"),
        ("bad:\n  class: J\n  every: 1m\n", "schedule 'bad': 'queue' is required"),
        ("bad: just a string\n", "schedule 'bad': expected a mapping"),
        ("- a\n- b\n", "expected a mapping of schedule names"),
        ("a: [unclosed\n", "not valid YAML"),
    ],
)
def test_invalid_schedule_file_fails_at_load(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "schedule.yml"
    path.write_text(content)
    with pytest.raises(ScheduleError, match=message):
        load_schedule_file(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ScheduleError, match="cannot read schedule file"):
        load_schedule_file(tmp_path / "nope.yml")


def test_store_writes_resque_schedulers_format(resque: Resque, r: redis.Redis) -> None:
    store = ScheduleStore(resque)
    store.set("every_minute", ScheduleEntry(class_="GoodJob", every="1m", queue="default", args=["tick"]))
    assert r.hget("resque:persistent_schedules", "every_minute") == (
        b'{"class":"GoodJob","every":"1m","queue":"default","args":["tick"]}'
    )
    assert r.smembers("resque:schedules_changed") == {b"every_minute"}
    with pytest.raises(ScheduleError, match="invalid cron"):
        store.set("bad", ScheduleEntry(class_="J", cron="nope", queue="q"))
    assert store.remove("every_minute") is True
    assert store.remove("every_minute") is False
    assert r.hlen("resque:persistent_schedules") == 0


def test_reads_schedules_ruby_wrote(resque: Resque, r: redis.Redis) -> None:
    r.hset(
        "resque:persistent_schedules",
        "every_minute",
        '{"class":"GoodJob","every":"1m","queue":"default","args":["tick"]}',
    )
    r.hset("resque:persistent_schedules", "broken", "{not json")
    r.hset("resque:persistent_schedules", "noqueue", '{"class":"GoodJob","every":"1m"}')
    recurring = Recurring(resque)
    recurring.load(now=1000.0)
    assert list(recurring.schedules) == ["every_minute"]  # the unusable ones are skipped, logged
    assert recurring.schedules["every_minute"].next_fire == 1060.0


def test_firing_writes_the_job_and_last_enqueued_at(resque: Resque, r: redis.Redis) -> None:
    r.hset(
        "resque:persistent_schedules", "tick", '{"class":"GoodJob","every":"10s","queue":"default","args":"one-arg"}'
    )
    recurring = Recurring(resque)
    recurring.load(now=1000.0)
    assert recurring.tick(1005.0) == []
    assert recurring.tick(1010.0) == ["tick"]
    assert r.lrange("resque:queue:default", 0, -1) == [b'{"class":"GoodJob","args":["one-arg"]}']
    assert r.smembers("resque:queues") == {b"default"}
    assert r.hget("resque:delayed:last_enqueued_at", "tick") == timefmt.started(1010.0).encode()
    assert recurring.schedules["tick"].next_fire == 1020.0


def test_clock_jump_forward_fires_once_not_a_burst(resque: Resque, r: redis.Redis) -> None:
    r.hset("resque:persistent_schedules", "tick", '{"class":"J","every":"10s","queue":"q"}')
    r.hset("resque:persistent_schedules", "cron", '{"class":"C","cron":"* * * * * UTC","queue":"q"}')
    recurring = Recurring(resque)
    recurring.load(now=1_800_000_000.0)
    fired = recurring.tick(1_800_000_000.0 + 86400)  # a day later: 8,640 missed "every" runs
    assert sorted(fired) == ["cron", "tick"]
    assert r.llen("resque:queue:q") == 2
    assert recurring.tick(1_800_000_000.0 + 86401) == []


def test_clock_jump_backwards_recomputes(resque: Resque, r: redis.Redis) -> None:
    r.hset("resque:persistent_schedules", "tick", '{"class":"J","every":"10s","queue":"q"}')
    recurring = Recurring(resque)
    recurring.load(now=5000.0)
    recurring.tick(5000.0)
    assert recurring.tick(1000.0) == []  # an hour+ back: no waiting out the jump
    assert recurring.schedules["tick"].next_fire == 1010.0
    assert recurring.tick(1010.0) == ["tick"]


def test_non_master_advances_without_firing(resque: Resque, r: redis.Redis) -> None:
    r.hset("resque:persistent_schedules", "tick", '{"class":"J","every":"10s","queue":"q"}')
    recurring = Recurring(resque)
    recurring.load(now=1000.0)
    assert recurring.tick(1010.0, fire=False) == []
    assert r.llen("resque:queue:q") == 0
    assert recurring.schedules["tick"].next_fire == 1020.0


def test_dynamic_changes(resque: Resque, r: redis.Redis, tmp_path: Path) -> None:
    path = tmp_path / "s.yml"
    path.write_text("from_file:\n  class: F\n  every: 30s\n  queue: q\n")
    store = ScheduleStore(resque)
    recurring = Recurring(resque, load_schedule_file(path))
    recurring.load(now=1000.0)
    assert set(recurring.schedules) == {"from_file"}
    store.set("added", ScheduleEntry(class_="A", every="5s", queue="q"))
    store.set("from_file", ScheduleEntry(class_="Override", every="1m", queue="q"))  # Redis wins
    assert sorted(recurring.apply_changes(now=1001.0)) == ["added", "from_file"]
    assert recurring.schedules["added"].next_fire == 1006.0
    assert recurring.schedules["from_file"].class_name == "Override"
    assert r.scard("resque:schedules_changed") == 0
    store.remove("added")
    store.remove("from_file")  # back to the file's entry
    recurring.apply_changes(now=1002.0)
    assert set(recurring.schedules) == {"from_file"}
    assert recurring.schedules["from_file"].class_name == "F"


def test_unchanged_reload_keeps_next_time(resque: Resque, r: redis.Redis) -> None:
    r.hset("resque:persistent_schedules", "tick", '{"class":"J","every":"10s","queue":"q"}')
    recurring = Recurring(resque)
    recurring.load(now=1000.0)
    recurring.load(now=1005.0)
    assert recurring.schedules["tick"].next_fire == 1010.0


def test_cron_schedule_fires_at_its_time(resque: Resque, r: redis.Redis) -> None:
    schedule = RecurringSchedule.from_config("n", {"class": "N", "cron": "0 3 * * * UTC", "queue": "q"})
    recurring = Recurring(resque, {"n": schedule})
    start = 1_795_662_000.0  # 2026-11-26 00:20:00 UTC
    recurring.load(now=start)
    due = recurring.schedules["n"].next_fire
    assert due is not None
    assert time.gmtime(due)[3:6] == (3, 0, 0)
    assert recurring.tick(due - 1) == []
    assert recurring.tick(due) == ["n"]
