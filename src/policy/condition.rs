//! The `Condition` block: operators, their `...IfExists` forms, and how a condition meets the
//! request's context, as IAM evaluates them.
//!
//! Within a statement every operator and every key must hold (AND); the values listed for a
//! key are alternatives (OR). A key the request does not carry makes a condition false,
//! except for the negated operators (`StringNotEquals`, `ArnNotLike`, `NotIpAddress`, ...),
//! the `IfExists` forms and `Null`, which hold then.

use std::net::IpAddr;

use serde_json::Value;

use super::context::Context;
use super::matching;
use crate::error::{Error, Result};

/// The condition operators weir knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operator {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    ArnEquals,
    ArnLike,
    ArnNotEquals,
    ArnNotLike,
    IpAddress,
    NotIpAddress,
    DateEquals,
    DateNotEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    NumericEquals,
    NumericNotEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    Bool,
    Null,
}

impl Operator {
    fn parse(name: &str) -> Option<Operator> {
        use Operator::*;
        Some(match name {
            "StringEquals" => StringEquals,
            "StringNotEquals" => StringNotEquals,
            "StringEqualsIgnoreCase" => StringEqualsIgnoreCase,
            "StringNotEqualsIgnoreCase" => StringNotEqualsIgnoreCase,
            "StringLike" => StringLike,
            "StringNotLike" => StringNotLike,
            "ArnEquals" => ArnEquals,
            "ArnLike" => ArnLike,
            "ArnNotEquals" => ArnNotEquals,
            "ArnNotLike" => ArnNotLike,
            "IpAddress" => IpAddress,
            "NotIpAddress" => NotIpAddress,
            "DateEquals" => DateEquals,
            "DateNotEquals" => DateNotEquals,
            "DateLessThan" => DateLessThan,
            "DateLessThanEquals" => DateLessThanEquals,
            "DateGreaterThan" => DateGreaterThan,
            "DateGreaterThanEquals" => DateGreaterThanEquals,
            "NumericEquals" => NumericEquals,
            "NumericNotEquals" => NumericNotEquals,
            "NumericLessThan" => NumericLessThan,
            "NumericLessThanEquals" => NumericLessThanEquals,
            "NumericGreaterThan" => NumericGreaterThan,
            "NumericGreaterThanEquals" => NumericGreaterThanEquals,
            "Bool" => Bool,
            "Null" => Null,
            _ => return None,
        })
    }

    /// Negated operators hold when no listed value matches (and when the key is absent).
    fn negated(self) -> bool {
        use Operator::*;
        matches!(
            self,
            StringNotEquals
                | StringNotEqualsIgnoreCase
                | StringNotLike
                | ArnNotEquals
                | ArnNotLike
                | NotIpAddress
                | DateNotEquals
                | NumericNotEquals
        )
    }

    /// Whether one request value matches one policy value (before negation).
    fn matches(self, policy: &str, request: &str) -> bool {
        use Operator::*;
        match self {
            StringEquals | StringNotEquals => policy == request,
            StringEqualsIgnoreCase | StringNotEqualsIgnoreCase => policy.to_lowercase() == request.to_lowercase(),
            StringLike | StringNotLike => matching::glob(policy, request, false),
            ArnEquals | ArnLike | ArnNotEquals | ArnNotLike => matching::arn(policy, request),
            IpAddress | NotIpAddress => match (Cidr::parse(policy), request.parse::<IpAddr>()) {
                (Some(cidr), Ok(ip)) => cidr.contains(ip),
                _ => false,
            },
            DateEquals
            | DateNotEquals
            | DateLessThan
            | DateLessThanEquals
            | DateGreaterThan
            | DateGreaterThanEquals => match (parse_date_ms(policy), parse_date_ms(request)) {
                (Some(p), Some(r)) => compare(self, r.cmp(&p)),
                _ => false,
            },
            NumericEquals
            | NumericNotEquals
            | NumericLessThan
            | NumericLessThanEquals
            | NumericGreaterThan
            | NumericGreaterThanEquals => match (policy.trim().parse::<f64>(), request.trim().parse::<f64>()) {
                (Ok(p), Ok(r)) => r.partial_cmp(&p).is_some_and(|o| compare(self, o)),
                _ => false,
            },
            Bool => policy.eq_ignore_ascii_case(request),
            // Handled before values are compared.
            Null => false,
        }
    }

