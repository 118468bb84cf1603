"""The store layer: the named operations features call instead of Redis commands.

Ruby Resque's ``data_store.rb`` is the model: one front door, key builders private to it. Today
the door has several rooms, each a module that owns its commands and runs them through one
packing (``resp.py``: a ``Command`` is the wire's words, sync and async alike):

- ``plans.py`` — pure command plans (queues, worker rows, statuses, INFO) that ``client.Resque``
  and ``aio.AsyncResque`` run; the read model the CLI, dashboard, metrics and doctor format;
- ``failures.Failures``, ``scheduler.delayed.DelayedQueue``, ``scheduler.recurring.ScheduleStore``,
  ``history.Sampler``, ``jobs.retrying``, ``jobs.progress.ResqueStatuses`` — the failure lists,
  delayed items, schedules, history samples, retries and resque-status records
  (``scheduler.mover``'s moves are plans too, sent by a sync and an asyncio driver);
- ``store.workers`` — the worker registry: registration, heartbeats, published state, the
  control inbox, and what a pruner reads and removes.

Every key name comes from ``protocol/keys.py`` and every Lua script from ``protocol/scripts.py``
(``tests/test_package_layout.py`` checks both).

The exception, as Sidekiq keeps its fetch outside ``api.rb``: a worker's hot path — the blocking
fetch (BLMOVE into the in-flight list) and the one ``WORKER_CYCLE`` call per job in
``worker/cycle.py`` — talks to Redis itself. That call owns its connection and its retry (a call
repeated after a cut carries the count seen before it, so the script tells a lost reply from a
call that never ran); a layer between would add a hop per job and hide that, and the call is
already built in one typed place (``protocol/cycle.py``).
"""
