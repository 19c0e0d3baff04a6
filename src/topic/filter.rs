//! Amazon SNS-compatible subscription filter policies.
//!
//! A policy is parsed and validated once, when a subscription is created or
//! changed, into a small tree of conditions; matching then never touches the
//! policy JSON again. Validation follows the SNS limits (5 keys, 150 value
//! combinations, numbers within +/-1e9) so that a policy accepted here would
//! also be accepted by SNS, and it bounds the nesting depth so that hostile
//! input can never exhaust the stack.
//!
//! The module is deliberately standalone: it depends only on `serde_json` and
//! std, and reports problems through its own [`PolicyError`].

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Number, Value};

/// SNS rejects policies larger than 256 KB; keeping the same ceiling stops a
/// subscriber from parking megabytes of JSON in every subscription record.
const MAX_POLICY_BYTES: usize = 256 * 1024;

/// Nesting levels (objects and arrays) a policy may use. Every recursive
/// function below is bounded by this, which is what makes parsing and
/// matching stack-safe.
const MAX_DEPTH: usize = 32;

/// SNS limit on keys; counted per alternative of `$or` (see `leaf_keys`).
const MAX_KEYS: u64 = 5;

/// SNS limit on the product of the value-array lengths.
const MAX_COMBINATIONS: u64 = 150;

/// SNS accepts policy numbers in -1e9..=1e9 only.
const NUMBER_LIMIT: f64 = 1e9;

/// SNS compares numbers with five digits after the decimal point, so numbers
/// are compared as integers scaled by this factor.
const NUMERIC_SCALE: f64 = 1e5;

/// Operator names; an `$or` whose alternatives use one of them as a field name
/// is not an `$or` for SNS, but an ordinary attribute called `$or`.
const RESERVED_OPERATORS: &[&str] = &["prefix", "suffix", "equals-ignore-case", "anything-but", "numeric", "exists"];

/// Where a policy looks: message attributes (default) or the JSON body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FilterScope {
    /// Match against the message attributes (SNS `FilterPolicyScope`
    /// `MessageAttributes`); nested policies are not allowed.
    #[default]
    MessageAttributes,
    /// Match against the message body, which must be a JSON object (SNS
    /// `FilterPolicyScope` `MessageBody`); policies may nest to follow it.
    MessageBody,
}

/// A message attribute value as the matcher sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    /// An SNS `String` attribute; only string conditions can match it.
    String(String),
    /// An SNS `Number` attribute, kept as the decimal text that was sent;
    /// only numeric conditions can match it.
    Number(String),
    /// An SNS `Binary` attribute; SNS ignores its content, so only
    /// `{"exists": ...}` can match it.
    Binary(Vec<u8>),
    /// An SNS `String.Array` attribute: a JSON array of strings, numbers,
    /// booleans or nulls. A condition matches if it matches any element.
    StringArray(Vec<Value>),
}

/// Why a filter policy was rejected: a human-readable reason naming the
/// offending key where there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError(pub String);

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PolicyError {}

/// A parsed, validated filter policy.
#[derive(Debug, Clone)]
pub struct FilterPolicy {
    scope: FilterScope,
    source: String,
    root: Node,
}

impl FilterPolicy {
    /// Parses and validates `json` as a filter policy for `scope`.
    ///
    /// Fails with a [`PolicyError`] naming the key and the reason when the
    /// policy is malformed or exceeds an SNS limit. Never panics, whatever
    /// the input, including arbitrarily deep JSON.
    pub fn parse(json: &str, scope: FilterScope) -> Result<FilterPolicy, PolicyError> {
        if json.len() > MAX_POLICY_BYTES {
            return Err(PolicyError(format!("policy is {} bytes; the limit is {MAX_POLICY_BYTES} bytes", json.len())));
        }
        // serde_json stops at 128 levels of nesting with an error of its own,
        // so even a 10,000-deep document is refused here without deep
        // recursion; our own 32-level limit is enforced while compiling.
        let value: Value =
            serde_json::from_str(json).map_err(|e| PolicyError(format!("policy is not valid JSON: {e}")))?;
        let Value::Object(map) = &value else {
            return Err(PolicyError(format!("policy must be a JSON object, found {}", describe(&value))));
        };
        if map.is_empty() {
            return Err(PolicyError("policy is empty".to_string()));
        }
        let root = Compiler { scope }.node(map, "", 1)?;

        let keys = leaf_keys(&root);
        if keys > MAX_KEYS {
            return Err(PolicyError(format!("policy uses {keys} keys; the limit is {MAX_KEYS}")));
        }
        let combinations = combinations(&root);
        if combinations > MAX_COMBINATIONS {
            return Err(PolicyError(format!(
                "policy has {combinations} value combinations; the limit is {MAX_COMBINATIONS}"
            )));
        }
        Ok(FilterPolicy { scope, source: json.to_string(), root })
    }

    /// The scope the policy was parsed for.
    pub fn scope(&self) -> FilterScope {
        self.scope
    }

    /// The policy JSON exactly as it was given to [`FilterPolicy::parse`].
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether a message with these attributes passes the policy.
    ///
    /// Only meaningful for [`FilterScope::MessageAttributes`] policies; a
    /// body-scoped policy never matches here, so a caller that mixes the two
    /// up drops messages rather than delivering unfiltered ones.
    pub fn matches_attributes(&self, attrs: &BTreeMap<String, AttrValue>) -> bool {
        self.scope == FilterScope::MessageAttributes && match_attributes(&self.root, attrs)
    }

    /// Whether a message with this body passes the policy.
    ///
    /// Only meaningful for [`FilterScope::MessageBody`] policies; an
    /// attribute-scoped policy never matches here. The body must be a JSON
    /// object: any other body, or one that is not JSON at all, never matches.
    pub fn matches_body(&self, body: &[u8]) -> bool {
        if self.scope != FilterScope::MessageBody {
            return false;
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(value @ Value::Object(_)) => match_body(&self.root, &[&value]),
            _ => false,
        }
    }
}

/// One object level of a policy: all `keys` must match and, when there are
/// `alternatives` (from `$or`), at least one of them must match too.
#[derive(Debug, Clone)]
struct Node {
    keys: Vec<(String, Rule)>,
    alternatives: Vec<Node>,
}

#[derive(Debug, Clone)]
enum Rule {
    /// The value must satisfy at least one condition.
    Conditions(Vec<Condition>),
    /// Body scope only: the value is an object checked against a sub-policy.
    Nested(Node),
}

