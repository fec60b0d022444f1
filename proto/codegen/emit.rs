//! Emits Rust for parsed schema files: one module per message with its structs,
//! their `Default`, encoders, decoders and (feature `sample`) samplers, then the
//! `ApiKey` table and the `RequestBody`/`ResponseBody` enums.

use std::fmt::Write;

use crate::schema::{Default as Dflt, Field, File, Kind, Message, Prim, Range, StructDef, Type};

const KEYWORDS: &[&str] = &[
    "type", "match", "ref", "mod", "fn", "struct", "enum", "impl", "loop", "move", "self", "super", "use", "where",
    "async", "await", "dyn", "box", "yield", "override", "final", "abstract", "virtual", "priv", "macro", "static",
    "const", "crate", "extern", "in", "let", "mut", "pub", "return", "trait", "unsafe", "while", "for", "if", "else",
    "break", "continue", "as", "true", "false",
];

fn ident(name: &str) -> String {
    if KEYWORDS.contains(&name) {
        format!("r#{name}")
    } else {
        name.to_string()
    }
}

/// `ProduceRequest` -> `produce_request`.
pub fn snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn prim_rust(p: Prim) -> &'static str {
    match p {
        Prim::Bool => "bool",
        Prim::Int8 => "i8",
        Prim::Int16 => "i16",
        Prim::Int32 => "i32",
        Prim::Int64 => "i64",
        Prim::Uint16 => "u16",
        Prim::Uint32 => "u32",
        Prim::Float64 => "f64",
        Prim::Uuid => "crate::codec::wire::Uuid",
        Prim::String => "::std::string::String",
        Prim::Bytes | Prim::Records => "::bytes::Bytes",
    }
}

fn base_rust(t: &Type) -> String {
    match t {
        Type::Prim(p) => prim_rust(*p).to_string(),
        Type::Array(inner) => format!("::std::vec::Vec<{}>", base_rust(inner)),
        Type::Struct(n) => n.clone(),
    }
}

fn field_rust(f: &Field) -> String {
    let b = base_rust(&f.ty);
    if f.optional() {
        format!("::std::option::Option<{b}>")
    } else {
        b
    }
}

fn default_expr(f: &Field) -> String {
    let inner = match (&f.ty, &f.default) {
        (_, Some(Dflt::Null)) => return "::std::option::Option::None".into(),
        (Type::Prim(Prim::Float64), Some(Dflt::Int(i))) => format!("{i}f64"),
        (Type::Prim(_), Some(Dflt::Int(i))) => format!("{i}"),
        (Type::Prim(_), Some(Dflt::Bool(b))) => format!("{b}"),
        (Type::Prim(_), Some(Dflt::Str(s))) => format!("::std::string::String::from({s:?})"),
        _ if f.optional() => return "::std::option::Option::None".into(),
        (Type::Prim(Prim::Float64), None) => "0f64".into(),
        (Type::Prim(Prim::Bool), None) => "false".into(),
        (Type::Prim(Prim::Uuid), None) => "crate::codec::wire::Uuid::ZERO".into(),
        (Type::Prim(Prim::String), None) => "::std::string::String::new()".into(),
        (Type::Prim(Prim::Bytes | Prim::Records), None) => "::bytes::Bytes::new()".into(),
        (Type::Prim(_), None) => "0".into(),
        (Type::Array(_), _) => "::std::vec::Vec::new()".into(),
        (Type::Struct(n), _) => format!("<{n} as ::std::default::Default>::default()"),
    };
    if f.optional() {
        format!("::std::option::Option::Some({inner})")
    } else {
        inner
    }
}

/// A condition on `v` that is true exactly in range `r` (within the valid versions).
fn cond(r: Range, valid: Range) -> String {
    let r = r.clamp(valid);
    if r.is_empty() {
        return "false".into();
    }
    match (r.lo <= valid.lo, r.hi >= valid.hi) {
        (true, true) => "true".into(),
        (true, false) => format!("v <= {}", r.hi),
        (false, true) => format!("v >= {}", r.lo),
        (false, false) => format!("{} <= v && v <= {}", r.lo, r.hi),
    }
}

