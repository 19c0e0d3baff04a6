//! MQTT 5 properties (spec 2.2.2): an identifier (a variable byte integer) and a value whose type
//! the identifier fixes. Pure: bytes in, values out, no panics on any input.

use super::codec::{DecodeError, Reader, Writer};
use super::reason::ReasonCode;

/// A property's value, in the type its identifier fixes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Byte(u8),
    Two(u16),
    Four(u32),
    VarInt(u32),
    Text(String),
    Binary(Vec<u8>),
    Pair(String, String),
}

/// The identifiers weir reads or writes (spec table 2-4; `kind` knows every one).
pub(crate) mod id {
    pub const MESSAGE_EXPIRY: u32 = 0x02;
    pub const SUBSCRIPTION_ID: u32 = 0x0B;
    pub const SESSION_EXPIRY: u32 = 0x11;
    pub const ASSIGNED_CLIENT_ID: u32 = 0x12;
    pub const AUTH_METHOD: u32 = 0x15;
    pub const RECEIVE_MAXIMUM: u32 = 0x21;
    pub const TOPIC_ALIAS_MAXIMUM: u32 = 0x22;
    pub const TOPIC_ALIAS: u32 = 0x23;
    pub const WILL_DELAY: u32 = 0x18;
    pub const USER_PROPERTY: u32 = 0x26;
    pub const MAXIMUM_PACKET_SIZE: u32 = 0x27;
}

