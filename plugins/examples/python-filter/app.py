"""A Wicket filter written in Python (world `wicket:plugin/minimal-filter@0.1.0`).

* on-request: a request with the header `x-python-block: 1` is answered `403` with the JSON
  body `{"message": "blocked by python"}`; any other request gets the context key
  `python.seen = "yes"` and continues.
* on-response: sets the response header `x-python` to the config key `greeting`
  (default `"hello"`).
* describe / plan: what `wicket plugins` lists and `wicket check` checks, as a Rust plugin's
  SDK derives it: a summary, the one config key, no body needed.
"""

import json

from componentize_py_types import Err
import wit_world
from wit_world import exports
from wit_world.exports.hooks import Action, Action_Continue, Action_Respond
from wit_world.imports import config, log
from wit_world.imports.description import (
    BodyUse,
    ConfigKey,
    Description,
    InstancePlan,
    Roles,
    ValueKind,
)
from wit_world.imports.types import Context, Request, Response

_greeting = None


def load_greeting() -> str:
    """The `greeting` config value; raises ValueError when the config is unusable."""
    settings = json.loads(config.get() or "{}")
    unknown = set(settings) - {"greeting"}
    if unknown:
        raise ValueError(f"unknown config keys: {', '.join(sorted(unknown))}")
    value = settings.get("greeting", "hello")
    if not isinstance(value, str):
        raise ValueError("`greeting` must be a string")
    return value


def greeting() -> str:
    """The `greeting` config value, read once per instance."""
    global _greeting
    if _greeting is None:
        _greeting = load_greeting()
    return _greeting


class Hooks(exports.Hooks):
    def check_config(self) -> None:
        try:
            greeting()
        except ValueError as e:
            raise Err(str(e))

    def on_request(self, req: Request, ctx: Context) -> Action:
        if (req.header("x-python-block") or "").strip() == "1":
            log.log(log.Level.INFO, "python-filter: request blocked")
            resp = Response(403)
            resp.set_header("content-type", "application/json")
            resp.set_body(json.dumps({"message": "blocked by python"}).encode())
            return Action_Respond(resp)
        ctx.set("python.seen", "yes")
        return Action_Continue()

    def on_response(self, req: Request, resp: Response, ctx: Context) -> None:
        resp.set_header("x-python", greeting())


class WitWorld(wit_world.WitWorld):
    def describe(self) -> Description:
        return Description(
            summary="blocks requests marked x-python-block and greets every response",
            capabilities=[],
            config_keys=[
                ConfigKey(
                    name="greeting",
                    kind=ValueKind.STRING,
                    required=False,
                    doc='value of the x-python response header, default "hello"',
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