#[derive(Debug, Clone)]
enum Condition {
    Exact(Literal),
    Prefix(String),
    Suffix(String),
    /// Holds the operand already lower-cased, so matching lower-cases only
    /// the message side.
    EqualsIgnoreCase(String),
    AnythingBut(Exclusion),
    /// `=` is stored as an inclusive lower and upper bound on the same value.
    Numeric {
        lower: Option<Bound>,
        upper: Option<Bound>,
    },
    Exists(bool),
}

#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Str(String),
    /// A number scaled by `NUMERIC_SCALE`, see `scaled`.
    Num(i64),
    Bool(bool),
    Null,
}

#[derive(Debug, Clone, Copy)]
struct Bound {
    value: i64,
    inclusive: bool,
}

#[derive(Debug, Clone)]
enum Exclusion {
    Values(Vec<Literal>),
    Prefix(String),
    Suffix(String),
}

/// A single scalar from the message, borrowed so that matching never copies
/// message content.
#[derive(Debug, Clone, Copy)]
enum Leaf<'a> {
    Str(&'a str),
    Num(i64),
    Bool(bool),
    Null,
    /// Present but not comparable: binary data, a `Number` attribute whose
    /// text is not a number, or a nested array/object in a `String.Array`.
    Opaque,
}

struct Compiler {
    scope: FilterScope,
}

impl Compiler {
    fn node(&self, map: &Map<String, Value>, path: &str, depth: usize) -> Result<Node, PolicyError> {
        check_depth(path, depth)?;
        let mut node = Node { keys: Vec::with_capacity(map.len()), alternatives: Vec::new() };
        for (key, value) in map {
            if key == "$or" {
                if let Some(alternatives) = or_alternatives(value) {
                    for (i, alternative) in alternatives.iter().enumerate() {
                        let alt_path = join(path, &format!("$or[{i}]"));
                        if alternative.is_empty() {
                            return Err(PolicyError(format!(
                                "{}: an `$or` alternative must not be empty",
                                at(&alt_path)
                            )));
                        }
                        node.alternatives.push(self.node(alternative, &alt_path, depth + 2)?);
                    }
                    continue;
                }
            }
            let key_path = join(path, key);
            let rule = match value {
                Value::Array(items) => Rule::Conditions(self.conditions(items, &key_path, depth + 1)?),
                Value::Object(nested) if self.scope == FilterScope::MessageBody => {
                    if nested.is_empty() {
                        return Err(PolicyError(format!("{}: nested object must not be empty", at(&key_path))));
                    }
                    Rule::Nested(self.node(nested, &key_path, depth + 1)?)
                }
                Value::Object(_) => {
                    return Err(PolicyError(format!(
                        "{}: nested policies are only allowed in message body scope; \
                         attribute values must be an array of conditions",
                        at(&key_path)
                    )))
                }
                other => {
                    return Err(PolicyError(format!(
                        "{}: value must be an array of conditions, found {}",
                        at(&key_path),
                        describe(other)
                    )))
                }
            };
            node.keys.push((key.clone(), rule));
        }
        Ok(node)
    }

    fn conditions(&self, items: &[Value], path: &str, depth: usize) -> Result<Vec<Condition>, PolicyError> {
        check_depth(path, depth)?;
        if items.is_empty() {
            return Err(PolicyError(format!("{}: array of conditions must not be empty", at(path))));
        }
        items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(Condition::Exact(Literal::Str(s.clone()))),
                Value::Number(n) => Ok(Condition::Exact(Literal::Num(policy_number(n, path)?))),
                Value::Bool(b) => Ok(Condition::Exact(Literal::Bool(*b))),
                Value::Null => Ok(Condition::Exact(Literal::Null)),
                Value::Array(_) => {
                    Err(PolicyError(format!("{}: arrays cannot be nested inside an array of conditions", at(path))))
                }
                Value::Object(op) => self.operator(op, path, depth + 1),
            })
            .collect()
    }

    fn operator(&self, op: &Map<String, Value>, path: &str, depth: usize) -> Result<Condition, PolicyError> {
        check_depth(path, depth)?;
        let mut entries = op.iter();
        let (name, operand) = match (entries.next(), entries.next()) {
            (Some(entry), None) => entry,
            _ => {
                return Err(PolicyError(format!(
                    "{}: an operator object must hold exactly one operator, found {} keys",
                    at(path),
                    op.len()
                )))
            }
        };
        match name.as_str() {
            "prefix" => Ok(Condition::Prefix(string_operand(name, operand, path)?)),
            "suffix" => Ok(Condition::Suffix(string_operand(name, operand, path)?)),
            "equals-ignore-case" => {
                Ok(Condition::EqualsIgnoreCase(string_operand(name, operand, path)?.to_lowercase()))
            }
            "exists" => match operand {
                Value::Bool(b) => Ok(Condition::Exists(*b)),
                other => Err(PolicyError(format!(
                    "{}: operator `exists` needs true or false, found {}",
                    at(path),
                    describe(other)
                ))),
            },
            "anything-but" => Ok(Condition::AnythingBut(anything_but(operand, path, depth + 1)?)),
            "numeric" => numeric(operand, path, depth + 1),
            other => Err(PolicyError(format!("{}: unknown operator `{other}`", at(path)))),
        }
    }
}

/// Returns the alternatives when `value` is an `$or` that SNS would honour:
/// an array of at least two objects, none of which uses an operator name as a
/// field. Anything else makes `$or` an ordinary key.
fn or_alternatives(value: &Value) -> Option<Vec<&Map<String, Value>>> {
    let items = value.as_array()?;
    if items.len() < 2 {
        return None;
    }
    items
        .iter()
        .map(|item| {
            let map = item.as_object()?;
            if map.keys().any(|k| RESERVED_OPERATORS.contains(&k.as_str())) {
                None
            } else {
                Some(map)
            }
        })
        .collect()
}

