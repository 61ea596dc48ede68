//! Reading a YAML document into a tree that remembers where every key and value was written,
//! so that every later error (schema or semantic) can name `file:line:column`.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// A 1-based position in the source text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: u64,
    pub column: u64,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

impl Pos {
    fn of(loc: &serde_saphyr::Location) -> Self {
        Pos {
            line: loc.line(),
            column: loc.column(),
        }
    }
}

/// One YAML node as written, before it is given a type.
#[derive(Debug)]
pub enum Node {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<Node>>),
    Map(Vec<(Spanned<String>, Spanned<Node>)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        match i64::try_from(v) {
            Ok(v) => Ok(Node::Int(v)),
            Err(_) => Ok(Node::Float(v as f64)),
        }
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            let value = map.next_value::<Spanned<Node>>()?;
            entries.push((key, value));
        }
        Ok(Node::Map(entries))
    }
}

/// Where each part of a document was written, by JSON pointer (`/spec/target/baremetal/hosts/0/name`).
#[derive(Debug, Default, Clone)]
pub struct SourceMap {
    values: BTreeMap<String, Pos>,
    keys: BTreeMap<String, Pos>,
}

impl SourceMap {
    /// Position of the value at `pointer`. For something not written (left to its default), the
    /// key of its nearest written ancestor: `secnumcloud:` rather than that mapping's first key.
    pub fn value(&self, pointer: &str) -> Pos {
        if let Some(pos) = self.values.get(pointer) {
            return *pos;
        }
        let mut p = pointer.to_owned();
        while let Some(i) = p.rfind('/') {
            p.truncate(i);
            if let Some(pos) = self.keys.get(&p).or_else(|| self.values.get(&p)) {
                return *pos;
            }
        }
        self.values
            .get("")
            .copied()
            .unwrap_or(Pos { line: 1, column: 1 })
    }

    /// Whether the document writes something at `pointer` (rather than leaving it to its default).
    pub fn has(&self, pointer: &str) -> bool {
        self.values.contains_key(pointer)
    }

    /// Position of the key that introduces `pointer` (falls back to the value's position).
    pub fn key(&self, pointer: &str) -> Pos {
        self.keys
            .get(pointer)
            .copied()
            .unwrap_or_else(|| self.value(pointer))
    }
}

/// Escape one JSON pointer segment (RFC 6901).
pub fn pointer_segment(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

/// Turn the spanned tree into plain JSON plus its source map.
/// Duplicate keys are reported (YAML forbids them; a silent "last wins" hides mistakes).
pub fn to_json(
    root: Spanned<Node>,
    map: &mut SourceMap,
    duplicates: &mut Vec<(String, Pos, Pos)>,
) -> serde_json::Value {
    fn walk(
        node: Spanned<Node>,
        pointer: String,
        map: &mut SourceMap,
        duplicates: &mut Vec<(String, Pos, Pos)>,
    ) -> serde_json::Value {
        map.values
            .insert(pointer.clone(), Pos::of(&node.referenced));
        match node.value {
            Node::Null => serde_json::Value::Null,
            Node::Bool(b) => serde_json::Value::Bool(b),
            Node::Int(i) => serde_json::Value::from(i),
            Node::Float(f) => serde_json::Number::from_f64(f)
                .map_or(serde_json::Value::Null, serde_json::Value::Number),
            Node::Str(s) => serde_json::Value::String(s),
            Node::Seq(items) => serde_json::Value::Array(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, item)| walk(item, format!("{pointer}/{i}"), map, duplicates))
                    .collect(),
            ),
            Node::Map(entries) => {
                let mut obj = serde_json::Map::new();
                for (key, value) in entries {
                    let child = format!("{pointer}/{}", pointer_segment(&key.value));
                    let key_pos = Pos::of(&key.referenced);
                    if let Some(first) = map.keys.get(&child) {
                        duplicates.push((key.value.clone(), key_pos, *first));
                        continue;
                    }
                    map.keys.insert(child.clone(), key_pos);
                    let v = walk(value, child, map, duplicates);
                    obj.insert(key.value, v);
                }
                serde_json::Value::Object(obj)
            }
        }
    }
    walk(root, String::new(), map, duplicates)
}

/// Parse YAML text into a spanned tree.
///
/// YAML 1.2 booleans only: with YAML 1.1 rules `NO` (Norway's country code) or `on` would silently
/// become booleans. Duplicate keys are passed through so that `to_json` reports them with both
/// positions, in the project's own words.
pub fn parse(text: &str) -> Result<Spanned<Node>, serde_saphyr::Error> {
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::PassThrough;
    serde_saphyr::from_str_with_options::<Spanned<Node>>(text, options)
}
