// {{name}}: a Wicket filter in JavaScript (world `wicket:plugin/{{world}}@0.1.0`).
//
// * on-request: sets the context key `{{name}}.seen = "yes"`; a request with
//   `x-{{name}}-block: 1` is answered 403.
// * on-response: sets the response header `x-{{name}}` to the config key `greeting`.

import { get as configGet } from "wicket:plugin/config@0.1.0";
import { log } from "wicket:plugin/log@0.1.0";

// The config table; throws (a string: the error check-config reports) when it is unusable.
function settings() {
  const values = JSON.parse(configGet() || "{}");
  for (const key of Object.keys(values)) {
    if (key !== "greeting") {
      throw `unknown config key ${key}`;
    }
  }
  if (values.greeting !== undefined && typeof values.greeting !== "string") {
    throw "`greeting` must be a string";
  }
  return values;
}

export const hooks = {
  checkConfig() {
    settings();
  },
  onRequest(req, ctx) {
    if ((req.header("x-{{name}}-block") || "").trim() === "1") {
      log("info", `blocked ${req.path()}`);
      throw { status: 403, message: "blocked by {{name}}" };
    }
    ctx.set("{{name}}.seen", "yes");
    return { tag: "continue" };
  },
  onResponse(req, resp, ctx) {
    resp.setHeader("x-{{name}}", settings().greeting ?? "hello");
  },
};

export function describe() {
  return {
    summary: "{{name}}: marks the context, greets every response",
    capabilities: [],
    configKeys: [
      { name: "greeting", kind: "string", required: false, doc: "value of the x-{{name}} response header" },
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