fn anything_but(operand: &Value, path: &str, depth: usize) -> Result<Exclusion, PolicyError> {
    check_depth(path, depth)?;
    let literal = |item: &Value| match item {
        Value::String(s) => Ok(Literal::Str(s.clone())),
        Value::Number(n) => Ok(Literal::Num(policy_number(n, path)?)),
        other => Err(PolicyError(format!(
            "{}: operator `anything-but` accepts only strings and numbers in its list, found {}",
            at(path),
            describe(other)
        ))),
    };
    match operand {
        Value::String(_) | Value::Number(_) => Ok(Exclusion::Values(vec![literal(operand)?])),
        Value::Array(items) => {
            if items.is_empty() {
                return Err(PolicyError(format!("{}: operator `anything-but` needs a non-empty list", at(path))));
            }
            Ok(Exclusion::Values(items.iter().map(literal).collect::<Result<_, _>>()?))
        }
        Value::Object(map) => {
            let mut entries = map.iter();
            match (entries.next(), entries.next()) {
                (Some((name, inner)), None) if name == "prefix" => {
                    Ok(Exclusion::Prefix(string_operand("anything-but prefix", inner, path)?))
                }
                (Some((name, inner)), None) if name == "suffix" => {
                    Ok(Exclusion::Suffix(string_operand("anything-but suffix", inner, path)?))
                }
                _ => Err(PolicyError(format!(
                    "{}: operator `anything-but` accepts only a `prefix` or `suffix` object, found {}",
                    at(path),
                    describe(operand)
                ))),
            }
        }
        other => Err(PolicyError(format!(
            "{}: operator `anything-but` needs a string, a number, a list of them, \
             or a prefix/suffix object, found {}",
            at(path),
            describe(other)
        ))),
    }
}

fn numeric(operand: &Value, path: &str, depth: usize) -> Result<Condition, PolicyError> {
    check_depth(path, depth)?;
    let items = match operand {
        Value::Array(items) if items.len() == 2 || items.len() == 4 => items,
        other => {
            return Err(PolicyError(format!(
                "{}: operator `numeric` needs [op, number] or [op, number, op, number], found {}",
                at(path),
                describe(other)
            )))
        }
    };
    let mut pairs = Vec::with_capacity(2);
    for pair in items.chunks(2) {
        let (op_value, number_value) = match pair {
            [op, number] => (op, number),
            _ => return Err(PolicyError(format!("{}: operator `numeric` needs operator/number pairs", at(path)))),
        };
        let op = match op_value {
            Value::String(op) if matches!(op.as_str(), "=" | "<" | "<=" | ">" | ">=") => op.as_str(),
            other => {
                return Err(PolicyError(format!(
                    "{}: unknown numeric operator {}; expected one of =, <, <=, >, >=",
                    at(path),
                    describe(other)
                )))
            }
        };
        let number = match number_value {
            Value::Number(n) => policy_number(n, path)?,
            other => {
                return Err(PolicyError(format!(
                    "{}: numeric operator `{op}` needs a number, found {}",
                    at(path),
                    describe(other)
                )))
            }
        };
        pairs.push((op, number));
    }

    let bound = |value, inclusive| Some(Bound { value, inclusive });
    match pairs.as_slice() {
        [("=", v)] => Ok(Condition::Numeric { lower: bound(*v, true), upper: bound(*v, true) }),
        [(">", v)] => Ok(Condition::Numeric { lower: bound(*v, false), upper: None }),
        [(">=", v)] => Ok(Condition::Numeric { lower: bound(*v, true), upper: None }),
        [("<", v)] => Ok(Condition::Numeric { lower: None, upper: bound(*v, false) }),
        [("<=", v)] => Ok(Condition::Numeric { lower: None, upper: bound(*v, true) }),
        [(lo_op @ (">" | ">="), lo), (hi_op @ ("<" | "<="), hi)] => {
            if lo >= hi {
                return Err(PolicyError(format!(
                    "{}: numeric range lower bound {} must be below upper bound {}",
                    at(path),
                    unscaled(*lo),
                    unscaled(*hi)
                )));
            }
            Ok(Condition::Numeric { lower: bound(*lo, *lo_op == ">="), upper: bound(*hi, *hi_op == "<=") })
        }
        _ => Err(PolicyError(format!(
            "{}: numeric range must be a lower bound (`>` or `>=`) followed by an upper bound \
             (`<` or `<=`)",
            at(path)
        ))),
    }
}

fn string_operand(name: &str, operand: &Value, path: &str) -> Result<String, PolicyError> {
    match operand {
        Value::String(s) => Ok(s.clone()),
        other => Err(PolicyError(format!("{}: operator `{name}` needs a string, found {}", at(path), describe(other)))),
    }
}

fn policy_number(n: &Number, path: &str) -> Result<i64, PolicyError> {
    match n.as_f64() {
        Some(f) if f.abs() <= NUMBER_LIMIT => Ok(scaled(f)),
        _ => Err(PolicyError(format!("{}: number {n} is outside the supported range -1e9..=1e9", at(path)))),
    }
}

fn check_depth(path: &str, depth: usize) -> Result<(), PolicyError> {
    if depth > MAX_DEPTH {
        Err(PolicyError(format!("{}: policy is nested deeper than {MAX_DEPTH} levels", at(path))))
    } else {
        Ok(())
    }
}

/// Scales to five decimal places so that equality and ordering follow SNS's
/// stated precision. The `as` cast saturates, so values far outside the
/// policy range still order correctly against every policy number.
fn scaled(f: f64) -> i64 {
    (f * NUMERIC_SCALE).round() as i64
}

fn unscaled(v: i64) -> f64 {
    v as f64 / NUMERIC_SCALE
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn at(path: &str) -> String {
    if path.is_empty() {
        "policy".to_string()
    } else {
        format!("key `{path}`")
    }
}

/// A short rendering of a policy fragment for error messages; truncated so a
/// large operand cannot blow up the message.
fn describe(value: &Value) -> String {
    const LIMIT: usize = 60;
    let text = value.to_string();
    if text.len() <= LIMIT {
        return text;
    }
    let mut end = LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

/// Keys that carry conditions, counted along the largest `$or` alternative:
/// each alternative is effectively its own policy, so the SNS limit applies
/// to each expansion rather than to the sum of all alternatives. Nested
/// objects do not count themselves, only the keys under them.
fn leaf_keys(node: &Node) -> u64 {
    let own: u64 = node
        .keys
        .iter()
        .map(|(_, rule)| match rule {
            Rule::Conditions(_) => 1,
            Rule::Nested(nested) => leaf_keys(nested),
        })
        .fold(0, u64::saturating_add);
    let widest = node.alternatives.iter().map(leaf_keys).max().unwrap_or(0);
    own.saturating_add(widest)
}

/// The product of the value-array lengths, with each `$or` contributing the
/// sum of its alternatives (the policy expands into one product per
/// alternative).
fn combinations(node: &Node) -> u64 {
    let own = node
        .keys
        .iter()
        .map(|(_, rule)| match rule {
            Rule::Conditions(conditions) => conditions.len() as u64,
            Rule::Nested(nested) => combinations(nested),
        })
        .fold(1, u64::saturating_mul);
    if node.alternatives.is_empty() {
        own
    } else {
        let alternatives = node.alternatives.iter().map(combinations).fold(0, u64::saturating_add);
        own.saturating_mul(alternatives)
    }
}

fn match_attributes(node: &Node, attrs: &BTreeMap<String, AttrValue>) -> bool {
    let keys_match = node.keys.iter().all(|(key, rule)| match rule {
        Rule::Conditions(conditions) => {
            let value = attrs.get(key);
            let leaves = value.map(attribute_leaves).unwrap_or_default();
            any_condition(conditions, value.is_some(), &leaves)
        }
        // The compiler refuses nested objects in attribute scope.
        Rule::Nested(_) => false,
    });
    keys_match && (node.alternatives.is_empty() || node.alternatives.iter().any(|alt| match_attributes(alt, attrs)))
}

fn attribute_leaves(value: &AttrValue) -> Vec<Leaf<'_>> {
    match value {
        AttrValue::String(s) => vec![Leaf::Str(s)],
        AttrValue::Number(text) => vec![number_text_leaf(text)],
        AttrValue::Binary(_) => vec![Leaf::Opaque],
        AttrValue::StringArray(items) => items
            .iter()
            .map(|item| match item {
                Value::Array(_) | Value::Object(_) => Leaf::Opaque,
                scalar => scalar_leaf(scalar),
            })
            .collect(),
    }
}

fn number_text_leaf(text: &str) -> Leaf<'_> {
    match text.trim().parse::<f64>() {
        // Rust also parses "NaN" and "inf"; neither is a number SNS accepts.
        Ok(f) if f.is_finite() => Leaf::Num(scaled(f)),
        _ => Leaf::Opaque,
    }
}