/// Encoder statement for a non-optional value expression `e` (a reference) of type `t` into `w`.
fn encode_value(t: &Type, e: &str, w: &str) -> String {
    match t {
        Type::Prim(p) => match p {
            Prim::Bool => format!("crate::codec::wire::put_bool({w}, *{e});"),
            Prim::Int8 => format!("::bytes::BufMut::put_i8({w}, *{e});"),
            Prim::Int16 => format!("::bytes::BufMut::put_i16({w}, *{e});"),
            Prim::Int32 => format!("::bytes::BufMut::put_i32({w}, *{e});"),
            Prim::Int64 => format!("::bytes::BufMut::put_i64({w}, *{e});"),
            Prim::Uint16 => format!("::bytes::BufMut::put_u16({w}, *{e});"),
            Prim::Uint32 => format!("::bytes::BufMut::put_u32({w}, *{e});"),
            Prim::Float64 => format!("::bytes::BufMut::put_f64({w}, *{e});"),
            Prim::Uuid => format!("crate::codec::wire::put_uuid({w}, {e});"),
            Prim::String => format!("crate::codec::wire::put_string({w}, {e}, flex)?;"),
            Prim::Bytes => format!("crate::codec::wire::put_bytes({w}, {e}, flex)?;"),
            Prim::Records => format!("crate::codec::wire::put_records({w}, {e}, flex)?;"),
        },
        Type::Array(inner) => format!(
            "crate::codec::wire::put_array_len({w}, ::std::option::Option::Some(({e}).len()), flex)?; for item in ({e}).iter() {{ {} }}",
            encode_value(inner, "item", w)
        ),
        Type::Struct(_) => format!("({e}).encode_body({w}, v)?;"),
    }
}

/// Encoder for field `f` of `self`, honouring nullability at `v`.
fn encode_field(f: &Field, valid: Range, w: &str) -> String {
    let name = ident(&f.name);
    let e = format!("&self.{name}");
    let body = if !f.optional() {
        encode_value(&f.ty, &e, w)
    } else {
        let null = match &f.ty {
            Type::Prim(Prim::String) => format!("crate::codec::wire::put_nullable_string({w}, None, flex)?;"),
            Type::Prim(Prim::Bytes | Prim::Records) => {
                format!("crate::codec::wire::put_nullable_bytes({w}, None, flex)?;")
            }
            Type::Array(_) => format!("crate::codec::wire::put_array_len({w}, None, flex)?;"),
            Type::Struct(_) => format!("::bytes::BufMut::put_i8({w}, -1);"),
            Type::Prim(_) => "/* a nullable number is not a Kafka type */".into(),
        };
        let some_prefix = match &f.ty {
            Type::Struct(_) => format!("if {} {{ ::bytes::BufMut::put_i8({w}, 1); }}", cond(f.nullable, valid)),
            _ => String::new(),
        };
        format!(
            "match &self.{name} {{ ::std::option::Option::Some(x) => {{ {some_prefix} {} }} ::std::option::Option::None => {{ if {} {{ {null} }} else {{ return Err(crate::codec::error::EncodeError::new(crate::codec::error::EncodeErrorKind::NullNotAllowed)); }} }} }}",
            encode_value(&f.ty, "x", w),
            cond(f.nullable, valid)
        )
    };
    format!(
        "(|| -> ::std::result::Result<(), crate::codec::error::EncodeError> {{ {body} Ok(()) }})().map_err(|e| e.at({:?}))?;",
        f.name
    )
}

/// Decoder expression of a non-optional value of type `t` from `r`.
fn decode_value(t: &Type, r: &str) -> String {
    match t {
        Type::Prim(p) => match p {
            Prim::Bool => format!("crate::codec::wire::bool({r})?"),
            Prim::Int8 => format!("crate::codec::wire::i8({r})?"),
            Prim::Int16 => format!("crate::codec::wire::i16({r})?"),
            Prim::Int32 => format!("crate::codec::wire::i32({r})?"),
            Prim::Int64 => format!("crate::codec::wire::i64({r})?"),
            Prim::Uint16 => format!("crate::codec::wire::u16({r})?"),
            Prim::Uint32 => format!("crate::codec::wire::u32({r})?"),
            Prim::Float64 => format!("crate::codec::wire::f64({r})?"),
            Prim::Uuid => format!("crate::codec::wire::uuid({r})?"),
            Prim::String => format!("crate::codec::wire::string({r}, flex)?"),
            Prim::Bytes | Prim::Records => format!("crate::codec::wire::bytes({r}, flex)?"),
        },
        Type::Array(inner) => format!(
            "{{ let n = crate::codec::wire::array_len({r}, flex)?.ok_or_else(|| crate::codec::error::DecodeError::new(crate::codec::error::DecodeErrorKind::UnexpectedNull))?; {} }}",
            decode_array_items(inner, r)
        ),
        Type::Struct(n) => format!("{n}::decode_body({r}, v)?"),
    }
}

