"""The dashboard as an ASGI app: resque-web's routes as HTML pages, and the same data and
actions as a JSON API under ``/api``.

Pages and actions are declared once in two tables (``PAGES``, ``ACTIONS``); each entry gives
an HTML route and an API route, so every page has its JSON twin and every action its API call.
Redis is reached through the synchronous client, in Starlette's thread pool.
"""

from __future__ import annotations

import contextlib
import urllib.parse
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from resque_compat import __version__, humantime
from resque_compat.client import Resque
from resque_compat.connection import redact
from resque_compat.history import SamplerThread
from resque_compat.plans import server_address
from resque_compat.protocol.control import ControlCommand
from resque_compat.protocol.inputs import InputError, parse_json_input
from resque_compat.protocol.keys import FAILED_LIST
from resque_compat.web import actions, bulk, data, history, plugins, present, schedule
from resque_compat.web.actions import ConflictError
from resque_compat.web.data import BadRequestError, NotFoundError
from resque_compat.web.openapi import openapi_document
from resque_compat.web.security import CSRF_COOKIE, CSRF_FIELD, Guard, api_write_ok, csrf_ok, new_token, same_origin

HERE = Path(__file__).parent
FLASH_COOKIE = "resque_web_flash"
POLL_SECONDS = 2
#: the largest JSON body an API action reads
MAX_BODY = 1 << 20

Params = Mapping[str, Any]
Loader = Callable[[Resque, Params], dict[str, Any]]
Runner = Callable[[Resque, Params], dict[str, Any]]


@dataclass(frozen=True)
class Page:
    """A GET page: ``path`` serves HTML (``template``), ``/api`` + ``path`` serves its JSON."""

    path: str
    tab: str
    template: str | Callable[[Params], str]
    load: Loader
    api: bool = True


@dataclass(frozen=True)
class Action:
    """A POST action: a form post (CSRF-checked, then a redirect) and its API twin."""

    path: str
    run: Runner
    back: Callable[[Params], str]
    #: a form with typed input: on an error its page is drawn again with the input kept
    #: (template, loader) instead of a redirect that would lose it
    form: tuple[str, str, Loader] | None = None


def _list(params: Params) -> str:
    return actions.text_param(params, "list") or FAILED_LIST


def _failed_url(params: Params) -> str:
    name = _list(params)
    return "/failed" if name == FAILED_LIST else "/failed/" + quote(name)


def quote(value: object) -> str:
    return urllib.parse.quote(str(value), safe="")


def _failed_page(resque: Resque, p: Params) -> dict[str, Any]:
    shown = data.failed(
        resque,
        actions.failure_list(resque, _list(p)),
        data.page_start(p.get("start")),
        p.get("class") or None,
        str(p.get("order") or "desc"),
    )
    shown["tasks"] = [t.as_dict() for t in bulk.for_list(resque.keys.namespace, shown["list"])[:3]]
    if len(shown["lists"]) > 1 and _list(p) == FAILED_LIST and not p.get("class"):
        shown["overview"] = data.failed_classes(resque)
    return shown


def _worker_or_host(resque: Resque, p: Params) -> dict[str, Any]:
    name = str(p["name"])
    return data.worker(resque, name) if ":" in name else data.workers(resque, name, data.page_start(p.get("start")))


def _status_page(resque: Resque, p: Params) -> dict[str, Any]:
    """php-resque's status, or resque-status's record, with the progress a job reported."""
    if not p.get("id"):
        return {"id": None}
    job_id, prefix = str(p["id"]).strip(), str(p.get("prefix") or "")
    shown = data.job_status(resque, job_id, prefix)
    progress = plugins.progress(resque, job_id, prefix)
    if progress is not None:
        shown["progress"] = progress
    return shown


