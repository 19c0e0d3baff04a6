//! The query protocol: form parameters with flattened names (`Attribute.1.Name`,
//! `MessageAttribute.2.Value.DataType`, `AttributeName.3`) read into the JSON protocol's shape,
//! and JSON-shaped answers written as XML with the same flattened names.
//!
//! A service describes the names that differ between the two protocols with [`Member`]s; every
//! other name is the same in both, and a dotted name without a [`Member`] is a structure.
//! Lists and maps come flattened (SQS: `Attribute.1.Name`) or wrapped (SNS:
//! `Attributes.entry.1.key`, `Tags.member.1.Key`).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::xml::XmlWriter;

/// A member whose query (and XML) name and layout differ from its JSON one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Member {
    /// A flattened list: `Query.1`, `Query.2`, ... (each a value or a structure) is the JSON
    /// array `Json`.
    List {
        /// The JSON name.
        json: &'static str,
        /// The query and XML name of each item.
        query: &'static str,
    },
    /// A flattened map: `Query.N.Key` and `Query.N.Value` (a value or a structure) are the
    /// JSON object `Json`.
    Map {
        /// The JSON name.
        json: &'static str,
        /// The query and XML name of each entry.
        query: &'static str,
        /// The name of an entry's key.
        key: &'static str,
        /// The name of an entry's value.
        value: &'static str,
    },
    /// A wrapped list: `Query.Item.1`, `Query.Item.2`, ... is the JSON array `Json`; in XML,
    /// `<Query><Item>..</Item>..</Query>`. An empty list is sent as `Query=` (no items).
    WrappedList {
        /// The JSON name.
        json: &'static str,
        /// The query and XML name of the list.
        query: &'static str,
        /// The name of each item (`member`).
        item: &'static str,
    },
    /// A wrapped map: `Query.Entry.N.Key` and `Query.Entry.N.Value` are the JSON object `Json`;
    /// in XML, `<Query><Entry><Key>..</Key><Value>..</Value></Entry>..</Query>`.
    WrappedMap {
        /// The JSON name.
        json: &'static str,
        /// The query and XML name of the map.
        query: &'static str,
        /// The name of each entry (`entry`).
        entry: &'static str,
        /// The name of an entry's key.
        key: &'static str,
        /// The name of an entry's value.
        value: &'static str,
    },
}

impl Member {
    fn json(&self) -> &'static str {
        match self {
            Member::List { json, .. }
            | Member::Map { json, .. }
            | Member::WrappedList { json, .. }
            | Member::WrappedMap { json, .. } => json,
        }
    }

    fn query(&self) -> &'static str {
        match self {
            Member::List { query, .. }
            | Member::Map { query, .. }
            | Member::WrappedList { query, .. }
            | Member::WrappedMap { query, .. } => query,
        }
    }
}

/// The naming tables that apply to one operation, most specific first.
pub type Naming<'a> = &'a [&'static [Member]];

fn by_query(naming: Naming<'_>, name: &str) -> Option<Member> {
    naming.iter().flat_map(|table| table.iter()).find(|m| m.query() == name).copied()
}

fn by_json(naming: Naming<'_>, name: &str) -> Option<Member> {
    naming.iter().flat_map(|table| table.iter()).find(|m| m.json() == name).copied()
}

/// Parses `application/x-www-form-urlencoded` bytes (a body or a query string) into decoded
/// name/value pairs. Input whose percent-escapes do not decode to UTF-8 is an error, as SQS
/// answers it, never replaced characters.
pub fn parse_form(bytes: &[u8]) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    for part in bytes.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let (name, value) = match part.iter().position(|&b| b == b'=') {
            Some(i) => (&part[..i], &part[i + 1..]),
            None => (part, &[][..]),
        };
        pairs.push((decode(name)?, decode(value)?));
    }
    Ok(pairs)
}

fn decode(raw: &[u8]) -> Result<String, String> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' if raw.len() - i >= 3 => match hex_byte(raw[i + 1], raw[i + 2]) {
                Some(b) => {
                    out.push(b);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| "form parameters are not valid UTF-8 after percent-decoding".to_string())
}

fn hex_byte(high: u8, low: u8) -> Option<u8> {
    let digit = |c: u8| (c as char).to_digit(16);
    Some((digit(high)? * 16 + digit(low)?) as u8)
}

enum Node {
    Leaf(String),
    Branch(BTreeMap<String, Node>),
}