fn decode_array_items(inner: &Type, r: &str) -> String {
    // Reserve no more than a bounded amount up front: a declared count is
    // already checked against the remaining bytes, and growth follows real items.
    format!(
        "let mut items = ::std::vec::Vec::with_capacity(n.min(1024)); for _ in 0..n {{ items.push({}); }} items",
        decode_value(inner, r)
    )
}

fn decode_field_expr(f: &Field, valid: Range, r: &str) -> String {
    if !f.optional() {
        return decode_value(&f.ty, r);
    }
    let nullable = cond(f.nullable, valid);
    let opt = match &f.ty {
        Type::Prim(Prim::String) => format!("crate::codec::wire::nullable_string({r}, flex)?"),
        Type::Prim(Prim::Bytes | Prim::Records) => format!("crate::codec::wire::nullable_bytes({r}, flex)?"),
        Type::Array(inner) => format!(
            "match crate::codec::wire::array_len({r}, flex)? {{ ::std::option::Option::None => None, ::std::option::Option::Some(n) => ::std::option::Option::Some({{ {} }}) }}",
            decode_array_items(inner, r)
        ),
        Type::Struct(n) => format!(
            "if crate::codec::wire::i8({r})? < 0 {{ ::std::option::Option::None }} else {{ ::std::option::Option::Some({n}::decode_body({r}, v)?) }}"
        ),
        Type::Prim(_) => "None".into(),
    };
    format!(
        "{{ let x = {opt}; if x.is_none() && !({nullable}) {{ return Err(crate::codec::error::DecodeError::new(crate::codec::error::DecodeErrorKind::UnexpectedNull)); }} x }}"
    )
}

fn sample_value(t: &Type) -> String {
    match t {
        Type::Prim(p) => match p {
            Prim::Bool => "rng.bool()".into(),
            Prim::Int8 => "rng.u64() as i8".into(),
            Prim::Int16 => "rng.u64() as i16".into(),
            Prim::Int32 => "rng.u64() as i32".into(),
            Prim::Int64 => "rng.u64() as i64".into(),
            Prim::Uint16 => "rng.u64() as u16".into(),
            Prim::Uint32 => "rng.u64() as u32".into(),
            Prim::Float64 => "rng.f64()".into(),
            Prim::Uuid => "crate::codec::wire::Uuid::from_u64_pair(rng.u64(), rng.u64())".into(),
            Prim::String => "rng.string()".into(),
            Prim::Bytes | Prim::Records => "rng.bytes()".into(),
        },
        Type::Array(inner) => format!(
            "{{ let n = rng.len(depth); (0..n).map(|_| {}).collect::<::std::vec::Vec<_>>() }}",
            sample_value(inner)
        ),
        Type::Struct(n) => format!("{n}::sample(rng, v, depth + 1)"),
    }
}