fn scalar_leaf(value: &Value) -> Leaf<'_> {
    match value {
        Value::String(s) => Leaf::Str(s),
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.is_finite() => Leaf::Num(scaled(f)),
            _ => Leaf::Opaque,
        },
        Value::Bool(b) => Leaf::Bool(*b),
        Value::Null => Leaf::Null,
        Value::Array(_) | Value::Object(_) => Leaf::Opaque,
    }
}

/// `candidates` are the objects reached so far; arrays along the path have
/// been flattened, so a key matches when any element along the way does.
fn match_body(node: &Node, candidates: &[&Value]) -> bool {
    let keys_match = node.keys.iter().all(|(key, rule)| {
        let children: Vec<&Value> =
            candidates.iter().filter_map(|candidate| candidate.as_object().and_then(|o| o.get(key))).collect();
        let flat = flatten(children);
        match rule {
            Rule::Nested(nested) => {
                let objects: Vec<&Value> = flat.into_iter().filter(|v| v.is_object()).collect();
                match_body(nested, &objects)
            }
            Rule::Conditions(conditions) => {
                // Objects are intermediate nodes, not values: like SNS, a key
                // holding an object neither matches values nor "exists".
                let leaves: Vec<Leaf<'_>> = flat.into_iter().filter(|v| !v.is_object()).map(scalar_leaf).collect();
                any_condition(conditions, !leaves.is_empty(), &leaves)
            }
        }
    });
    keys_match && (node.alternatives.is_empty() || node.alternatives.iter().any(|alt| match_body(alt, candidates)))
}

/// Expands arrays (and arrays of arrays) into their elements with an explicit
/// stack, so a deeply nested body array costs heap, not stack.
fn flatten(values: Vec<&Value>) -> Vec<&Value> {
    let mut out = Vec::with_capacity(values.len());
    let mut stack: Vec<&Value> = values.into_iter().rev().collect();
    while let Some(value) = stack.pop() {
        match value {
            Value::Array(items) => stack.extend(items.iter().rev()),
            other => out.push(other),
        }
    }
    out
}

