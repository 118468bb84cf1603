"""Python values for the Ruby types ActiveJob serializes that plain JSON cannot carry.

Each is the ordinary Python type where one fits (a Symbol *is* a str, a Duration *is* a
timedelta, an ActiveSupport::TimeWithZone *is* a datetime), so a job can use it as such;
the subclass only remembers which Ruby type it came from, so that enqueueing it again writes
the same serializer Rails wrote.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit


class Symbol(str):
    """A Ruby Symbol (``:sym``). Equal to, and hashed as, its name: ``d["lang"]`` finds a
    ``Symbol("lang")`` key, and a dict key that is a Symbol goes back in ``_aj_symbol_keys``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f":{self!s}"


class RubyDateTime(datetime):
    """A value Ruby held as ``DateTime`` (not ``Time``): written back with DateTimeSerializer."""


class TimeWithZone(datetime):
    """A value Ruby held as ``ActiveSupport::TimeWithZone``: written back with its serializer.
    ActiveJob keeps only the UTC offset, not the zone's name (the job's ``timezone`` has it)."""


class Duration(timedelta):
    """``ActiveSupport::Duration``: a timedelta of ``value`` seconds that keeps Rails' ``parts``
    (``{"months": 1}``, ``{"days": 2, "minutes": 3}``): a month is 2629746 s on average, but the
    parts say what Ruby adds to a date."""

    parts: Mapping[str, int | float]
    value: int | float

    def __new__(cls, value: int | float, parts: Mapping[str, int | float] | None = None) -> Duration:
        self = super().__new__(cls, seconds=value)
        self.value = value
        self.parts = dict(parts) if parts is not None else build_parts(value)
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (Duration, (self.value, dict(self.parts)))

    def __repr__(self) -> str:
        parts = ", ".join(f"{k}={v!r}" for k, v in self.parts.items())
        return f"Duration({self.value!r}, {parts})" if parts else f"Duration({self.value!r})"


#: ActiveSupport::Duration::PARTS_IN_SECONDS, the parts a plain timedelta is split into.
_TIMEDELTA_PARTS = (("days", 86400), ("hours", 3600), ("minutes", 60))


def build_parts(value: int | float) -> dict[str, int | float]:
    """Parts for a number of seconds, as ``ActiveSupport::Duration.build`` splits it, days at most
    (a timedelta has no months)."""
    if value == 0:
        return {"seconds": 0}
    sign = -1 if value < 0 else 1
    rest: int | float = abs(value)
    parts: dict[str, int | float] = {}
    for name, size in _TIMEDELTA_PARTS:
        whole = int(rest // size)
        if whole:
            parts[name] = whole * sign
        rest -= whole * size
    if rest:
        parts["seconds"] = (int(rest) if float(rest).is_integer() else rest) * sign
    return parts


def timedelta_seconds(delta: timedelta) -> int | float:
    """Whole seconds as an int (Ruby writes ``3600``, not ``3600.0``)."""
    if delta.microseconds == 0:
        return delta.days * 86400 + delta.seconds
    return delta.total_seconds()


@dataclass(frozen=True)
class RubyModule:
    """A Ruby class or module passed as a value (ModuleSerializer): only its name travels."""

    name: str

    def __str__(self) -> str:
        return self.name


class HashWithIndifferentAccess(dict[str, Any]):
    """``ActiveSupport::HashWithIndifferentAccess``: string keys; written back with its marker."""


class RubyKeywords(dict[str, Any]):
    """A keyword-arguments hash (``_aj_ruby2_keywords``) found anywhere but last in the arguments."""


Locator = Callable[["GlobalID"], Any]


@dataclass(frozen=True)
class GlobalID:
    """A GlobalID reference (``gid://app/Model/id``): Rails passes models by reference.

    :meth:`resolve` asks the locator registered for the model name (``@GlobalID.locator("User")``),
    else the default one (``GlobalID.locator()``); nothing is looked up on decoding."""

    gid: str
    _locators: ClassVar[dict[str | None, Locator]] = {}

    @property
    def app(self) -> str:
        return urlsplit(self.gid).netloc

    @property
    def model_name(self) -> str:
        return urlsplit(self.gid).path.lstrip("/").split("/", 1)[0]

    @property
    def model_id(self) -> str:
        path = urlsplit(self.gid).path.lstrip("/")
        return path.split("/", 1)[1] if "/" in path else ""

    @property
    def params(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.gid).query))

    @classmethod
    def locator(cls, model_name: str | None = None) -> Callable[[Locator], Locator]:
        """Decorator: the function that turns a gid of ``model_name`` (None: any model) into an object."""

        def register(func: Locator) -> Locator:
            cls._locators[model_name] = func
            return func

        return register

    @classmethod
    def forget_locators(cls) -> None:
        cls._locators.clear()

    def resolve(self) -> Any:
        """The object this gid names, from the registered locator; LookupError when none is."""
        func = self._locators.get(self.model_name) or self._locators.get(None)
        if func is None:
            raise LookupError(f"no GlobalID locator for {self.model_name!r} (register one with GlobalID.locator)")
        return func(self)

    def __str__(self) -> str:
        return self.gid