fn emit_struct(
    out: &mut String,
    name: &str,
    doc: &str,
    fields: &[Field],
    valid: Range,
    flexible: Option<i16>,
) -> std::fmt::Result {
    writeln!(out, "/// {doc}")?;
    writeln!(out, "#[derive(Debug, Clone, PartialEq)]")?;
    writeln!(out, "pub struct {name} {{")?;
    for f in fields {
        let vr = f.versions.clamp(valid);
        let when = if vr.is_empty() {
            "never on the wire in the supported versions".to_string()
        } else if vr.hi == valid.hi {
            format!("v{}+", vr.lo)
        } else {
            format!("v{}-{}", vr.lo, vr.hi)
        };
        let tag = f.tag.map(|t| format!(", tag {t}")).unwrap_or_default();
        writeln!(out, "    /// `{}` ({when}{tag}).", f.name)?;
        writeln!(out, "    pub {}: {},", ident(&f.name), field_rust(f))?;
    }
    writeln!(out, "}}\n")?;

    writeln!(out, "impl ::std::default::Default for {name} {{")?;
    writeln!(out, "    fn default() -> Self {{ Self {{")?;
    for f in fields {
        writeln!(out, "        {}: {},", ident(&f.name), default_expr(f))?;
    }
    writeln!(out, "    }} }}\n}}\n")?;

    let flex_cond = match flexible {
        Some(fl) => format!("v >= {fl}"),
        None => "false".into(),
    };
    let regular: Vec<&Field> = fields.iter().filter(|f| f.tag.is_none()).collect();
    let mut tagged: Vec<&Field> = fields.iter().filter(|f| f.tag.is_some()).collect();
    tagged.sort_by_key(|f| f.tag);

    writeln!(out, "impl {name} {{")?;
    // encode
    writeln!(out, "    /// Writes this struct at version `v` (the caller checked `v`).")?;
    writeln!(out, "    #[allow(unused_variables, clippy::all)]")?;
    writeln!(
        out,
        "    pub(crate) fn encode_body(&self, w: &mut ::bytes::BytesMut, v: i16) -> ::std::result::Result<(), crate::codec::error::EncodeError> {{"
    )?;
    writeln!(out, "        let flex = {flex_cond};")?;
    for f in &regular {
        writeln!(out, "        if {} {{ {} }}", cond(f.versions, valid), encode_field(f, valid, "w"))?;
    }
    writeln!(out, "        if flex {{")?;
    if tagged.is_empty() {
        writeln!(out, "            crate::codec::wire::put_uvarint(w, 0);")?;
    } else {
        writeln!(out, "            let mut count = 0u32;")?;
        for f in &tagged {
            writeln!(
                out,
                "            if {} && self.{} != {} {{ count += 1; }}",
                cond(f.versions, valid),
                ident(&f.name),
                default_expr(f)
            )?;
        }
        writeln!(out, "            crate::codec::wire::put_uvarint(w, count);")?;
        for f in &tagged {
            writeln!(
                out,
                "            if {} && self.{} != {} {{ let mut t = ::bytes::BytesMut::new(); {{ let w = &mut t; {} }} crate::codec::wire::put_uvarint(w, {}); crate::codec::wire::put_uvarint(w, u32::try_from(t.len()).map_err(|_| crate::codec::error::EncodeError::new(crate::codec::error::EncodeErrorKind::TooLong(t.len())))?); w.extend_from_slice(&t); }}",
                cond(f.versions, valid),
                ident(&f.name),
                default_expr(f),
                encode_field(f, valid, "w"),
                f.tag.unwrap_or(0)
            )?;
        }
    }
    writeln!(out, "        }}")?;
    writeln!(out, "        Ok(())")?;
    writeln!(out, "    }}\n")?;

    // decode
    writeln!(out, "    /// Reads this struct at version `v` (the caller checked `v`).")?;
    writeln!(out, "    #[allow(unused_variables, unused_mut, clippy::all)]")?;
    writeln!(
        out,
        "    pub(crate) fn decode_body(r: &mut ::bytes::Bytes, v: i16) -> ::std::result::Result<Self, crate::codec::error::DecodeError> {{"
    )?;
    writeln!(out, "        let flex = {flex_cond};")?;
    writeln!(out, "        let mut this = Self::default();")?;
    for f in &regular {
        writeln!(
            out,
            "        if {} {{ this.{} = (|| -> ::std::result::Result<_, crate::codec::error::DecodeError> {{ Ok({}) }})().map_err(|e| e.at({:?}))?; }}",
            cond(f.versions, valid),
            ident(&f.name),
            decode_field_expr(f, valid, "r"),
            f.name
        )?;
    }
    writeln!(out, "        if flex {{")?;
    writeln!(out, "            let count = crate::codec::wire::uvarint(r).map_err(|e| e.at(\"_tagged_fields\"))?;")?;
    writeln!(out, "            for _ in 0..count {{")?;
    writeln!(out, "                let tag = crate::codec::wire::uvarint(r).map_err(|e| e.at(\"_tagged_fields\"))?;")?;
    writeln!(out, "                let size = crate::codec::wire::uvarint(r).map_err(|e| e.at(\"_tagged_fields\"))?;")?;
    writeln!(out, "                let mut field = crate::codec::wire::take(r, u64::from(size)).map_err(|e| e.at(\"_tagged_fields\"))?;")?;
    writeln!(out, "                match tag {{")?;
    for f in &tagged {
        writeln!(
            out,
            "                    {} if {} => {{ let r = &mut field; this.{} = (|| -> ::std::result::Result<_, crate::codec::error::DecodeError> {{ Ok({}) }})().map_err(|e| e.at({:?}))?; }}",
            f.tag.unwrap_or(0),
            cond(f.versions, valid),
            ident(&f.name),
            decode_field_expr(f, valid, "r"),
            f.name
        )?;
    }
    writeln!(out, "                    _ => {{ let _ = field; }}")?;
    writeln!(out, "                }}")?;
    writeln!(out, "            }}")?;
    writeln!(out, "        }}")?;
    writeln!(out, "        Ok(this)")?;
    writeln!(out, "    }}\n")?;

    // sample
    writeln!(out, "    /// A random value that is valid at version `v` (fields absent at `v` keep their defaults).")?;
    writeln!(out, "    #[cfg(feature = \"sample\")]")?;
    writeln!(out, "    #[allow(unused_variables, unused_mut, clippy::all)]")?;
    writeln!(out, "    pub fn sample(rng: &mut crate::sample::SampleRng, v: i16, depth: u32) -> Self {{")?;
    writeln!(out, "        let mut this = Self::default();")?;
    for f in fields {
        let present = cond(f.versions, valid);
        let mut value = sample_value(&f.ty);
        if f.optional() {
            value = format!(
                "if {} && rng.one_in(4) {{ ::std::option::Option::None }} else {{ ::std::option::Option::Some({value}) }}",
                cond(f.nullable, valid)
            );
        }
        let gate = if f.tag.is_some() { " && rng.bool()" } else { "" };
        writeln!(out, "        if {present}{gate} {{ this.{} = {value}; }}", ident(&f.name))?;
    }
    writeln!(out, "        this")?;
    writeln!(out, "    }}")?;
    writeln!(out, "}}\n")?;
    Ok(())
}

