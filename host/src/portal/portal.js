// The developer portal: renders the gateway's OpenAPI document. Every text from the document
// goes into text nodes, never parsed as HTML, so nothing in a config can inject markup.
"use strict";

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/** An element with attributes and children (strings become text nodes). */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function pretty(value) {
  return JSON.stringify(value, null, 2);
}

/** `value` with a local `$ref` followed, a few hops at most. */
function resolve(doc, value) {
  for (let i = 0; i < 8 && value && typeof value.$ref === "string" && value.$ref.startsWith("#/"); i++) {
    let target = doc;
    for (const part of value.$ref.slice(2).split("/")) {
      target = target && target[part.replace(/~1/g, "/").replace(/~0/g, "~")];
    }
    if (target === undefined) break;
    value = target;
  }
  return value;
}

/** An example value for a schema: its example, or one built from its properties. */
function sample(doc, schema, depth) {
  schema = resolve(doc, schema || {});
  if (depth > 6) return null;
  if ("example" in schema) return schema.example;
  if (Array.isArray(schema.examples) && schema.examples.length) return schema.examples[0];
  if (Array.isArray(schema.enum) && schema.enum.length) return schema.enum[0];
  if ("const" in schema) return schema.const;
  if (Array.isArray(schema.allOf)) {
    return Object.assign({}, ...schema.allOf.map((s) => sample(doc, s, depth + 1)).filter((v) => v && typeof v === "object"));
  }
  const alt = (schema.oneOf || schema.anyOf || [])[0];
  if (alt) return sample(doc, alt, depth + 1);
  let type = Array.isArray(schema.type) ? schema.type.find((t) => t !== "null") : schema.type;
  if (!type && schema.properties) type = "object";
  switch (type) {
    case "object": {
      const out = {};
      for (const [k, s] of Object.entries(schema.properties || {})) out[k] = sample(doc, s, depth + 1);
      return out;
    }
    case "array": return [sample(doc, schema.items, depth + 1)];
    case "integer": return 1;
    case "number": return 1.5;
    case "boolean": return true;
    case "string": return "string";
    default: return null;
  }
}

/** Credentials the browser can send for a security scheme: a header to fill in, or null. */
function credentialInput(scheme) {
  if (!scheme) return null;
  if (scheme["x-amazon-apigateway-authtype"] === "awsSigv4") return null;
  if (scheme.type === "apiKey" && scheme.in === "header") return { header: scheme.name, prefix: "" };
  if (scheme.type === "http" && String(scheme.scheme).toLowerCase() === "bearer") return { header: "Authorization", prefix: "Bearer " };
  if (scheme.type === "oauth2" || scheme.type === "openIdConnect") return { header: "Authorization", prefix: "Bearer " };
  return null;
}

function describeScheme(name, scheme, scopes) {
  if (!scheme) return name;
  let what;
  if (scheme["x-amazon-apigateway-authtype"] === "awsSigv4") what = "AWS Signature Version 4 (sign with an AWS SDK)";
  else if (scheme.type === "apiKey") what = `API key in the ${scheme.in} ${scheme.name}`;
  else if (scheme.type === "http") what = `HTTP ${scheme.scheme}${scheme.bearerFormat ? " (" + scheme.bearerFormat + ")" : ""}`;
  else if (scheme.type === "openIdConnect") what = `OpenID Connect (${scheme.openIdConnectUrl})`;
  else if (scheme.type === "oauth2") what = "OAuth2 access token";
  else what = scheme.type;
  return `${name}: ${what}${scopes && scopes.length ? "; scopes " + scopes.join(", ") : ""}`;
}