/// Reads flattened form parameters into the JSON protocol's shape. `skip` names parameters
/// that are the protocol's own (`Action`, `Version`, signature fields) rather than the
/// operation's.
pub fn to_json(pairs: &[(String, String)], naming: Naming<'_>, skip: &[&str]) -> Result<Map<String, Value>, String> {
    let mut root: BTreeMap<String, Node> = BTreeMap::new();
    for (name, value) in pairs {
        if skip.contains(&name.as_str()) || name.starts_with("X-Amz-") {
            continue;
        }
        insert(&mut root, name, value.clone())?;
    }
    structure(root, naming)
}

/// Most dot-separated parts in one parameter name. SQS's deepest is 7
/// (`SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.StringListValue.1`); the bound
/// keeps a hostile name from recursing the reader deep.
pub const MAX_NAME_PARTS: usize = 16;

fn insert(root: &mut BTreeMap<String, Node>, name: &str, value: String) -> Result<(), String> {
    let parts: Vec<&str> = name.splitn(MAX_NAME_PARTS + 1, '.').collect();
    if parts.len() > MAX_NAME_PARTS {
        return Err(format!("parameter name {:?} has more than {MAX_NAME_PARTS} parts", shorten(name)));
    }
    if parts.iter().any(|p| p.is_empty()) {
        return Err(format!("malformed parameter name {:?}", shorten(name)));
    }
    let mut level = root;
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        if last {
            if level.contains_key(*part) {
                return Err(format!("parameter {:?} is given more than once or clashes with another", shorten(name)));
            }
            level.insert(part.to_string(), Node::Leaf(value));
            return Ok(());
        }
        let node = level.entry(part.to_string()).or_insert_with(|| Node::Branch(BTreeMap::new()));
        level = match node {
            Node::Branch(children) => children,
            Node::Leaf(_) => return Err(format!("parameter {:?} clashes with another", shorten(name))),
        };
    }
    Ok(())
}

fn shorten(name: &str) -> String {
    name.chars().take(100).collect()
}

fn structure(children: BTreeMap<String, Node>, naming: Naming<'_>) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    for (name, node) in children {
        match (by_query(naming, &name), node) {
            (Some(Member::List { json, .. }), Node::Branch(items)) => {
                out.insert(json.to_string(), list(&name, items, naming)?);
            }
            (Some(Member::Map { json, key, value: value_name, .. }), Node::Branch(entries)) => {
                out.insert(json.to_string(), map(&name, entries, key, value_name, naming, false)?);
            }
            (Some(Member::WrappedList { json, item, .. }), Node::Branch(mut wrapper)) => {
                let items = match wrapper.remove(item) {
                    Some(Node::Branch(items)) if wrapper.is_empty() => items,
                    _ => return Err(format!("{name} is a list; pass {name}.{item}.1, {name}.{item}.2, ...")),
                };
                out.insert(json.to_string(), list(&format!("{name}.{item}"), items, naming)?);
            }
            (Some(Member::WrappedMap { json, entry, key, value: value_name, .. }), Node::Branch(mut wrapper)) => {
                let entries = match wrapper.remove(entry) {
                    Some(Node::Branch(entries)) if wrapper.is_empty() => entries,
                    _ => {
                        return Err(format!(
                            "{name} is a map; pass {name}.{entry}.1.{key} and {name}.{entry}.1.{value_name}, ..."
                        ))
                    }
                };
                out.insert(json.to_string(), map(&format!("{name}.{entry}"), entries, key, value_name, naming, true)?);
            }
            // An empty wrapped list or map is sent as its bare name.
            (Some(Member::WrappedList { json, .. }), Node::Leaf(v)) if v.is_empty() => {
                out.insert(json.to_string(), Value::Array(Vec::new()));
            }
            (Some(Member::WrappedMap { json, .. }), Node::Leaf(v)) if v.is_empty() => {
                out.insert(json.to_string(), Value::Object(Map::new()));
            }
            (Some(member), Node::Leaf(_)) => {
                return Err(format!("{name} is a list or map, not a value ({} has numbered members)", member.query()))
            }
            (None, node) => {
                out.insert(name, value(node, naming)?);
            }
        }
    }
    Ok(out)
}

fn list(name: &str, items: BTreeMap<String, Node>, naming: Naming<'_>) -> Result<Value, String> {
    let items = numbered(name, items)?.into_iter().map(|node| value(node, naming)).collect::<Result<Vec<_>, _>>()?;
    Ok(Value::Array(items))
}

fn map(
    name: &str,
    entries: BTreeMap<String, Node>,
    key: &str,
    value_name: &str,
    naming: Naming<'_>,
    unique_keys: bool,
) -> Result<Value, String> {
    let mut map = Map::new();
    for entry in numbered(name, entries)? {
        let Node::Branch(mut fields) = entry else {
            return Err(format!("{name}.N must have .{key} and .{value_name}"));
        };
        let Some(Node::Leaf(k)) = fields.remove(key) else {
            return Err(format!("an entry of {name} has no {key}"));
        };
        let v = fields.remove(value_name).map(|n| value(n, naming)).transpose()?.unwrap_or(Value::Null);
        if map.insert(k.clone(), v).is_some() && unique_keys {
            return Err(format!("{name} names {:?} more than once", shorten(&k)));
        }
    }
    Ok(Value::Object(map))
}