/// Reads one property value of a given type.
type ReadValue = fn(&mut Reader<'_>) -> Result<Value, DecodeError>;

/// The value type of an identifier; `None` for an identifier the spec does not define.
fn kind(identifier: u32) -> Option<ReadValue> {
    Some(match identifier {
        0x01 | 0x17 | 0x19 | 0x24 | 0x25 | 0x28 | 0x29 | 0x2A => |r| r.u8().map(Value::Byte),
        0x13 | 0x21 | 0x22 | 0x23 => |r| r.u16().map(Value::Two),
        0x02 | 0x11 | 0x18 | 0x27 => |r| r.u32().map(Value::Four),
        0x0B => |r| r.var_int().map(Value::VarInt),
        0x03 | 0x08 | 0x12 | 0x15 | 0x1A | 0x1C | 0x1F => |r| r.text().map(Value::Text),
        0x09 | 0x16 => |r| r.binary().map(Value::Binary),
        0x26 => |r| Ok(Value::Pair(r.text()?, r.text()?)),
        _ => return None,
    })
}

/// The properties of one packet (or of a will), in the order they came.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Properties(pub Vec<(u32, Value)>);

impl Properties {
    /// Reads a property length and the properties it covers. An unknown identifier, a value cut
    /// short or a property given twice (other than user properties and subscription
    /// identifiers, which may repeat) is a malformed packet.
    pub fn decode(r: &mut Reader<'_>) -> Result<Properties, DecodeError> {
        let len = r.var_int()? as usize;
        let mut inner = r.sub(len)?;
        let mut props = Vec::new();
        while !inner.is_empty() {
            let identifier = inner.var_int()?;
            let read = kind(identifier)
                .ok_or_else(|| DecodeError::malformed(format!("unknown property identifier {identifier:#04x}")))?;
            let value = read(&mut inner)?;
            let repeatable = identifier == id::USER_PROPERTY || identifier == id::SUBSCRIPTION_ID;
            if !repeatable && props.iter().any(|(i, _)| *i == identifier) {
                return Err(DecodeError::new(
                    ReasonCode::PROTOCOL_ERROR,
                    format!("property {identifier:#04x} given twice"),
                ));
            }
            props.push((identifier, value));
        }
        Ok(Properties(props))
    }

    /// Writes the property length and the properties.
    pub fn encode(&self, w: &mut Writer) {
        let mut body = Writer::default();
        for (identifier, value) in &self.0 {
            body.var_int(*identifier);
            match value {
                Value::Byte(b) => body.u8(*b),
                Value::Two(v) => body.u16(*v),
                Value::Four(v) => body.u32(*v),
                Value::VarInt(v) => body.var_int(*v),
                Value::Text(s) => body.text(s),
                Value::Binary(b) => body.binary(b),
                Value::Pair(k, v) => {
                    body.text(k);
                    body.text(v);
                }
            }
        }
        w.var_int(body.0.len() as u32);
        w.0.extend_from_slice(&body.0);
    }

    /// The first value of an identifier.
    pub fn get(&self, identifier: u32) -> Option<&Value> {
        self.0.iter().find(|(i, _)| *i == identifier).map(|(_, v)| v)
    }

    /// A four-byte integer property.
    pub fn four(&self, identifier: u32) -> Option<u32> {
        match self.get(identifier) {
            Some(Value::Four(v)) => Some(*v),
            _ => None,
        }
    }

    /// A two-byte integer property.
    pub fn two(&self, identifier: u32) -> Option<u16> {
        match self.get(identifier) {
            Some(Value::Two(v)) => Some(*v),
            _ => None,
        }
    }

    /// Adds a property.
    pub fn push(&mut self, identifier: u32, value: Value) {
        self.0.push((identifier, value));
    }

    /// Adds a subscription identifier, if there is one.
    pub fn extend_subscription_id(&mut self, sub_id: Option<u32>) {
        if let Some(n) = sub_id {
            self.push(id::SUBSCRIPTION_ID, Value::VarInt(n));
        }
    }

    /// Keeps only the properties a receiver of a PUBLISH gets forwarded unchanged (spec 3.3.2.3):
    /// all but the topic alias and subscription identifiers (and a will's delay, which is the
    /// server's, not the message's).
    pub fn forwarded(&self) -> Properties {
        let dropped = [id::TOPIC_ALIAS, id::SUBSCRIPTION_ID, id::WILL_DELAY];
        Properties(self.0.iter().filter(|(i, _)| !dropped.contains(i)).cloned().collect())
    }

    /// The properties of a message that has waited `waited_ms` in the server (spec 3.3.2.3.3):
    /// `None` once its Message Expiry Interval has passed, else the interval lowered by the
    /// whole seconds it waited.
    pub fn aged(&self, waited_ms: u64) -> Option<Properties> {
        let Some(interval) = self.four(id::MESSAGE_EXPIRY) else { return Some(self.clone()) };
        let waited_s = waited_ms / 1000;
        if waited_ms >= u64::from(interval) * 1000 {
            return None;
        }
        let left = u32::try_from(u64::from(interval) - waited_s).unwrap_or(interval);
        let mut aged = self.clone();
        for (i, v) in &mut aged.0 {
            if *i == id::MESSAGE_EXPIRY {
                *v = Value::Four(left);
            }
        }
        Some(aged)
    }
}

#[cfg(test)]
mod aging_tests {
    use super::*;

    fn expiring(interval: u32) -> Properties {
        let mut p = Properties::default();
        p.push(0x03, Value::Text("text/plain".into()));
        p.push(id::MESSAGE_EXPIRY, Value::Four(interval));
        p
    }

    #[test]
    fn a_message_expiry_interval_is_lowered_by_the_wait_and_ends_the_message() {
        assert_eq!(expiring(60).aged(0), Some(expiring(60)));
        assert_eq!(expiring(60).aged(999), Some(expiring(60)));
        assert_eq!(expiring(60).aged(2_500), Some(expiring(58)));
        assert_eq!(expiring(60).aged(59_999), Some(expiring(1)));
        assert_eq!(expiring(60).aged(60_000), None);
        assert_eq!(expiring(0).aged(0), None);
        assert_eq!(expiring(u32::MAX).aged(u64::MAX), None);
        let plain = Properties::default();
        assert_eq!(plain.aged(u64::MAX), Some(plain.clone()), "no interval: never expires");
    }

    #[test]
    fn a_will_delay_is_not_forwarded() {
        let mut p = expiring(5);
        p.push(id::WILL_DELAY, Value::Four(10));
        assert_eq!(p.forwarded(), expiring(5));
    }
}