fn emit_message(out: &mut String, file: &File, m: &Message) -> std::fmt::Result {
    let module = snake(&m.name);
    let valid = m.versions;
    writeln!(out, "/// `{}` (api key {}, v{}-{}) and its structs.", m.name, m.key, valid.lo, valid.hi)?;
    writeln!(out, "pub mod {module} {{")?;
    let mut body = String::new();
    emit_struct(&mut body, &m.name, &format!("The {} message.", m.name), &m.fields, valid, m.flexible)?;
    for s in used_structs(file, m) {
        emit_struct(&mut body, &s.name, &format!("`{}`, part of {}.", s.name, m.name), &s.fields, valid, m.flexible)?;
    }
    for line in body.lines() {
        if line.is_empty() {
            writeln!(out)?;
        } else {
            writeln!(out, "    {line}")?;
        }
    }
    let kind = match m.kind {
        Kind::Request => "Request",
        Kind::Response => "Response",
    };
    writeln!(out, "    impl crate::messages::Message for {} {{", m.name)?;
    writeln!(out, "        const NAME: &'static str = {:?};", m.name)?;
    writeln!(out, "        const API_KEY: i16 = {};", m.key)?;
    writeln!(out, "        const KIND: crate::messages::MessageKind = crate::messages::MessageKind::{kind};")?;
    writeln!(out, "        const VERSIONS: (i16, i16) = ({}, {});", valid.lo, valid.hi)?;
    writeln!(
        out,
        "        const FLEXIBLE_FROM: ::std::option::Option<i16> = {};",
        match m.flexible {
            Some(f) => format!("Some({f})"),
            None => "None".into(),
        }
    )?;
    writeln!(out, "        fn encode_body(&self, w: &mut ::bytes::BytesMut, v: i16) -> ::std::result::Result<(), crate::codec::error::EncodeError> {{ {}::encode_body(self, w, v) }}", m.name)?;
    writeln!(out, "        fn decode_body(r: &mut ::bytes::Bytes, v: i16) -> ::std::result::Result<Self, crate::codec::error::DecodeError> {{ {}::decode_body(r, v) }}", m.name)?;
    writeln!(out, "        #[cfg(feature = \"sample\")]")?;
    writeln!(out, "        fn sample(rng: &mut crate::sample::SampleRng, v: i16) -> Self {{ {}::sample(rng, v, 0) }}", m.name)?;
    writeln!(out, "    }}")?;
    writeln!(out, "}}")?;
    writeln!(out, "pub use {module}::{};\n", m.name)?;
    Ok(())
}

