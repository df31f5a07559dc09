//! OpenAPI 3.1 in and out: `export` turns a loaded gateway into a document (for
//! `wicket openapi`, the portal and `GET /openapi.json`), `import` turns a document into a
//! config, `contributions` says what each plugin of a route adds to an operation, and `schema`
//! holds the JSON Schema plumbing both directions share (`$ref` rewriting, merging).

pub mod contributions;
pub mod export;
pub mod import;
pub mod schema;

pub use export::{document, ExportOptions};