PAGES: list[Page] = [
    Page("/overview", "overview", "overview.html", lambda r, p: data.overview(r)),
    Page("/working", "working", "working.html", lambda r, p: data.working(r, data.page_start(p.get("start")))),
    Page("/working/{name:path}", "working", "worker.html", lambda r, p: data.worker(r, str(p["name"]))),
    Page("/queues", "queues", "queues.html", lambda r, p: data.queues(r)),
    Page(
        "/queues/{queue:path}",
        "queues",
        "queue.html",
        lambda r, p: data.queue(r, str(p["queue"]), data.page_start(p.get("start"))),
    ),
    Page("/workers", "workers", "workers.html", lambda r, p: data.workers(r, None, data.page_start(p.get("start")))),
    Page(
        "/workers/{name:path}",
        "workers",
        lambda p: "worker.html" if ":" in str(p["name"]) else "workers.html",
        _worker_or_host,
    ),
    Page("/failed", "failed", "failed.html", _failed_page),
    Page("/failed/{list:path}", "failed", "failed.html", _failed_page),
    Page("/stats/resque", "stats", "stats_resque.html", lambda r, p: data.stats_resque(r)),
    Page("/stats/redis", "stats", "stats_redis.html", lambda r, p: data.stats_redis(r)),
    Page("/stats/keys", "stats", "stats_keys.html", lambda r, p: data.stats_keys(r, data.page_start(p.get("cursor")))),
    Page(
        "/stats/keys/{key:path}",
        "stats",
        "stats_key.html",
        lambda r, p: data.stats_key(r, str(p["key"]), data.page_start(p.get("start"))),
    ),
    Page("/schedule", "schedule", "schedule.html", lambda r, p: schedule.schedules(r)),
    Page("/delayed", "delayed", "delayed.html", lambda r, p: schedule.delayed(r, data.page_start(p.get("start")))),
    Page(
        "/delayed/search",
        "delayed",
        "delayed_search.html",
        lambda r, p: schedule.search(r, str(p.get("q") or p.get("search") or "")),
    ),
    Page(
        "/delayed/jobs/{klass:path}",
        "delayed",
        "delayed_jobs.html",
        lambda r, p: schedule.timestamps_of(r, str(p["klass"]), str(p.get("args") or "[]"), p.get("queue")),
    ),
    Page(
        "/delayed/{timestamp:int}",
        "delayed",
        "delayed_at.html",
        lambda r, p: schedule.delayed_at(r, int(p["timestamp"]), data.page_start(p.get("start"))),
    ),
    Page("/status", "status", "status.html", _status_page),
    Page("/retrying", "retrying", "retrying.html", lambda r, p: plugins.retrying(r)),
    Page("/statuses", "statuses", "statuses.html", lambda r, p: plugins.statuses(r, data.page_start(p.get("start")))),
    Page("/statuses/{uuid}", "statuses", "resque_status.html", lambda r, p: plugins.resque_status(r, str(p["uuid"]))),
    Page("/enqueue", "enqueue", "enqueue.html", lambda r, p: {"queues": r.queues()}, api=False),
    Page(
        "/history",
        "overview",
        "history.html",
        lambda r, p: history.history(r, str(p.get("range") or "hour"), p.get("queue") or None),
    ),
]

ACTIONS: list[Action] = [
    Action(
        "/queues/{queue:path}/remove",
        lambda r, p: actions.remove_queue(r, str(p["queue"])),
        lambda p: "/queues",
    ),
    Action("/failed/requeue/all", lambda r, p: actions.retry_all(r, _list(p)), _failed_url),
    Action("/failed/{list:path}/requeue/all", lambda r, p: actions.retry_all(r, _list(p)), _failed_url),
    Action("/failed/clear", lambda r, p: actions.clear_failures(r, _list(p)), _failed_url),
    Action("/failed/{list:path}/clear", lambda r, p: actions.clear_failures(r, _list(p)), _failed_url),
    Action("/failed/clear_retried", lambda r, p: actions.clear_retried(r, _list(p)), _failed_url),
    Action("/failed/{list:path}/clear_retried", lambda r, p: actions.clear_retried(r, _list(p)), _failed_url),
    Action(
        "/failed/requeue/{index:int}",
        lambda r, p: actions.retry_failure(r, _list(p), p["index"], actions.text_param(p, "digest") or None),
        _failed_url,
    ),
    Action(
        "/failed/{list:path}/requeue/{index:int}",
        lambda r, p: actions.retry_failure(r, _list(p), p["index"], actions.text_param(p, "digest") or None),
        _failed_url,
    ),
    Action(
        "/failed/remove/{index:int}",
        lambda r, p: actions.remove_failure(r, _list(p), p["index"], actions.text_param(p, "digest") or None),
        _failed_url,
    ),
    Action(
        "/failed/{list:path}/remove/{index:int}",
        lambda r, p: actions.remove_failure(r, _list(p), p["index"], actions.text_param(p, "digest") or None),
        _failed_url,
    ),
    Action("/workers/pause_all", lambda r, p: actions.pause_all(r), lambda p: "/workers"),
    Action("/workers/resume_all", lambda r, p: actions.resume_all(r), lambda p: "/workers"),
    Action(
        "/workers/{name:path}/control",
        lambda r, p: actions.control_worker(r, str(p["name"]), actions.text_param(p, "command")),
        lambda p: "/workers/" + quote(p["name"]),
    ),
    Action(
        "/enqueue",
        lambda r, p: actions.enqueue(r, p.get("queue"), p.get("class"), p.get("args", "[]"), _truthy(p.get("track"))),
        lambda p: "/enqueue",
        form=("enqueue.html", "enqueue", lambda r, p: {"queues": r.queues()}),
    ),
    Action(
        "/schedule/requeue",
        lambda r, p: actions.requeue_schedule(r, actions.text_param(p, "name")),
        lambda p: "/schedule",
    ),
    Action(
        "/schedule/delete",
        lambda r, p: actions.delete_schedule(r, actions.text_param(p, "name")),
        lambda p: "/schedule",
    ),
    Action(
        "/delayed/queue_now",
        lambda r, p: actions.queue_delayed_now(r, p.get("timestamp"), p.get("digest")),
        lambda p: "/delayed",
    ),
    Action(
        "/delayed/cancel_now",
        lambda r, p: actions.cancel_delayed(r, p.get("klass"), p.get("timestamp"), p.get("args"), p.get("queue")),
        lambda p: "/delayed",
    ),
    Action("/delayed/clear", lambda r, p: actions.clear_delayed(r), lambda p: "/delayed"),
    Action("/retrying/now", lambda r, p: actions.retry_now(r, actions.text_param(p, "name")), lambda p: "/retrying"),
    Action("/retrying/give_up", lambda r, p: actions.give_up(r, actions.text_param(p, "name")), lambda p: "/retrying"),
    Action("/statuses/{uuid}/kill", lambda r, p: actions.kill_status(r, str(p["uuid"])), lambda p: "/statuses"),
    Action(
        "/statuses/clear",
        lambda r, p: actions.clear_statuses(r, actions.text_param(p, "which", "all")),
        lambda p: "/statuses",
    ),
]


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value or "").strip().lower() in ("1", "true", "on", "yes")


