//! `xml-json` filter: converts XML request and response bodies to JSON and JSON bodies to XML,
//! with the conventions of Apigee's XMLToJSON and JSONToXML policies.
//!
//! ```toml
//! [plugins.soapish]
//! builtin = "xml-json"
//! config = { request = "json-to-xml", response = "xml-to-json", root = "Order", always_array = ["Order/Item"] }
//! ```
//!
//! Which way each side goes:
//!
//! * `request`, `response`: `"xml-to-json"`, `"json-to-xml"` or `"none"` (default). A side is
//!   converted when its `Content-Type` is the source format (`application/xml`, `text/xml`,
//!   `*+xml`; `application/json`, `*+json`), or absent with a non-empty body; other bodies
//!   pass untouched. The converted body gets `Content-Type: application/json` or
//!   `application/xml`.
//!
//! XML -> JSON:
//!
//! * The root element is kept: `<order>..</order>` -> `{"order": ...}`; `strip_root = true`
//!   leaves it out.
//! * Attributes are members named `attribute_prefix` (default `@`) + name: `{"@id": "7"}`.
//! * An element with only text is its text: `<name>Ada</name>` -> `"name": "Ada"`. The text of
//!   an element that also has attributes or children is under `text_key` (default `#text`).
//!   Mixed content keeps its text runs concatenated (not their places between children).
//! * Repeated child elements become an array, in document order; a single one is a value,
//!   unless its path from the root is in `always_array` (`["order/item"]`, a leading `/` is
//!   optional). Children are grouped by name, in the order names first appear.
//! * `recognize_numbers` (default true) and `recognize_booleans` (default true) turn texts into
//!   JSON numbers and booleans, only when the JSON form writes back to the same text (`2`,
//!   `-1.5`, `true`; never `007`, `1e5`, ` 2`), so round trips are stable.
//!   `recognize_null` (default false) makes an empty element `null` instead of `""`.
//! * `namespaces`: `"keep"` (default) keeps prefixes (`soap:Body`) and `xmlns` declarations
//!   (as attributes); `"strip"` drops both.
//! * Comments and processing instructions are dropped; CDATA is text; whitespace between
//!   elements is ignored, a leaf element's text is kept exactly.
//!
//! JSON -> XML:
//!
//! * The root element is `root` when set (the whole JSON value becomes its content); otherwise
//!   an object with a single member (not an attribute, text or array) is its own root element,
//!   and any other value is wrapped in `<root>`.
//! * Members named with `attribute_prefix` become attributes, `text_key` the text, other
//!   members child elements; an array member becomes repeated elements; the items of an array
//!   that has no member name (top-level, nested arrays) are `<item>` elements (`array_item`).
//!   `null` is an empty element.
//! * A `<?xml version="1.0" encoding="UTF-8"?>` declaration unless `xml_declaration = false`.
//! * Names that are not XML names, structured attribute values and characters XML cannot hold
//!   are refused with the JSON pointer of the value.
//!
//! Safety: a document with a `DOCTYPE` is refused (so no entity is ever declared, expanded or
//! fetched: no XXE, no "billion laughs"); only the five predefined entities and character
//! references are read. Bodies larger than `max_bytes` (default 1 MiB) get 413, documents
//! nested deeper than `max_depth` (default 64) or with more than `max_elements` (default
//! 100000) elements are refused; JSON is also limited by its parser to 128 levels.
//!
//! Errors: a request body that is not well-formed (or refused) gets `400` with what is wrong
//! and where, e.g. `Invalid XML body: undefined entity &xxe; (DTDs are not supported) at line
//! 2, column 3`; an upstream response that cannot be converted gets `502` with the same detail.

mod convert;

use convert::{Conventions, ConvertError, Namespaces};
use serde::Deserialize;
use wicket_plugin_sdk::body::{is_json, is_xml, set_request_body, set_response_body};
use wicket_plugin_sdk::{export_filter, Action, Config, Context, Error, Filter, Request, Response};

/// Which way a side is converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Direction {
    XmlToJson,
    JsonToXml,
    None,
}

