//! The plugins that ship inside the binary. They are ordinary components built from
//! `plugins/` by the build script; this table adds what the host must know before loading
//! them: which world they implement, what they are granted, and which config keys they take
//! (so `wicket check` can point at a typo without running the plugin).

use super::{Capability, PluginKind};

pub struct ConfigKey {
    pub name: &'static str,
    pub required: bool,
    pub doc: &'static str,
}

pub struct Builtin {
    pub name: &'static str,
    pub kind: PluginKind,
    pub summary: &'static str,
    pub grants: &'static [Capability],
    pub keys: &'static [ConfigKey],
    pub wasm: &'static [u8],
}

impl std::fmt::Debug for Builtin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "builtin {:?}", self.name)
    }
}

impl Builtin {
    /// Problems with a plugin's config keys: unknown keys and missing required ones.
    pub fn check_keys(&self, given: &[&str]) -> Vec<String> {
        let mut problems = Vec::new();
        for key in given {
            if !self.keys.iter().any(|k| k.name == *key) {
                let known: Vec<&str> = self.keys.iter().map(|k| k.name).collect();
                problems.push(format!(
                    "unknown key {key:?} for builtin {:?}; it takes {}",
                    self.name,
                    known.join(", ")
                ));
            }
        }
        for key in self.keys.iter().filter(|k| k.required) {
            if !given.contains(&key.name) {
                problems.push(format!(
                    "builtin {:?} needs the key {:?}",
                    self.name, key.name
                ));
            }
        }
        problems
    }
}

macro_rules! wasm {
    ($name:literal) => {
        include_bytes!(concat!(env!("OUT_DIR"), "/", $name, ".wasm"))
    };
}