fn any_condition(conditions: &[Condition], present: bool, leaves: &[Leaf<'_>]) -> bool {
    conditions.iter().any(|condition| match condition {
        Condition::Exists(wanted) => *wanted == present,
        other => leaves.iter().any(|leaf| leaf_matches(other, *leaf)),
    })
}

fn leaf_matches(condition: &Condition, leaf: Leaf<'_>) -> bool {
    match (condition, leaf) {
        (Condition::Exact(Literal::Str(want)), Leaf::Str(got)) => want == got,
        (Condition::Exact(Literal::Num(want)), Leaf::Num(got)) => *want == got,
        (Condition::Exact(Literal::Bool(want)), Leaf::Bool(got)) => *want == got,
        (Condition::Exact(Literal::Null), Leaf::Null) => true,
        (Condition::Prefix(prefix), Leaf::Str(got)) => got.starts_with(prefix.as_str()),
        (Condition::Suffix(suffix), Leaf::Str(got)) => got.ends_with(suffix.as_str()),
        (Condition::EqualsIgnoreCase(want), Leaf::Str(got)) => got.to_lowercase() == *want,
        (Condition::AnythingBut(exclusion), leaf) => excluded_value_passes(exclusion, leaf),
        (Condition::Numeric { lower, upper }, Leaf::Num(got)) => {
            let above = match lower {
                None => true,
                Some(b) if b.inclusive => got >= b.value,
                Some(b) => got > b.value,
            };
            let below = match upper {
                None => true,
                Some(b) if b.inclusive => got <= b.value,
                Some(b) => got < b.value,
            };
            above && below
        }
        _ => false,
    }
}

/// anything-but only ever passes a string or number: SNS gives it no meaning
/// for booleans, nulls or binary data, so those never satisfy it.
fn excluded_value_passes(exclusion: &Exclusion, leaf: Leaf<'_>) -> bool {
    match (exclusion, leaf) {
        (Exclusion::Values(values), Leaf::Str(got)) => !values.iter().any(|v| matches!(v, Literal::Str(s) if s == got)),
        (Exclusion::Values(values), Leaf::Num(got)) => {
            !values.iter().any(|v| matches!(v, Literal::Num(n) if *n == got))
        }
        (Exclusion::Prefix(prefix), Leaf::Str(got)) => !got.starts_with(prefix.as_str()),
        (Exclusion::Suffix(suffix), Leaf::Str(got)) => !got.ends_with(suffix.as_str()),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type AttrCase = (&'static str, Vec<(&'static str, AttrValue)>, bool);

    fn s(v: &str) -> AttrValue {
        AttrValue::String(v.to_string())
    }

    fn n(v: &str) -> AttrValue {
        AttrValue::Number(v.to_string())
    }

    fn arr(json: &str) -> AttrValue {
        match serde_json::from_str(json).unwrap() {
            Value::Array(items) => AttrValue::StringArray(items),
            other => panic!("not an array: {other}"),
        }
    }

    fn attr_policy(json: &str) -> FilterPolicy {
        FilterPolicy::parse(json, FilterScope::MessageAttributes)
            .unwrap_or_else(|e| panic!("policy {json} should parse: {e}"))
    }

    fn body_policy(json: &str) -> FilterPolicy {
        FilterPolicy::parse(json, FilterScope::MessageBody)
            .unwrap_or_else(|e| panic!("policy {json} should parse: {e}"))
    }

    fn check_attrs(policy: &str, cases: Vec<AttrCase>) {
        let parsed = attr_policy(policy);
        for (label, pairs, expected) in cases {
            let attrs: BTreeMap<String, AttrValue> = pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            assert_eq!(
                parsed.matches_attributes(&attrs),
                expected,
                "policy {policy}, case `{label}`, attributes {attrs:?}"
            );
        }
    }

    fn check_body(policy: &str, cases: &[(&str, bool)]) {
        let parsed = body_policy(policy);
        for (body, expected) in cases {
            assert_eq!(parsed.matches_body(body.as_bytes()), *expected, "policy {policy}, body {body}");
        }
    }

    fn check_rejected(scope: FilterScope, cases: &[(&str, &str)]) {
        for (policy, reason) in cases {
            match FilterPolicy::parse(policy, scope) {
                Ok(_) => panic!("policy {policy} should be rejected ({reason})"),
                Err(e) => {
                    assert!(e.to_string().contains(reason), "policy {policy}: error `{e}` should mention `{reason}`")
                }
            }
        }
    }

    #[test]
    fn exact_strings_or_within_a_key_and_are_case_sensitive() {
        check_attrs(
            r#"{"sport": ["rugby", "football"]}"#,
            vec![
                ("first value", vec![("sport", s("rugby"))], true),
                ("second value", vec![("sport", s("football"))], true),
                ("other value", vec![("sport", s("tennis"))], false),
                ("different case", vec![("sport", s("Rugby"))], false),
                ("missing attribute", vec![], false),
                ("other attribute", vec![("team", s("rugby"))], false),
            ],
        );
    }

    #[test]
    fn keys_are_anded_together() {
        check_attrs(
            r#"{"sport": ["rugby"], "price": [{"numeric": [">", 100]}]}"#,
            vec![
                ("both match", vec![("sport", s("rugby")), ("price", n("150"))], true),
                ("price fails", vec![("sport", s("rugby")), ("price", n("50"))], false),
                ("price missing", vec![("sport", s("rugby"))], false),
                ("sport fails", vec![("sport", s("golf")), ("price", n("150"))], false),
            ],
        );
    }

    #[test]
    fn exact_numbers_compare_numerically_with_five_decimal_places() {
        check_attrs(
            r#"{"qty": [5, 0.1]}"#,
            vec![
                ("integer text", vec![("qty", n("5"))], true),
                ("decimal text", vec![("qty", n("5.0"))], true),
                ("exponent text", vec![("qty", n("5e0"))], true),
                ("beyond precision", vec![("qty", n("5.000001"))], true),
                ("within precision", vec![("qty", n("5.00001"))], false),
                ("fraction", vec![("qty", n("0.10"))], true),
                ("other number", vec![("qty", n("6"))], false),
                ("not a number", vec![("qty", n("five"))], false),
                ("NaN text", vec![("qty", n("NaN"))], false),
            ],
        );
    }

    #[test]
    fn numeric_policy_does_not_match_string_attribute() {
        check_attrs(r#"{"qty": [5]}"#, vec![("string five", vec![("qty", s("5"))], false)]);
        check_attrs(
            r#"{"qty": [{"numeric": [">", 0]}]}"#,
            vec![("string five", vec![("qty", s("5"))], false), ("number five", vec![("qty", n("5"))], true)],
        );
    }

    #[test]
    fn string_policy_does_not_match_number_attribute() {
        check_attrs(
            r#"{"qty": ["5", {"prefix": "5"}]}"#,
            vec![("number five", vec![("qty", n("5"))], false), ("string five", vec![("qty", s("5"))], true)],
        );
    }

    #[test]
    fn prefix_and_suffix_match_string_edges() {
        check_attrs(
            r#"{"region": [{"prefix": "us-"}], "file": [{"suffix": ".png"}]}"#,
            vec![
                ("both", vec![("region", s("us-west-2")), ("file", s("cat.png"))], true),
                ("bad prefix", vec![("region", s("eu-west-1")), ("file", s("cat.png"))], false),
                ("bad suffix", vec![("region", s("us-east-1")), ("file", s("cat.jpg"))], false),
                ("prefix is case-sensitive", vec![("region", s("US-east-1")), ("file", s("a.png"))], false),
                ("prefix on number", vec![("region", n("1")), ("file", s("a.png"))], false),
            ],
        );
    }

    #[test]
    fn equals_ignore_case_matches_regardless_of_case() {
        check_attrs(
            r#"{"color": [{"equals-ignore-case": "Red"}]}"#,
            vec![
                ("lower", vec![("color", s("red"))], true),
                ("upper", vec![("color", s("RED"))], true),
                ("other", vec![("color", s("reddish"))], false),
                ("missing", vec![], false),
            ],
        );
    }

    #[test]
    fn anything_but_matches_present_values_not_listed() {
        check_attrs(
            r#"{"sport": [{"anything-but": ["rugby", "tennis"]}]}"#,
            vec![
                ("unlisted", vec![("sport", s("golf"))], true),
                ("listed", vec![("sport", s("rugby"))], false),
                ("second listed", vec![("sport", s("tennis"))], false),
                ("missing attribute", vec![], false),
                ("binary attribute", vec![("sport", AttrValue::Binary(vec![1]))], false),
            ],
        );
        check_attrs(
            r#"{"sport": [{"anything-but": "rugby"}]}"#,
            vec![
                ("single unlisted", vec![("sport", s("golf"))], true),
                ("single listed", vec![("sport", s("rugby"))], false),
            ],
        );
        check_attrs(
            r#"{"price": [{"anything-but": [100, 200]}]}"#,
            vec![
                ("unlisted number", vec![("price", n("150"))], true),
                ("listed number", vec![("price", n("100.0"))], false),
            ],
        );
    }

    #[test]
    fn anything_but_prefix_and_suffix_exclude_matching_strings() {
        check_attrs(
            r#"{"event": [{"anything-but": {"prefix": "order-"}}]}"#,
            vec![
                ("other prefix", vec![("event", s("refund-issued"))], true),
                ("excluded prefix", vec![("event", s("order-placed"))], false),
                ("missing", vec![], false),
                ("number", vec![("event", n("1"))], false),
            ],
        );
        check_attrs(
            r#"{"file": [{"anything-but": {"suffix": ".tmp"}}]}"#,
            vec![
                ("other suffix", vec![("file", s("a.txt"))], true),
                ("excluded suffix", vec![("file", s("a.tmp"))], false),
            ],
        );
    }

    #[test]
    fn numeric_comparisons_respect_their_boundaries() {
        let table: &[(&str, &str, bool)] = &[
            (r#"["=", 10]"#, "10", true),
            (r#"["=", 10]"#, "10.00001", false),
            (r#"[">", 10]"#, "10", false),
            (r#"[">", 10]"#, "10.00001", true),
            (r#"[">=", 10]"#, "10", true),
            (r#"[">=", 10]"#, "9.99999", false),
            (r#"["<", 10]"#, "10", false),
            (r#"["<", 10]"#, "-5", true),
            (r#"["<=", 10]"#, "10", true),
            (r#"["<=", 10]"#, "10.1", false),
            (r#"[">", -1e9]"#, "1e12", true),
        ];
        for (ops, value, expected) in table {
            let policy = format!(r#"{{"v": [{{"numeric": {ops}}}]}}"#);
            check_attrs(&policy, vec![("numeric", vec![("v", n(value))], *expected)]);
        }
    }

    #[test]
    fn numeric_ranges_include_or_exclude_their_ends() {
        check_attrs(
            r#"{"price": [{"numeric": [">", 0, "<=", 100]}]}"#,
            vec![
                ("lower end excluded", vec![("price", n("0"))], false),
                ("just above lower", vec![("price", n("0.00001"))], true),
                ("upper end included", vec![("price", n("100"))], true),
                ("above upper", vec![("price", n("100.00001"))], false),
                ("missing", vec![], false),
            ],
        );
        check_attrs(
            r#"{"price": [{"numeric": [">=", 0, "<", 100]}]}"#,
            vec![
                ("lower end included", vec![("price", n("0"))], true),
                ("upper end excluded", vec![("price", n("100"))], false),
            ],
        );
    }

    #[test]
    fn numeric_values_in_one_array_are_ored() {
        check_attrs(
            r#"{"price": [{"numeric": ["<", 10]}, {"numeric": [">", 100]}, 50]}"#,
            vec![
                ("low", vec![("price", n("5"))], true),
                ("high", vec![("price", n("500"))], true),
                ("exact", vec![("price", n("50"))], true),
                ("middle", vec![("price", n("60"))], false),
            ],
        );
    }

    #[test]
    fn exists_checks_presence_of_the_attribute() {
        check_attrs(
            r#"{"store": [{"exists": true}]}"#,
            vec![
                ("string", vec![("store", s("x"))], true),
                ("empty string", vec![("store", s(""))], true),
                ("binary", vec![("store", AttrValue::Binary(vec![0, 1]))], true),
                ("missing", vec![], false),
            ],
        );
        check_attrs(
            r#"{"store": [{"exists": false}]}"#,
            vec![("missing", vec![("other", s("x"))], true), ("present", vec![("store", s("x"))], false)],
        );
    }

    #[test]
    fn missing_attribute_matches_only_exists_false() {
        check_attrs(
            r#"{"store": ["example", {"exists": false}]}"#,
            vec![
                ("absent", vec![], true),
                ("matching value", vec![("store", s("example"))], true),
                ("other value", vec![("store", s("other"))], false),
            ],
        );
    }

    #[test]
    fn binary_attribute_matches_nothing_but_exists() {
        let binary = || AttrValue::Binary(b"rugby".to_vec());
        check_attrs(
            r#"{"b": ["rugby", {"prefix": "r"}, {"equals-ignore-case": "rugby"}, {"anything-but": "x"}]}"#,
            vec![("binary", vec![("b", binary())], false)],
        );
    }

    #[test]
    fn string_array_attribute_matches_if_any_element_matches() {
        check_attrs(
            r#"{"interests": ["rugby", "soccer"]}"#,
            vec![
                ("one element matches", vec![("interests", arr(r#"["hockey", "soccer"]"#))], true),
                ("no element matches", vec![("interests", arr(r#"["hockey", "golf"]"#))], false),
                ("empty array", vec![("interests", arr("[]"))], false),
            ],
        );
        check_attrs(
            r#"{"scores": [{"numeric": [">", 90]}], "flags": [true]}"#,
            vec![
                ("numbers and bools", vec![("scores", arr("[10, 95]")), ("flags", arr("[false, true]"))], true),
                ("string number element", vec![("scores", arr(r#"["95"]"#)), ("flags", arr("[true]"))], false),
            ],
        );
        check_attrs(
            r#"{"interests": [{"anything-but": "rugby"}]}"#,
            vec![
                ("another element differs", vec![("interests", arr(r#"["rugby", "golf"]"#))], true),
                ("only excluded", vec![("interests", arr(r#"["rugby"]"#))], false),
            ],
        );
    }

    #[test]
    fn or_operator_at_top_level_combines_with_sibling_keys() {
        check_attrs(
            r#"{"source": ["cw"], "$or": [{"metric": ["cpu"]}, {"namespace": ["ec2"]}]}"#,
            vec![
                ("first alternative", vec![("source", s("cw")), ("metric", s("cpu"))], true),
                ("second alternative", vec![("source", s("cw")), ("namespace", s("ec2"))], true),
                ("no alternative", vec![("source", s("cw")), ("metric", s("mem"))], false),
                ("sibling fails", vec![("source", s("x")), ("metric", s("cpu"))], false),
            ],
        );
    }

    #[test]
    fn or_operator_nests_inside_alternatives() {
        check_attrs(
            r#"{"$or": [{"a": ["1"]}, {"b": ["2"], "$or": [{"c": ["3"]}, {"d": ["4"]}]}]}"#,
            vec![
                ("outer first", vec![("a", s("1"))], true),
                ("inner first", vec![("b", s("2")), ("c", s("3"))], true),
                ("inner second", vec![("b", s("2")), ("d", s("4"))], true),
                ("inner none", vec![("b", s("2"))], false),
                ("inner without sibling", vec![("c", s("3"))], false),
            ],
        );
    }

    #[test]
    fn or_key_without_two_objects_is_an_ordinary_attribute() {
        check_attrs(
            r#"{"$or": ["x"]}"#,
            vec![("attribute named $or", vec![("$or", s("x"))], true), ("other attribute", vec![("x", s("x"))], false)],
        );
    }

    #[test]
    fn body_keys_follow_nested_objects() {
        check_body(
            r#"{"order": {"customer": {"tier": ["gold"]}, "total": [{"numeric": [">=", 100]}]}}"#,
            &[
                (r#"{"order": {"customer": {"tier": "gold"}, "total": 100}}"#, true),
                (r#"{"order": {"customer": {"tier": "gold"}, "total": 99.5}}"#, false),
                (r#"{"order": {"customer": {"tier": "silver"}, "total": 500}}"#, false),
                (r#"{"order": {"customer": "gold", "total": 500}}"#, false),
                (r#"{"tier": "gold", "total": 500}"#, false),
            ],
        );
    }

    #[test]
    fn body_numbers_compare_numerically_but_not_with_strings() {
        check_body(
            r#"{"qty": [5]}"#,
            &[(r#"{"qty": 5.0}"#, true), (r#"{"qty": 5}"#, true), (r#"{"qty": "5"}"#, false)],
        );
    }

    #[test]
    fn body_arrays_match_if_any_element_matches() {
        check_body(
            r#"{"interests": ["rugby"], "items": {"sku": [{"prefix": "A-"}]}}"#,
            &[
                (r#"{"interests": ["golf", "rugby"], "items": [{"sku": "B-1"}, {"sku": "A-2"}]}"#, true),
                (r#"{"interests": ["golf"], "items": [{"sku": "A-2"}]}"#, false),
                (r#"{"interests": [["rugby"]], "items": {"sku": ["A-9"]}}"#, true),
                (r#"{"interests": "rugby", "items": []}"#, false),
            ],
        );
    }

    #[test]
    fn body_null_and_booleans_match_exactly() {
        check_body(
            r#"{"deleted": [false], "parent": [null]}"#,
            &[
                (r#"{"deleted": false, "parent": null}"#, true),
                (r#"{"deleted": true, "parent": null}"#, false),
                (r#"{"deleted": false}"#, false),
                (r#"{"deleted": "false", "parent": null}"#, false),
            ],
        );
    }

    #[test]
    fn body_exists_applies_to_leaf_values() {
        check_body(
            r#"{"meta": {"trace": [{"exists": false}]}, "id": [{"exists": true}]}"#,
            &[
                (r#"{"id": 1}"#, true),
                (r#"{"id": null, "meta": {}}"#, true),
                (r#"{"id": 1, "meta": {"trace": "x"}}"#, false),
                (r#"{"id": {"nested": 1}}"#, false),
                (r#"{"meta": {}}"#, false),
            ],
        );
    }

    #[test]
    fn body_or_works_at_top_level_and_nested() {
        check_body(
            r#"{"kind": ["order"], "$or": [{"total": [{"numeric": [">", 100]}]}, {"customer": {"$or": [{"vip": [true]}, {"tier": ["gold"]}]}}]}"#,
            &[
                (r#"{"kind": "order", "total": 150}"#, true),
                (r#"{"kind": "order", "total": 10, "customer": {"vip": true}}"#, true),
                (r#"{"kind": "order", "customer": {"tier": "gold"}}"#, true),
                (r#"{"kind": "order", "total": 10, "customer": {"tier": "bronze"}}"#, false),
                (r#"{"kind": "refund", "total": 150}"#, false),
            ],
        );
    }

    #[test]
    fn body_that_is_not_a_json_object_never_matches() {
        check_body(
            r#"{"a": [{"exists": false}]}"#,
            &[("{}", true), ("not json", false), ("[1, 2]", false), ("\"text\"", false), ("", false)],
        );
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        assert!(!body_policy(r#"{"a": [{"exists": false}]}"#).matches_body(deep.as_bytes()));
        assert!(!body_policy(r#"{"a": ["x"]}"#).matches_body(&[0xff, 0xfe]));
    }

    #[test]
    fn policy_never_matches_in_the_other_scope() {
        let attr = attr_policy(r#"{"a": [{"exists": false}]}"#);
        assert!(!attr.matches_body(b"{}"));
        assert!(attr.matches_attributes(&BTreeMap::new()));
        let body = body_policy(r#"{"a": [{"exists": false}]}"#);
        assert!(!body.matches_attributes(&BTreeMap::new()));
        assert!(body.matches_body(b"{}"));
    }

    #[test]
    fn parse_keeps_source_and_scope() {
        let text = r#"{ "a": ["x"] }"#;
        let policy = body_policy(text);
        assert_eq!(policy.source(), text);
        assert_eq!(policy.scope(), FilterScope::MessageBody);
        assert_eq!(attr_policy(text).scope(), FilterScope::MessageAttributes);
        assert_eq!(FilterScope::default(), FilterScope::MessageAttributes);
    }

    #[test]
    fn malformed_policies_are_rejected_with_the_reason() {
        use super::FilterScope::MessageAttributes as Attrs;
        check_rejected(
            Attrs,
            &[
                ("not json", "not valid JSON"),
                ("[1]", "must be a JSON object"),
                ("{}", "policy is empty"),
                (r#"{"a": "x"}"#, "key `a`: value must be an array"),
                (r#"{"a": 5}"#, "value must be an array"),
                (r#"{"a": []}"#, "key `a`: array of conditions must not be empty"),
                (r#"{"a": {"b": ["x"]}}"#, "only allowed in message body scope"),
                (r#"{"a": [["x"]]}"#, "cannot be nested"),
                (r#"{"a": [{"regex": "x"}]}"#, "unknown operator `regex`"),
                (r#"{"a": [{}]}"#, "exactly one operator"),
                (r#"{"a": [{"prefix": "x", "suffix": "y"}]}"#, "exactly one operator"),
                (r#"{"a": [{"prefix": 1}]}"#, "operator `prefix` needs a string"),
                (r#"{"a": [{"suffix": null}]}"#, "operator `suffix` needs a string"),
                (r#"{"a": [{"equals-ignore-case": ["x"]}]}"#, "operator `equals-ignore-case` needs a string"),
                (r#"{"a": [{"exists": "yes"}]}"#, "operator `exists` needs true or false"),
                (r#"{"a": [{"anything-but": []}]}"#, "non-empty list"),
                (r#"{"a": [{"anything-but": [true]}]}"#, "only strings and numbers"),
                (r#"{"a": [{"anything-but": {"equals-ignore-case": "x"}}]}"#, "`prefix` or `suffix` object"),
                (r#"{"a": [{"anything-but": {"prefix": 5}}]}"#, "anything-but prefix` needs a string"),
                (r#"{"a": [{"anything-but": null}]}"#, "operator `anything-but` needs"),
                (
                    r#"{"price": [{"numeric": [">", "abc"]}]}"#,
                    r#"key `price`: numeric operator `>` needs a number, found "abc""#,
                ),
                (r#"{"a": [{"numeric": ["!=", 1]}]}"#, "unknown numeric operator"),
                (r#"{"a": [{"numeric": [">"]}]}"#, "needs [op, number]"),
                (r#"{"a": [{"numeric": 5}]}"#, "needs [op, number]"),
                (r#"{"a": [{"numeric": ["<", 5, ">", 1]}]}"#, "lower bound (`>` or `>=`) followed by an upper bound"),
                (r#"{"a": [{"numeric": ["=", 5, "<", 9]}]}"#, "lower bound (`>` or `>=`)"),
                (r#"{"a": [{"numeric": [">", 10, "<", 5]}]}"#, "lower bound 10 must be below upper bound 5"),
                (r#"{"a": [{"numeric": [">=", 5, "<=", 5]}]}"#, "must be below"),
                (r#"{"a": [1000000001]}"#, "outside the supported range"),
                (r#"{"a": [{"numeric": [">", -2e9]}]}"#, "outside the supported range"),
                (r#"{"a": [{"anything-but": [1e10]}]}"#, "outside the supported range"),
                (r#"{"$or": [{"a": ["x"]}, {}]}"#, "`$or` alternative must not be empty"),
                (r#"{"$or": [{"numeric": 123}, {"prefix": "abc"}]}"#, "key `$or`"),
            ],
        );
        check_rejected(
            FilterScope::MessageBody,
            &[
                (r#"{"a": {}}"#, "key `a`: nested object must not be empty"),
                (r#"{"a": {"b": "x"}}"#, "key `a.b`: value must be an array"),
                (r#"{"a": {"b": [{"numeric": ["<", "x"]}]}}"#, "key `a.b`: numeric operator `<` needs a number"),
            ],
        );
    }

    #[test]
    fn policies_over_the_sns_limits_are_rejected() {
        use super::FilterScope::{MessageAttributes as Attrs, MessageBody as Body};
        let six_keys = r#"{"a":["1"],"b":["1"],"c":["1"],"d":["1"],"e":["1"],"f":["1"]}"#;
        check_rejected(Attrs, &[(six_keys, "policy uses 6 keys; the limit is 5")]);
        let five_keys = r#"{"a":["1"],"b":["1"],"c":["1"],"d":["1"],"e":["1"]}"#;
        assert!(FilterPolicy::parse(five_keys, Attrs).is_ok());

        let six_leaves = r#"{"x":{"a":["1"],"b":["1"],"c":{"d":["1"],"e":["1"],"f":["1"]}},"g":["1"]}"#;
        check_rejected(Body, &[(six_leaves, "policy uses 6 keys")]);
        let five_leaves = r#"{"x":{"a":["1"],"b":["1"],"c":{"d":["1"],"e":["1"],"f":["1"]}}}"#;
        assert!(FilterPolicy::parse(five_leaves, Body).is_ok());

        // Each $or alternative is counted as its own expansion: 3 + 2 keys.
        let or_keys = r#"{"a":["1"],"b":["1"],"c":["1"],"$or":[{"d":["1"],"e":["1"]},{"f":["1"],"g":["1"]}]}"#;
        assert!(FilterPolicy::parse(or_keys, Attrs).is_ok());
        let or_too_many = r#"{"a":["1"],"b":["1"],"c":["1"],"$or":[{"d":["1"]},{"f":["1"],"g":["1"],"h":["1"]}]}"#;
        check_rejected(Attrs, &[(or_too_many, "policy uses 6 keys")]);

        // 5 * 5 * 6 = 150 is allowed, 5 * 5 * 7 = 175 is not.
        let values = |k: usize| {
            let items: Vec<String> = (0..k).map(|i| format!("\"v{i}\"")).collect();
            format!("[{}]", items.join(","))
        };
        let at_limit = format!(r#"{{"a":{},"b":{},"c":{}}}"#, values(5), values(5), values(6));
        assert!(FilterPolicy::parse(&at_limit, Attrs).is_ok());
        let over = format!(r#"{{"a":{},"b":{},"c":{}}}"#, values(5), values(5), values(7));
        check_rejected(Attrs, &[(over.as_str(), "175 value combinations; the limit is 150")]);

        // $or alternatives add up: 10 * (10 + 6) = 160.
        let or_over = format!(r#"{{"a":{},"$or":[{{"b":{}}},{{"c":{}}}]}}"#, values(10), values(10), values(6));
        check_rejected(Attrs, &[(or_over.as_str(), "160 value combinations")]);

        let huge = format!(r#"{{"a":["{}"]}}"#, "x".repeat(MAX_POLICY_BYTES));
        check_rejected(Attrs, &[(huge.as_str(), "the limit is 262144 bytes")]);
    }

    #[test]
    fn policy_nested_deeper_than_32_levels_is_rejected() {
        let nested = |levels: usize| {
            let mut text = String::new();
            for _ in 0..levels {
                text.push_str(r#"{"k":"#);
            }
            text.push_str(r#"["x"]"#);
            text.push_str(&"}".repeat(levels));
            text
        };
        // 31 objects plus the value array is exactly 32 levels.
        assert!(FilterPolicy::parse(&nested(31), FilterScope::MessageBody).is_ok());
        check_rejected(
            FilterScope::MessageBody,
            &[
                (nested(32).as_str(), "nested deeper than 32 levels"),
                (nested(100).as_str(), "nested deeper than 32 levels"),
            ],
        );
        let deep_match = body_policy(&nested(31));
        let body = nested(31).replace(r#"["x"]"#, r#""x""#);
        assert!(deep_match.matches_body(body.as_bytes()));
    }

    #[test]
    fn ten_thousand_level_policy_returns_error_without_overflow() {
        let objects = r#"{"a":"#.repeat(10_000) + "[1]" + &"}".repeat(10_000);
        let arrays = "[".repeat(10_000) + &"]".repeat(10_000);
        for scope in [FilterScope::MessageAttributes, FilterScope::MessageBody] {
            assert!(FilterPolicy::parse(&objects, scope).is_err());
            assert!(FilterPolicy::parse(&arrays, scope).is_err());
        }
        let unclosed = r#"{"a":"#.repeat(10_000);
        assert!(FilterPolicy::parse(&unclosed, FilterScope::MessageBody).is_err());
    }

    #[test]
    fn policy_error_displays_its_reason() {
        let err = PolicyError("key `a`: boom".to_string());
        assert_eq!(err.to_string(), "key `a`: boom");
        let boxed: Box<dyn std::error::Error> = Box::new(err);
        assert_eq!(boxed.to_string(), "key `a`: boom");
    }
}