/// The plugin's `config` table.
#[derive(Debug, Deserialize, wicket_plugin_sdk::ConfigKeys)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// "xml-to-json", "json-to-xml" or "none" (default): how request bodies of the source Content-Type (or none) are converted
    #[serde(default = "none")]
    request: Direction,
    /// the same for response bodies
    #[serde(default = "none")]
    response: Direction,
    /// XML attributes are JSON members with this prefix, default "@"
    #[serde(default = "default_attribute_prefix")]
    attribute_prefix: String,
    /// member holding the text of an element that also has attributes or children, default "#text"
    #[serde(default = "default_text_key")]
    text_key: String,
    /// element paths from the root ("order/item") always written as JSON arrays; other repeated elements become arrays, single ones values
    #[serde(default)]
    always_array: Vec<String>,
    /// "keep" (default: prefixes and xmlns attributes kept) or "strip" (both dropped)
    #[serde(default = "default_namespaces")]
    namespaces: Namespaces,
    /// texts that are JSON numbers (and write back the same) become numbers, default true
    #[serde(default = "yes")]
    recognize_numbers: bool,
    /// texts true and false become booleans, default true
    #[serde(default = "yes")]
    recognize_booleans: bool,
    /// an empty element becomes null instead of "", default false
    #[serde(default)]
    recognize_null: bool,
    /// XML -> JSON leaves out the root element's name, default false
    #[serde(default)]
    strip_root: bool,
    /// JSON -> XML root element name; default: a single-member object is its own root, anything else is wrapped in <root>
    #[serde(default)]
    root: Option<String>,
    /// JSON -> XML element name of items of nameless arrays, default "item"
    #[serde(default = "default_array_item")]
    array_item: String,
    /// JSON -> XML writes <?xml version="1.0" encoding="UTF-8"?>, default true
    #[serde(default = "yes")]
    xml_declaration: bool,
    /// element (or JSON) nesting refused past this, default 64
    #[serde(default = "default_max_depth")]
    max_depth: usize,
    /// XML documents with more elements are refused, default 100000
    #[serde(default = "default_max_elements")]
    max_elements: usize,
    /// bodies larger than this are refused (413 for requests, 502 for responses), default 1048576
    #[serde(default = "default_max_bytes")]
    max_bytes: usize,
}

fn none() -> Direction {
    Direction::None
}
fn default_attribute_prefix() -> String {
    "@".into()
}
fn default_text_key() -> String {
    "#text".into()
}
fn default_namespaces() -> Namespaces {
    Namespaces::Keep
}
fn yes() -> bool {
    true
}
fn default_array_item() -> String {
    "item".into()
}
fn default_max_depth() -> usize {
    64
}
fn default_max_elements() -> usize {
    100_000
}
fn default_max_bytes() -> usize {
    1 << 20
}

#[derive(Debug)]
struct XmlJson {
    request: Direction,
    response: Direction,
    conv: Conventions,
    max_bytes: usize,
}

/// Which side a body is on: decides the status and wording of errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Request,
    Response,
}

fn invalid(why: impl std::fmt::Display) -> String {
    format!("invalid plugin configuration: {why}")
}

impl XmlJson {
    fn from_config(config: &Config) -> Result<Self, String> {
        let s: Settings = config.parse()?;
        if s.request == Direction::None && s.response == Direction::None {
            return Err(invalid(
                "set `request` and/or `response` to \"xml-to-json\" or \"json-to-xml\"",
            ));
        }
        if s.attribute_prefix.is_empty() {
            return Err(invalid("`attribute_prefix` must not be empty"));
        }
        if s.text_key.is_empty() || s.text_key.starts_with(&s.attribute_prefix) {
            return Err(invalid(
                "`text_key` must be non-empty and not start with `attribute_prefix`",
            ));
        }
        if convert::is_xml_name(&s.text_key) {
            return Err(invalid(format!("`text_key` `{}` is also a valid element name; use a name that is not (the default is `#text`)", s.text_key)));
        }
        for (key, name) in [
            ("root", s.root.as_deref()),
            ("array_item", Some(&s.array_item)),
        ] {
            if let Some(name) = name {
                if !convert::is_xml_name(name) {
                    return Err(invalid(format!("`{key}` `{name}` is not an XML name")));
                }
            }
        }
        if s.max_depth == 0 || s.max_elements == 0 || s.max_bytes == 0 {
            return Err(invalid(
                "`max_depth`, `max_elements` and `max_bytes` must be positive",
            ));
        }
        Ok(Self {
            request: s.request,
            response: s.response,
            conv: Conventions {
                attribute_prefix: s.attribute_prefix,
                text_key: s.text_key,
                always_array: s.always_array,
                namespaces: s.namespaces,
                recognize_numbers: s.recognize_numbers,
                recognize_booleans: s.recognize_booleans,
                recognize_null: s.recognize_null,
                strip_root: s.strip_root,
                root: s.root,
                array_item: s.array_item,
                xml_declaration: s.xml_declaration,
                max_depth: s.max_depth,
                max_elements: s.max_elements,
            },
            max_bytes: s.max_bytes,
        })
    }

