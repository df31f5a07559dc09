// {{name}}: a Wicket integration in JavaScript (world `wicket:plugin/{{world}}@0.1.0`): answers
// every request with JSON {"greeting", "method", "path", "request_id"}.

import { get as configGet } from "wicket:plugin/config@0.1.0";
import { Response } from "wicket:plugin/types@0.1.0";

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

export const handler = {
  checkConfig() {
    settings();
  },
  handle(req, ctx) {
    const answer = {
      greeting: settings().greeting ?? "hello",
      method: req.method(),
      path: req.path(),
      request_id: ctx.get("request_id"),
    };
    const resp = new Response(200);
    resp.setHeader("content-type", "application/json");
    resp.setBody(new TextEncoder().encode(JSON.stringify(answer)));
    return resp;
  },
};

export function describe() {
  return {
    summary: "{{name}}: answers with a greeting",
    capabilities: [],
    configKeys: [
      { name: "greeting", kind: "string", required: false, doc: "the greeting every answer carries" },
    ],
    roles: { auth: false, answersFromStore: false },
  };
}

export function plan() {
  return {
    onRequest: false,
    onResponse: false,
    requestBody: "none",
    responseBody: "none",
    requestHeaders: undefined,
    responseHeaders: undefined,
    forward: undefined,
  };
}