pub static ALL: &[Builtin] = &[
    Builtin {
        name: "http",
        kind: PluginKind::Integration,
        summary: "proxies to an HTTP backend through pooled keep-alive connections",
        grants: &[Capability::Http],
        keys: &[
            ConfigKey {
                name: "url",
                required: true,
                doc: "backend URL; {name} is replaced by the path parameter `name`, the client's query string is appended",
            },
            ConfigKey {
                name: "timeout_ms",
                required: false,
                doc: "time for the whole backend response, default 29000; past it the client gets 504",
            },
        ],
        wasm: wasm!("wicket_plugin_http"),
    },
    Builtin {
        name: "mock",
        kind: PluginKind::Integration,
        summary: "answers with a fixed response",
        grants: &[],
        keys: &[
            ConfigKey {
                name: "status",
                required: false,
                doc: "status code, default 200",
            },
            ConfigKey {
                name: "headers",
                required: false,
                doc: "table of header name -> value template ({request_id}, {param.NAME}, any context key)",
            },
            ConfigKey {
                name: "body",
                required: false,
                doc: "a string template sent as text, or any other value sent as JSON",
            },
        ],
        wasm: wasm!("wicket_plugin_mock"),
    },
    Builtin {
        name: "headers",
        kind: PluginKind::Filter,
        summary: "sets and removes request and response headers",
        grants: &[],
        keys: &[
            ConfigKey {
                name: "request",
                required: false,
                doc: "{ set = { name = \"value template\" }, remove = [\"name\"] } applied before the integration",
            },
            ConfigKey {
                name: "response",
                required: false,
                doc: "the same for the response, applied on the way out",
            },
        ],
        wasm: wasm!("wicket_plugin_headers"),
    },
    Builtin {
        name: "api-key",
        kind: PluginKind::Filter,
        summary: "admits requests carrying a known API key (403 Forbidden otherwise); sets principal, usage_plan",
        grants: &[],
        keys: &[
            ConfigKey {
                name: "header",
                required: false,
                doc: "request header holding the key, default x-api-key",
            },
            ConfigKey {
                name: "keys",
                required: true,
                doc: "[{ key_sha256 = \"<hex SHA-256 of the key>\", principal = \"...\", plan = \"...\" }]; plan is optional",
            },
        ],
        wasm: wasm!("wicket_plugin_api_key"),
    },
    Builtin {
        name: "cors",
        kind: PluginKind::Filter,
        summary: "answers CORS preflights (204, or 403 for a refused one) and adds CORS headers to responses of allowed origins",
        grants: &[],
        keys: &[
            ConfigKey {
                name: "allow_origins",
                required: true,
                doc: "[\"https://app.example.com\", \"https://*.example.com\" (any subdomain), or \"*\"]; other origins get no CORS headers",
            },
            ConfigKey {
                name: "allow_methods",
                required: false,
                doc: "methods a preflight may ask for, default [GET, HEAD, POST, PUT, PATCH, DELETE]; \"*\" allows any",
            },
            ConfigKey {
                name: "allow_headers",
                required: false,
                doc: "request headers a preflight may ask for, default none; \"*\" allows any",
            },
            ConfigKey {
                name: "expose_headers",
                required: false,
                doc: "response headers scripts may read (Access-Control-Expose-Headers)",
            },
            ConfigKey {
                name: "allow_credentials",
                required: false,
                doc: "send Access-Control-Allow-Credentials: true, default false; not with the origin \"*\"",
            },
            ConfigKey {
                name: "max_age",
                required: false,
                doc: "seconds browsers may cache a preflight answer (Access-Control-Max-Age)",
            },
        ],
        wasm: wasm!("wicket_plugin_cors"),
    },
    Builtin {
        name: "validate",
        kind: PluginKind::Filter,
        summary: "refuses requests whose JSON body breaks a JSON Schema (2020-12) or that lack required query parameters or headers: 400 with the list of violations",
        grants: &[],
        keys: &[
            ConfigKey {
                name: "schema",
                required: false,
                doc: "the JSON Schema (draft 2020-12), inline; self-contained (local $ref and $defs only)",
            },
            ConfigKey {
                name: "validate_formats",
                required: false,
                doc: "also check `format` (email, date-time, uuid, ...), default false",
            },
            ConfigKey {
                name: "body_methods",
                required: false,
                doc: "methods whose body is validated, default [POST, PUT, PATCH]",
            },
            ConfigKey {
                name: "body_required",
                required: false,
                doc: "an empty body is a violation, default true",
            },
            ConfigKey {
                name: "required_query",
                required: false,
                doc: "query parameters that must be present",
            },
            ConfigKey {
                name: "required_headers",
                required: false,
                doc: "headers that must be present",
            },
            ConfigKey {
                name: "max_errors",
                required: false,
                doc: "violations listed at most, default 10",
            },
        ],
        wasm: wasm!("wicket_plugin_validate"),
    },
    Builtin {
        name: "sigv4",
        kind: PluginKind::Filter,
        summary: "admits requests signed with AWS Signature Version 4 (header or presigned URL); sets principal",
        grants: &[],
        keys: &[
            ConfigKey {
                name: "credentials",
                required: true,
                doc: "[{ access_key = \"...\", secret_key = \"...\", principal = \"...\" }]: the key pairs accepted",
            },
            ConfigKey {
                name: "region",
                required: true,
                doc: "region the credential scope must name",
            },
            ConfigKey {
                name: "service",
                required: false,
                doc: "service the credential scope must name, default execute-api",
            },
            ConfigKey {
                name: "max_skew_s",
                required: false,
                doc: "how far X-Amz-Date may be from the clock, default 300",
            },
            ConfigKey {
                name: "allow_unsigned_payload",
                required: false,
                doc: "accept X-Amz-Content-Sha256: UNSIGNED-PAYLOAD with a body, default false",
            },
            ConfigKey {
                name: "normalize_path",
                required: false,
                doc: "the signer normalized the path (dot segments, empty segments), default true (false for s3)",
            },
            ConfigKey {
                name: "double_encode_path",
                required: false,
                doc: "the signer URI-encoded the path once more, default true (false for s3)",
            },
            ConfigKey {
                name: "fixed_time",
                required: false,
                doc: "RFC 3339 time to verify at instead of the clock; for replaying test suites only",
            },
        ],
        wasm: wasm!("wicket_plugin_sigv4"),
    },
    Builtin {
        name: "xml-json",
        kind: PluginKind::Filter,
        summary: "converts XML bodies to JSON and JSON bodies to XML (Apigee-style conventions); refuses DTDs, so no XXE or entity expansion",
        grants: &[],
        keys: &[
            ConfigKey {
                name: "request",
                required: false,
                doc: "\"xml-to-json\", \"json-to-xml\" or \"none\" (default): how request bodies of the source Content-Type (or none) are converted",
            },
            ConfigKey {
                name: "response",
                required: false,
                doc: "the same for response bodies",
            },
            ConfigKey {
                name: "attribute_prefix",
                required: false,
                doc: "XML attributes are JSON members with this prefix, default \"@\"",
            },
            ConfigKey {
                name: "text_key",
                required: false,
                doc: "member holding the text of an element that also has attributes or children, default \"#text\"",
            },
            ConfigKey {
                name: "always_array",
                required: false,
                doc: "element paths from the root (\"order/item\") always written as JSON arrays; other repeated elements become arrays, single ones values",
            },
            ConfigKey {
                name: "namespaces",
                required: false,
                doc: "\"keep\" (default: prefixes and xmlns attributes kept) or \"strip\" (both dropped)",
            },
            ConfigKey {
                name: "recognize_numbers",
                required: false,
                doc: "texts that are JSON numbers (and write back the same) become numbers, default true",
            },
            ConfigKey {
                name: "recognize_booleans",
                required: false,
                doc: "texts true and false become booleans, default true",
            },
            ConfigKey {
                name: "recognize_null",
                required: false,
                doc: "an empty element becomes null instead of \"\", default false",
            },
            ConfigKey {
                name: "strip_root",
                required: false,
                doc: "XML -> JSON leaves out the root element's name, default false",
            },
            ConfigKey {
                name: "root",
                required: false,
                doc: "JSON -> XML root element name; default: a single-member object is its own root, anything else is wrapped in <root>",
            },
            ConfigKey {
                name: "array_item",
                required: false,
                doc: "JSON -> XML element name of items of nameless arrays, default \"item\"",
            },
            ConfigKey {
                name: "xml_declaration",
                required: false,
                doc: "JSON -> XML writes <?xml version=\"1.0\" encoding=\"UTF-8\"?>, default true",
            },
            ConfigKey {
                name: "max_depth",
                required: false,
                doc: "element (or JSON) nesting refused past this, default 64",
            },
            ConfigKey {
                name: "max_elements",
                required: false,
                doc: "XML documents with more elements are refused, default 100000",
            },
            ConfigKey {
                name: "max_bytes",
                required: false,
                doc: "bodies larger than this are refused (413 for requests, 502 for responses), default 1048576",
            },
        ],
        wasm: wasm!("wicket_plugin_xml_json"),
    },
    Builtin {
        name: "jwt",
        kind: PluginKind::Filter,
        summary: "admits OAuth2 bearer JWTs verified against a JWKS (401/403 per RFC 6750); sets principal, scopes",
        grants: &[Capability::Http, Capability::Kv, Capability::Counters],
        keys: &[
            ConfigKey {
                name: "jwks_url",
                required: false,
                doc: "URL of the issuer's JWKS, fetched through http, cached and shared through kv",
            },
            ConfigKey {
                name: "jwks",
                required: false,
                doc: "the JWKS inline instead ({ keys = [...] } or its JSON text)",
            },
            ConfigKey {
                name: "hs_secret",
                required: false,
                doc: "shared secret (>= 32 bytes) enabling HS256; HS256 never uses a public key",
            },
            ConfigKey {
                name: "issuer",
                required: false,
                doc: "required iss claim",
            },
            ConfigKey {
                name: "audience",
                required: false,
                doc: "accepted aud value, a string or a list",
            },
            ConfigKey {
                name: "required_scopes",
                required: false,
                doc: "scopes the token must hold (scope or scp claim); missing ones give 403 insufficient_scope",
            },
            ConfigKey {
                name: "leeway_s",
                required: false,
                doc: "clock leeway for exp, nbf and iat, default 60",
            },
            ConfigKey {
                name: "claims_to_headers",
                required: false,
                doc: "table of claim -> request header set for the integration (client values removed)",
            },
            ConfigKey {
                name: "algorithms",
                required: false,
                doc: "accepted algorithms, default RS256/384/512 PS256/384/512 ES256 ES384 EdDSA (+HS256 with hs_secret)",
            },
            ConfigKey {
                name: "jwks_cache_ttl_s",
                required: false,
                doc: "how long a fetched JWKS is used, default 300",
            },
            ConfigKey {
                name: "min_refresh_s",
                required: false,
                doc: "at most one refetch for an unknown kid per this many seconds, default 30",
            },
            ConfigKey {
                name: "jwks_timeout_ms",
                required: false,
                doc: "time for one JWKS fetch, default 1500",
            },
            ConfigKey {
                name: "jwks_max_bytes",
                required: false,
                doc: "largest JWKS accepted, default 150000",
            },
        ],
        wasm: wasm!("wicket_plugin_jwt"),
    },
    Builtin {
        name: "quota",
        kind: PluginKind::Filter,
        summary: "token-bucket rate limits and day/week/month quotas per caller (429 with Retry-After and RateLimit-* headers); state in counters, shared through Redis",
        grants: &[Capability::Counters],
        keys: &[
            ConfigKey {
                name: "by",
                required: false,
                doc: "whose requests count together: principal, usage_plan, client_ip (default), route, header:NAME, query:NAME, context:KEY, or a list of these",
            },
            ConfigKey {
                name: "rate",
                required: false,
                doc: "token bucket refill, requests per second",
            },
            ConfigKey {
                name: "burst",
                required: false,
                doc: "token bucket size, default the rate rounded up",
            },
            ConfigKey {
                name: "quota",
                required: false,
                doc: "{ limit = 10000, period = \"day\" } (minute, hour, day, week, month; UTC calendar periods, weeks start Monday), or a list of them",
            },
            ConfigKey {
                name: "plans",
                required: false,
                doc: "{ gold = { rate = 100, burst = 200, quota = {...} } }: replaces rate/burst/quota for callers whose usage_plan is listed",
            },
            ConfigKey {
                name: "limits",
                required: false,
                doc: "further limits, all enforced: [{ name, by, rate, burst, quota, plans }]",
            },
            ConfigKey {
                name: "on_backend_error",
                required: false,
                doc: "when the state backend fails: \"local\" (default; same limits in each plugin instance's memory), \"allow\", or \"deny\" (503)",
            },
            ConfigKey {
                name: "headers",
                required: false,
                doc: "add RateLimit-Limit/-Remaining/-Reset to admitted responses, default true",
            },
        ],
        wasm: wasm!("wicket_plugin_quota"),
    },
    Builtin {
        name: "introspect",
        kind: PluginKind::Filter,
        summary: "admits opaque OAuth2 tokens the authorization server says are active (RFC 7662); sets principal, scopes",
        grants: &[Capability::Http, Capability::Kv],
        keys: &[
            ConfigKey {
                name: "introspection_url",
                required: true,
                doc: "the authorization server's introspection endpoint",
            },
            ConfigKey {
                name: "client_id",
                required: true,
                doc: "the gateway's client id (HTTP Basic to the endpoint)",
            },
            ConfigKey {
                name: "client_secret",
                required: true,
                doc: "the gateway's client secret",
            },
            ConfigKey {
                name: "cache_ttl_s",
                required: false,
                doc: "answers are cached per token hash until exp, at most this long, default 60",
            },
            ConfigKey {
                name: "timeout_ms",
                required: false,
                doc: "time for one introspection call, default 1500; a failure gives 401",
            },
            ConfigKey {
                name: "required_scopes",
                required: false,
                doc: "scopes the token must hold; missing ones give 403 insufficient_scope",
            },
        ],
        wasm: wasm!("wicket_plugin_introspect"),
    },
    Builtin {
        name: "cache",
        kind: PluginKind::Filter,
        summary: "caches integration responses in kv (X-Cache: Hit | Miss), shared through Redis; hits answer before the integration",
        grants: &[Capability::Kv, Capability::Metrics],
        keys: &[
            ConfigKey {
                name: "ttl_s",
                required: false,
                doc: "seconds an entry lives, 1 to 3600, default 300 (less when the response's s-maxage/max-age says so)",
            },
            ConfigKey {
                name: "methods",
                required: false,
                doc: "methods cached, default [GET, HEAD] (GET, HEAD, OPTIONS only)",
            },
            ConfigKey {
                name: "statuses",
                required: false,
                doc: "response statuses stored, default [200]",
            },
            ConfigKey {
                name: "key_query",
                required: false,
                doc: "query parameters that are part of the key (others are ignored), or [\"*\"] for the whole query",
            },
            ConfigKey {
                name: "key_headers",
                required: false,
                doc: "request headers that are part of the key; a response that Varies on another header is not stored",
            },
            ConfigKey {
                name: "key_principal",
                required: false,
                doc: "one entry per caller (context principal), default false",
            },
            ConfigKey {
                name: "max_entry_bytes",
                required: false,
                doc: "larger entries (status, headers, body) are not stored, default 1048576, at most 16 MiB",
            },
            ConfigKey {
                name: "invalidation",
                required: false,
                doc: "who may refresh an entry with Cache-Control: max-age=0: false (default), true, or { scopes, principals, usage_plans, context }",
            },
            ConfigKey {
                name: "coalesce",
                required: false,
                doc: "concurrent misses wait for one fetch: { wait_ms = 40, settle_ms = 5 } (default), or false; waiting counts towards cpu_ms",
            },
        ],
        wasm: wasm!("wicket_plugin_cache"),
    },
    Builtin {
        name: "json-map",
        kind: PluginKind::Filter,
        summary: "reshapes JSON bodies with jq programs and maps headers and query parameters (set from jq expressions, rename, remove)",
        grants: &[],
        keys: &[
            ConfigKey {
                name: "request",
                required: false,
                doc: "{ body = \"jq program\", headers = { set = { name = \"jq\" }, rename = { old = \"new\" }, remove = [\"name\"] }, query = { the same } }; programs see the body as . and $ctx, $params, $query, $headers, $method, $path",
            },
            ConfigKey {
                name: "response",
                required: false,
                doc: "{ body = \"jq program\", headers = { set, rename, remove } } applied on the way out; also $status and $response_headers",
            },
        ],
        wasm: wasm!("wicket_plugin_json_map"),
    },
];

pub fn find(name: &str) -> Option<&'static Builtin> {
    ALL.iter().find(|b| b.name == name)
}