function shellQuote(s) {
  return "'" + String(s).replace(/'/g, "'\\''") + "'";
}

/** curl, Python (urllib) and JavaScript (fetch) for one request. */
function samples(req) {
  const headers = Object.entries(req.headers);
  const curl = ["curl -i", "-X " + req.method, shellQuote(req.url)]
    .concat(headers.map(([k, v]) => "-H " + shellQuote(k + ": " + v)))
    .concat(req.body !== null ? ["--data-binary " + shellQuote(req.body)] : [])
    .join(" \\\n  ");
  const py = [
    "import urllib.request",
    "",
    "request = urllib.request.Request(",
    "    " + JSON.stringify(req.url) + ",",
    "    method=" + JSON.stringify(req.method) + ",",
    "    headers={" + headers.map(([k, v]) => JSON.stringify(k) + ": " + JSON.stringify(v)).join(", ") + "},",
    req.body !== null ? "    data=" + JSON.stringify(req.body) + ".encode()," : null,
    ")",
    "with urllib.request.urlopen(request) as response:",
    "    print(response.status, response.read().decode())",
  ].filter((l) => l !== null).join("\n");
  const js = [
    "const response = await fetch(" + JSON.stringify(req.url) + ", {",
    "  method: " + JSON.stringify(req.method) + ",",
    "  headers: " + JSON.stringify(req.headers) + ",",
    req.body !== null ? "  body: " + JSON.stringify(req.body) + "," : null,
    "});",
    "console.log(response.status, await response.text());",
  ].filter((l) => l !== null).join("\n");
  return { curl, Python: py, JavaScript: js };
}

function table(head, rows) {
  return el("table", {}, el("thead", {}, el("tr", {}, head.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows.map((r) => el("tr", {}, r.map((c) => el("td", {}, c))))));
}

function limitsText(limits) {
  return limits.map((l) => {
    const parts = [];
    if (l.rate !== undefined) parts.push(`${l.rate} requests/s`);
    if (l.burst !== undefined) parts.push(`burst ${l.burst}`);
    if (l.quota) parts.push(`quota ${l.quota.limit} per ${l.quota.period}`);
    if (l.by) parts.push(`per ${[].concat(l.by).join(" + ")}`);
    if (l.plans) parts.push("plans: " + Object.entries(l.plans).map(([p, v]) => `${p} (${limitsText([v])})`).join("; "));
    if (l.limits) parts.push("also: " + l.limits.map((x) => (x.name ? x.name + ": " : "") + limitsText([x])).join("; "));
    return parts.join(", ");
  }).join(" | ");
}

function operationView(doc, path, item, method, op, index) {
  const id = "op-" + index;
  const params = [...(item.parameters || []), ...(op.parameters || [])].map((p) => resolve(doc, p));
  const schemes = (doc.components && doc.components.securitySchemes) || {};
  const security = op.security || doc.security || [];
  const body = resolve(doc, op.requestBody);
  const bodyMedia = body && body.content ? Object.entries(body.content)[0] : null;
  const parts = [];

  if (op.description) parts.push(el("p", {}, op.description));
  if (params.length) {
    parts.push(el("h3", {}, "Parameters"),
      table(["name", "in", "required", "schema", "description"], params.map((p) => [
        el("code", {}, p.name), p.in, p.required ? "yes" : "no",
        el("code", {}, p.schema ? JSON.stringify(p.schema) : ""), p.description || ""])));
  }
  if (bodyMedia) {
    parts.push(el("h3", {}, "Request body (" + bodyMedia[0] + (body.required ? ", required" : "") + ")"),
      el("pre", {}, pretty(bodyMedia[1].schema || {})));
  }
  parts.push(el("h3", {}, "Auth"));
  if (security.length === 0) parts.push(el("p", {}, "None: anyone may call this operation."));
  else {
    parts.push(el("ul", {}, security.map((alt, i) => el("li", {},
      (i > 0 ? "or " : "") + Object.entries(alt).map(([n, scopes]) => describeScheme(n, schemes[n], scopes)).join(" and ")))));
  }
  const limits = op["x-wicket-limits"];
  if (limits && limits.length) parts.push(el("h3", {}, "Limits"), el("p", { class: "limits" }, limitsText(limits)));
  parts.push(el("h3", {}, "Responses"),
    table(["status", "description"], Object.entries(op.responses || {}).map(([code, r]) => [
      el("code", {}, code), resolve(doc, r).description || ""])));

  // Try it: one input per parameter and per credential header, the body, and samples.
  const inputs = [];
  const form = el("div", { class: "try" });
  for (const p of params) {
    if (!["path", "query", "header"].includes(p.in)) continue;
    const input = el("input", { name: p.in + ":" + p.name, "data-in": p.in, "data-name": p.name, "data-greedy": p["x-wicket-greedy"] ? "1" : null, required: p.required, value: p.example !== undefined ? String(p.example) : "" });
    inputs.push(input);
    form.append(el("label", {}, el("span", {}, `${p.name} (${p.in}${p.required ? ", required" : ""})`), input));
  }
  const credentialHeaders = new Map();
  for (const alt of security.slice(0, 1)) {
    for (const n of Object.keys(alt)) {
      const c = credentialInput(schemes[n]);
      if (!c || credentialHeaders.has(c.header.toLowerCase())) continue;
      const input = el("input", { name: "auth:" + n, "data-in": "credential", "data-name": c.header, "data-prefix": c.prefix, type: "password", autocomplete: "off" });
      credentialHeaders.set(c.header.toLowerCase(), input);
      inputs.push(input);
      form.append(el("label", {}, el("span", {}, `${c.header} (${n})`), input));
    }
  }
  let bodyInput = null;
  if (bodyMedia) {
    const media = bodyMedia[1];
    const example = media.example !== undefined ? media.example : sample(doc, media.schema, 0);
    bodyInput = el("textarea", { name: "body", spellcheck: "false" });
    bodyInput.value = typeof example === "string" ? example : pretty(example);
    form.append(el("label", {}, el("span", {}, "body (" + bodyMedia[0] + ")")), bodyInput);
  }
  const result = el("div", { class: "result", "aria-live": "polite" });
  const code = el("pre", { class: "sample" });
  let current = "curl";
  const tabs = el("div", { class: "tabs", role: "tablist" });
  const build = () => {
    let url = path;
    const query = new URLSearchParams();
    const headers = {};
    for (const input of inputs) {
      const v = input.value;
      const where = input.dataset.in;
      const name = input.dataset.name;
      if (where === "path") {
        const encoded = input.dataset.greedy ? v.split("/").map(encodeURIComponent).join("/") : encodeURIComponent(v);
        url = url.split("{" + name + "}").join(encoded);
      } else if (where === "query" && v !== "") query.append(name, v);
      else if (where === "header" && v !== "") headers[name] = v;
      else if (where === "credential" && v !== "") headers[name] = (input.dataset.prefix || "") + v;
    }
    const qs = query.toString();
    const body = bodyInput ? bodyInput.value : null;
    if (bodyInput) headers["Content-Type"] = bodyMedia[0];
    return { method: method.toUpperCase(), path: url + (qs ? "?" + qs : ""), url: location.origin + url + (qs ? "?" + qs : ""), headers, body };
  };
  const refresh = () => { code.textContent = samples(build())[current]; };
  for (const name of ["curl", "Python", "JavaScript"]) {
    tabs.append(el("button", { type: "button", role: "tab", "aria-selected": name === current ? "true" : "false", "data-sample": name, onclick: (e) => {
      current = name;
      for (const b of tabs.children) b.setAttribute("aria-selected", b === e.currentTarget ? "true" : "false");
      refresh();
    } }, name));
  }
  form.addEventListener("input", refresh);
  const send = el("button", { type: "button", class: "send", onclick: async () => {
    const req = build();
    result.replaceChildren(el("p", {}, "Sending…"));
    try {
      // Same origin only (the path comes from the document, not from the user), no cookies.
      const resp = await fetch(req.path, { method: req.method, headers: req.headers, body: req.body, credentials: "omit", redirect: "manual", cache: "no-store" });
      const text = await resp.text();
      const headerLines = [...resp.headers.entries()].map(([k, v]) => k + ": " + v).join("\n");
      result.replaceChildren(
        el("p", { class: "result-status" }, "HTTP " + resp.status + " " + resp.statusText),
        el("pre", { class: "result-headers" }, headerLines),
        el("pre", { class: "result-body" }, text));
    } catch (e) {
      result.replaceChildren(el("p", { class: "result-status" }, "The request failed: " + e.message));
    }
  } }, "Send");
  form.append(send, result, el("h3", {}, "Code"), tabs, code);
  refresh();
  parts.push(el("h3", {}, "Try it"), form);

  return el("details", { class: "op", id, "data-operation": op.operationId || "" },
    el("summary", {}, el("span", { class: "method " + method }, method), el("span", { class: "path" }, path),
      el("span", { class: "summary" }, op.summary || "")),
    el("div", { class: "body" }, parts));
}

async function main() {
  const status = document.getElementById("status");
  let doc;
  try {
    const resp = await fetch(document.body.dataset.document, { credentials: "omit", cache: "no-store" });
    doc = await resp.json();
  } catch (e) {
    status.textContent = "Cannot load the API description: " + e.message;
    return;
  }
  const info = doc.info || {};
  document.title = (info.title || "API") + " · portal";
  document.getElementById("title").textContent = info.title || "API";
  document.getElementById("version").textContent = info.version ? "Version " + info.version : "";
  document.getElementById("description").textContent = info.description || "";
  // Group operations by their first tag, or by route.
  const groups = new Map();
  let index = 0;
  for (const [path, item] of Object.entries(doc.paths || {})) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const group = (op.tags && op.tags[0]) || op["x-wicket-route"] || path;
      if (!groups.has(group)) groups.set(group, []);
      groups.get(group).push(operationView(doc, path, item, method, op, index++));
    }
  }
  const main = document.getElementById("operations");
  const toc = document.getElementById("toc");
  main.replaceChildren();
  if (index === 0) main.append(el("p", {}, "This API has no operations."));
  for (const [group, ops] of groups) {
    main.append(el("section", { class: "group" }, el("h2", {}, group), ops));
    for (const op of ops) {
      const s = op.querySelector("summary");
      toc.append(el("a", { href: "#" + op.id, onclick: () => { op.open = true; } }, s.children[0].textContent.toUpperCase() + " " + s.children[1].textContent));
    }
  }
}

main();
