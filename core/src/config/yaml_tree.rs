//! A YAML document as a tree whose every node knows its line and column, so that `.ko.yaml`
//! diagnostics can say `file:line:column` for any key or value (serde's YAML errors only locate
//! syntax errors). Built from the position-reporting parser the resolver uses; anchors and
//! aliases are expanded and `<<` merge keys applied, as the YAML libraries upstream ko uses do.

use std::collections::HashMap;

use granit_parser::{Event, Parser, ScalarStyle};

use crate::error::{Error, Result};

/// A node and where it starts (1-based line and column).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub line: usize,
    pub column: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(Scalar),
    Seq(Vec<Node>),
    /// Entries in document order.
    Map(Vec<(Node, Node)>),
}

/// A scalar as written: its text after escape processing, and whether its type is to be
/// resolved from the text (a plain scalar without a tag) or is a string.
#[derive(Debug, Clone, PartialEq)]
pub struct Scalar {
    pub text: String,
    /// Plain and untagged: `5` is an integer, `true` a boolean, `~` null.
    pub resolved: bool,
}

/// What a scalar is, by YAML 1.2's core schema (as `go.yaml.in/yaml` decodes it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarKind {
    Null,
    Bool,
    Int,
    Float,
    Str,
}

impl Scalar {
    pub fn kind(&self) -> ScalarKind {
        if !self.resolved {
            return ScalarKind::Str;
        }
        let t = self.text.as_str();
        match t {
            "" | "~" | "null" | "Null" | "NULL" => ScalarKind::Null,
            "true" | "True" | "TRUE" | "false" | "False" | "FALSE" => ScalarKind::Bool,
            ".inf" | ".Inf" | ".INF" | "+.inf" | "-.inf" | "+.Inf" | "-.Inf" | ".nan" | ".NaN" | ".NAN" => {
                ScalarKind::Float
            }
            _ if is_int(t) => ScalarKind::Int,
            _ if t.parse::<f64>().is_ok() && t.chars().any(|c| c.is_ascii_digit()) => ScalarKind::Float,
            _ => ScalarKind::Str,
        }
    }
}

fn is_int(t: &str) -> bool {
    let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
    if let Some(hex) = digits.strip_prefix("0x") {
        return !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit());
    }
    if let Some(oct) = digits.strip_prefix("0o") {
        return !oct.is_empty() && oct.chars().all(|c| ('0'..='7').contains(&c));
    }
    !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit())
}

impl Node {
    /// `a scalar`, `a list`, `a map`, or the scalar's kind, for "found …" in messages.
    pub fn describe(&self) -> String {
        match &self.value {
            Value::Seq(_) => "a list".into(),
            Value::Map(_) => "a map".into(),
            Value::Scalar(s) => match s.kind() {
                ScalarKind::Null => "nothing (null)".into(),
                ScalarKind::Bool => format!("a boolean ({})", s.text),
                ScalarKind::Int => format!("an integer ({})", s.text),
                ScalarKind::Float => format!("a number ({})", s.text),
                ScalarKind::Str => format!("a string ({:?})", s.text),
            },
        }
    }

    /// How many nodes this one holds, itself included.
    fn size(&self) -> usize {
        1 + match &self.value {
            Value::Scalar(_) => 0,
            Value::Seq(items) => items.iter().map(Node::size).sum(),
            Value::Map(entries) => entries.iter().map(|(k, v)| k.size() + v.size()).sum(),
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar(s) if s.kind() == ScalarKind::Null)
    }
}

/// More than any real `.ko.yaml` copies through aliases, and little enough to build at once.
const MAX_ALIASED_NODES: usize = 100_000;

