//! OpenAPI out and in, and the developer portal: the exported document passes a real OpenAPI
//! 3.1 validator and says what the chain does; the OpenAPI Initiative's examples import into
//! configs that `wicket check` accepts, whose mocks answer and whose validation refuses bad
//! requests; import then export keeps paths, methods, parameters and schemas; the portal in
//! headless Chromium lists the routes, escapes what it shows and "try it" gets the mock's
//! answer.

use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use wicket_e2e::{check, client, root, run_python, sha256_hex, wicket_bin, Gateway, Upstream};

/// Secrets in `SECURED`: none may appear in a document or a page.
const SECRETS: [&str; 6] = [
    "hs-secret-0123456789-0123456789-0123456789",
    "introspect-client-secret-xyz",
    "sigv4-secret-key-abc",
    "upstream-password-pqr",
    "AKIDSECRETACCESS",
    "the-plain-api-key",
];

fn secured_config() -> String {
    format!(
        r##"[server]
listen = "127.0.0.1:0"

[openapi]
title = "Secured <script>window.pwned = 1</script>"
version = "7"

[portal]
path = "/portal"

[plugins.key]
builtin = "api-key"
config = {{ header = "x-team-key", keys = [{{ key_sha256 = "{key}", principal = "team", plan = "gold" }}] }}

[plugins.token]
builtin = "jwt"
config = {{ hs_secret = "{hs}", issuer = "https://login.example.com", required_scopes = ["pets:write"] }}

[plugins.opaque]
builtin = "introspect"
config = {{ introspection_url = "https://gw:{client}@auth.example.com/oauth2/introspect?secret={client}", client_id = "gw", client_secret = "{client}" }}

[plugins.signed]
builtin = "sigv4"
config = {{ region = "eu-west-1", credentials = [{{ access_key = "{akid}", secret_key = "{sk}", principal = "svc" }}] }}

[plugins.limit]
builtin = "quota"
config = {{ rate = 5, burst = 10, by = "principal", plans = {{ gold = {{ rate = 50, burst = 100 }} }} }}

[plugins.check-pet]
builtin = "validate"
config = {{ schema = {{ type = "object", required = ["name"], properties = {{ name = {{ type = "string" }}, owner = {{ "$ref" = "#/$defs/Owner" }} }}, "$defs" = {{ Owner = {{ type = "object", properties = {{ email = {{ type = "string" }} }} }} }} }}, required_query = ["dryRun"], required_headers = ["x-tenant"] }}

[plugins.pets-mock]
builtin = "mock"
config = {{ status = 201, body = {{ id = 7, name = "<img src=x onerror=window.pwned=2>" }} }}

[plugins.upstream]
builtin = "http"
config = {{ url = "http://user:{pw}@127.0.0.1:9/files/{{path}}" }}

[plugins.custom-docs]
builtin = "headers"
config = {{ response = {{ set = {{ "x-docs" = "1" }} }} }}
[plugins.custom-docs.openapi]
operation = {{ description = "Added by the plugin's operator", responses = {{ "418" = {{ description = "A teapot" }} }} }}

[[routes]]
name = "create-pet"
methods = ["POST"]
path = "/v1/pets/{{petId}}"
plugins = ["key", "limit", "check-pet", "custom-docs"]
integration = "pets-mock"

[[routes]]
name = "read-pet"
methods = ["GET"]
path = "/v1/pets/{{petId}}"
plugins = ["token"]
integration = "pets-mock"

[[routes]]
name = "opaque"
methods = ["GET"]
path = "/v1/opaque"
plugins = ["opaque"]
integration = "pets-mock"

[[routes]]
name = "files"
path = "/v1/files/{{path+}}"
plugins = ["signed"]
integration = "upstream"
"##,
        key = sha256_hex(SECRETS[5].as_bytes()),
        hs = SECRETS[0],
        client = SECRETS[1],
        sk = SECRETS[2],
        pw = SECRETS[3],
        akid = SECRETS[4],
    )
}

