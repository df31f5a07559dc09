//! `#[derive(ConfigKeys)]`: a plugin's config keys read off the settings type it deserializes
//! its `config` table into, so the keys, their types, whether they are required and their docs
//! are written once, beside the code that parses them.
//!
//! Per field: the key is the field name (or `#[serde(rename = "..")]`, or the container's
//! `rename_all`); it is required unless it is an `Option` or has `#[serde(default)]` (on the
//! field or the container); its doc is the field's doc comment, joined into one line; its kind
//! follows the Rust type (`String` -> string, integers -> integer, `Vec` -> array, maps ->
//! table, anything else -> any) unless `#[config(kind = "table")]` says otherwise.
//! `#[config(required)]` or `#[config(optional)]` override the requirement when the plugin's own
//! checks decide it. `#[serde(skip)]` fields are left out and `#[serde(flatten)]` fields contribute their own
//! type's keys.

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::quote;
use syn::{parse_macro_input, Attribute, Data, DeriveInput, Fields, LitStr, Type};

#[proc_macro_derive(ConfigKeys, attributes(config))]
pub fn derive_config_keys(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match expand(&input) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn expand(input: &DeriveInput) -> syn::Result<TokenStream2> {
    let Data::Struct(data) = &input.data else {
        return Err(syn::Error::new_spanned(
            input,
            "ConfigKeys is derived for structs with named fields",
        ));
    };
    let Fields::Named(fields) = &data.fields else {
        return Err(syn::Error::new_spanned(
            input,
            "ConfigKeys is derived for structs with named fields",
        ));
    };
    let container = SerdeAttrs::parse(&input.attrs)?;
    let mut pushes = Vec::new();
    for field in &fields.named {
        let attrs = SerdeAttrs::parse(&field.attrs)?;
        if attrs.skip {
            continue;
        }
        let ty = &field.ty;
        if attrs.flatten {
            pushes.push(quote! {
                keys.extend(<#ty as ::wicket_plugin_sdk::describe::ConfigKeys>::config_keys());
            });
            continue;
        }
        let ident = field.ident.as_ref().expect("named field").to_string();
        let ident = ident.strip_prefix("r#").unwrap_or(&ident).to_string();
        let name = match (&attrs.rename, &container.rename_all) {
            (Some(r), _) => r.clone(),
            (None, Some(rule)) => apply_rename(rule, &ident),
            (None, None) => ident,
        };
        let config = ConfigAttrs::parse(&field.attrs)?;
        let optional = option_inner(ty).is_some();
        // `#[config(required)]`: the type has a default but the plugin refuses a config
        // without the key (checked in its own code); `#[config(optional)]` the other way.
        let required = config
            .required
            .unwrap_or(!(optional || attrs.default || container.default));
        let kind_name = match config.kind {
            Some(k) => k,
            None => kind_of(option_inner(ty).unwrap_or(ty)).to_string(),
        };
        let kind = kind_variant(&kind_name).ok_or_else(|| {
            syn::Error::new_spanned(
                field,
                format!(
                    "unknown config kind {kind_name:?}; use string, integer, number, boolean, \
                     array, table or any"
                ),
            )
        })?;
        let kind: TokenStream2 = format!("::wicket_plugin_sdk::describe::ValueKind::{kind}")
            .parse()
            .expect("a path");
        let doc = doc_line(&field.attrs);
        pushes.push(quote! {
            keys.push(::wicket_plugin_sdk::describe::ConfigKey {
                name: #name.to_string(),
                kind: #kind,
                required: #required,
                doc: #doc.to_string(),
            });
        });
    }
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    Ok(quote! {
        impl #impl_generics ::wicket_plugin_sdk::describe::ConfigKeys for #ident #ty_generics #where_clause {
            fn config_keys() -> ::std::vec::Vec<::wicket_plugin_sdk::describe::ConfigKey> {
                let mut keys = ::std::vec::Vec::new();
                #(#pushes)*
                keys
            }
        }
    })
}

/// The serde attributes that decide a key's name and whether it is required.
#[derive(Default)]
struct SerdeAttrs {
    rename: Option<String>,
    rename_all: Option<String>,
    default: bool,
    skip: bool,
    flatten: bool,
}

impl SerdeAttrs {
    fn parse(attrs: &[Attribute]) -> syn::Result<SerdeAttrs> {
        let mut out = SerdeAttrs::default();
        for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
            attr.parse_nested_meta(|meta| {
                let key = meta
                    .path
                    .get_ident()
                    .map(|i| i.to_string())
                    .unwrap_or_default();
                match key.as_str() {
                    "rename" => {
                        if meta.input.peek(syn::Token![=]) {
                            out.rename = Some(meta.value()?.parse::<LitStr>()?.value());
                        } else {
                            // rename(deserialize = "..", serialize = "..")
                            meta.parse_nested_meta(|inner| {
                                let lit: LitStr = inner.value()?.parse()?;
                                if inner.path.is_ident("deserialize") {
                                    out.rename = Some(lit.value());
                                }
                                Ok(())
                            })?;
                        }
                    }
                    "rename_all" => {
                        if meta.input.peek(syn::Token![=]) {
                            out.rename_all = Some(meta.value()?.parse::<LitStr>()?.value());
                        } else {
                            meta.parse_nested_meta(|inner| {
                                let lit: LitStr = inner.value()?.parse()?;
                                if inner.path.is_ident("deserialize") {
                                    out.rename_all = Some(lit.value());
                                }
                                Ok(())
                            })?;
                        }
                    }
                    "default" => {
                        out.default = true;
                        if meta.input.peek(syn::Token![=]) {
                            meta.value()?.parse::<LitStr>()?;
                        }
                    }
                    "skip" | "skip_deserializing" => out.skip = true,
                    "flatten" => out.flatten = true,
                    _ => {
                        // Other serde attributes (alias, with, deserialize_with, bound, ...)
                        // do not change the key: consume their value, if any.
                        if meta.input.peek(syn::Token![=]) {
                            meta.value()?.parse::<syn::Expr>()?;
                        } else if meta.input.peek(syn::token::Paren) {
                            let content;
                            syn::parenthesized!(content in meta.input);
                            content.parse::<TokenStream2>()?;
                        }
                    }
                }
                Ok(())
            })?;
        }
        Ok(out)
    }
}

