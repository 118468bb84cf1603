"""The job registry: the only way a class name in a payload becomes Python code.

A payload can name any class; the worker runs only what was registered here, by exact
name (PHP's leading backslash aside). Nothing is ever imported because a payload said so.

Two job styles, as the peers define them:

* **Ruby style**: positional arguments. A function ``def welcome(user_id, opts)``, or a class
  whose ``perform`` is a static/class method, with Resque's hooks as class methods whose
  names *start with* ``before_perform``, ``around_perform``, ``after_perform``,
  ``on_failure`` (run in alphabetical order).
* **PHP style**: a class whose ``perform(self)`` takes no arguments; the worker sets
  ``self.args`` (the payload's ``args[0]``, a dict), ``self.queue`` and ``self.job_id``,
  calls ``set_up``/``perform``/``tear_down``; ``perform``'s return value becomes the status
  ``result``.

Either style may carry a retry policy (``retry=Retry(...)``, see ``resque_compat.jobs.retry``);
``status=True`` marks a resque-status job: a class whose ``perform(self)`` reads ``self.uuid``
and ``self.options`` from the payload's ``[uuid, options]`` (``resque_compat.jobs.progress``).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from resque_compat.jobs.retry import Retry
from resque_compat.protocol import normalize_class

Style = Literal["ruby", "php"]
T = TypeVar("T")
HOOK_KINDS = ("before_perform", "around_perform", "after_perform", "on_failure")


class DontPerform(Exception):  # noqa: N818 - Resque's name
    """Raise from a before hook or ``set_up`` to skip the job: counted as processed, not failed."""


class UnresolvableJobError(LookupError):
    """A payload that cannot become a call: it fails before anything runs, its bytes kept."""

    resque_name: str | None = None


class UnknownJobError(UnresolvableJobError):
    """The payload names a class nobody registered (php-resque: "Could not find job class X.")."""

    def __init__(self, name: str) -> None:
        super().__init__(f"Could not find job class {name}.")
        self.name = name


class EnvelopeError(UnresolvableJobError):
    """A wrapper payload (ActiveJob's) whose inner job cannot be read; named as its peer names it."""

    def __init__(self, message: str, resque_name: str | None = None) -> None:
        super().__init__(message)
        self.resque_name = resque_name


@dataclass(frozen=True)
class JobDefinition:
    """A registered job: its payload name, target and style, and its hooks by kind."""

    name: str
    target: Any
    style: Style
    hooks: dict[str, tuple[Callable[..., Any], ...]] = field(default_factory=dict)
    retry: Retry | None = None
    status: bool = False

    def hooks_of(self, kind: str) -> tuple[Callable[..., Any], ...]:
        return self.hooks.get(kind, ())


def _detect_style(target: Any) -> Style:
    if inspect.isclass(target):
        perform = inspect.getattr_static(target, "perform", None)
        if perform is None:
            raise TypeError(f"job class {target.__qualname__} has no perform method")
        if isinstance(perform, (staticmethod, classmethod)):
            return "ruby"
        return "php"
    if callable(target):
        return "ruby"
    raise TypeError(f"cannot register {target!r} as a job: not a class or a function")


def _collect_hooks(target: Any) -> dict[str, tuple[Callable[..., Any], ...]]:
    """Resque's rule: every attribute whose name starts with the hook kind, sorted by name."""
    if not inspect.isclass(target):
        return {}
    hooks: dict[str, tuple[Callable[..., Any], ...]] = {}
    for kind in HOOK_KINDS:
        names = sorted(n for n in dir(target) if n.startswith(kind))
        hooks[kind] = tuple(getattr(target, n) for n in names if callable(getattr(target, n)))
    return hooks


@dataclass(frozen=True)
class Call:
    """What a payload runs: a definition and its arguments. For most payloads the payload's own
    class and ``args``; for a wrapper payload (ActiveJob's) the inner job's, with keyword
    arguments and the wrapper's reading in ``context``.

    For a retry policy (the seam it needs, whatever the payload): :meth:`next_attempt` is the
    ``(class, args)`` payload another attempt is pushed as (ActiveJob: ``executions`` carried,
    as ``retry_job`` does), and ``identity`` the ``(class, args)`` naming the job across
    attempts, for an attempt counter (ActiveJob: ``(job_class, [job_id])``, since its
    ``args`` change with each attempt)."""

    definition: JobDefinition
    class_name: str
    args: list[Any]
    kwargs: dict[str, Any] = field(default_factory=dict)
    context: Any = None
    #: the payload's class and ``args`` as reserved (the wrapper's for an ActiveJob job)
    payload_class: str = ""
    payload_args: list[Any] = field(default_factory=list)
    #: the wrapper ``args`` for another attempt (None: the payload's own)
    retry_args: list[Any] | None = None
    identity: tuple[str, list[Any]] = ("", [])

    def next_attempt(self) -> tuple[str, list[Any]]:
        return self.payload_class, self.payload_args if self.retry_args is None else self.retry_args


#: The call a worker is running (None between jobs): how a job reads its ActiveJob metadata.
current_call: ContextVar[Call | None] = ContextVar("resque_compat_current_call", default=None)


class JobRegistry:
    """Maps payload class names (``SendMail``, ``App\\Jobs\\SendMail``, ``Mailer::Welcome``)
    to job definitions."""

    def __init__(self) -> None:
        self._jobs: dict[str, JobDefinition] = {}

    def register(
        self, name: str, target: Any, *, style: Style | None = None, retry: Retry | None = None, status: bool = False
    ) -> JobDefinition:
        key = normalize_class(name)
        if not key:
            raise ValueError("a job name must not be empty")
        if key in self._jobs and self._jobs[key].target is not target:
            raise ValueError(f"job {name!r} is already registered to {self._jobs[key].target!r}")
        style = style or _detect_style(target)
        if status and style != "php":
            raise TypeError(f"status job {name!r} must be a class with an instance perform(self)")
        definition = JobDefinition(
            key, target, style, _collect_hooks(target), retry=_checked_retry(retry), status=status
        )
        self._jobs[key] = definition
        return definition

    def job(
        self, name: str, *aliases: str, style: Style | None = None, retry: Retry | None = None, status: bool = False
    ) -> Callable[[T], T]:
        """Decorator: ``@registry.job("App\\\\Jobs\\\\SendMail", "SendMail")``."""

        def decorate(target: T) -> T:
            for each in (name, *aliases):
                self.register(each, target, style=style, retry=retry, status=status)
            return target

        return decorate

    def lookup(self, name: str) -> JobDefinition:
        definition = self._jobs.get(normalize_class(name))
        if definition is None:
            raise UnknownJobError(name)
        return definition

    def resolve(self, class_name: str, args: Sequence[Any]) -> Call:
        """The call a payload makes. An ActiveJob wrapper payload resolves to the job registered
        under its ``job_class``, so the inner job's hooks and policies apply as to any job."""
        from resque_compat.activejob.arguments import ArgumentFormatError  # noqa: PLC0415 - cycle
        from resque_compat.activejob.job import is_wrapper, unwrap  # noqa: PLC0415 - cycle

        given = list(args)
        if not is_wrapper(class_name) or class_name in self:
            return Call(
                self.lookup(class_name), class_name, given, payload_class=class_name, payload_args=given,
                identity=(class_name, given),
            )  # fmt: skip
        try:
            unwrapped = unwrap(args)
        except ArgumentFormatError as exc:
            raise EnvelopeError(str(exc), exc.resque_name) from None
        inner = unwrapped.job.job_class
        return Call(
            self.lookup(inner),
            inner,
            unwrapped.args,
            unwrapped.kwargs,
            context=unwrapped.job,
            payload_class=class_name,
            payload_args=given,
            retry_args=unwrapped.retry_args(),
            identity=(inner, [unwrapped.job.id]),
        )

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and normalize_class(name) in self._jobs

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._jobs))

    def __len__(self) -> int:
        return len(self._jobs)

    def unregister(self, name: str) -> None:
        self._jobs.pop(normalize_class(name), None)