    /// Whether a body of `content_type` (and `body_len` bytes) is converted `direction`.
    fn applies(direction: Direction, content_type: Option<&str>, body_len: usize) -> bool {
        match (direction, content_type) {
            (Direction::None, _) => false,
            (_, None) => body_len > 0,
            (Direction::XmlToJson, ct) => is_xml(ct),
            (Direction::JsonToXml, ct) => is_json(ct),
        }
    }

    /// The converted body and its content type, or the client's error and the detail for the
    /// log.
    fn convert(
        &self,
        direction: Direction,
        body: &[u8],
        side: Side,
    ) -> Result<(Vec<u8>, &'static str), (Error, String)> {
        if body.len() > self.max_bytes {
            let detail = format!(
                "{side:?} body of {} bytes is over max_bytes = {}",
                body.len(),
                self.max_bytes
            );
            return Err(match side {
                Side::Request => (
                    Error::new(
                        413,
                        format!("Request body larger than {} bytes", self.max_bytes),
                    ),
                    detail,
                ),
                Side::Response => (Error::bad_gateway(), detail),
            });
        }
        let converted = match direction {
            Direction::XmlToJson => self.conv.xml_to_json(body).map(|j| {
                (
                    serde_json::to_vec(&j).unwrap_or_default(),
                    "application/json",
                )
            }),
            Direction::JsonToXml => self
                .conv
                .json_to_xml(body)
                .map(|x| (x.into_bytes(), "application/xml")),
            Direction::None => return Ok((body.to_vec(), "")),
        };
        converted.map_err(|e| {
            let what = match &e {
                ConvertError::Xml { .. } => "Invalid XML",
                ConvertError::Json(_) => "Invalid JSON",
                ConvertError::Unrepresentable { .. } => "JSON that has no XML form",
            };
            match side {
                Side::Request => (
                    Error::bad_request(format!("{what} body: {e}")),
                    format!("request refused: {e}"),
                ),
                Side::Response => (
                    Error::new(502, format!("{what} in the upstream response: {e}")),
                    format!("upstream response not converted: {e}"),
                ),
            }
        })
    }
}

impl Filter for XmlJson {
    fn describe() -> wicket_plugin_sdk::Description {
        wicket_plugin_sdk::Description::new("converts XML bodies to JSON and JSON bodies to XML (Apigee-style conventions); refuses DTDs, so no XXE or entity expansion")
            .config::<Settings>()
    }

    /// Each side converts whole bodies, or does nothing.
    fn plan(&self) -> wicket_plugin_sdk::Plan {
        let body = |d: &Direction| match d {
            Direction::None => wicket_plugin_sdk::BodyUse::None,
            _ => wicket_plugin_sdk::BodyUse::Whole,
        };
        wicket_plugin_sdk::Plan::default()
            .on_request(self.request != Direction::None)
            .on_response(self.response != Direction::None)
            .request_body(body(&self.request))
            .response_body(body(&self.response))
    }

    fn new(config: Config) -> Result<Self, String> {
        XmlJson::from_config(&config)
    }

    fn on_request(&self, req: &Request, _ctx: &Context) -> Result<Action, Error> {
        if self.request == Direction::None {
            return Ok(Action::Continue);
        }
        let content_type = req.header("content-type");
        if content_type.is_some() && !Self::applies(self.request, content_type.as_deref(), 1) {
            return Ok(Action::Continue);
        }
        let body = req.body();
        if !Self::applies(self.request, content_type.as_deref(), body.len()) {
            return Ok(Action::Continue);
        }
        let (converted, ct) =
            self.convert(self.request, &body, Side::Request)
                .map_err(|(error, detail)| {
                    wicket_plugin_sdk::debug!("xml-json: {detail}");
                    error
                })?;
        set_request_body(req, &converted, Some(ct)).map_err(|e| {
            wicket_plugin_sdk::error!("xml-json: cannot replace the request body: {e}");
            Error::internal()
        })?;
        Ok(Action::Continue)
    }

