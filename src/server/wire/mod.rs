//! The wire protocols every AWS service of the server speaks, independent of the service:
//! AWS JSON (`X-Amz-Target`), the query protocol (form in, XML out), and the one
//! protocol-neutral shape a request is read into, [`Input`], a JSON object as the JSON protocol
//! would carry it. The query protocol's flattened names are translated to it by a per-service
//! naming table ([`query::Member`]), and answers are translated back the same way.

pub mod answer;
pub mod cbor;
pub mod eventstream;
pub mod query;
pub mod xml;

/// How completely a served operation behaves as the real service's (`docs/compatibility.md`
/// says how it differs); every service's operation table carries one per operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// As the real service.
    Full,
    /// Served, with differences the compatibility document lists.
    Partial,
}

/// Test support: `docs/compatibility.md` held to the services' operation tables.
#[cfg(test)]
pub(crate) mod compatibility_document {
    use std::collections::BTreeMap;

    use super::Support;

    /// The text of `docs/compatibility.md`.
    pub fn text() -> String {
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/compatibility.md"))
            .expect("docs/compatibility.md")
    }

    /// Reads the operation rows (`| `Name` | support | ... |`) of `lines` and asserts that each
    /// served operation has one, saying `yes` for [`Support::Full`] and `partial` for
    /// [`Support::Partial`]. Returns the rows of the operations not served: name to support.
    pub fn check<'a>(
        lines: impl Iterator<Item = &'a str>,
        served: impl IntoIterator<Item = (&'static str, Support)>,
    ) -> BTreeMap<String, String> {
        let mut rows = BTreeMap::new();
        for line in lines {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            if cells.len() >= 4 && cells[1].starts_with('`') {
                rows.insert(cells[1].trim_matches('`').to_string(), cells[2].to_string());
            }
        }
        for (name, support) in served {
            let row = rows.remove(name).unwrap_or_else(|| panic!("{name} is missing from docs/compatibility.md"));
            let expected = match support {
                Support::Full => "yes",
                Support::Partial => "partial",
            };
            assert_eq!(row, expected, "{name}: the document and the operation table disagree");
        }
        rows
    }
}

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// The protocol a request came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// AWS JSON 1.0 / 1.1: `X-Amz-Target: Prefix.Operation`, a JSON object body.
    Json,
    /// The query protocol: `Action=...&Version=...` form parameters, XML answers.
    Query,
}

/// What is wrong with a parameter, before a service turns it into its own error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamError {
    /// A required parameter is absent.
    Missing(String),
    /// A parameter is present but not acceptable.
    Invalid {
        /// Its name.
        name: String,
        /// Why.
        reason: String,
    },
}

impl ParamError {
    /// A parameter that is present but wrong.
    pub fn invalid(name: &str, reason: impl Into<String>) -> Self {
        ParamError::Invalid { name: name.to_string(), reason: reason.into() }
    }
}

/// A request's parameters as a JSON object (the JSON protocol's shape), whichever protocol
/// carried them. Query parameters are all strings; accessors parse numbers from them.
#[derive(Debug, Clone)]
pub struct Input {
    /// The protocol the parameters came in.
    pub protocol: Protocol,
    /// The parameters.
    pub params: Map<String, Value>,
}

impl Input {
    /// A nested structure (a batch entry, say) read with the same rules as its request.
    pub fn nested(&self, params: Map<String, Value>) -> Input {
        Input { protocol: self.protocol, params }
    }