/// Parses the first document of `text` (named `name` in errors); `None` when it has none or it
/// is empty.
pub fn parse(text: &str, name: &str) -> Result<Option<Node>> {
    let mut builder = Builder::default();
    // Nodes that aliases copy, in all: nested aliases grow exponentially ("billion laughs").
    let mut copied = 0usize;
    for item in Parser::new_from_str(text) {
        let (event, span) = item.map_err(|e| {
            let m = e.marker();
            Error::config(format!("{name}:{}:{}: invalid YAML: {}", m.line(), m.col() + 1, e.info()))
                .with_source(e.clone())
        })?;
        let (line, column) = (span.start.line(), span.start.col() + 1);
        let at = |value| Node { value, line, column };
        match event {
            Event::DocumentEnd if builder.root.is_some() => break,
            Event::Scalar(text, style, anchor, tag) => {
                let resolved = style == ScalarStyle::Plain && tag.is_none();
                // `!!str 5` is the string "5"; other tags leave the text as written.
                builder.push(at(Value::Scalar(Scalar { text: text.into_owned(), resolved })), anchor);
            }
            Event::SequenceStart(_, anchor, _) => builder.open.push((at(Value::Seq(Vec::new())), anchor)),
            Event::MappingStart(_, anchor, _) => builder.open.push((at(Value::Map(Vec::new())), anchor)),
            Event::SequenceEnd | Event::MappingEnd => {
                let (mut node, anchor) = builder.open.pop().expect("the parser balances collections");
                if let Value::Map(entries) = &mut node.value {
                    merge_keys(entries);
                }
                builder.push(node, anchor);
            }
            Event::Alias(id) => {
                let node = builder.anchors.get(&id).cloned().ok_or_else(|| {
                    Error::config(format!("{name}:{line}:{column}: invalid YAML: an alias to an unknown anchor"))
                })?;
                copied += node.size();
                if copied > MAX_ALIASED_NODES {
                    return Err(Error::config(format!(
                        "{name}:{line}:{column}: invalid YAML: aliases expand to more than {MAX_ALIASED_NODES} nodes; write the values out, or alias less"
                    )));
                }
                // The alias stands where it is written; its contents keep their own positions.
                builder.push(Node { line, column, ..node }, 0);
            }
            _ => {}
        }
    }
    Ok(builder.root)
}

#[derive(Default)]
struct Builder {
    /// Collections being read, with their anchor ids, innermost last.
    open: Vec<(Node, usize)>,
    /// A map's key waiting for its value, per open map (by depth).
    keys: HashMap<usize, Node>,
    anchors: HashMap<usize, Node>,
    root: Option<Node>,
}

impl Builder {
    fn push(&mut self, node: Node, anchor: usize) {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        let depth = self.open.len();
        let Some((parent, _)) = self.open.last_mut() else {
            self.root.get_or_insert(node);
            return;
        };
        match &mut parent.value {
            Value::Seq(items) => items.push(node),
            Value::Map(entries) => match self.keys.remove(&depth) {
                Some(key) => entries.push((key, node)),
                None => {
                    self.keys.insert(depth, node);
                }
            },
            Value::Scalar(_) => unreachable!("scalars are never open"),
        }
    }
}