fn value(node: Node, naming: Naming<'_>) -> Result<Value, String> {
    match node {
        Node::Leaf(s) => Ok(Value::String(s)),
        Node::Branch(children) => structure(children, naming).map(Value::Object),
    }
}

/// The items of a flattened list or map in index order; indexes are 1, 2, ... but gaps are
/// tolerated (SDKs never leave any; hand-written requests may).
fn numbered(name: &str, items: BTreeMap<String, Node>) -> Result<Vec<Node>, String> {
    let mut indexed = Vec::with_capacity(items.len());
    for (index, node) in items {
        let n: u32 = index.parse().map_err(|_| format!("{name}.{index}: the index must be a number"))?;
        if n == 0 {
            return Err(format!("{name}.0: indexes start at 1"));
        }
        indexed.push((n, node));
    }
    indexed.sort_by_key(|(n, _)| *n);
    Ok(indexed.into_iter().map(|(_, node)| node).collect())
}

/// Writes a JSON-shaped structure as XML elements, with the flattened names of `naming`.
pub fn write_xml(w: &mut XmlWriter, fields: &Map<String, Value>, naming: Naming<'_>) {
    for (name, v) in fields {
        match (by_json(naming, name), v) {
            (Some(Member::List { query, .. }), Value::Array(items)) => {
                for item in items {
                    element(w, query, item, naming);
                }
            }
            (Some(Member::Map { query, key, value, .. }), Value::Object(entries)) => {
                for (k, v) in entries {
                    w.open(query);
                    w.element(key, k);
                    element(w, value, v, naming);
                    w.close(query);
                }
            }
            (Some(Member::WrappedList { query, item, .. }), Value::Array(items)) => {
                w.open(query);
                for v in items {
                    element(w, item, v, naming);
                }
                w.close(query);
            }
            (Some(Member::WrappedMap { query, entry, key, value, .. }), Value::Object(entries)) => {
                w.open(query);
                for (k, v) in entries {
                    w.open(entry);
                    w.element(key, k);
                    element(w, value, v, naming);
                    w.close(entry);
                }
                w.close(query);
            }
            _ => element(w, name, v, naming),
        }
    }
}

