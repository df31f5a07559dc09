"""{{name}}: a Wicket integration in Python (world `wicket:plugin/{{world}}@0.1.0`): answers
every request with JSON `{"greeting", "method", "path", "request_id"}`.
"""

import json

from componentize_py_types import Err
import wit_world
from wit_world import exports
from wit_world.imports import config
from wit_world.imports.description import (
    BodyUse,
    ConfigKey,
    Description,
    InstancePlan,
    Roles,
    ValueKind,
)
from wit_world.imports.types import Context, Request, Response


def settings() -> dict:
    """The plugin's config table; raises ValueError when it is unusable."""
    values = json.loads(config.get() or "{}")
    unknown = set(values) - {"greeting"}
    if unknown:
        raise ValueError(f"unknown config keys: {', '.join(sorted(unknown))}")
    if not isinstance(values.get("greeting", ""), str):
        raise ValueError("`greeting` must be a string")
    return values


class Handler(exports.Handler):
    def check_config(self) -> None:
        try:
            settings()
        except ValueError as e:
            raise Err(str(e))

    def handle(self, req: Request, ctx: Context) -> Response:
        answer = {
            "greeting": settings().get("greeting", "hello"),
            "method": req.method(),
            "path": req.path(),
            "request_id": ctx.get("request_id"),
        }
        resp = Response(200)
        resp.set_header("content-type", "application/json")
        resp.set_body(json.dumps(answer).encode())
        return resp


class WitWorld(wit_world.WitWorld):
    def describe(self) -> Description:
        return Description(
            summary="{{name}}: answers with a greeting",
            capabilities=[],
            config_keys=[
                ConfigKey(
                    name="greeting",
                    kind=ValueKind.STRING,
                    required=False,
                    doc="the greeting every answer carries",
                )
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