#: The registry the ``resque-compat work`` command uses.
default_registry = JobRegistry()


def job(
    name: str, *aliases: str, style: Style | None = None, retry: Retry | None = None, status: bool = False
) -> Callable[[T], T]:
    """Register a job in the default registry: ``@resque_compat.job("Mailer::Welcome")``."""
    return default_registry.job(name, *aliases, style=style, retry=retry, status=status)


def _checked_retry(retry: Any) -> Retry | None:
    if retry is not None and not isinstance(retry, Retry):
        raise TypeError(f"retry= takes a resque_compat.Retry, not {type(retry).__name__}")
    return retry


class JobModuleError(ImportError):
    """A module named by ``--import``/``APP_INCLUDE`` could not be imported; the message says which and why."""


def import_job_modules(names: Iterable[str]) -> None:
    """Import the modules that register jobs (``--import``/``APP_INCLUDE``, for the worker and
    ``doctor``): dotted module names, or paths to ``.py`` files. The current directory is
    importable, as with ``python -m``. Whatever a module raises becomes a :class:`JobModuleError`."""
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    for name in names:
        try:
            if name.endswith(".py") or os.sep in name:
                _import_file(Path(name).resolve())
            else:
                importlib.import_module(name)
        except Exception as exc:
            raise JobModuleError(f"cannot import job module {name!r}: {type(exc).__name__}: {exc}") from exc


def _import_file(path: Path) -> None:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"not a Python file: {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