/// `wicket openapi ARGS... LAST`'s output.
fn wicket_openapi(args: &[&str], last: &Path) -> std::process::Output {
    Command::new(wicket_bin())
        .arg("openapi")
        .args(args)
        .arg(last)
        .output()
        .unwrap()
}

/// The stdout of a `wicket openapi` run that must succeed.
fn stdout_of(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `wicket openapi --config FILE [extra]`'s stdout.
fn export(config: &Path, extra: &[&str]) -> String {
    let out = Command::new(wicket_bin())
        .args(["openapi", "--config"])
        .arg(config)
        .args(extra)
        .output()
        .unwrap();
    stdout_of(out)
}

/// `wicket openapi import --integration mock SPEC`'s stdout.
fn import(spec: &Path) -> String {
    stdout_of(wicket_openapi(&["import", "--integration", "mock"], spec))
}

/// Validate `doc` with openapi-spec-validator (the OpenAPI 3.1 schema and its checks).
fn assert_valid_openapi(doc: &str) {
    let out = run_python(
        "openapi-spec-validator",
        "import sys, yaml\n\
         from openapi_spec_validator import OpenAPIV31SpecValidator, validate\n\
         spec = yaml.safe_load(sys.stdin.read())\n\
         validate(spec, cls=OpenAPIV31SpecValidator)\n\
         print('valid')",
        doc.as_bytes(),
    );
    assert_eq!(String::from_utf8_lossy(&out).trim(), "valid");
}

fn spec_path(name: &str) -> PathBuf {
    root().join("tests/openapi").join(name)
}

#[test]
fn the_exported_document_is_valid_openapi_31_and_says_what_the_chain_does() {
    let (ok, out, path) = check("secured.toml", &secured_config());
    assert!(ok, "{out}");
    let text = export(&path, &[]);
    assert!(
        text.starts_with("{\n  \"openapi\": \"3.1.0\",\n  \"info\""),
        "{text}"
    );
    for secret in SECRETS.iter().chain([&&*sha256_hex(SECRETS[5].as_bytes())]) {
        assert!(!text.contains(secret), "the document leaks {secret}");
    }
    assert_valid_openapi(&text);
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(
        schemes["key"],
        json!({"type": "apiKey", "in": "header", "name": "x-team-key"})
    );
    assert_eq!(schemes["token"]["scheme"], "bearer");
    assert_eq!(schemes["token"]["bearerFormat"], "JWT");
    assert_eq!(
        schemes["token-oidc"]["openIdConnectUrl"],
        "https://login.example.com/.well-known/openid-configuration"
    );
    assert_eq!(schemes["opaque"]["type"], "oauth2");
    assert_eq!(
        schemes["opaque"]["flows"]["clientCredentials"]["tokenUrl"],
        "https://auth.example.com/oauth2/token"
    );
    assert_eq!(
        schemes["signed"]["x-amazon-apigateway-authtype"],
        "awsSigv4"
    );
    assert_eq!(schemes["signed"]["name"], "Authorization");

    let create = &doc["paths"]["/v1/pets/{petId}"]["post"];
    assert_eq!(create["security"], json!([{"key": []}]));
    let params: BTreeSet<(String, String, bool)> = create["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["in"].as_str().unwrap().to_string(),
                p["required"] == true,
            )
        })
        .collect();
    assert_eq!(
        params,
        BTreeSet::from([
            ("petId".into(), "path".into(), true),
            ("dryRun".into(), "query".into(), true),
            ("x-tenant".into(), "header".into(), true),
        ])
    );
    // The body schema's $defs became components, referred to from the document's root.
    let body = &create["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(
        body["properties"]["owner"]["$ref"],
        "#/components/schemas/Owner"
    );
    assert!(doc["components"]["schemas"]["Owner"].is_object());
    let responses = &create["responses"];
    for code in ["201", "400", "403", "413", "429", "500", "504", "418"] {
        assert!(responses.get(code).is_some(), "no {code} in {responses:#}");
    }
    assert!(responses["429"]["headers"]["Retry-After"].is_object());
    assert_eq!(
        responses["400"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/WicketValidationError"
    );
    assert_eq!(
        responses["201"]["content"]["application/json"]["example"]["id"],
        7
    );
    assert_eq!(create["description"], "Added by the plugin's operator");
    assert_eq!(create["x-wicket-limits"][0]["plans"]["gold"]["rate"], 50);

    let read = &doc["paths"]["/v1/pets/{petId}"]["get"];
    assert_eq!(
        read["security"],
        json!([{"token": ["pets:write"]}, {"token-oidc": ["pets:write"]}])
    );
    assert!(read["responses"]["401"]["headers"]["WWW-Authenticate"].is_object());

    // The greedy route: a plain parameter in OpenAPI, the template kept in an extension.
    let files = &doc["paths"]["/v1/files/{path}"];
    assert_eq!(files["x-wicket-path"], "/v1/files/{path+}");
    assert_eq!(files["x-wicket-any-method"], true);
    assert_eq!(files["get"]["parameters"][0]["x-wicket-greedy"], true);
    assert!(files["delete"]["responses"]["502"].is_object());

    // The same document as YAML.
    let yaml = export(&path, &["--format", "yaml"]);
    assert!(yaml.starts_with("openapi: 3.1.0\n"), "{yaml}");
    assert_valid_openapi(&yaml);
}

