//! The parsed form of our `*.ks` schema files, and the parser (see schema/README.md).

use std::collections::BTreeMap;

/// An inclusive version range; `lo > hi` is the empty range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub lo: i16,
    pub hi: i16,
}

impl Range {
    pub const NONE: Range = Range { lo: 1, hi: 0 };
    pub fn is_empty(&self) -> bool {
        self.lo > self.hi
    }
    /// The part of `self` inside the message's valid versions.
    pub fn clamp(&self, valid: Range) -> Range {
        Range { lo: self.lo.max(valid.lo), hi: self.hi.min(valid.hi) }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prim {
    Bool,
    Int8,
    Int16,
    Int32,
    Int64,
    Uint16,
    Uint32,
    Float64,
    Uuid,
    String,
    Bytes,
    Records,
}

impl Prim {
    fn parse(s: &str) -> Option<Prim> {
        Some(match s {
            "bool" => Prim::Bool,
            "int8" => Prim::Int8,
            "int16" => Prim::Int16,
            "int32" => Prim::Int32,
            "int64" => Prim::Int64,
            "uint16" => Prim::Uint16,
            "uint32" => Prim::Uint32,
            "float64" => Prim::Float64,
            "uuid" => Prim::Uuid,
            "string" => Prim::String,
            "bytes" => Prim::Bytes,
            "records" => Prim::Records,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Type {
    Prim(Prim),
    Array(Box<Type>),
    Struct(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Default {
    Int(i64),
    Bool(bool),
    Null,
    Str(String),
}

#[derive(Debug, Clone)]
pub struct Field {
    pub name: String,
    pub ty: Type,
    pub versions: Range,
    pub nullable: Range,
    pub tag: Option<u32>,
    pub default: Option<Default>,
    pub line: usize,
}

impl Field {
    /// True when the Rust type is an `Option` (nullable in some version).
    pub fn optional(&self) -> bool {
        !self.nullable.is_empty()
    }
}

#[derive(Debug, Clone)]
pub struct StructDef {
    pub name: String,
    pub fields: Vec<Field>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Request,
    Response,
}

#[derive(Debug, Clone)]
pub struct Message {
    pub kind: Kind,
    pub name: String,
    pub key: i16,
    pub versions: Range,
    /// First flexible version, `None` when never flexible.
    pub flexible: Option<i16>,
    pub fields: Vec<Field>,
    /// Structs defined inline under this message (Kafka scopes them per message).
    pub structs: BTreeMap<String, StructDef>,
}

impl Message {
    /// Looks a struct up: this message's own first, then the file's shared ones.
    pub fn lookup<'a>(&'a self, file: &'a File, name: &str) -> Option<&'a StructDef> {
        self.structs.get(name).or_else(|| file.structs.get(name))
    }
}

/// One schema file: its messages and the structs shared by them (`struct` blocks).
#[derive(Debug, Clone)]
pub struct File {
    pub path: String,
    pub messages: Vec<Message>,
    pub structs: BTreeMap<String, StructDef>,
}

fn err(path: &str, line: usize, msg: impl std::fmt::Display) -> String {
    format!("{path}:{line}: {msg}")
}

fn parse_range(s: &str) -> Option<Range> {
    if s == "none" {
        return Some(Range::NONE);
    }
    if let Some(lo) = s.strip_suffix('+') {
        return Some(Range { lo: lo.parse().ok()?, hi: i16::MAX });
    }
    if let Some((lo, hi)) = s.split_once('-') {
        let r = Range { lo: lo.parse().ok()?, hi: hi.parse().ok()? };
        return if r.lo <= r.hi { Some(r) } else { None };
    }
    None
}

fn parse_type(s: &str) -> Option<Type> {
    if let Some(inner) = s.strip_prefix("[]") {
        return Some(Type::Array(Box::new(parse_type(inner)?)));
    }
    if let Some(p) = Prim::parse(s) {
        return Some(Type::Prim(p));
    }
    let mut chars = s.chars();
    if chars.next()?.is_ascii_uppercase() && chars.all(|c| c.is_ascii_alphanumeric()) {
        return Some(Type::Struct(s.to_string()));
    }
    None
}

/// Splits a line into tokens, keeping double-quoted strings whole.
fn tokens(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_str = false;
    for c in s.chars() {
        match (c, in_str) {
            ('"', false) => {
                in_str = true;
                cur.push(c);
            }
            ('"', true) => {
                in_str = false;
                cur.push(c);
            }
            (c, false) if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            (c, _) => cur.push(c),
        }
    }
    if in_str {
        return Err("unterminated string".into());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

fn strip_comment(line: &str) -> &str {
    let mut in_str = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => in_str = !in_str,
            '#' if !in_str => return &line[..i],
            _ => {}
        }
    }
    line
}

fn parse_field(path: &str, line: usize, toks: &[String]) -> Result<Field, String> {
    if toks.len() < 3 {
        return Err(err(path, line, "a field needs: name TYPE vVERSIONS"));
    }
    let name = toks[0].clone();
    if !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
        return Err(err(path, line, format!("field name `{name}` must be snake_case")));
    }
    let ty = parse_type(&toks[1]).ok_or_else(|| err(path, line, format!("unknown type `{}`", toks[1])))?;
    let versions = toks[2]
        .strip_prefix('v')
        .and_then(parse_range)
        .ok_or_else(|| err(path, line, format!("bad versions `{}` (want vN+, vN-M or vnone)", toks[2])))?;
    let mut f = Field { name, ty, versions, nullable: Range::NONE, tag: None, default: None, line };
    let mut i = 3;
    while i < toks.len() {
        let val = toks.get(i + 1).ok_or_else(|| err(path, line, format!("`{}` needs a value", toks[i])))?;
        match toks[i].as_str() {
            "nullable" => {
                f.nullable = parse_range(val).ok_or_else(|| err(path, line, format!("bad nullable range `{val}`")))?
            }
            "tag" => f.tag = Some(val.parse().map_err(|_| err(path, line, format!("bad tag `{val}`")))?),
            "default" => {
                f.default = Some(if val == "null" {
                    Default::Null
                } else if val == "true" || val == "false" {
                    Default::Bool(val == "true")
                } else if let Some(s) = val.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
                    Default::Str(s.to_string())
                } else {
                    Default::Int(val.parse().map_err(|_| err(path, line, format!("bad default `{val}`")))?)
                })
            }
            other => return Err(err(path, line, format!("unknown attribute `{other}`"))),
        }
        i += 2;
    }
    if f.default == Some(Default::Null) && !f.optional() {
        return Err(err(path, line, "`default null` on a field that is never nullable"));
    }
    if let Some(d) = &f.default {
        let ok = match (&f.ty, d) {
            (_, Default::Null) => true,
            (Type::Prim(Prim::Bool), Default::Bool(_)) => true,
            (
                Type::Prim(
                    Prim::Int8 | Prim::Int16 | Prim::Int32 | Prim::Int64 | Prim::Uint16 | Prim::Uint32 | Prim::Float64,
                ),
                Default::Int(_),
            ) => true,
            (Type::Prim(Prim::String), Default::Str(_)) => true,
            _ => false,
        };
        if !ok {
            return Err(err(path, line, "default does not fit the field's type"));
        }
    }
    Ok(f)
}

struct Line {
    no: usize,
    indent: usize,
    toks: Vec<String>,
}

/// Parses one schema file.
pub fn parse(path: &str, text: &str) -> Result<File, String> {
    let mut lines = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let body = strip_comment(raw);
        if body.trim().is_empty() {
            continue;
        }
        let spaces = body.len() - body.trim_start_matches(' ').len();
        if body[spaces..].starts_with('\t') {
            return Err(err(path, i + 1, "tabs are not allowed; indent with two spaces"));
        }
        if spaces % 2 != 0 {
            return Err(err(path, i + 1, "indentation must be a multiple of two spaces"));
        }
        let toks = tokens(body).map_err(|e| err(path, i + 1, e))?;
        lines.push(Line { no: i + 1, indent: spaces / 2, toks });
    }

    let mut file = File { path: path.to_string(), messages: Vec::new(), structs: BTreeMap::new() };
    let mut pos = 0;
    while pos < lines.len() {
        let l = &lines[pos];
        if l.indent != 0 {
            return Err(err(path, l.no, "expected `request`, `response` or `struct` at column 0"));
        }
        match l.toks[0].as_str() {
            "request" | "response" => {
                let t = &l.toks;
                let want = "want: request|response Name key N versions A-B flexible N+|none";
                if t.len() != 8 || t[2] != "key" || t[4] != "versions" || t[6] != "flexible" {
                    return Err(err(path, l.no, want));
                }
                let key: i16 = t[3].parse().map_err(|_| err(path, l.no, want))?;
                let versions = parse_range(&t[5])
                    .filter(|r| r.hi != i16::MAX)
                    .ok_or_else(|| err(path, l.no, "message versions must be a closed range A-B"))?;
                let flexible = if t[7] == "none" {
                    None
                } else {
                    Some(t[7].strip_suffix('+').and_then(|s| s.parse().ok()).ok_or_else(|| err(path, l.no, want))?)
                };
                let kind = if t[0] == "request" { Kind::Request } else { Kind::Response };
                let mut structs = BTreeMap::new();
                let (fields, next) = parse_fields(path, &lines, pos + 1, 1, &mut structs)?;
                file.messages.push(Message { kind, name: t[1].clone(), key, versions, flexible, fields, structs });
                pos = next;
            }
            "struct" => {
                if l.toks.len() != 2 {
                    return Err(err(path, l.no, "want: struct Name"));
                }
                let name = l.toks[1].clone();
                let (fields, next) = parse_fields(path, &lines, pos + 1, 1, &mut file.structs)?;
                if file.structs.insert(name.clone(), StructDef { name: name.clone(), fields }).is_some() {
                    return Err(err(path, l.no, format!("struct `{name}` defined twice")));
                }
                pos = next;
            }
            other => return Err(err(path, l.no, format!("unexpected `{other}` at column 0"))),
        }
    }
    check(&file)?;
    Ok(file)
}

fn parse_fields(
    path: &str,
    lines: &[Line],
    mut pos: usize,
    depth: usize,
    structs: &mut BTreeMap<String, StructDef>,
) -> Result<(Vec<Field>, usize), String> {
    let mut fields = Vec::new();
    while pos < lines.len() && lines[pos].indent >= depth {
        let l = &lines[pos];
        if l.indent > depth {
            return Err(err(path, l.no, "indented too deep"));
        }
        let field = parse_field(path, l.no, &l.toks)?;
        pos += 1;
        if pos < lines.len() && lines[pos].indent > depth {
            let sname = match &field.ty {
                Type::Struct(n) => n.clone(),
                Type::Array(inner) => match &**inner {
                    Type::Struct(n) => n.clone(),
                    _ => return Err(err(path, l.no, "only struct-typed fields may have children")),
                },
                _ => return Err(err(path, l.no, "only struct-typed fields may have children")),
            };
            let (children, next) = parse_fields(path, lines, pos, depth + 1, structs)?;
            if structs.insert(sname.clone(), StructDef { name: sname.clone(), fields: children }).is_some() {
                return Err(err(path, l.no, format!("struct `{sname}` defined twice")));
            }
            pos = next;
        }
        if fields.iter().any(|f: &Field| f.name == field.name) {
            return Err(err(path, l.no, format!("field `{}` defined twice", field.name)));
        }
        fields.push(field);
    }
    Ok((fields, pos))
}

fn check_fields(file: &File, m: &Message, fields: &[Field], flexible: Option<i16>) -> Result<(), String> {
    let mut tags = Vec::new();
    for f in fields {
        let mut t = &f.ty;
        while let Type::Array(inner) = t {
            t = inner;
        }
        if let Type::Struct(n) = t {
            if m.lookup(file, n).is_none() {
                return Err(err(&file.path, f.line, format!("unknown struct `{n}`")));
            }
        }
        if let Some(tag) = f.tag {
            match flexible {
                Some(fl) if f.versions.lo >= fl => {}
                _ => return Err(err(&file.path, f.line, "tagged field outside the flexible versions")),
            }
            if tags.contains(&tag) {
                return Err(err(&file.path, f.line, format!("tag {tag} used twice")));
            }
            tags.push(tag);
        }
    }
    Ok(())
}

fn check(file: &File) -> Result<(), String> {
    if file.messages.len() != 2 {
        return Err(format!("{}: a schema file holds exactly one request and one response", file.path));
    }
    for m in &file.messages {
        check_fields(file, m, &m.fields, m.flexible)?;
        for s in m.structs.values().chain(file.structs.values()) {
            check_fields(file, m, &s.fields, m.flexible)?;
        }
        for name in m.structs.keys() {
            if file.structs.contains_key(name) {
                return Err(format!("{}: struct `{name}` is both shared and defined in {}", file.path, m.name));
            }
        }
    }
    Ok(())
}