def safe_next(value: Any) -> str | None:
    """A redirect target from a form: a local path only (no scheme, no ``//host``)."""
    if not isinstance(value, str) or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return None
    return value


class Dashboard:
    """Renders pages and runs actions for one Resque deployment."""

    def __init__(self, resque: Resque, poll_seconds: int = POLL_SECONDS) -> None:
        self.resque = resque
        self.poll_seconds = poll_seconds
        self.env = Environment(
            loader=FileSystemLoader(str(HERE / "templates")),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["q"] = quote
        self.env.globals["version"] = __version__
        self.env.globals["control"] = ControlCommand  # the worker page's buttons
        self.env.globals["local_times"] = humantime.showing_local  # charts follow the pages' time format
        self.redis_shown = redact(server_address(resque.redis.connection_pool.connection_kwargs))
        self._metrics_registry: Any = None  # built on the first scrape

    # -- rendering -----------------------------------------------------------------
    def render(
        self,
        request: Request,
        template: str,
        context: dict[str, Any],
        tab: str = "",
        status_code: int = 200,
        *,
        notice: dict[str, str] | None = None,
    ) -> HTMLResponse:
        token = request.cookies.get(CSRF_COOKIE) or new_token()
        flash = notice or _read_flash(request.cookies.get(FLASH_COOKIE))
        body = self.env.get_template(template).render(
            data=context,
            tab=tab,
            csrf=token,
            csrf_field=CSRF_FIELD,
            flash=flash,
            here=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            query=request.query_params,
            namespace=self.resque.keys.namespace,
            redis_shown=self.redis_shown,
            poll_seconds=self.poll_seconds,
        )
        response = HTMLResponse(body, status_code=status_code)
        if request.cookies.get(CSRF_COOKIE) != token:
            response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict", path="/")
        if flash:
            response.delete_cookie(FLASH_COOKIE, path="/")
        return response

    def error_page(self, request: Request, status_code: int, message: str) -> HTMLResponse:
        return self.render(request, "error.html", {"status": status_code, "message": message}, "", status_code)

    # -- endpoints -----------------------------------------------------------------
    def page(self, page: Page) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            params = {**request.query_params, **request.path_params}
            try:
                context = await run_in_threadpool(page.load, self.resque, params)
            except NotFoundError as exc:
                return self.error_page(request, 404, str(exc))
            except (BadRequestError, ValueError) as exc:
                return self.error_page(request, 400, str(exc))
            except redis.RedisError as exc:
                return self.error_page(request, 503, f"Redis error: {redact(str(exc))}")
            template = page.template(params) if callable(page.template) else page.template
            return self.render(request, template, present.bounded(context), page.tab)

        return endpoint

    def page_api(self, page: Page) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            params = {**request.query_params, **request.path_params}
            try:
                context = await run_in_threadpool(page.load, self.resque, params)
            except NotFoundError as exc:
                return JSONResponse({"error": str(exc)}, 404)
            except (BadRequestError, ValueError) as exc:
                return JSONResponse({"error": str(exc)}, 400)
            except redis.RedisError as exc:
                return JSONResponse({"error": f"Redis error: {redact(str(exc))}"}, 503)
            return JSONResponse(present.bounded(context))

        return endpoint

    def action(self, action: Action) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            form = await request.form()
            fields = {k: v for k, v in form.items() if isinstance(v, str)}
            if not same_origin(request) or not csrf_ok(request, fields.get(CSRF_FIELD)):
                return self.error_page(
                    request, 403, "This form was not sent from this dashboard (CSRF check failed). Reload and retry."
                )
            params = {**fields, **request.path_params}
            target = safe_next(fields.get("next")) or action.back(params)
            link = None
            try:
                result = await run_in_threadpool(action.run, self.resque, params)
                flash = ("ok", str(result.get("message", "Done")))
                if isinstance(result.get("id"), str):  # a new job's id: link its status page
                    link = "/status?id=" + quote(result["id"])
            except (BadRequestError, ConflictError, NotFoundError, ValueError) as exc:
                flash = ("error", str(exc))
            except redis.RedisError as exc:
                flash = ("error", f"Redis error: {redact(str(exc))}")
            if flash[0] == "error" and action.form is not None:
                return await self._form_again(request, action.form, fields, flash[1])
            response = RedirectResponse(target, status_code=303)
            response.set_cookie(
                FLASH_COOKIE, _write_flash(*flash, link=link), httponly=True, samesite="strict", path="/"
            )
            return response

        return endpoint

    def action_api(self, action: Action) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            if not api_write_ok(request):
                return JSONResponse(
                    {"error": "send a JSON body (Content-Type: application/json) or the X-CSRF-Token header"}, 403
                )
            body: Any = {}
            raw = await _body(request, MAX_BODY)
            if raw is None:
                return JSONResponse({"error": f"the body is larger than {MAX_BODY} bytes"}, 413)
            if raw.strip():
                try:
                    body = parse_json_input(raw, "the body")
                except InputError as exc:
                    return JSONResponse({"error": str(exc)}, 400)
            if not isinstance(body, dict):
                return JSONResponse({"error": "the body must be a JSON object"}, 400)
            params = {**body, **request.path_params}
            try:
                result = await run_in_threadpool(action.run, self.resque, params)
            except (BadRequestError, ValueError) as exc:
                return JSONResponse({"error": str(exc)}, 400)
            except NotFoundError as exc:
                return JSONResponse({"error": str(exc)}, 404)
            except ConflictError as exc:
                return JSONResponse({"error": str(exc)}, 409)
            except redis.RedisError as exc:
                return JSONResponse({"error": f"Redis error: {redact(str(exc))}"}, 503)
            return JSONResponse(result)

        return endpoint

    async def _form_again(
        self, request: Request, form: tuple[str, str, Loader], fields: dict[str, str], error: str
    ) -> Response:
        """The form's page again, with what was typed and why it was refused."""
        template, tab, load = form
        try:
            context = await run_in_threadpool(load, self.resque, fields)
        except redis.RedisError as exc:
            return self.error_page(request, 503, f"Redis error: {redact(str(exc))}")
        kept = {k: v for k, v in fields.items() if k not in (CSRF_FIELD, "next")}
        return self.render(
            request, template, {**context, "form": kept}, tab, 200, notice={"kind": "error", "message": error}
        )

    # -- special pages ---------------------------------------------------------------
    async def overview_poll(self, request: Request) -> Response:
        context = await run_in_threadpool(data.overview, self.resque)
        return self.render(request, "_overview.html", present.bounded(context), "overview")

    async def workers_poll(self, request: Request) -> Response:
        context = await run_in_threadpool(data.workers, self.resque, "all")
        return self.render(request, "_workers.html", present.bounded(context), "workers")

    async def stats_txt(self, request: Request) -> Response:
        text = await run_in_threadpool(data.stats_txt, self.resque)
        return PlainTextResponse(text)

    async def raw(self, request: Request) -> Response:
        """A record's whole stored bytes, as text (pages and API lists show values cut)."""
        params = request.query_params
        try:
            body = await run_in_threadpool(
                data.raw_record, self.resque, request.path_params["key"], params.get("index"), params.get("field")
            )
        except NotFoundError as exc:
            return PlainTextResponse(str(exc) + "\n", 404)
        except BadRequestError as exc:
            return PlainTextResponse(str(exc) + "\n", 400)
        except redis.RedisError as exc:
            return PlainTextResponse(f"Redis error: {redact(str(exc))}\n", 503)
        return Response(body, media_type="text/plain; charset=utf-8")

    async def task(self, request: Request) -> Response:
        """A bulk task's progress (``Retry all``, ``Clear retried``)."""
        found = bulk.get(request.path_params["id"])
        if found is None or found.namespace != self.resque.keys.namespace:
            return JSONResponse({"error": "no such task"}, 404)
        return JSONResponse(found.as_dict())

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(openapi_document(__version__))

    async def metrics(self, request: Request) -> Response:
        """Prometheus exposition of what Redis holds (the ``metrics`` extra), behind the same
        auth as every page."""
        try:
            from resque_compat import metrics  # noqa: PLC0415 - optional extra
        except ImportError:
            return PlainTextResponse("metrics need prometheus-client: pip install 'resque-compat[metrics]'\n", 501)
        if self._metrics_registry is None:
            self._metrics_registry = metrics.resque_registry(self.resque)
        body = await run_in_threadpool(metrics.exposition, self._metrics_registry)
        return Response(body, media_type=metrics.CONTENT_TYPE)

    def routes(self) -> list[BaseRoute]:
        out: list[BaseRoute] = [
            Route("/", lambda request: RedirectResponse("/overview", 302)),
            Route("/stats", lambda request: RedirectResponse("/stats/resque", 302)),
            Route("/overview.poll", self.overview_poll),
            Route("/workers.poll", self.workers_poll),
            Route("/stats.txt", self.stats_txt),
            Route("/api/openapi.json", self.openapi),
            Route("/api/tasks/{id}", self.task),
            Route("/raw/{key:path}", self.raw),
            Route("/api/raw/{key:path}", self.raw),
            Route("/api/stats.txt", self.stats_txt),
            Route("/metrics", self.metrics),
        ]
        for action in ACTIONS:
            out.append(Route(action.path, self.action(action), methods=["POST"]))
            out.append(Route("/api" + action.path, self.action_api(action), methods=["POST"]))
        for page in PAGES:
            out.append(Route(page.path, self.page(page), methods=["GET"]))
            if page.api:
                out.append(Route("/api" + page.path, self.page_api(page), methods=["GET"]))
        out.append(Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"))
        return out


def _sampling(resque: Resque) -> Callable[[Any], Any]:
    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        sampler = SamplerThread(resque.redis, resque.keys)
        sampler.start()
        try:
            yield
        finally:
            sampler.stop()

    return lifespan


async def _body(request: Request, limit: int) -> bytes | None:
    """The request body, or None once it passes ``limit`` bytes (read no further)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _write_flash(kind: str, message: str, link: str | None = None) -> str:
    """``kind:message``, or ``kind:<link> message`` (a local path) when it links a page."""
    head = f"{kind}:<{link}> " if link and safe_next(link) and ">" not in link else f"{kind}:"
    return urllib.parse.quote(head + message[:500], safe="")


def _read_flash(value: str | None) -> dict[str, str] | None:
    if not value:
        return None
    kind, _, message = urllib.parse.unquote(value).partition(":")
    flash = {"kind": "error" if kind == "error" else "ok", "message": message}
    if message.startswith("<") and "> " in message:
        link, _, rest = message[1:].partition("> ")
        if safe_next(link):
            flash.update(link=link, message=rest)
    return flash


def create_app(
    resque: Resque,
    credentials: tuple[str, str] | None = None,
    poll_seconds: int = POLL_SECONDS,
    allowed_hosts: Iterable[str] = (),
    sample_history: bool = False,
) -> Any:
    """The dashboard for ``resque``; with ``credentials`` every request needs basic auth.

    Only loopback Host names and ``allowed_hosts`` are served (see :class:`Guard`). With
    ``sample_history`` the process also records the graphs' history while it serves."""
    dashboard = Dashboard(resque, poll_seconds)

    async def not_found(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": "no such route"}, 404)
        return dashboard.error_page(request, 404, "No such page.")

    app = Starlette(
        routes=dashboard.routes(),
        exception_handlers={404: not_found},
        lifespan=_sampling(resque) if sample_history else None,
    )
    app.state.dashboard = dashboard
    return Guard(app, credentials, allowed_hosts=allowed_hosts)
