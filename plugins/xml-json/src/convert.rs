//! The conversions themselves, pure and unit-tested: XML text to JSON text and back, under the
//! conventions of [`Conventions`].

use std::fmt;

use quick_xml::events::Event;
use quick_xml::Reader;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Number;
use wicket_plugin_sdk::body::{line_column, JsonError};

/// A JSON value whose objects keep their keys in order (and keep repeated keys): element order
/// survives both ways without changing `serde_json`'s map type for every plugin.
#[derive(Debug, Clone, PartialEq)]
pub enum J {
    Null,
    Bool(bool),
    Num(Number),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl Serialize for J {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            J::Null => s.serialize_unit(),
            J::Bool(b) => s.serialize_bool(*b),
            J::Num(n) => n.serialize(s),
            J::Str(t) => s.serialize_str(t),
            J::Arr(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            J::Obj(entries) => {
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for J {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct JVisitor;
        impl<'de> Visitor<'de> for JVisitor {
            type Value = J;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_unit<E>(self) -> Result<J, E> {
                Ok(J::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<J, E> {
                Ok(J::Bool(b))
            }
            fn visit_i64<E>(self, n: i64) -> Result<J, E> {
                Ok(J::Num(n.into()))
            }
            fn visit_u64<E>(self, n: u64) -> Result<J, E> {
                Ok(J::Num(n.into()))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<J, E> {
                Number::from_f64(n)
                    .map(J::Num)
                    .ok_or_else(|| E::custom("number out of range"))
            }
            fn visit_str<E>(self, s: &str) -> Result<J, E> {
                Ok(J::Str(s.to_owned()))
            }
            fn visit_string<E>(self, s: String) -> Result<J, E> {
                Ok(J::Str(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<J, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(J::Arr(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<J, A::Error> {
                let mut entries = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, J>()? {
                    entries.push((k, v));
                }
                Ok(J::Obj(entries))
            }
        }
        d.deserialize_any(JVisitor)
    }
}

/// How namespaces are written in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Namespaces {
    /// Names keep their prefix (`soap:Body`), `xmlns` declarations are kept as attributes.
    Keep,
    /// Prefixes are dropped (`Body`), `xmlns` declarations are dropped.
    Strip,
}

/// The conventions of both directions.
#[derive(Debug, Clone)]
pub struct Conventions {
    pub attribute_prefix: String,
    pub text_key: String,
    /// Element paths from the root (`order/item`) always written as JSON arrays.
    pub always_array: Vec<String>,
    pub namespaces: Namespaces,
    pub recognize_numbers: bool,
    pub recognize_booleans: bool,
    pub recognize_null: bool,
    /// XML -> JSON: leave the root element's name out.
    pub strip_root: bool,
    /// JSON -> XML: the root element's name (always wraps the value when set).
    pub root: Option<String>,
    /// JSON -> XML: the element name of items of arrays that have no name of their own.
    pub array_item: String,
    pub xml_declaration: bool,
    pub max_depth: usize,
    pub max_elements: usize,
}

impl Default for Conventions {
    fn default() -> Self {
        Self {
            attribute_prefix: "@".into(),
            text_key: "#text".into(),
            always_array: Vec::new(),
            namespaces: Namespaces::Keep,
            recognize_numbers: true,
            recognize_booleans: true,
            recognize_null: false,
            strip_root: false,
            root: None,
            array_item: "item".into(),
            xml_declaration: true,
            max_depth: 64,
            max_elements: 100_000,
        }
    }
}

/// Why a body could not be converted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConvertError {
    /// Not well-formed, or refused (DTD, entity, limits): what and where (1-based line, column).
    Xml {
        message: String,
        line: usize,
        column: usize,
    },
    /// Not valid JSON, with where.
    Json(JsonError),
    /// Valid JSON that has no XML form (a bad element name, a structured attribute, limits),
    /// with the JSON pointer of the value.
    Unrepresentable { message: String, pointer: String },
}

impl fmt::Display for ConvertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConvertError::Xml {
                message,
                line,
                column,
            } => write!(f, "{message} at line {line}, column {column}"),
            ConvertError::Json(e) => write!(f, "{e}"),
            ConvertError::Unrepresentable { message, pointer } => {
                let at = if pointer.is_empty() { "/" } else { pointer };
                write!(f, "{message} (at {at})")
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// XML -> JSON

/// An element being read.
struct Frame {
    name: String,
    attrs: Vec<(String, String)>,
    children: Vec<(String, J)>,
    text: String,
    /// Whether a text node other than whitespace was seen (an element with children keeps its
    /// text only then).
    has_text: bool,
    /// The element names from the root, `order/item`, for `always_array`.
    path: String,
}

fn xml_error(text: &str, offset: u64, message: impl Into<String>) -> ConvertError {
    let (line, column) = line_column(text.as_bytes(), offset as usize);
    ConvertError::Xml {
        message: message.into(),
        line,
        column,
    }
}

fn predefined_entity(name: &str) -> Option<char> {
    match name {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "apos" => Some('\''),
        "quot" => Some('"'),
        _ => None,
    }
}

impl Conventions {
    fn local<'a>(&self, name: &'a str) -> &'a str {
        match self.namespaces {
            Namespaces::Keep => name,
            Namespaces::Strip => name.rsplit_once(':').map_or(name, |(_, l)| l),
        }
    }

    /// The JSON scalar for a text: recognized as a boolean or a number only when writing it back
    /// gives the same text, so that round trips are stable (`007`, `1e5` and ` 1` stay strings).
    fn scalar(&self, text: String) -> J {
        if self.recognize_booleans {
            match text.as_str() {
                "true" => return J::Bool(true),
                "false" => return J::Bool(false),
                _ => {}
            }
        }
        if self.recognize_numbers
            && text
                .as_bytes()
                .first()
                .is_some_and(|b| b.is_ascii_digit() || *b == b'-')
        {
            if let Ok(n) = serde_json::from_str::<Number>(&text) {
                if n.to_string() == text {
                    return J::Num(n);
                }
            }
        }
        J::Str(text)
    }

    fn always_array(&self, path: &str) -> bool {
        self.always_array
            .iter()
            .any(|p| p.trim_start_matches('/') == path)
    }

    /// The JSON value of a closed element.
    fn finish(&self, frame: Frame) -> J {
        if frame.attrs.is_empty() && frame.children.is_empty() {
            if frame.text.is_empty() && self.recognize_null {
                return J::Null;
            }
            return self.scalar(frame.text);
        }
        let mut entries: Vec<(String, J)> = Vec::new();
        for (name, value) in frame.attrs {
            entries.push((
                format!("{}{name}", self.attribute_prefix),
                self.scalar(value),
            ));
        }
        // Children grouped by name, in the order names first appear.
        let mut groups: Vec<(String, Vec<J>)> = Vec::new();
        for (name, value) in frame.children {
            match groups.iter_mut().find(|(n, _)| *n == name) {
                Some((_, values)) => values.push(value),
                None => groups.push((name, vec![value])),
            }
        }
        for (name, mut values) in groups {
            let child_path = format!("{}/{name}", frame.path);
            let value = if values.len() == 1 && !self.always_array(&child_path) {
                values.pop().unwrap_or(J::Null)
            } else {
                J::Arr(values)
            };
            entries.push((name, value));
        }
        if frame.has_text {
            entries.push((self.text_key.clone(), self.scalar(frame.text)));
        }
        J::Obj(entries)
    }

    /// Converts an XML document to JSON. Refuses DTDs (so no entity is ever defined, expanded or
    /// fetched), undefined entities, documents nested deeper than `max_depth` or with more than
    /// `max_elements` elements.
    pub fn xml_to_json(&self, body: &[u8]) -> Result<J, ConvertError> {
        let text = match std::str::from_utf8(body) {
            Ok(t) => t,
            Err(e) => {
                return Err(xml_error(
                    &String::from_utf8_lossy(body),
                    e.valid_up_to() as u64,
                    "the document is not UTF-8",
                ))
            }
        };
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut reader = Reader::from_str(text);
        reader.config_mut().trim_text(false);
        let mut stack: Vec<Frame> = Vec::new();
        let mut root: Option<(String, J)> = None;
        let mut elements = 0usize;
        loop {
            let start = reader.buffer_position();
            let event = match reader.read_event() {
                Ok(e) => e,
                Err(e) => return Err(xml_error(text, reader.error_position(), e.to_string())),
            };
            let (is_empty, start_tag) = match event {
                Event::Start(tag) => (false, tag),
                Event::Empty(tag) => (true, tag),
                Event::End(_) => {
                    let Some(frame) = stack.pop() else {
                        return Err(xml_error(text, start, "unexpected end tag"));
                    };
                    let name = frame.name.clone();
                    let value = self.finish(frame);
                    match stack.last_mut() {
                        Some(parent) => parent.children.push((name, value)),
                        None => root = Some((name, value)),
                    }
                    continue;
                }
                Event::Text(t) => {
                    let content = t.xml10_content();
                    self.add_text(&mut stack, &content, text, start)?;
                    continue;
                }
                Event::CData(t) => {
                    let content = t.xml10_content();
                    match stack.last_mut() {
                        Some(frame) => {
                            frame.text.push_str(&content);
                            frame.has_text = true;
                        }
                        None => {
                            return Err(xml_error(text, start, "text outside the root element"))
                        }
                    }
                    continue;
                }
                Event::GeneralRef(r) => {
                    let resolved = if r.is_char_ref() {
                        match r.resolve_char_ref() {
                            Ok(Some(c)) => c,
                            _ => {
                                return Err(xml_error(
                                    text,
                                    start,
                                    format!("invalid character reference &{};", r.xml10_content()),
                                ))
                            }
                        }
                    } else {
                        let name = r.xml10_content();
                        match predefined_entity(&name) {
                            Some(c) => c,
                            None => {
                                return Err(xml_error(
                                    text,
                                    start,
                                    format!("undefined entity &{name}; (DTDs are not supported)"),
                                ))
                            }
                        }
                    };
                    let mut buf = [0u8; 4];
                    let s = resolved.encode_utf8(&mut buf);
                    match stack.last_mut() {
                        Some(frame) => {
                            frame.text.push_str(s);
                            frame.has_text = true;
                        }
                        None => {
                            return Err(xml_error(text, start, "text outside the root element"))
                        }
                    }
                    continue;
                }
                Event::DocType(_) => {
                    return Err(xml_error(
                        text,
                        start,
                        "DOCTYPE is not allowed (DTDs and entity declarations are refused)",
                    ))
                }
                Event::Comment(_) | Event::PI(_) | Event::Decl(_) => continue,
                Event::Eof => break,
            };
            // A start or empty tag.
            if stack.is_empty() && root.is_some() {
                return Err(xml_error(text, start, "more than one root element"));
            }
            if stack.len() >= self.max_depth {
                return Err(xml_error(
                    text,
                    start,
                    format!("elements nested deeper than {} levels", self.max_depth),
                ));
            }
            elements += 1;
            if elements > self.max_elements {
                return Err(xml_error(
                    text,
                    start,
                    format!("more than {} elements", self.max_elements),
                ));
            }
            let name = self.local(start_tag.name().0).to_owned();
            let mut attrs = Vec::new();
            for attr in start_tag.attributes() {
                let attr =
                    attr.map_err(|e| xml_error(text, start, format!("bad attribute: {e}")))?;
                let key = attr.key.0;
                if self.namespaces == Namespaces::Strip
                    && (key == "xmlns" || key.starts_with("xmlns:"))
                {
                    continue;
                }
                let value = attr
                    .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .map_err(|e| {
                        xml_error(
                            text,
                            start,
                            format!("attribute `{key}`: {e} (DTDs are not supported)"),
                        )
                    })?;
                attrs.push((self.local(key).to_owned(), value.into_owned()));
            }
            let path = match stack.last() {
                Some(parent) => format!("{}/{name}", parent.path),
                None => name.clone(),
            };
            let frame = Frame {
                name,
                attrs,
                children: Vec::new(),
                text: String::new(),
                has_text: false,
                path,
            };
            if is_empty {
                let name = frame.name.clone();
                let value = self.finish(frame);
                match stack.last_mut() {
                    Some(parent) => parent.children.push((name, value)),
                    None => root = Some((name, value)),
                }
            } else {
                stack.push(frame);
            }
        }
        if let Some(open) = stack.last() {
            return Err(xml_error(
                text,
                text.len() as u64,
                format!("unexpected end of document: <{}> is not closed", open.name),
            ));
        }
        let Some((name, value)) = root else {
            return Err(xml_error(text, text.len() as u64, "no root element"));
        };
        Ok(if self.strip_root {
            value
        } else {
            J::Obj(vec![(name, value)])
        })
    }

    fn add_text(
        &self,
        stack: &mut [Frame],
        content: &str,
        text: &str,
        start: u64,
    ) -> Result<(), ConvertError> {
        let blank = content.chars().all(|c| c.is_ascii_whitespace());
        match stack.last_mut() {
            None if blank => Ok(()),
            None => Err(xml_error(text, start, "text outside the root element")),
            Some(frame) => {
                // Whitespace-only runs are indentation between children, not content; a leaf
                // keeps its text exactly (whitespace included).
                if !blank || frame.children.is_empty() {
                    frame.text.push_str(content);
                }
                if !blank {
                    frame.has_text = true;
                }
                Ok(())
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// JSON -> XML

/// Whether `name` is an XML name (letters, digits, `_ - . :`, not starting with a digit,
/// `-`, `.`; non-ASCII letters allowed).
pub fn is_xml_name(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    let start_ok = |c: char| c.is_alphabetic() || c == '_' || c == ':';
    start_ok(first) && chars.all(|c| start_ok(c) || c.is_alphanumeric() || c == '-' || c == '.')
}

fn xml_char_ok(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// A JSON pointer segment.
fn pointer_push(pointer: &str, segment: &str) -> String {
    format!(
        "{pointer}/{}",
        segment.replace('~', "~0").replace('/', "~1")
    )
}

struct XmlWriter<'c> {
    conv: &'c Conventions,
    out: String,
}

impl XmlWriter<'_> {
    fn unrepresentable(&self, pointer: &str, message: impl Into<String>) -> ConvertError {
        ConvertError::Unrepresentable {
            message: message.into(),
            pointer: pointer.to_owned(),
        }
    }

    /// Appends `text` escaped for element content (or an attribute value when `attr`).
    fn escaped(&mut self, text: &str, attr: bool, pointer: &str) -> Result<(), ConvertError> {
        for c in text.chars() {
            match c {
                '<' => self.out.push_str("&lt;"),
                '>' => self.out.push_str("&gt;"),
                '&' => self.out.push_str("&amp;"),
                '"' if attr => self.out.push_str("&quot;"),
                // Kept as references: a reader would normalize them away otherwise.
                '\r' => self.out.push_str("&#13;"),
                '\n' if attr => self.out.push_str("&#10;"),
                '\t' if attr => self.out.push_str("&#9;"),
                c if xml_char_ok(c) => self.out.push(c),
                c => {
                    return Err(self.unrepresentable(
                        pointer,
                        format!("the character U+{:04X} cannot be written in XML", c as u32),
                    ))
                }
            }
        }
        Ok(())
    }

    fn scalar_text(value: &J) -> Option<String> {
        match value {
            J::Null => Some(String::new()),
            J::Bool(b) => Some(b.to_string()),
            J::Num(n) => Some(n.to_string()),
            J::Str(s) => Some(s.clone()),
            J::Arr(_) | J::Obj(_) => None,
        }
    }

    /// Writes `<name ...>content</name>` for `value`.
    fn element(
        &mut self,
        name: &str,
        value: &J,
        pointer: &str,
        depth: usize,
    ) -> Result<(), ConvertError> {
        if depth > self.conv.max_depth {
            return Err(self.unrepresentable(
                pointer,
                format!("nested deeper than {} levels", self.conv.max_depth),
            ));
        }
        if !is_xml_name(name) {
            return Err(
                self.unrepresentable(pointer, format!("`{name}` is not a valid XML element name"))
            );
        }
        self.out.push('<');
        self.out.push_str(name);
        match value {
            J::Null => {
                self.out.push_str("/>");
                return Ok(());
            }
            J::Obj(entries) => {
                for (key, v) in entries {
                    let Some(attr) = key.strip_prefix(self.conv.attribute_prefix.as_str()) else {
                        continue;
                    };
                    let p = pointer_push(pointer, key);
                    if !is_xml_name(attr) {
                        return Err(self.unrepresentable(
                            &p,
                            format!("`{attr}` is not a valid XML attribute name"),
                        ));
                    }
                    let Some(text) = Self::scalar_text(v) else {
                        return Err(self.unrepresentable(
                            &p,
                            "an attribute's value must be a string, number, boolean or null",
                        ));
                    };
                    self.out.push(' ');
                    self.out.push_str(attr);
                    self.out.push_str("=\"");
                    self.escaped(&text, true, &p)?;
                    self.out.push('"');
                }
                let has_content = entries
                    .iter()
                    .any(|(k, _)| !k.starts_with(self.conv.attribute_prefix.as_str()));
                if !has_content {
                    self.out.push_str("/>");
                    return Ok(());
                }
                self.out.push('>');
                for (key, v) in entries {
                    if key.starts_with(self.conv.attribute_prefix.as_str()) {
                        continue;
                    }
                    let p = pointer_push(pointer, key);
                    if *key == self.conv.text_key {
                        let Some(text) = Self::scalar_text(v) else {
                            return Err(self.unrepresentable(
                                &p,
                                "a text value must be a string, number, boolean or null",
                            ));
                        };
                        self.escaped(&text, false, &p)?;
                    } else {
                        self.named(key, v, &p, depth + 1)?;
                    }
                }
            }
            J::Arr(items) => {
                self.out.push('>');
                let item = self.conv.array_item.clone();
                for (i, v) in items.iter().enumerate() {
                    self.element(&item, v, &pointer_push(pointer, &i.to_string()), depth + 1)?;
                }
            }
            scalar => {
                self.out.push('>');
                let text = Self::scalar_text(scalar).unwrap_or_default();
                self.escaped(&text, false, pointer)?;
            }
        }
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
        Ok(())
    }

    /// Writes the member `key` of an object: an array becomes repeated elements.
    fn named(
        &mut self,
        key: &str,
        value: &J,
        pointer: &str,
        depth: usize,
    ) -> Result<(), ConvertError> {
        match value {
            J::Arr(items) => {
                for (i, v) in items.iter().enumerate() {
                    self.element(key, v, &pointer_push(pointer, &i.to_string()), depth)?;
                }
                Ok(())
            }
            v => self.element(key, v, pointer, depth),
        }
    }
}

impl Conventions {
    /// Parses a JSON body into an ordered value.
    pub fn parse_json(&self, body: &[u8]) -> Result<J, ConvertError> {
        serde_json::from_slice(body).map_err(|e| ConvertError::Json(JsonError::from_serde(&e)))
    }

    /// Converts a JSON body to an XML document.
    pub fn json_to_xml(&self, body: &[u8]) -> Result<String, ConvertError> {
        let value = self.parse_json(body)?;
        self.value_to_xml(&value)
    }

    /// Converts a JSON value to an XML document. The root element is `root` when set; else a
    /// one-member object (whose member is not an attribute, the text or an array) is its own
    /// root; anything else is wrapped in `<root>`.
    pub fn value_to_xml(&self, value: &J) -> Result<String, ConvertError> {
        let mut w = XmlWriter {
            conv: self,
            out: String::new(),
        };
        if self.xml_declaration {
            w.out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
        }
        match (&self.root, value) {
            (Some(root), v) => w.element(root, v, "", 1)?,
            (None, J::Obj(entries))
                if entries.len() == 1
                    && !entries[0].0.starts_with(self.attribute_prefix.as_str())
                    && entries[0].0 != self.text_key
                    && !matches!(entries[0].1, J::Arr(_)) =>
            {
                let (key, v) = &entries[0];
                w.element(key, v, &pointer_push("", key), 1)?
            }
            (None, v) => w.element("root", v, "", 1)?,
        }
        Ok(w.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv() -> Conventions {
        Conventions::default()
    }

    fn x2j(c: &Conventions, xml: &str) -> serde_json::Value {
        let j = c
            .xml_to_json(xml.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        serde_json::to_value(&j).unwrap()
    }

    fn x2j_text(c: &Conventions, xml: &str) -> String {
        serde_json::to_string(&c.xml_to_json(xml.as_bytes()).unwrap()).unwrap()
    }

    fn xml_err(c: &Conventions, xml: &str) -> (String, usize, usize) {
        match c.xml_to_json(xml.as_bytes()) {
            Err(ConvertError::Xml {
                message,
                line,
                column,
            }) => (message, line, column),
            other => panic!("expected an XML error, got {other:?}"),
        }
    }

    const ORDER: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!-- an order -->
<order id="A-17" priority="2" rush="true">
  <customer>
    <name>Ada &amp; Co &lt;Ltd&gt; &#233;&#x00E9;</name>
    <email>ada@example.com</email>
  </customer>
  <item sku="X1"><qty>2</qty><price>9.95</price></item>
  <item sku="Y2"><qty>1</qty><price>100</price></item>
  <note><![CDATA[fragile <glass>]]></note>
  <zip>007</zip>
  <code>1e5</code>
  <gift/>
  <label lang="en">Hello</label>
</order>"#;

    #[test]
    fn xml_to_json_with_default_conventions() {
        let j = x2j(&conv(), ORDER);
        assert_eq!(
            j,
            serde_json::json!({"order": {
                "@id": "A-17", "@priority": 2, "@rush": true,
                "customer": {"name": "Ada & Co <Ltd> éé", "email": "ada@example.com"},
                "item": [
                    {"@sku": "X1", "qty": 2, "price": 9.95},
                    {"@sku": "Y2", "qty": 1, "price": 100}
                ],
                "note": "fragile <glass>",
                "zip": "007",
                "code": "1e5",
                "gift": "",
                "label": {"@lang": "en", "#text": "Hello"}
            }})
        );
        // Element order is kept.
        let text = x2j_text(&conv(), ORDER);
        let customer = text.find("\"customer\"").unwrap();
        let item = text.find("\"item\"").unwrap();
        let zip = text.find("\"zip\"").unwrap();
        assert!(customer < item && item < zip, "{text}");
    }

    #[test]
    fn conventions_are_configurable() {
        let c = Conventions {
            attribute_prefix: "_".into(),
            text_key: "value".into(),
            recognize_numbers: false,
            recognize_booleans: false,
            recognize_null: true,
            always_array: vec!["/order/customer".into(), "order/label".into()],
            strip_root: true,
            ..conv()
        };
        let j = x2j(&c, ORDER);
        assert_eq!(j["_priority"], "2");
        assert_eq!(j["_rush"], "true");
        assert_eq!(j["item"][0]["qty"], "2");
        assert_eq!(j["gift"], serde_json::Value::Null);
        assert_eq!(j["customer"][0]["name"], "Ada & Co <Ltd> éé");
        assert_eq!(
            j["label"],
            serde_json::json!([{"_lang": "en", "value": "Hello"}])
        );
    }

    #[test]
    fn namespaces_kept_or_stripped() {
        let xml = r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:m="urn:m"><soap:Body><m:Price m:currency="EUR">3</m:Price></soap:Body></soap:Envelope>"#;
        assert_eq!(
            x2j(&conv(), xml),
            serde_json::json!({"soap:Envelope": {
                "@xmlns:soap": "http://schemas.xmlsoap.org/soap/envelope/",
                "@xmlns:m": "urn:m",
                "soap:Body": {"m:Price": {"@m:currency": "EUR", "#text": 3}}
            }})
        );
        let strip = Conventions {
            namespaces: Namespaces::Strip,
            ..conv()
        };
        assert_eq!(
            x2j(&strip, xml),
            serde_json::json!({"Envelope": {"Body": {"Price": {"@currency": "EUR", "#text": 3}}}})
        );
        // Kept namespaces round-trip.
        let j = conv().xml_to_json(xml.as_bytes()).unwrap();
        let back = conv().value_to_xml(&j).unwrap();
        assert_eq!(conv().xml_to_json(back.as_bytes()).unwrap(), j);
    }

    #[test]
    fn mixed_content_and_whitespace() {
        assert_eq!(
            x2j(&conv(), "<p>Hello <b>world</b>!</p>"),
            serde_json::json!({"p": {"b": "world", "#text": "Hello !"}})
        );
        assert_eq!(
            x2j(&conv(), "<a>  spaced  </a>"),
            serde_json::json!({"a": "  spaced  "})
        );
        assert_eq!(
            x2j(&conv(), "<a>\n  <b>1</b>\n</a>"),
            serde_json::json!({"a": {"b": 1}})
        );
    }

    #[test]
    fn hostile_and_malformed_xml_is_refused_with_a_position() {
        let laughs = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
]>
<lolz>&lol2;</lolz>"#;
        let (m, line, col) = xml_err(&conv(), laughs);
        assert!(m.contains("DOCTYPE is not allowed"), "{m}");
        assert_eq!((line, col), (2, 1));
        let xxe = r#"<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/hostname">]><foo>&xxe;</foo>"#;
        assert!(xml_err(&conv(), xxe).0.contains("DOCTYPE"));
        let (m, line, col) = xml_err(&conv(), "<foo>\n  &xxe;</foo>");
        assert!(m.contains("undefined entity &xxe;"), "{m}");
        assert_eq!((line, col), (2, 3));
        let (m, ..) = xml_err(&conv(), r#"<foo a="&xxe;"/>"#);
        assert!(m.contains("attribute `a`"), "{m}");
        let (m, line, col) = xml_err(&conv(), "<a>\n<b></c></a>");
        assert!(m.contains('b') && m.contains('c'), "{m}");
        assert_eq!((line, col), (2, 4));
        assert!(xml_err(&conv(), "<a><b></b>")
            .0
            .contains("<a> is not closed"));
        assert!(xml_err(&conv(), "<a/><b/>")
            .0
            .contains("more than one root"));
        assert!(xml_err(&conv(), "<a/>junk").0.contains("outside the root"));
        assert!(xml_err(&conv(), "").0.contains("no root element"));
        assert!(xml_err(&conv(), "<a x='1' x='2'/>").0.contains("duplicate"));
        let deep = "<a>".repeat(65) + &"</a>".repeat(65);
        assert!(xml_err(&conv(), &deep).0.contains("deeper than 64"));
        let ok = "<a>".repeat(64) + &"</a>".repeat(64);
        assert!(conv().xml_to_json(ok.as_bytes()).is_ok());
        let many = format!("<a>{}</a>", "<b/>".repeat(11));
        let small = Conventions {
            max_elements: 10,
            ..conv()
        };
        assert!(xml_err(&small, &many).0.contains("more than 10 elements"));
        let (m, line, col) = match conv().xml_to_json(b"<a>\xff</a>") {
            Err(ConvertError::Xml {
                message,
                line,
                column,
            }) => (message, line, column),
            other => panic!("{other:?}"),
        };
        assert!(m.contains("UTF-8"));
        assert_eq!((line, col), (1, 4));
    }

    #[test]
    fn json_to_xml() {
        let c = conv();
        let xml = c
            .json_to_xml(
                br##"{"order": {"@id": 7, "customer": {"name": "A & <B>"}, "item": [{"@sku": "X", "qty": 2}, {"@sku": "Y", "qty": 1}], "gift": null, "note": {"@lang": "en", "#text": "hi \"there\""}}}"##,
            )
            .unwrap();
        assert_eq!(
            xml,
            r#"<?xml version="1.0" encoding="UTF-8"?><order id="7"><customer><name>A &amp; &lt;B&gt;</name></customer><item sku="X"><qty>2</qty></item><item sku="Y"><qty>1</qty></item><gift/><note lang="en">hi "there"</note></order>"#
        );
        // Not a single-member object: wrapped in <root>; nameless array items are <item>s.
        let c = Conventions {
            xml_declaration: false,
            ..conv()
        };
        assert_eq!(
            c.json_to_xml(br#"{"a": 1, "b": [true, [1, 2]]}"#).unwrap(),
            "<root><a>1</a><b>true</b><b><item>1</item><item>2</item></b></root>"
        );
        assert_eq!(
            c.json_to_xml(b"[1]").unwrap(),
            "<root><item>1</item></root>"
        );
        assert_eq!(c.json_to_xml(b"\"x\"").unwrap(), "<root>x</root>");
        let named = Conventions {
            root: Some("Request".into()),
            array_item: "Entry".into(),
            xml_declaration: false,
            ..conv()
        };
        assert_eq!(
            named.json_to_xml(br#"{"order": [1, 2]}"#).unwrap(),
            "<Request><order>1</order><order>2</order></Request>"
        );
        assert_eq!(
            named.json_to_xml(b"[{\"a\": \"\\r\\n\"}]").unwrap(),
            "<Request><Entry><a>&#13;\n</a></Entry></Request>"
        );
    }

    #[test]
    fn json_that_has_no_xml_form_is_refused() {
        let c = conv();
        let err = c.json_to_xml(br#"{"a": {"1bad": 1}}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`1bad` is not a valid XML element name (at /a/1bad)"
        );
        let err = c.json_to_xml(br#"{"a": {"@x": [1]}}"#).unwrap_err();
        assert!(err.to_string().contains("attribute's value"), "{err}");
        let err = c.json_to_xml(br#"{"a": "\u0001"}"#).unwrap_err();
        assert!(err.to_string().contains("U+0001"), "{err}");
        let err = c.json_to_xml(b"{\"a\": \n [1,]}").unwrap_err();
        match err {
            ConvertError::Json(e) => assert_eq!((e.line, e.column), (2, 5)),
            other => panic!("{other:?}"),
        }
        let deep = "{\"a\":".repeat(70) + "1" + &"}".repeat(70);
        assert!(c
            .json_to_xml(deep.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("deeper than 64"));
        assert!(is_xml_name("a-b.c_d"));
        assert!(is_xml_name("soap:Body"));
        assert!(is_xml_name("été"));
        assert!(!is_xml_name("a b"));
        assert!(!is_xml_name("-a"));
        assert!(!is_xml_name(""));
    }

    #[test]
    fn round_trips_are_stable() {
        let c = conv();
        for xml in [
            ORDER,
            "<a><b x=\"1\">t</b><b>u</b><c/></a>",
            "<p>Hello <b>world</b></p>",
            "<t attr=\"line1&#10;line2\">a\r\nb</t>",
        ] {
            let j1 = c.xml_to_json(xml.as_bytes()).unwrap();
            let x1 = c.value_to_xml(&j1).unwrap();
            let j2 = c.xml_to_json(x1.as_bytes()).unwrap();
            assert_eq!(j1, j2, "{xml}\n{x1}");
            let x2 = c.value_to_xml(&j2).unwrap();
            assert_eq!(x1, x2);
        }
        for json in [
            r#"{"order": {"@id": "A-1", "item": [{"sku": "a", "qty": 2}, {"sku": "b", "qty": 1.5}], "note": "x & y", "ok": true}}"#,
            r#"{"a": 1, "b": "two"}"#,
        ] {
            let x1 = c.json_to_xml(json.as_bytes()).unwrap();
            let j1 = c.xml_to_json(x1.as_bytes()).unwrap();
            let x2 = c.value_to_xml(&j1).unwrap();
            assert_eq!(x1, x2);
        }
        // With strip_root and a configured root, both ways.
        let c = Conventions {
            strip_root: true,
            root: Some("order".into()),
            ..conv()
        };
        let j1 = c.xml_to_json(ORDER.as_bytes()).unwrap();
        let x1 = c.value_to_xml(&j1).unwrap();
        assert_eq!(c.xml_to_json(x1.as_bytes()).unwrap(), j1);
    }
}
