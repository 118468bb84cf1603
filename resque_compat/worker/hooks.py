"""Worker hooks, as Resque names them: ``before_first_fork``, ``before_fork``, ``after_fork``,
``before_pause``, ``after_pause``, ``worker_exit``.

Register with decorators on :data:`worker_hooks` (what ``resque-compat work`` uses)::

    from resque_compat.worker import worker_hooks

    @worker_hooks.after_fork
    def reconnect_db(job): ...

``before_first_fork``/``before_pause``/``after_pause``/``worker_exit`` receive the worker;
``before_fork`` (parent) and ``after_fork`` (child) the job; without fork neither runs, as in Ruby.
With ``--jobs-per-fork`` both run once per child, given its first job (as resque-multi-job-forks).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger("resque_compat.worker")

Hook = Callable[[Any], object]
H = TypeVar("H", bound=Hook)
KINDS = ("before_first_fork", "before_fork", "after_fork", "before_pause", "after_pause", "worker_exit")


class WorkerHooks:
    """Lists of worker hooks by kind; each runs in registration order."""

    def __init__(self) -> None:
        self._hooks: dict[str, list[Hook]] = {kind: [] for kind in KINDS}

    def add(self, kind: str, func: Hook) -> None:
        if kind not in self._hooks:
            raise ValueError(f"unknown worker hook {kind!r} (one of {', '.join(KINDS)})")
        self._hooks[kind].append(func)

    def run(self, kind: str, arg: Any) -> None:
        """Run every hook of a kind; exceptions propagate (the caller decides what they mean)."""
        for func in self._hooks[kind]:
            func(arg)

    def run_logged(self, kind: str, arg: Any) -> None:
        """Run hooks whose failure must not stop the worker (pause, exit): log and go on."""
        for func in self._hooks[kind]:
            try:
                func(arg)
            except Exception:
                log.exception("%s hook %r failed", kind, func)

    def clear(self) -> None:
        for hooks in self._hooks.values():
            hooks.clear()

    def _decorator(self, kind: str) -> Callable[[H], H]:
        def register(func: H) -> H:
            self.add(kind, func)
            return func

        return register

    def before_first_fork(self, func: H) -> H:
        return self._decorator("before_first_fork")(func)

    def before_fork(self, func: H) -> H:
        return self._decorator("before_fork")(func)

    def after_fork(self, func: H) -> H:
        return self._decorator("after_fork")(func)

    def before_pause(self, func: H) -> H:
        return self._decorator("before_pause")(func)

    def after_pause(self, func: H) -> H:
        return self._decorator("after_pause")(func)

    def worker_exit(self, func: H) -> H:
        return self._decorator("worker_exit")(func)


#: The hooks ``resque-compat work`` runs (modules named by ``--import`` register here).
worker_hooks = WorkerHooks()