/// `#[config(kind = "...")]`: the kind when the Rust type does not say it.
#[derive(Default)]
struct ConfigAttrs {
    kind: Option<String>,
    required: Option<bool>,
}

impl ConfigAttrs {
    fn parse(attrs: &[Attribute]) -> syn::Result<ConfigAttrs> {
        let mut out = ConfigAttrs::default();
        for attr in attrs.iter().filter(|a| a.path().is_ident("config")) {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("kind") {
                    out.kind = Some(meta.value()?.parse::<LitStr>()?.value());
                    Ok(())
                } else if meta.path.is_ident("required") {
                    out.required = Some(true);
                    Ok(())
                } else if meta.path.is_ident("optional") {
                    out.required = Some(false);
                    Ok(())
                } else {
                    Err(meta.error("expected `kind = \"...\"`, `required` or `optional`"))
                }
            })?;
        }
        Ok(out)
    }
}

fn doc_line(attrs: &[Attribute]) -> String {
    let mut lines = Vec::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident("doc")) {
        if let syn::Meta::NameValue(nv) = &attr.meta {
            if let syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) = &nv.value
            {
                let line = s.value().trim().to_string();
                if !line.is_empty() {
                    lines.push(line);
                }
            }
        }
    }
    lines.join(" ")
}

/// The `T` of `Option<T>`.
fn option_inner(ty: &Type) -> Option<&Type> {
    let Type::Path(p) = ty else { return None };
    let last = p.path.segments.last()?;
    if last.ident != "Option" {
        return None;
    }
    match &last.arguments {
        syn::PathArguments::AngleBracketed(args) => match args.args.first()? {
            syn::GenericArgument::Type(t) => Some(t),
            _ => None,
        },
        _ => None,
    }
}

fn kind_of(ty: &Type) -> &'static str {
    match ty {
        Type::Reference(r) => kind_of(&r.elem),
        Type::Array(_) | Type::Slice(_) | Type::Tuple(_) => "array",
        Type::Path(p) => {
            let Some(last) = p.path.segments.last() else {
                return "any";
            };
            match last.ident.to_string().as_str() {
                "String" | "str" | "PathBuf" | "char" | "Cow" => "string",
                "u8" | "u16" | "u32" | "u64" | "u128" | "usize" | "i8" | "i16" | "i32" | "i64"
                | "i128" | "isize" | "NonZeroU32" | "NonZeroU64" | "NonZeroUsize" => "integer",
                "f32" | "f64" => "number",
                "bool" => "boolean",
                "Vec" | "VecDeque" | "HashSet" | "BTreeSet" => "array",
                "HashMap" | "BTreeMap" | "Map" | "IndexMap" => "table",
                "Box" | "Arc" | "Rc" => match &last.arguments {
                    syn::PathArguments::AngleBracketed(args) => match args.args.first() {
                        Some(syn::GenericArgument::Type(t)) => kind_of(t),
                        _ => "any",
                    },
                    _ => "any",
                },
                _ => "any",
            }
        }
        _ => "any",
    }
}

fn kind_variant(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "string" => "String",
        "integer" => "Integer",
        "number" => "Number",
        "boolean" => "Boolean",
        "array" => "Array",
        "table" => "Table",
        "any" => "Any",
        _ => return None,
    })
}

/// serde's `rename_all` rules, for the field names Rust allows (snake_case identifiers).
fn apply_rename(rule: &str, field: &str) -> String {
    let words: Vec<&str> = field.split('_').filter(|w| !w.is_empty()).collect();
    let capitalized = |w: &str| {
        let mut c = w.chars();
        match c.next() {
            Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
            None => String::new(),
        }
    };
    match rule {
        "lowercase" => field.to_lowercase(),
        "UPPERCASE" => field.to_uppercase(),
        "kebab-case" => words.join("-"),
        "SCREAMING_SNAKE_CASE" => field.to_uppercase(),
        "SCREAMING-KEBAB-CASE" => words.join("-").to_uppercase(),
        "PascalCase" => words.iter().map(|w| capitalized(w)).collect(),
        "camelCase" => {
            let mut out = words.first().map(|w| w.to_string()).unwrap_or_default();
            for w in words.iter().skip(1) {
                out.push_str(&capitalized(w));
            }
            out
        }
        _ => field.to_string(),
    }
}