/// The structs reachable from `fields`, each once, in a stable order.
fn used_structs<'a>(file: &'a File, m: &'a Message) -> Vec<&'a StructDef> {
    let mut seen: Vec<&'a StructDef> = Vec::new();
    let mut stack: Vec<String> = Vec::new();
    let push_types = |fields: &[Field], stack: &mut Vec<String>| {
        for f in fields.iter().rev() {
            let mut t = &f.ty;
            while let Type::Array(inner) = t {
                t = inner;
            }
            if let Type::Struct(n) = t {
                stack.push(n.clone());
            }
        }
    };
    push_types(&m.fields, &mut stack);
    while let Some(n) = stack.pop() {
        if seen.iter().any(|s| s.name == n) {
            continue;
        }
        let Some(s) = m.lookup(file, &n) else { continue };
        seen.push(s);
        push_types(&s.fields, &mut stack);
    }
    seen
}

/// Emits all messages plus the api table.
pub fn emit(files: &[File]) -> Result<String, String> {
    let mut out = String::new();
    let e = |r: std::fmt::Result| r.map_err(|e| e.to_string());
    out.push_str("// @generated by proto/build.rs from proto/schema/*.ks. Do not edit.\n\n");
    let mut apis: Vec<(&Message, &Message)> = Vec::new();
    for file in files {
        let req = file.messages.iter().find(|m| m.kind == Kind::Request);
        let resp = file.messages.iter().find(|m| m.kind == Kind::Response);
        let (Some(req), Some(resp)) = (req, resp) else {
            return Err(format!("{}: needs one request and one response", file.path));
        };
        if req.key != resp.key || req.versions != resp.versions {
            return Err(format!("{}: request and response must share key and versions", file.path));
        }
        if !req.name.ends_with("Request") || !resp.name.ends_with("Response") {
            return Err(format!("{}: names must end in Request / Response", file.path));
        }
        for m in [req, resp] {
            e(emit_message(&mut out, file, m))?;
        }
        apis.push((req, resp));
    }
    apis.sort_by_key(|(r, _)| r.key);
    for w in apis.windows(2) {
        if w[0].0.key == w[1].0.key {
            return Err(format!("api key {} defined twice", w[0].0.key));
        }
    }
    e(emit_api_table(&mut out, &apis))?;
    Ok(out)
}