/// The imported config of `spec`, checked, listening on a free port.
fn serve_import(spec: &str) -> (String, Gateway) {
    let config = import(&spec_path(spec));
    let (ok, out, _) = check(&format!("{spec}.toml"), &config);
    assert!(
        ok,
        "{spec}: wicket check refused the import:\n{out}\n{config}"
    );
    let config = config.replace("listen = \"127.0.0.1:8080\"", "listen = \"127.0.0.1:0\"");
    (config.clone(), Gateway::start(&config))
}

#[tokio::test]
async fn the_petstore_examples_import_into_configs_whose_mocks_answer() {
    let http = client();
    let (_, gw) = serve_import("petstore-3.0.yaml");
    let r = http.get(gw.url("/pets?limit=5")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let pets: Value = r.json().await.unwrap();
    assert_eq!(pets[0]["name"], "string", "a sample from the Pets schema");
    let r = http.get(gw.url("/pets/12")).send().await.unwrap();
    assert_eq!(r.status(), 200);

    let (config, gw) = serve_import("petstore-expanded-3.0.yaml");
    assert!(config.contains("\"$ref\" = \"#/$defs/NewPet\""), "{config}");
    let r = http
        .post(gw.url("/pets"))
        .json(&json!({"tag": "no name"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "NewPet requires a name");
    let refusal: Value = r.json().await.unwrap();
    assert_eq!(refusal["message"], "Invalid request body");
    let r = http
        .post(gw.url("/pets"))
        .json(&json!({"name": "Rex", "tag": "dog"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http.delete(gw.url("/pets/3")).send().await.unwrap();
    assert_eq!(r.status(), 204);

    // 3.1: the operations need an API key or a bearer token; the placeholders accept none.
    let (config, gw) = serve_import("tictactoe-3.1.yaml");
    assert!(config.contains("PLACEHOLDER"), "{config}");
    let r = http.get(gw.url("/board")).send().await.unwrap();
    assert_eq!(r.status(), 403, "no key");
    let r = http
        .get(gw.url("/board"))
        .header("api-key", "guess")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "the placeholder matches no key");
    let r = http
        .put(gw.url("/board/1/1"))
        .header("authorization", "Bearer x.y.z")
        .json(&json!("X"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn allof_and_ref_chains_are_enforced_and_the_first_example_answers() {
    let http = client();
    let (_, gw) = serve_import("orders-allof-3.1.yaml");
    let good = json!({"customer": {"name": "Ada", "note": null}, "lines": [{"sku": "A-1", "quantity": 2}]});
    let post = |body: &Value, region: bool| {
        let mut r = http.post(gw.url("/orders")).json(body);
        if region {
            r = r.header("x-request-region", "eu");
        }
        r.send()
    };
    let r = post(&good, false).await.unwrap();
    assert_eq!(r.status(), 400, "the required header is missing");
    for bad in [
        json!({"customer": {"name": ""}, "lines": [{"sku": "A-1", "quantity": 2}]}),
        json!({"customer": {"name": "Ada"}, "lines": []}),
        json!({"customer": {"name": "Ada"}, "lines": [{"sku": "a1", "quantity": 2}]}),
        json!({"customer": {"name": "Ada"}, "lines": [{"sku": "A-1", "quantity": 0}]}),
        json!({"customer": {"name": "Ada", "note": 5}, "lines": [{"sku": "A-1", "quantity": 1}]}),
    ] {
        let r = post(&bad, true).await.unwrap();
        assert_eq!(r.status(), 400, "{bad} passed");
    }
    let r = post(&good, true).await.unwrap();
    assert_eq!(r.status(), 201);
    let order: Value = r.json().await.unwrap();
    assert_eq!(order["id"], 42, "the first example: {order}");
    let r = http.get(gw.url("/orders/9")).send().await.unwrap();
    assert_eq!(r.status(), 400, "expand is a required query parameter");
    let r = http
        .get(gw.url("/orders/9?expand=lines"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http.get(gw.url("/categories")).send().await.unwrap();
    assert_eq!(
        r.status(),
        200,
        "a recursive schema samples without looping"
    );
}

#[tokio::test]
async fn with_a_server_url_the_import_forwards_to_it() {
    let upstream = Upstream::start();
    let spec = std::fs::read_to_string(spec_path("orders-allof-3.1.yaml"))
        .unwrap()
        .replace("https://orders.example.com/api", &upstream.url("/api"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orders.yaml");
    std::fs::write(&path, spec).unwrap();
    let config = stdout_of(wicket_openapi(&["import"], &path))
        .replace("listen = \"127.0.0.1:8080\"", "listen = \"127.0.0.1:0\"");
    assert!(config.contains("builtin = \"http\""), "{config}");
    let gw = Gateway::start(&config);
    let r = client()
        .get(gw.url("/orders/5?expand=lines"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen: Value = r.json().await.unwrap();
    assert_eq!(seen["path"], "/api/orders/5");
    assert_eq!(seen["query"], "expand=lines");
    // Validation still runs before the forward.
    let r = client().get(gw.url("/orders/5")).send().await.unwrap();
    assert_eq!(r.status(), 400);
}

#[test]
fn import_refuses_what_is_not_openapi_3() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text, says) in [
        (
            "swagger.yaml",
            "swagger: '2.0'\npaths: {}\n",
            "not an OpenAPI 3.0 or 3.1 document",
        ),
        (
            "broken.yaml",
            "openapi: [3.1\n",
            "not a YAML or JSON document",
        ),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let out = wicket_openapi(&["import"], &path);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(name) && err.contains(says), "{err}");
    }
}

/// (path, method) -> (sorted (name, in, required) of the parameters, request body schema).
type Operations = Vec<((String, String), (Vec<(String, String, bool)>, Value))>;

fn operations(doc: &Value) -> Operations {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if !["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                continue;
            }
            let mut params: Vec<(String, String, bool)> = item["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .chain(op["parameters"].as_array().into_iter().flatten())
                .map(|p| match p["$ref"].as_str() {
                    Some(r) => doc.pointer(&r[1..]).unwrap(),
                    None => p,
                })
                .map(|p| {
                    (
                        p["name"].as_str().unwrap().to_string(),
                        p["in"].as_str().unwrap().to_string(),
                        p["required"] == true,
                    )
                })
                .collect();
            params.sort();
            params.dedup();
            let body = op["requestBody"]["content"]["application/json"]["schema"].clone();
            out.push(((path.clone(), method.clone()), (params, body)));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn import_then_export_keeps_paths_methods_parameters_and_schemas() {
    for spec in [
        "petstore-3.0.yaml",
        "petstore-expanded-3.0.yaml",
        "tictactoe-3.1.yaml",
        "orders-allof-3.1.yaml",
    ] {
        let original: Value =
            serde_yaml_ng::from_str(&std::fs::read_to_string(spec_path(spec)).unwrap()).unwrap();
        let (ok, out, path) = check(&format!("{spec}.toml"), &import(&spec_path(spec)));
        assert!(ok, "{out}");
        let text = export(&path, &[]);
        assert_valid_openapi(&text);
        let exported: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(operations(&exported), operations(&original), "{spec}");
        for (name, schema) in original["components"]["schemas"].as_object().unwrap() {
            assert_eq!(
                &exported["components"]["schemas"][name], schema,
                "{spec}: schema {name}"
            );
        }
        assert_eq!(exported["info"]["title"], original["info"]["title"]);
    }
}

#[tokio::test]
async fn the_portal_serves_the_document_and_leaks_no_secret() {
    let gw = Gateway::start(&secured_config());
    let http = client();
    let doc = http.get(gw.url("/openapi.json")).send().await.unwrap();
    assert_eq!(doc.status(), 200);
    let doc = doc.text().await.unwrap();
    let page = http.get(gw.url("/portal")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"));
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
    let page = page.text().await.unwrap();
    let script = http
        .get(gw.url("/portal/portal.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!script.contains("innerHTML"));
    for text in [&doc, &page, &script] {
        for secret in SECRETS.iter().chain([&&*sha256_hex(SECRETS[5].as_bytes())]) {
            assert!(!text.contains(secret), "the portal leaks {secret}");
        }
    }
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "no CDN: {page}"
    );
    // The portal answers only GET and HEAD of its own paths; the rest is the routes'.
    let r = http.post(gw.url("/portal")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let r = http
        .get(gw.url("/portal/../etc/passwd"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[test]
fn a_route_under_the_portal_path_is_refused() {
    let (ok, out, _) = check(
        "clash.toml",
        r#"[server]
listen = "127.0.0.1:0"

[portal]
path = "/docs"

[plugins.m]
builtin = "mock"

[[routes]]
name = "catch-all"
path = "/{any+}"
integration = "m"
"#,
    );
    assert!(!ok);
    assert!(
        out.contains("routes[0].path") && out.contains("/docs"),
        "{out}"
    );
}

#[test]
fn the_portal_in_a_browser_lists_the_routes_and_try_it_gets_the_mock_answer() {
    let gw = Gateway::start(&secured_config());
    let screenshot = wicket_bin().with_file_name("portal-screenshot.png");
    let input = json!({"url": gw.url("/portal"), "screenshot": screenshot}).to_string();
    let out = run_python("selenium", BROWSER_SCRIPT, input.as_bytes());
    let seen: Value = serde_json::from_slice(&out).unwrap();
    let listed = seen["listed"].as_str().unwrap();
    for route in [
        "POST /v1/pets/{petId}",
        "GET /v1/pets/{petId}",
        "GET /v1/opaque",
    ] {
        assert!(listed.contains(route), "{route} not listed:\n{listed}");
    }
    assert_eq!(seen["pwned"], Value::Null, "markup from the config ran");
    assert!(
        seen["title"].as_str().unwrap().contains("<script>"),
        "the title is shown as text: {seen}"
    );
    assert!(
        seen["status"].as_str().unwrap().contains("HTTP 201"),
        "{seen}"
    );
    let body: Value = serde_json::from_str(seen["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["id"], 7);
    assert_eq!(body["name"], "<img src=x onerror=window.pwned=2>");
    let curl = seen["curl"].as_str().unwrap();
    assert!(
        curl.contains("/v1/pets/Rex%20the%20dog") && curl.contains("x-team-key: "),
        "{curl}"
    );
    assert!(seen["python"].as_str().unwrap().contains("urllib.request"));
    assert!(seen["javascript"]
        .as_str()
        .unwrap()
        .contains("await fetch("));
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 10_000);
}

/// Drives headless Chromium (Debian's, through chromedriver): opens the portal, reads the
/// operation list, fills the POST operation's form (path parameter, query, header, API key,
/// body), sends it, and reports what the page shows.
const BROWSER_SCRIPT: &str = r#"
import json, shutil, sys, tempfile
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

args = json.load(sys.stdin)
options = webdriver.ChromeOptions()
options.binary_location = shutil.which("chromium")
profile = tempfile.mkdtemp()
for flag in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", "--window-size=1280,1600", "--user-data-dir=" + profile]:
    options.add_argument(flag)
driver = webdriver.Chrome(service=Service(executable_path=shutil.which("chromedriver")), options=options)
try:
    driver.set_page_load_timeout(30)
    driver.get(args["url"])
    wait = WebDriverWait(driver, 20)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "details.op"))
    listed = "\n".join(" ".join(s.text.split()) for s in driver.find_elements(By.CSS_SELECTOR, "details.op > summary"))
    op = driver.find_element(By.CSS_SELECTOR, 'details.op[data-operation="create-pet"]')
    op.find_element(By.TAG_NAME, "summary").click()
    def fill(name, value):
        field = op.find_element(By.CSS_SELECTOR, '[name="%s"]' % name)
        field.clear()
        field.send_keys(value)
    fill("path:petId", "Rex the dog")
    fill("query:dryRun", "1")
    fill("header:x-tenant", "acme")
    fill("auth:key", "the-plain-api-key")
    fill("body", '{"name": "Rex"}')
    op.find_element(By.CSS_SELECTOR, "button.send").click()
    wait.until(lambda d: "HTTP" in op.find_element(By.CSS_SELECTOR, ".result").text)
    report = {
        "listed": listed,
        "title": driver.find_element(By.ID, "title").text,
        "pwned": driver.execute_script("return window.pwned === undefined ? null : window.pwned"),
        "status": op.find_element(By.CSS_SELECTOR, ".result-status").text,
        "body": op.find_element(By.CSS_SELECTOR, ".result-body").text,
        "curl": op.find_element(By.CSS_SELECTOR, "pre.sample").text,
    }
    op.find_element(By.CSS_SELECTOR, 'button[data-sample="Python"]').click()
    report["python"] = op.find_element(By.CSS_SELECTOR, "pre.sample").text
    op.find_element(By.CSS_SELECTOR, 'button[data-sample="JavaScript"]').click()
    report["javascript"] = op.find_element(By.CSS_SELECTOR, "pre.sample").text
    driver.execute_script("window.scrollTo(0, 0)")
    driver.save_screenshot(args["screenshot"])
    print(json.dumps(report))
finally:
    driver.quit()
"#;

/// With stages, the document is of one stage's routes (`--stage`), under its base path; without
/// `--stage` such a config is refused with its stages named, as is a stage it does not have.
#[test]
fn export_documents_one_stage() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("staged.toml");
    std::fs::write(
        &path,
        r#"[server]
listen = "127.0.0.1:0"

[stages.prod]
base_path = "/prod"

[stages.beta]
base_path = "/beta"

[plugins.answer]
builtin = "mock"

[[routes]]
name = "pets"
path = "/pets/{id}"
methods = ["GET"]
integration = "answer"

[[routes]]
name = "preview"
path = "/preview"
methods = ["GET"]
stages = ["beta"]
integration = "answer"
"#,
    )
    .unwrap();
    let doc: Value = serde_json::from_str(&export(&path, &["--stage", "beta"])).unwrap();
    let mut paths: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    paths.sort();
    assert_eq!(paths, ["/beta/pets/{id}", "/beta/preview"]);
    let doc: Value = serde_json::from_str(&export(&path, &["--stage", "prod"])).unwrap();
    let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
    assert_eq!(paths, ["/prod/pets/{id}"]);

    for (extra, says) in [
        (&[][..], "has stages (beta, prod); choose one with --stage"),
        (&["--stage", "gamma"][..], "no stage \"gamma\""),
    ] {
        let out = Command::new(wicket_bin())
            .args(["openapi", "--config"])
            .arg(&path)
            .args(extra)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{err}");
    }
}