fn element(w: &mut XmlWriter, name: &str, v: &Value, naming: Naming<'_>) {
    match v {
        Value::Null => {}
        Value::Bool(b) => w.element(name, if *b { "true" } else { "false" }),
        Value::Number(n) => w.element(name, &n.to_string()),
        Value::String(s) => w.element(name, s),
        Value::Array(items) => items.iter().for_each(|item| element(w, name, item, naming)),
        Value::Object(fields) => {
            w.open(name);
            write_xml(w, fields, naming);
            w.close(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NAMING: &[Member] = &[
        Member::List { json: "AttributeNames", query: "AttributeName" },
        Member::Map { json: "Attributes", query: "Attribute", key: "Name", value: "Value" },
        Member::Map { json: "MessageAttributes", query: "MessageAttribute", key: "Name", value: "Value" },
        Member::List { json: "Entries", query: "Entry" },
    ];

    fn pairs(form: &str) -> Vec<(String, String)> {
        parse_form(form.as_bytes()).unwrap()
    }

    #[test]
    fn flattened_names_become_the_json_shape() {
        let form = "Action=X&QueueName=q&Attribute.2.Name=DelaySeconds&Attribute.2.Value=5&Attribute.1.Name=VisibilityTimeout&Attribute.1.Value=40\
            &AttributeName.1=All&MessageAttribute.1.Name=n&MessageAttribute.1.Value.DataType=Number&MessageAttribute.1.Value.StringValue=1\
            &Entry.1.Id=a&Entry.1.MessageAttribute.1.Name=x&Entry.1.MessageAttribute.1.Value.DataType=String&Entry.1.MessageAttribute.1.Value.StringValue=y&Entry.2.Id=b";
        let got = to_json(&pairs(form), &[NAMING], &["Action"]).unwrap();
        assert_eq!(
            Value::Object(got),
            json!({
                "QueueName": "q",
                "Attributes": {"VisibilityTimeout": "40", "DelaySeconds": "5"},
                "AttributeNames": ["All"],
                "MessageAttributes": {"n": {"DataType": "Number", "StringValue": "1"}},
                "Entries": [{"Id": "a", "MessageAttributes": {"x": {"DataType": "String", "StringValue": "y"}}}, {"Id": "b"}],
            })
        );
    }

    #[test]
    fn malformed_names_are_errors_not_panics() {
        for bad in
            ["a..b=1", "AttributeName=All", "AttributeName.x=1", "AttributeName.0=1", "a=1&a=2", "a=1&a.b=2", ".=1"]
        {
            assert!(to_json(&pairs(bad), &[NAMING], &[]).is_err(), "{bad} accepted");
        }
        assert!(parse_form(b"a=%FF%FE").is_err());
        assert_eq!(parse_form("a=%E2%9C%93+b".as_bytes()).unwrap(), vec![("a".to_string(), "\u{2713} b".to_string())]);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// Whatever the bytes, reading a form answers Ok or Err, never panics.
        #[test]
        fn any_form_bytes_are_read_or_refused(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
            if let Ok(p) = parse_form(&bytes) {
                let _ = to_json(&p, &[NAMING], &["Action"]);
            }
        }

        /// Dotted names built from the naming table's parts and indexes, in any mix.
        #[test]
        fn any_dotted_names_are_read_or_refused(
            names in proptest::collection::vec(
                proptest::collection::vec(
                    proptest::sample::select(vec!["Attribute", "AttributeName", "MessageAttribute", "Entry", "Name", "Value", "1", "2", "0", "x", ""]),
                    1..6,
                ),
                0..12,
            )
        ) {
            let form: Vec<(String, String)> = names.iter().map(|parts| (parts.join("."), "v".to_string())).collect();
            let _ = to_json(&form, &[NAMING], &[]);
        }
    }

    const WRAPPED: &[Member] = &[
        Member::WrappedMap { json: "Attributes", query: "Attributes", entry: "entry", key: "key", value: "value" },
        Member::WrappedMap {
            json: "MessageAttributes",
            query: "MessageAttributes",
            entry: "entry",
            key: "Name",
            value: "Value",
        },
        Member::WrappedList { json: "Tags", query: "Tags", item: "member" },
        Member::WrappedList { json: "TagKeys", query: "TagKeys", item: "member" },
    ];

    #[test]
    fn wrapped_names_become_the_json_shape_and_back() {
        let form = "Attributes.entry.1.key=DisplayName&Attributes.entry.1.value=x&Attributes.entry.2.key=Policy&Attributes.entry.2.value=%7B%7D\
            &MessageAttributes.entry.1.Name=n&MessageAttributes.entry.1.Value.DataType=Number&MessageAttributes.entry.1.Value.StringValue=5\
            &Tags.member.1.Key=a&Tags.member.1.Value=b&Tags.member.2.Key=c&Tags.member.2.Value=d&TagKeys=";
        let got = to_json(&pairs(form), &[WRAPPED], &[]).unwrap();
        let expected = json!({
            "Attributes": {"DisplayName": "x", "Policy": "{}"},
            "MessageAttributes": {"n": {"DataType": "Number", "StringValue": "5"}},
            "Tags": [{"Key": "a", "Value": "b"}, {"Key": "c", "Value": "d"}],
            "TagKeys": [],
        });
        assert_eq!(Value::Object(got), expected);
        let mut w = XmlWriter::default();
        let out = json!({"Attributes": {"A": "1"}, "Tags": [{"Key": "k", "Value": "v"}]});
        write_xml(&mut w, out.as_object().unwrap(), &[WRAPPED]);
        assert_eq!(
            w.finish(),
            "<Attributes><entry><key>A</key><value>1</value></entry></Attributes><Tags><member><Key>k</Key><Value>v</Value></member></Tags>"
        );
        for bad in [
            "Tags.1.Key=a",
            "Tags=x",
            "Attributes.entry.1.value=v",
            "Tags.member.1.Key=a&Tags.other=1",
            "Attributes.entry.1.key=a&Attributes.entry.2.key=a",
        ] {
            assert!(to_json(&pairs(bad), &[WRAPPED], &[]).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn json_shape_is_written_with_flattened_names() {
        let v = json!({"Attributes": {"A": "1"}, "AttributeNames": ["x", "y"], "Ok": true, "N": 3, "S": {"In": "<"}});
        let mut w = XmlWriter::default();
        write_xml(&mut w, v.as_object().unwrap(), &[NAMING]);
        assert_eq!(
            w.finish(),
            "<AttributeName>x</AttributeName><AttributeName>y</AttributeName><Attribute><Name>A</Name><Value>1</Value></Attribute><N>3</N><Ok>true</Ok><S><In>&lt;</In></S>"
        );
    }
}