/// Applies `<<: *anchor` (or a list of them): the merged maps' entries that the map does not set
/// itself are added, the merge key removed.
fn merge_keys(entries: &mut Vec<(Node, Node)>) {
    let is_merge = |k: &Node| matches!(&k.value, Value::Scalar(s) if s.resolved && s.text == "<<");
    if !entries.iter().any(|(k, _)| is_merge(k)) {
        return;
    }
    let mut own = Vec::new();
    let mut merged = Vec::new();
    for (k, v) in entries.drain(..) {
        if !is_merge(&k) {
            own.push((k, v));
            continue;
        }
        let sources = match v.value {
            Value::Seq(items) => items,
            other => vec![Node { value: other, ..v }],
        };
        for source in sources {
            if let Value::Map(inner) = source.value {
                merged.extend(inner);
            }
        }
    }
    let text = |n: &Node| match &n.value {
        Value::Scalar(s) => Some(s.text.clone()),
        _ => None,
    };
    for (k, v) in merged {
        let name = text(&k);
        if name.is_some() && !own.iter().any(|(ok, _)| text(ok) == name) {
            own.push((k, v));
        }
    }
    *entries = own;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_aliases_are_refused_before_they_expand() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let prev = format!("*a{}", i - 1);
            text.push_str(&format!("a{i}: &a{i} [{}]\n", [prev.as_str(); 10].join(", ")));
        }
        let start = std::time::Instant::now();
        let e = parse(&text, ".ko.yaml").unwrap_err().to_string();
        assert!(e.contains("aliases expand to more than 100000 nodes"), "{e}");
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
        // A few aliases, as a real file has them, are fine.
        let ok = parse("x: &x {a: 1}\ny: *x\nz: *x\n", ".ko.yaml").unwrap().unwrap();
        assert_eq!(ok.size(), 13, "the map, three keys and three copies of {{a: 1}}");
    }

    fn scalar(n: &Node) -> (&str, ScalarKind) {
        match &n.value {
            Value::Scalar(s) => (s.text.as_str(), s.kind()),
            other => panic!("not a scalar: {other:?}"),
        }
    }

    #[test]
    fn nodes_know_where_they_are() {
        let text = "a: 1\nb:\n  - x\n  - 'true'\nc: {d: ~}\n";
        let root = parse(text, "t").unwrap().unwrap();
        let Value::Map(entries) = &root.value else { panic!() };
        assert_eq!((entries[0].1.line, entries[0].1.column), (1, 4));
        assert_eq!(scalar(&entries[0].1), ("1", ScalarKind::Int));
        let Value::Seq(items) = &entries[1].1.value else { panic!() };
        assert_eq!((items[1].line, items[1].column), (4, 5));
        assert_eq!(scalar(&items[1]), ("true", ScalarKind::Str), "quoted: a string");
        assert_eq!((entries[2].0.line, entries[2].0.column), (5, 1));
        let Value::Map(inner) = &entries[2].1.value else { panic!() };
        assert_eq!(scalar(&inner[0].1).1, ScalarKind::Null);
        assert!(parse("", "t").unwrap().is_none());
        assert!(parse("# only a comment\n", "t").unwrap().is_none());
    }

    #[test]
    fn anchors_aliases_and_merge_keys_are_expanded() {
        let text = "base: &b {flags: [-v], env: [A=1]}\nbuild:\n  <<: *b\n  env: [A=2]\nlist: [*b]\n";
        let root = parse(text, "t").unwrap().unwrap();
        let Value::Map(entries) = &root.value else { panic!() };
        let Value::Map(build) = &entries[1].1.value else { panic!() };
        let keys: Vec<&str> = build.iter().map(|(k, _)| scalar(k).0).collect();
        assert_eq!(keys, ["env", "flags"], "own keys first, merged ones they lack after");
        let Value::Seq(env) = &build[0].1.value else { panic!() };
        assert_eq!(scalar(&env[0]).0, "A=2");
        let Value::Seq(list) = &entries[2].1.value else { panic!() };
        assert!(matches!(list[0].value, Value::Map(_)));
        assert_eq!((list[0].line, list[0].column), (5, 8), "an alias sits where it is written");
    }

    #[test]
    fn scalar_kinds_follow_the_core_schema() {
        let kind = |t: &str| Scalar { text: t.into(), resolved: true }.kind();
        assert_eq!(kind("5"), ScalarKind::Int);
        assert_eq!(kind("-0x1F"), ScalarKind::Int);
        assert_eq!(kind("1.5"), ScalarKind::Float);
        assert_eq!(kind("yes"), ScalarKind::Str, "YAML 1.1 booleans are strings");
        assert_eq!(kind("linux/amd64"), ScalarKind::Str);
        assert_eq!(kind("inf"), ScalarKind::Str);
        assert_eq!(Scalar { text: "5".into(), resolved: false }.kind(), ScalarKind::Str);
    }

    #[test]
    fn syntax_errors_name_the_place() {
        let err = parse("a: [unclosed\n", "/x/.ko.yaml").unwrap_err().to_string();
        assert!(err.starts_with("/x/.ko.yaml:"), "{err}");
        assert!(err.contains("invalid YAML"), "{err}");
    }
}