    /// Checks a policy value when the policy is read, so a policy with `IpAddress: "x"` is
    /// refused rather than silently never matching.
    fn check_value(self, value: &str) -> std::result::Result<(), String> {
        use Operator::*;
        match self {
            IpAddress | NotIpAddress if Cidr::parse(value).is_none() => {
                Err(format!("{value:?} is not an IP address or CIDR block"))
            }
            DateEquals
            | DateNotEquals
            | DateLessThan
            | DateLessThanEquals
            | DateGreaterThan
            | DateGreaterThanEquals
                if parse_date_ms(value).is_none() =>
            {
                Err(format!("{value:?} is not a date (ISO 8601, or seconds since the epoch)"))
            }
            NumericEquals
            | NumericNotEquals
            | NumericLessThan
            | NumericLessThanEquals
            | NumericGreaterThan
            | NumericGreaterThanEquals
                if value.trim().parse::<f64>().is_err() =>
            {
                Err(format!("{value:?} is not a number"))
            }
            Bool | Null if !value.eq_ignore_ascii_case("true") && !value.eq_ignore_ascii_case("false") => {
                Err(format!("{value:?} is not true or false"))
            }
            _ => Ok(()),
        }
    }
}

/// `request.cmp(policy)` read through a comparison operator.
fn compare(op: Operator, ordering: std::cmp::Ordering) -> bool {
    use std::cmp::Ordering::*;
    use Operator::*;
    match op {
        DateEquals | DateNotEquals | NumericEquals | NumericNotEquals => ordering == Equal,
        DateLessThan | NumericLessThan => ordering == Less,
        DateLessThanEquals | NumericLessThanEquals => ordering != Greater,
        DateGreaterThan | NumericGreaterThan => ordering == Greater,
        DateGreaterThanEquals | NumericGreaterThanEquals => ordering != Less,
        _ => false,
    }
}

/// One operator on one key, with the policy's values for it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Condition {
    op: Operator,
    if_exists: bool,
    /// Condition keys are case-insensitive: kept in lowercase.
    key: String,
    values: Vec<String>,
}

impl Condition {
    /// True when the request's context satisfies this condition.
    pub(crate) fn holds(&self, context: &Context) -> bool {
        let found = context.get(&self.key);
        if self.op == Operator::Null {
            let absent = found.is_none_or(|v| v.is_empty());
            return self.values.iter().any(|v| v.eq_ignore_ascii_case("true") == absent);
        }
        let request = match found {
            Some(values) if !values.is_empty() => values,
            _ => return self.if_exists || self.op.negated(),
        };
        let any_match = request.iter().any(|r| self.values.iter().any(|p| self.op.matches(p, r)));
        if self.op.negated() {
            !any_match
        } else {
            any_match
        }
    }
}

/// Reads a statement's `Condition` object: `{"Operator": {"key": value-or-values, ...}, ...}`.
pub(crate) fn parse_block(block: &Value) -> Result<Vec<Condition>> {
    let bad = |why: String| Error::InvalidArgument(format!("policy Condition: {why}"));
    let operators = block.as_object().ok_or_else(|| bad("must be an object".into()))?;
    let mut out = Vec::new();
    for (name, keys) in operators {
        if name.starts_with("ForAnyValue:") || name.starts_with("ForAllValues:") {
            return Err(bad(format!("the set operator in {:?} is not supported", short(name))));
        }
        let (base, if_exists) = match name.strip_suffix("IfExists") {
            Some(base) if base != "Null" => (base, true),
            _ => (name.as_str(), false),
        };
        let op = Operator::parse(base).ok_or_else(|| bad(format!("unknown operator {:?}", short(name))))?;
        let keys =
            keys.as_object().ok_or_else(|| bad(format!("{:?} must map condition keys to values", short(name))))?;
        if keys.is_empty() {
            return Err(bad(format!("{:?} names no condition key", short(name))));
        }
        for (key, values) in keys {
            let values = scalar_list(values)
                .ok_or_else(|| bad(format!("the values of {:?} must be strings, numbers or booleans", short(key))))?;
            if values.is_empty() {
                return Err(bad(format!("{:?} lists no value", short(key))));
            }
            for value in &values {
                op.check_value(value).map_err(|why| bad(format!("{}: {why}", short(key))))?;
            }
            out.push(Condition { op, if_exists, key: key.to_ascii_lowercase(), values });
        }
    }
    Ok(out)
}

/// A string, number or boolean, or an array of them, as strings.
fn scalar_list(value: &Value) -> Option<Vec<String>> {
    let one = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    match value {
        Value::Array(items) => items.iter().map(one).collect(),
        other => one(other).map(|v| vec![v]),
    }
}

fn short(s: &str) -> String {
    s.chars().take(64).collect()
}

/// An address block: `10.0.0.0/8`, `2001:db8::/32`, or one address (its own block).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub(crate) fn parse(text: &str) -> Option<Cidr> {
        let (address, prefix) = match text.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text.trim(), None),
        };
        let network: IpAddr = address.parse().ok()?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => p.parse().ok()?,
            Some(_) => return None,
            None => max,
        };
        (prefix <= max).then_some(Cidr { network, prefix })
    }

    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4 client seen on an IPv6 socket (`::ffff:a.b.c.d`) is the IPv4 address.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.network, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// A date as policies write them: ISO 8601 (`2026-01-31`, `2026-01-31T12:00:00Z`, with
