"""{{name}}: a Wicket filter in Python (world `wicket:plugin/{{world}}@0.1.0`).

* on-request: sets the context key `{{name}}.seen = "yes"`; a request with
  `x-{{name}}-block: 1` is answered 403.
* on-response: sets the response header `x-{{name}}` to the config key `greeting`.
"""

import json

from componentize_py_types import Err
import wit_world
from wit_world import exports
from wit_world.exports.hooks import Action, Action_Continue
from wit_world.imports import config, log
from wit_world.imports.description import (
    BodyUse,
    ConfigKey,
    Description,
    InstancePlan,
    Roles,
    ValueKind,
)
from wit_world.imports.types import Context, Error, Request, Response


def settings() -> dict:
    """The plugin's config table; raises ValueError when it is unusable."""
    values = json.loads(config.get() or "{}")
    unknown = set(values) - {"greeting"}
    if unknown:
        raise ValueError(f"unknown config keys: {', '.join(sorted(unknown))}")
    if not isinstance(values.get("greeting", ""), str):
        raise ValueError("`greeting` must be a string")
    return values


class Hooks(exports.Hooks):
    def check_config(self) -> None:
        try:
            settings()
        except ValueError as e:
            raise Err(str(e))

    def on_request(self, req: Request, ctx: Context) -> Action:
        if (req.header("x-{{name}}-block") or "").strip() == "1":
            log.log(log.Level.INFO, f"blocked {req.path()}")
            raise Err(Error(403, "blocked by {{name}}"))
        ctx.set("{{name}}.seen", "yes")
        return Action_Continue()

    def on_response(self, req: Request, resp: Response, ctx: Context) -> None:
        resp.set_header("x-{{name}}", settings().get("greeting", "hello"))


class WitWorld(wit_world.WitWorld):
    def describe(self) -> Description:
        return Description(
            summary="{{name}}: marks the context, greets every response",
            capabilities=[],
            config_keys=[
                ConfigKey(
                    name="greeting",
                    kind=ValueKind.STRING,
                    required=False,
                    doc="value of the x-{{name}} response header",
                )
            ],
            roles=Roles(0),
        )

    def plan(self) -> InstancePlan:
        return InstancePlan(
            on_request=True,
            on_response=True,
            request_body=BodyUse.NONE,
            response_body=BodyUse.NONE,
            request_headers=None,
            response_headers=None,
            forward=None,
        )
