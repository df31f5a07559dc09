"""A function written in Python: an integration behind a route, run in-process by Wicket as a
Lambda function runs behind API Gateway (world `example:python-function/function`, which
imports only log, config, kv and http).

GET /visits/{name} counts the caller's visits to `name` in the gateway's kv store and answers
`{"hello": name, "principal", "visits", "stage", "quote"}`. It reads the context the route's
filters and router set: `principal` (from an auth filter; 401 without one) and `param.name`
(the path parameter). With `quote_url` configured it fetches a quote over http (a failing quote
service leaves `quote` null; the function still answers).

Config: `stage` (a stage variable echoed back), `quote_url`.
"""

import json

from componentize_py_types import Err
import wit_world
from wit_world import exports
from wit_world.imports import config, http, kv, log
from wit_world.imports.description import (
    BodyUse,
    ConfigKey,
    Description,
    InstancePlan,
    Roles,
    ValueKind,
)
from wit_world.imports.types import Context, Error, Request, Response

KEYS = {"stage", "quote_url"}
_settings = None


def settings() -> dict:
    """The config, checked once per instance; raises ValueError when unusable."""
    global _settings
    if _settings is None:
        value = json.loads(config.get() or "{}")
        unknown = set(value) - KEYS
        if unknown:
            raise ValueError(f"unknown config keys: {', '.join(sorted(unknown))}")
        for key in KEYS:
            if key in value and not isinstance(value[key], str):
                raise ValueError(f"`{key}` must be a string")
        _settings = value
    return _settings


def answer(status: int, body: dict) -> Response:
    resp = Response(status)
    resp.set_header("content-type", "application/json")
    resp.set_body(json.dumps(body).encode())
    return resp


def quote() -> str | None:
    url = settings().get("quote_url")
    if not url:
        return None
    try:
        resp = http.send(http.OutgoingRequest("GET", url), 2000)
    except Err as e:
        log.log(log.Level.WARN, f"python-function: quote service failed: {e.value}")
        return None
    return resp.body().decode("utf-8", "replace") if resp.status() == 200 else None


class Handler(exports.Handler):
    def check_config(self) -> None:
        try:
            settings()
        except ValueError as e:
            raise Err(str(e))

    def handle(self, req: Request, ctx: Context) -> Response:
        principal = ctx.get("principal")
        if principal is None:
            raise Err(Error(401, "Unauthorized"))
        if req.method() != "GET":
            return answer(405, {"message": "Method not allowed"})
        name = ctx.get("param.name") or ""
        key = f"visits/{principal}/{name}"
        try:
            visits = int((kv.get(key) or b"0").decode()) + 1
            kv.set(key, str(visits).encode(), None)
        except Err as e:
            log.log(log.Level.ERROR, f"python-function: kv: {e.value}")
            raise Err(Error(500, "Internal server error"))
        return answer(
            200,
            {
                "hello": name,
                "principal": principal,
                "visits": visits,
                "stage": settings().get("stage"),
                "quote": quote(),
            },
        )


class WitWorld(wit_world.WitWorld):
    def describe(self) -> Description:
        return Description(
            summary="counts a caller's visits in kv and adds a quote fetched over http",
            capabilities=["kv", "http"],
            config_keys=[
                ConfigKey(
                    name="stage",
                    kind=ValueKind.STRING,
                    required=False,
                    doc="deployment stage echoed in each answer (a stage variable)",
                ),
                ConfigKey(
                    name="quote_url",
                    kind=ValueKind.STRING,
                    required=False,
                    doc="URL whose text body is added to each answer as `quote`",
                ),
            ],
            roles=Roles(0),
        )

    def plan(self) -> InstancePlan:
        return InstancePlan(
            on_request=False,
            on_response=False,
            request_body=BodyUse.NONE,
            response_body=BodyUse.NONE,
            request_headers=None,
            response_headers=None,
            forward=None,
        )
