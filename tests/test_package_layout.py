"""The package's layering rules that grep can check (issue 15): Lua (``redis.call``) only in
``protocol/scripts.py``, and key strings built and parsed only in ``protocol/keys.py``.

A key literal is found two ways. A string that holds a key segment (``queue:``, ``stat:``,
``delayed:``, ``compat:``, ``:started``, ``_failed`` ...) is one wherever it appears outside
docstrings. A bare key name (``failed``, ``queues``, ``processed`` ...) is also an ordinary word
(a JSON field, a route, an outcome), so it counts only where it names a key: an argument of a key
builder or a string-parsing call, a parameter default, a set member, or a value compared with or
assigned to something named ``*list*`` / ``name``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "resque_compat"
KEYS_MODULE = PACKAGE / "protocol" / "keys.py"
SCRIPTS_MODULE = PACKAGE / "protocol" / "scripts.py"

KEY_SEGMENT = re.compile(
    r"(^|[^\w{-])(queue|stat|worker|workers|delayed|status|resque|compat|timestamps|job|resque-retry|failure-resque-retry):(?=\S|$)"
    r"|:(started|status|pid)$"
)
#: key names that are nothing else
KEY_NAMES = frozenset({
    "failed_queues", "delayed_queue_schedule", "persistent_schedules", "schedules_changed", "pause-all-workers",
    "_statuses", "_kill", "resque_scheduler_master_lock", "resque_scheduler_leader_lock",
    "pruning_dead_workers_in_progress", "delayed:last_enqueued_at",
})  # fmt: skip
#: key names that are ordinary words too: flagged only in a position that names a key
KEY_WORDS = frozenset({"failed", "processed", "queues", "workers", "schedules", "_failed"})
KEY_CALLS = frozenset({
    "stat", "key", "failed_list", "queue", "worker", "endswith", "startswith", "removeprefix", "removesuffix",
})  # fmt: skip

#: strings that hold a key segment but are prose about keys (help text, metric help)
PROSE = frozenset({
    "Track the job's status (php-resque's job:<id>:status); print its id.",
    "The resque/php-resque status prefix (job:<prefix>_<id>:status).",
    "Jobs processed by every worker (stat:processed)",
    "Jobs failed on every worker (stat:failed)",
    "resque: Starting",  # Ruby's procline, not a key
})  # fmt: skip


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _names_a_list(node: ast.AST) -> bool:
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
    return "list" in name or name == "name"


def _call_name(node: ast.Call) -> str:
    func = node.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def _key_positions(tree: ast.AST) -> Iterator[ast.Constant]:
    """Constants in a position that names a key (see the module docstring)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _call_name(node) in KEY_CALLS:
            yield from (a for a in node.args if isinstance(a, ast.Constant))
        elif isinstance(node, ast.Call):
            yield from (k.value for k in node.keywords if k.arg == "default" and isinstance(k.value, ast.Constant))
        elif isinstance(node, ast.arguments):
            yield from (d for d in [*node.defaults, *node.kw_defaults] if isinstance(d, ast.Constant))
        elif isinstance(node, ast.Set):
            yield from (e for e in node.elts if isinstance(e, ast.Constant))
        elif isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(_names_a_list(s) for s in sides):
                yield from (s for s in sides if isinstance(s, ast.Constant))
        elif (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant)
            and any(_names_a_list(t) for t in node.targets)
        ):
            yield node.value


def _text(node: ast.Constant) -> str | None:
    if isinstance(node.value, bytes):
        return node.value.decode(errors="replace")
    return node.value if isinstance(node.value, str) else None


def key_literals(source: str) -> list[tuple[int, str]]:
    tree = ast.parse(source)
    docs = _docstrings(tree)
    in_key_position = {id(c) for c in _key_positions(tree)}
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Constant) or id(node) in docs:
            continue
        value = _text(node)
        if value is None or value in PROSE:
            continue
        if KEY_SEGMENT.search(value) or value in KEY_NAMES or (value in KEY_WORDS and id(node) in in_key_position):
            found.append((node.lineno, value))
    return sorted(found)


def _modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path.relative_to(PACKAGE).as_posix(), path


def test_lua_only_in_the_scripts_module() -> None:
    hits = [
        f"{name}:{n}"
        for name, path in _modules()
        if path != SCRIPTS_MODULE
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if "redis.call" in line or "redis.pcall" in line
    ]
    assert not hits, f"Lua belongs in resque_compat/protocol/scripts.py: {hits}"


def test_key_literals_only_in_keys_module() -> None:
    stray = [
        f"{name}:{line}: {value!r}"
        for name, path in _modules()
        if path not in (KEYS_MODULE, SCRIPTS_MODULE)
        for line, value in key_literals(path.read_text())
    ]
    assert not stray, f"build or parse these keys in resque_compat/protocol/keys.py: {stray}"


SAMPLE = """
\"""A docstring may say queue:<name> and stat:failed.\"""
OUTCOMES = ("ok", "failed")
ROW = {"failed": 1, "queues": []}
a = "queue:" + name
def count(list_name: str = "failed") -> int: ...
b = keys.stat("processed")
c = {"failed"} | names
d = key.removeprefix("delayed:")
e = prefix + "compat:delayed:rejected"
f = name.endswith("_failed")
g = k.endswith(b"queues")
if outcome == "failed": ...
route("/queues", "queues")
"""


def test_the_checker_finds_what_it_must() -> None:
    """Each kind of key literal the issue names is caught; the same words used otherwise are not."""
    assert [value for _, value in key_literals(SAMPLE)] == [
        "queue:",
        "failed",
        "processed",
        "failed",
        "delayed:",
        "compat:delayed:rejected",
        "_failed",
        "queues",
    ]