/// fractions of a second or an offset such as `+02:00`) or whole seconds since the epoch; in
/// milliseconds since the epoch.
pub(crate) fn parse_date_ms(text: &str) -> Option<i64> {
    let text = text.trim();
    if !text.is_empty() && text.len() <= 12 && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse::<i64>().ok()?.checked_mul(1000);
    }
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(range)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let mut ms = days_from_civil(year, month, day) * 86_400_000;
    if b.len() == 10 {
        return Some(ms);
    }
    if !matches!(b[10], b'T' | b't') || b.len() < 19 || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    ms += ((hour * 60 + minute) * 60 + second) * 1000;
    let mut rest = &text[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let end = fraction.bytes().position(|c| !c.is_ascii_digit()).unwrap_or(fraction.len());
        if end == 0 || end > 9 {
            return None;
        }
        let millis: String = fraction[..end].chars().chain("000".chars()).take(3).collect();
        ms += millis.parse::<i64>().ok()?;
        rest = &fraction[end..];
    }
    match rest {
        "Z" | "z" | "" => Some(ms),
        offset if offset.len() == 6 && matches!(offset.as_bytes()[0], b'+' | b'-') && offset.as_bytes()[3] == b':' => {
            let ob = offset.as_bytes();
            let hours: i64 = std::str::from_utf8(&ob[1..3]).ok()?.parse().ok()?;
            let minutes: i64 = std::str::from_utf8(&ob[4..6]).ok()?.parse().ok()?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let shift = (hours * 60 + minutes) * 60_000;
            Some(if ob[0] == b'+' { ms - shift } else { ms + shift })
        }
        _ => None,
    }
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn holds(block: Value, context: &Context) -> bool {
        parse_block(&block).expect("parses").iter().all(|c| c.holds(context))
    }

    #[test]
    fn operators_against_present_and_absent_keys() {
        let topic = "arn:aws:sns:us-east-1:111122223333:orders";
        let ctx = Context::new()
            .with("aws:SourceArn", topic)
            .with("aws:SourceIp", "192.0.2.7")
            .with("aws:CurrentTime", "2026-03-01T12:00:00Z")
            .with("aws:SecureTransport", "false")
            .with("sqs:MaxMessages", "5");
        let empty = Context::new();
        // (condition block, with the context above, with an empty context)
        let cases: Vec<(Value, bool, bool)> = vec![
            (json!({"ArnEquals": {"aws:SourceArn": topic}}), true, false),
            (json!({"ArnLike": {"aws:SourceArn": "arn:aws:sns:*:111122223333:*"}}), true, false),
            (json!({"ArnLike": {"aws:SourceArn": "arn:aws:sns:*:444455556666:*"}}), false, false),
            (json!({"ArnNotLike": {"aws:SourceArn": "arn:aws:sns:*:444455556666:*"}}), true, true),
            (json!({"ArnNotEquals": {"aws:SourceArn": topic}}), false, true),
            (json!({"StringEquals": {"aws:sourcearn": topic}}), true, false),
            (json!({"StringEquals": {"aws:SourceArn": [topic.to_uppercase(), "x"]}}), false, false),
            (json!({"StringEqualsIgnoreCase": {"aws:SourceArn": topic.to_uppercase()}}), true, false),
            (json!({"StringNotEquals": {"aws:SourceArn": "x"}}), true, true),
            (json!({"StringLike": {"aws:SourceArn": "*:orders"}}), true, false),
            (json!({"StringNotLike": {"aws:SourceArn": "*:orders"}}), false, true),
            (json!({"StringEqualsIfExists": {"aws:SourceArn": "x"}}), false, true),
            (json!({"IpAddress": {"aws:SourceIp": "192.0.2.0/24"}}), true, false),
            (json!({"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.0.2.7"]}}), true, false),
            (json!({"IpAddress": {"aws:SourceIp": "198.51.100.0/24"}}), false, false),
            (json!({"NotIpAddress": {"aws:SourceIp": "198.51.100.0/24"}}), true, true),
            (json!({"DateLessThan": {"aws:CurrentTime": "2026-03-02T00:00:00Z"}}), true, false),
            (json!({"DateLessThan": {"aws:CurrentTime": "2026-03-01T12:00:00Z"}}), false, false),
            (json!({"DateLessThanEquals": {"aws:CurrentTime": "2026-03-01T12:00:00Z"}}), true, false),
            (json!({"DateGreaterThan": {"aws:CurrentTime": "2026-01-01"}}), true, false),
            (json!({"DateGreaterThan": {"aws:CurrentTime": 1772366400}}), false, false),
            (json!({"DateEquals": {"aws:CurrentTime": 1772366400}}), true, false),
            (json!({"NumericLessThanEquals": {"sqs:MaxMessages": 5}}), true, false),
            (json!({"NumericGreaterThan": {"sqs:MaxMessages": "5"}}), false, false),
            (json!({"Bool": {"aws:SecureTransport": "false"}}), true, false),
            (json!({"Bool": {"aws:SecureTransport": true}}), false, false),
            (json!({"Null": {"aws:SourceArn": "false"}}), true, false),
            (json!({"Null": {"aws:SourceArn": "true"}}), false, true),
            // Every operator and key must hold.
            (json!({"ArnEquals": {"aws:SourceArn": topic}, "IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}), false, false),
            (
                json!({"ArnEquals": {"aws:SourceArn": topic}, "IpAddress": {"aws:SourceIp": "192.0.2.0/24"}}),
                true,
                false,
            ),
        ];
        for (block, with, without) in cases {
            assert_eq!(holds(block.clone(), &ctx), with, "{block} with the context");
            assert_eq!(holds(block.clone(), &empty), without, "{block} without the keys");
        }
    }

    #[test]
    fn bad_conditions_are_refused() {
        for block in [
            json!("x"),
            json!({"StringEquals": "x"}),
            json!({"StringEquals": {}}),
            json!({"StringEquals": {"k": []}}),
            json!({"StringEquals": {"k": {"nested": 1}}}),
            json!({"NoSuchOperator": {"k": "v"}}),
            json!({"ForAnyValue:StringEquals": {"k": "v"}}),
            json!({"IpAddress": {"aws:SourceIp": "300.1.1.1"}}),
            json!({"IpAddress": {"aws:SourceIp": "10.0.0.0/33"}}),
            json!({"DateLessThan": {"aws:CurrentTime": "yesterday"}}),
            json!({"DateLessThan": {"aws:CurrentTime": "2026-02-30T00:00:00Z"}}),
            json!({"NumericEquals": {"k": "five"}}),
            json!({"Bool": {"k": "maybe"}}),
        ] {
            assert!(parse_block(&block).is_err(), "{block} accepted");
        }
    }

    #[test]
    fn cidr_blocks_of_both_families() {
        let cidr = |s| Cidr::parse(s).expect(s);
        assert!(cidr("10.0.0.0/8").contains("10.255.1.2".parse().unwrap()));
        assert!(!cidr("10.0.0.0/8").contains("11.0.0.1".parse().unwrap()));
        assert!(cidr("0.0.0.0/0").contains("203.0.113.9".parse().unwrap()));
        assert!(cidr("127.0.0.1").contains("127.0.0.1".parse().unwrap()));
        assert!(!cidr("127.0.0.1").contains("127.0.0.2".parse().unwrap()));
        assert!(cidr("127.0.0.0/8").contains("::ffff:127.0.0.1".parse().unwrap()), "mapped IPv4");
        assert!(cidr("2001:db8::/32").contains("2001:db8:1::1".parse().unwrap()));
        assert!(!cidr("2001:db8::/32").contains("2001:db9::1".parse().unwrap()));
        assert!(!cidr("::/0").contains("10.0.0.1".parse().unwrap()), "families do not mix");
        for bad in ["", "/8", "10.0.0.0/", "10.0.0.0/x", "10.0.0.0/0008", "::1/129", "host"] {
            assert!(Cidr::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn dates_in_the_forms_policies_use() {
        assert_eq!(parse_date_ms("1970-01-01"), Some(0));
        assert_eq!(parse_date_ms("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(parse_date_ms("2026-03-01T12:00:00Z"), Some(1_772_366_400_000));
        assert_eq!(parse_date_ms("2026-03-01T12:00:00.5Z"), Some(1_772_366_400_500));
        assert_eq!(parse_date_ms("2026-03-01T14:00:00+02:00"), Some(1_772_366_400_000));
        assert_eq!(parse_date_ms("1772366400"), Some(1_772_366_400_000));
        assert_eq!(parse_date_ms("2024-02-29"), Some(1_709_164_800_000));
        for bad in ["", "2023-02-29", "2026-13-01", "2026-01-01T25:00:00Z", "2026-01-01T00:00:00+2", "2026-1-1"] {
            assert_eq!(parse_date_ms(bad), None, "{bad:?}");
        }
        // The engine's own clock format reads back.
        assert_eq!(parse_date_ms(&crate::text::iso8601(1_772_366_400_123)), Some(1_772_366_400_123));
    }
}