    /// A raw parameter.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.params.get(name).filter(|v| !v.is_null())
    }

    /// An optional string parameter.
    pub fn str(&self, name: &str) -> Result<Option<&str>, ParamError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ParamError::invalid(name, "must be a string")),
        }
    }

    /// A required string parameter.
    pub fn required_str(&self, name: &str) -> Result<&str, ParamError> {
        self.str(name)?.ok_or_else(|| ParamError::Missing(name.to_string()))
    }

    /// An optional integer parameter (a JSON number, or decimal text in the query protocol).
    pub fn int(&self, name: &str) -> Result<Option<i64>, ParamError> {
        let not_int = || ParamError::invalid(name, "must be an integer");
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(not_int),
            Some(Value::String(s)) if self.protocol == Protocol::Query => {
                s.trim().parse::<i64>().map(Some).map_err(|_| not_int())
            }
            Some(_) => Err(not_int()),
        }
    }

    /// An optional boolean parameter (a JSON boolean, or `true`/`false` in the query protocol).
    pub fn bool(&self, name: &str) -> Result<Option<bool>, ParamError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if self.protocol == Protocol::Query => match s.as_str() {
                "true" => Ok(Some(true)),
                "false" => Ok(Some(false)),
                _ => Err(ParamError::invalid(name, "must be true or false")),
            },
            Some(_) => Err(ParamError::invalid(name, "must be a boolean")),
        }
    }

    /// An optional structure, read with the same rules as its request.
    pub fn structure(&self, name: &str) -> Result<Option<Input>, ParamError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Object(inner)) => Ok(Some(self.nested(inner.clone()))),
            Some(_) => Err(ParamError::invalid(name, "must be a structure")),
        }
    }

    /// An optional blob: standard base64 text (as the AWS JSON protocols carry blobs), decoded.
    pub fn blob(&self, name: &str) -> Result<Option<Vec<u8>>, ParamError> {
        use base64::Engine as _;
        match self.str(name)? {
            None => Ok(None),
            Some(text) => base64::engine::general_purpose::STANDARD
                .decode(text)
                .map(Some)
                .map_err(|_| ParamError::invalid(name, "must be base64")),
        }
    }

    /// An optional list of strings (absent: empty).
    pub fn str_list(&self, name: &str) -> Result<Vec<String>, ParamError> {
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(str::to_string).ok_or_else(|| ParamError::invalid(name, "must list strings")))
                .collect(),
            Some(_) => Err(ParamError::invalid(name, "must be a list of strings")),
        }
    }

    /// An optional map of strings to strings (absent: empty).
    pub fn str_map(&self, name: &str) -> Result<BTreeMap<String, String>, ParamError> {
        match self.get(name) {
            None => Ok(BTreeMap::new()),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    _ => Err(ParamError::invalid(name, format!("the value of {k:?} must be a string"))),
                })
                .collect(),
            Some(_) => Err(ParamError::invalid(name, "must be a map of strings")),
        }
    }

    /// An optional map of structures (absent: empty), in key order.
    pub fn struct_map(&self, name: &str) -> Result<Vec<(String, Input)>, ParamError> {
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(k, v)| match v {
                    Value::Object(inner) => Ok((k.clone(), self.nested(inner.clone()))),
                    _ => Err(ParamError::invalid(name, format!("the value of {k:?} must be a structure"))),
                })
                .collect(),
            Some(_) => Err(ParamError::invalid(name, "must be a map")),
        }
    }

    /// An optional list of structures (absent: empty), copied; `take_struct_list` moves it out.
    pub fn struct_list(&self, name: &str) -> Result<Vec<Input>, ParamError> {
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::Object(inner) => Ok(self.nested(inner.clone())),
                    _ => Err(ParamError::invalid(name, "must list structures")),
                })
                .collect(),
            Some(_) => Err(ParamError::invalid(name, "must be a list")),
        }
    }

    /// An optional list of structures (absent: empty), moved out of the request instead of
    /// copied (a batch's entries, read once); the parameter is gone afterwards.
    pub fn take_struct_list(&mut self, name: &str) -> Result<Vec<Input>, ParamError> {
        match self.params.remove(name) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|v| match v {
                    Value::Object(inner) => Ok(self.nested(inner)),
                    _ => Err(ParamError::invalid(name, "must list structures")),
                })
                .collect(),
            Some(_) => Err(ParamError::invalid(name, "must be a list")),
        }
    }
}