    fn on_response(&self, _req: &Request, resp: &Response, _ctx: &Context) -> Result<(), Error> {
        if self.response == Direction::None {
            return Ok(());
        }
        let content_type = resp.header("content-type");
        if content_type.is_some() && !Self::applies(self.response, content_type.as_deref(), 1) {
            return Ok(());
        }
        let body = resp.body();
        if !Self::applies(self.response, content_type.as_deref(), body.len()) {
            return Ok(());
        }
        let (converted, ct) =
            self.convert(self.response, &body, Side::Response)
                .map_err(|(error, detail)| {
                    wicket_plugin_sdk::warn!("xml-json: {detail}");
                    error
                })?;
        set_response_body(resp, &converted, Some(ct)).map_err(|e| {
            wicket_plugin_sdk::error!("xml-json: cannot replace the response body: {e}");
            Error::internal()
        })?;
        Ok(())
    }
}

export_filter!(XmlJson);

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin(json: &str) -> Result<XmlJson, String> {
        XmlJson::from_config(&Config::from_json(json).unwrap())
    }

    #[test]
    fn config_defaults_and_errors() {
        let p = plugin(r#"{"request": "xml-to-json"}"#).unwrap();
        assert_eq!(
            (p.request, p.response),
            (Direction::XmlToJson, Direction::None)
        );
        assert_eq!(p.conv.attribute_prefix, "@");
        assert_eq!(p.conv.text_key, "#text");
        assert_eq!(p.max_bytes, 1 << 20);
        for (json, needle) in [
            (r#"{}"#, "set `request`"),
            (r#"{"request": "xml-to-yaml"}"#, "unknown variant"),
            (
                r#"{"request": "xml-to-json", "attribute_prefix": ""}"#,
                "must not be empty",
            ),
            (
                r#"{"request": "xml-to-json", "text_key": "@t"}"#,
                "text_key",
            ),
            (
                r#"{"request": "xml-to-json", "text_key": "value"}"#,
                "valid element name",
            ),
            (
                r#"{"request": "xml-to-json", "root": "1x"}"#,
                "not an XML name",
            ),
            (
                r#"{"request": "xml-to-json", "namespaces": "drop"}"#,
                "unknown variant",
            ),
            (r#"{"request": "xml-to-json", "max_depth": 0}"#, "positive"),
            (
                r#"{"request": "xml-to-json", "roots": "x"}"#,
                "unknown field `roots`",
            ),
        ] {
            let err = plugin(json).unwrap_err();
            assert!(err.contains(needle), "{json}: {err}");
        }
    }

    #[test]
    fn which_bodies_are_converted() {
        use Direction::{JsonToXml, XmlToJson};
        assert!(XmlJson::applies(XmlToJson, Some("application/xml"), 3));
        assert!(XmlJson::applies(
            XmlToJson,
            Some("text/xml; charset=utf-8"),
            3
        ));
        assert!(XmlJson::applies(XmlToJson, None, 3));
        assert!(!XmlJson::applies(XmlToJson, None, 0));
        assert!(!XmlJson::applies(XmlToJson, Some("application/json"), 3));
        assert!(XmlJson::applies(
            JsonToXml,
            Some("application/problem+json"),
            3
        ));
        assert!(!XmlJson::applies(JsonToXml, Some("text/plain"), 3));
        assert!(!XmlJson::applies(
            Direction::None,
            Some("application/json"),
            3
        ));
    }

    #[test]
    fn errors_by_side() {
        let p = plugin(r#"{"request": "xml-to-json", "max_bytes": 10}"#).unwrap();
        let (err, _) = p
            .convert(Direction::XmlToJson, b"<a>", Side::Request)
            .unwrap_err();
        assert_eq!(err.status, 400);
        assert!(
            err.message.starts_with("Invalid XML body: "),
            "{}",
            err.message
        );
        assert!(err.message.contains("line 1"), "{}", err.message);
        let (err, _) = p
            .convert(Direction::JsonToXml, b"{", Side::Response)
            .unwrap_err();
        assert_eq!(err.status, 502);
        assert!(
            err.message
                .starts_with("Invalid JSON in the upstream response"),
            "{}",
            err.message
        );
        let (err, _) = p
            .convert(Direction::XmlToJson, &[b' '; 11], Side::Request)
            .unwrap_err();
        assert_eq!(err.status, 413);
        let (body, ct) = p
            .convert(Direction::XmlToJson, b"<a>1</a>", Side::Request)
            .unwrap();
        assert_eq!(
            (body.as_slice(), ct),
            (&b"{\"a\":1}"[..], "application/json")
        );
    }
}