fn emit_api_table(out: &mut String, apis: &[(&Message, &Message)]) -> std::fmt::Result {
    let names: Vec<String> = apis.iter().map(|(r, _)| r.name.trim_end_matches("Request").to_string()).collect();
    writeln!(out, "/// Every api key Strata's codec knows.")?;
    writeln!(out, "#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]")?;
    writeln!(out, "#[repr(i16)]")?;
    writeln!(out, "pub enum ApiKey {{")?;
    for ((r, _), n) in apis.iter().zip(&names) {
        writeln!(out, "    /// Api key {}.", r.key)?;
        writeln!(out, "    {n} = {},", r.key)?;
    }
    writeln!(out, "}}\n")?;
    writeln!(out, "impl ApiKey {{")?;
    writeln!(out, "    /// Every known api key, ascending.")?;
    writeln!(out, "    pub const ALL: &'static [ApiKey] = &[{}];", names.iter().map(|n| format!("ApiKey::{n}")).collect::<Vec<_>>().join(", "))?;
    writeln!(out, "    /// The api key for a wire value, if known.")?;
    writeln!(out, "    pub fn from_i16(key: i16) -> ::std::option::Option<ApiKey> {{ match key {{")?;
    for ((r, _), n) in apis.iter().zip(&names) {
        writeln!(out, "        {} => Some(ApiKey::{n}),", r.key)?;
    }
    writeln!(out, "        _ => None, }} }}")?;
    writeln!(out, "    /// Kafka's name for this api.")?;
    writeln!(out, "    pub fn name(self) -> &'static str {{ match self {{")?;
    for n in &names {
        writeln!(out, "        ApiKey::{n} => {n:?},")?;
    }
    writeln!(out, "    }} }}")?;
    writeln!(out, "    /// The versions the codec supports, inclusive.")?;
    writeln!(out, "    pub fn versions(self) -> (i16, i16) {{ match self {{")?;
    for ((r, _), n) in apis.iter().zip(&names) {
        writeln!(out, "        ApiKey::{n} => ({}, {}),", r.versions.lo, r.versions.hi)?;
    }
    writeln!(out, "    }} }}")?;
    writeln!(out, "    /// The first flexible request version, if any.")?;
    writeln!(out, "    pub fn request_flexible_from(self) -> ::std::option::Option<i16> {{ match self {{")?;
    for ((r, _), n) in apis.iter().zip(&names) {
        writeln!(out, "        ApiKey::{n} => {:?},", r.flexible)?;
    }
    writeln!(out, "    }} }}")?;
    writeln!(out, "    /// The first flexible response version, if any.")?;
    writeln!(out, "    pub fn response_flexible_from(self) -> ::std::option::Option<i16> {{ match self {{")?;
    for ((_, r), n) in apis.iter().zip(&names) {
        writeln!(out, "        ApiKey::{n} => {:?},", r.flexible)?;
    }
    writeln!(out, "    }} }}")?;
    writeln!(out, "}}\n")?;

    for (kind, suffix, idx) in [("Request", "Request", 0usize), ("Response", "Response", 1)] {
        writeln!(out, "/// A decoded {} body of any api.", kind.to_lowercase())?;
        writeln!(out, "#[derive(Debug, Clone, PartialEq)]")?;
        writeln!(out, "pub enum {kind}Body {{")?;
        for n in &names {
            writeln!(out, "    /// {n}{suffix}.")?;
            writeln!(out, "    {n}({n}{suffix}),")?;
        }
        writeln!(out, "}}\n")?;
        writeln!(out, "impl {kind}Body {{")?;
        writeln!(out, "    /// The api this body belongs to.")?;
        writeln!(out, "    pub fn api_key(&self) -> ApiKey {{ match self {{")?;
        for n in &names {
            writeln!(out, "        {kind}Body::{n}(_) => ApiKey::{n},")?;
        }
        writeln!(out, "    }} }}")?;
        writeln!(out, "    /// Decodes the body of api `key` at version `v` (checked against the supported range).")?;
        writeln!(out, "    pub fn decode(key: ApiKey, r: &mut ::bytes::Bytes, v: i16) -> ::std::result::Result<Self, crate::codec::error::DecodeError> {{ match key {{")?;
        for n in &names {
            writeln!(out, "        ApiKey::{n} => <{n}{suffix} as crate::messages::Message>::decode(r, v).map({kind}Body::{n}),")?;
        }
        writeln!(out, "    }} }}")?;
        writeln!(out, "    /// Encodes the body at version `v` (checked against the supported range).")?;
        writeln!(out, "    pub fn encode(&self, w: &mut ::bytes::BytesMut, v: i16) -> ::std::result::Result<(), crate::codec::error::EncodeError> {{ match self {{")?;
        for n in &names {
            writeln!(out, "        {kind}Body::{n}(m) => crate::messages::Message::encode(m, w, v),")?;
        }
        writeln!(out, "    }} }}")?;
        writeln!(out, "    /// A random body of api `key`, valid at version `v`.")?;
        writeln!(out, "    #[cfg(feature = \"sample\")]")?;
        writeln!(out, "    pub fn sample(key: ApiKey, rng: &mut crate::sample::SampleRng, v: i16) -> Self {{ match key {{")?;
        for n in &names {
            writeln!(out, "        ApiKey::{n} => {kind}Body::{n}(<{n}{suffix} as crate::messages::Message>::sample(rng, v)),")?;
        }
        writeln!(out, "    }} }}")?;
        writeln!(out, "}}\n")?;
        for n in &names {
            writeln!(out, "impl ::std::convert::From<{n}{suffix}> for {kind}Body {{ fn from(m: {n}{suffix}) -> Self {{ {kind}Body::{n}(m) }} }}")?;
        }
        let _ = idx;
        writeln!(out)?;
    }
    Ok(())
}
