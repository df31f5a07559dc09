// A Wicket filter in JavaScript (world `wicket:plugin/minimal-filter@0.1.0`), built with
// componentize-js's default features: the component then imports `wasi:http/types` and
// `wasi:http/outgoing-handler` although it sends nothing, which the gateway links (outgoing
// requests refused unless `allowed_hosts` grants an origin).
//
// * on-request: sets the context key `js.seen = "yes"`; a request with `x-js-block: 1` is
//   answered 403 `{"message": "blocked by js"}`.
// * on-response: sets `x-js` to the config key `greeting` (default "hello from js").

import { get as configGet } from "wicket:plugin/config@0.1.0";
import { Response } from "wicket:plugin/types@0.1.0";

function greeting() {
  const settings = JSON.parse(configGet() || "{}");
  return typeof settings.greeting === "string" ? settings.greeting : "hello from js";
}

export const hooks = {
  checkConfig() {
    const settings = JSON.parse(configGet() || "{}");
    for (const key of Object.keys(settings)) {
      if (key !== "greeting") {
        throw `unknown config key ${key}`;
      }
    }
  },
  onRequest(req, ctx) {
    if ((req.header("x-js-block") || "").trim() === "1") {
      const resp = new Response(403);
      resp.setHeader("content-type", "application/json");
      resp.setBody(new TextEncoder().encode(JSON.stringify({ message: "blocked by js" })));
      return { tag: "respond", val: resp };
    }
    ctx.set("js.seen", "yes");
    return { tag: "continue" };
  },
  onResponse(req, resp, ctx) {
    resp.setHeader("x-js", greeting());
  },
};

export function describe() {
  return {
    summary: "a JavaScript filter: marks the context, greets every response",
    capabilities: [],
    configKeys: [
      { name: "greeting", kind: "string", required: false, doc: "value of the x-js response header" },
    ],
    roles: { auth: false, answersFromStore: false },
  };
}

export function plan() {
  return {
    onRequest: true,
    onResponse: true,
    requestBody: "none",
    responseBody: "none",
    requestHeaders: undefined,
    responseHeaders: undefined,
    forward: undefined,
  };
}
