//! Tests from the spec's layouts (OASIS MQTT 3.1.1 and 5.0): the byte examples of its sections,
//! round trips of every packet, and malformed input mapped to the right reason code.

use super::*;
use crate::server::mqtt::properties::Value;

const MAX: usize = 1 << 20;

fn round_trip(packet: Packet, v: Version) {
    let mut bytes = Vec::new();
    encode(&packet, v, &mut bytes);
    let version = if matches!(packet, Packet::Connect(_)) { None } else { Some(v) };
    let (decoded, used) = decode(&bytes, version, MAX).expect("decodes").expect("complete");
    assert_eq!(used, bytes.len());
    assert_eq!(decoded, packet);
    // Every strict prefix asks for more bytes, never errs or panics.
    for cut in 0..bytes.len() {
        assert_eq!(decode(&bytes[..cut], version, MAX), Ok(None), "prefix of {cut} bytes");
    }
}

#[test]
fn variable_byte_integers_match_the_spec_table() {
    // Spec 1.5.5: the boundaries of one to four bytes.
    let cases: [(u32, &[u8]); 8] = [
        (0, &[0x00]),
        (127, &[0x7F]),
        (128, &[0x80, 0x01]),
        (16_383, &[0xFF, 0x7F]),
        (16_384, &[0x80, 0x80, 0x01]),
        (2_097_151, &[0xFF, 0xFF, 0x7F]),
        (2_097_152, &[0x80, 0x80, 0x80, 0x01]),
        (VAR_INT_MAX, &[0xFF, 0xFF, 0xFF, 0x7F]),
    ];
    for (value, bytes) in cases {
        let mut w = Writer::default();
        w.var_int(value);
        assert_eq!(w.0, bytes, "encoding {value}");
        assert_eq!(decode_var_int(bytes), Ok(Some((value, bytes.len()))));
        assert_eq!(decode_var_int(&bytes[..bytes.len() - 1]), Ok(None));
    }
    assert_eq!(
        decode_var_int(&[0xFF, 0xFF, 0xFF, 0xFF, 0x01]).map_err(|e| e.reason),
        Err(ReasonCode::MALFORMED_PACKET)
    );
}

#[test]
fn the_spec_connect_example_decodes() {
    // Spec 3.1.1 figure 3.6 variable header, keep alive 10, client id "a", clean session.
    let bytes = [0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 4, 0b10, 0, 10, 0, 1, b'a'];
    let (packet, used) = decode(&bytes, None, MAX).unwrap().unwrap();
    assert_eq!(used, bytes.len());
    let Packet::Connect(c) = packet else { panic!("not CONNECT") };
    assert_eq!((c.version, c.clean_start, c.keep_alive, c.client_id.as_str()), (Version::V311, true, 10, "a"));
    assert!(c.will.is_none() && c.username.is_none() && c.password.is_none());
}

#[test]
fn every_packet_round_trips_in_both_versions() {
    let mut props = Properties::default();
    props.push(id::SESSION_EXPIRY, Value::Four(3600));
    props.push(id::USER_PROPERTY, Value::Pair("k".into(), "v".into()));
    props.push(id::USER_PROPERTY, Value::Pair("k".into(), "w".into()));
    props.push(0x09, Value::Binary(vec![0, 1, 2]));
    props.push(id::SUBSCRIPTION_ID, Value::VarInt(200_000));
    for v in [Version::V311, Version::V5] {
        let p = |p: &Properties| if v == Version::V5 { p.clone() } else { Properties::default() };
        let will = Will {
            topic: "dead/a".into(),
            payload: b"gone".to_vec(),
            qos: QoS::AtLeastOnce,
            retain: true,
            properties: p(&props),
        };
        round_trip(
            Packet::Connect(Box::new(Connect {
                version: v,
                clean_start: false,
                keep_alive: 60,
                properties: p(&props),
                client_id: "client-1".into(),
                will: Some(will),
                username: Some("AKID".into()),
                password: Some(b"secret".to_vec()),
            })),
            v,
        );
        round_trip(
            Packet::ConnAck(ConnAck { session_present: true, reason: ReasonCode::SUCCESS, properties: p(&props) }),
            v,
        );
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            round_trip(
                Packet::Publish(Publish {
                    dup: qos != QoS::AtMostOnce,
                    qos,
                    retain: true,
                    topic: "a/b/ü".into(),
                    packet_id: (qos != QoS::AtMostOnce).then_some(7),
                    properties: p(&props),
                    payload: vec![0xFF; 300],
                }),
                v,
            );
        }
        let reason = if v == Version::V5 { ReasonCode::NO_MATCHING_SUBSCRIBERS } else { ReasonCode::SUCCESS };
        round_trip(Packet::PubAck(Ack::new(1, reason)), v);
        round_trip(Packet::PubRec(Ack::new(65535, ReasonCode::SUCCESS)), v);
        round_trip(Packet::PubRel(Ack::new(2, ReasonCode::SUCCESS)), v);
        round_trip(Packet::PubComp(Ack::new(3, reason)), v);
        round_trip(
            Packet::Subscribe(Subscribe {
                packet_id: 9,
                properties: p(&Properties(vec![(id::SUBSCRIPTION_ID, Value::VarInt(5))])),
                subscriptions: vec![
                    Subscription {
                        filter: "a/+/c".into(),
                        qos: QoS::ExactlyOnce,
                        no_local: v == Version::V5,
                        retain_as_published: v == Version::V5,
                        retain_handling: if v == Version::V5 { 2 } else { 0 },
                    },
                    Subscription {
                        filter: "#".into(),
                        qos: QoS::AtMostOnce,
                        no_local: false,
                        retain_as_published: false,
                        retain_handling: 0,
                    },
                ],
            }),
            v,
        );
        round_trip(
            Packet::SubAck(SubAck {
                packet_id: 9,
                properties: Properties::default(),
                reasons: vec![ReasonCode(0x02), ReasonCode(0x80)],
            }),
            v,
        );
        round_trip(
            Packet::Unsubscribe(Unsubscribe {
                packet_id: 10,
                properties: Properties::default(),
                filters: vec!["a/+/c".into()],
            }),
            v,
        );
        let reasons = if v == Version::V5 { vec![ReasonCode::NO_SUBSCRIPTION_EXISTED] } else { vec![] };
        round_trip(Packet::UnsubAck(SubAck { packet_id: 10, properties: Properties::default(), reasons }), v);
        round_trip(Packet::PingReq, v);
        round_trip(Packet::PingResp, v);
        let reason = if v == Version::V5 { ReasonCode::DISCONNECT_WITH_WILL } else { ReasonCode::SUCCESS };
        round_trip(Packet::Disconnect(Disconnect { reason, properties: Properties::default() }), v);
    }
    round_trip(Packet::Auth(Disconnect { reason: ReasonCode(0x18), properties: Properties::default() }), Version::V5);
}

fn decode_err(bytes: &[u8], version: Option<Version>) -> ReasonCode {
    match decode(bytes, version, MAX) {
        Err(e) => e.reason,
        other => panic!("{bytes:?} decoded to {other:?}"),
    }
}

#[test]
fn malformed_packets_get_the_right_reason() {
    let v5 = Some(Version::V5);
    let v3 = Some(Version::V311);
    // Not CONNECT first.
    assert_eq!(decode_err(&[0xC0, 0], None), ReasonCode::PROTOCOL_ERROR);
    // A second CONNECT.
    assert_eq!(decode_err(&[0x10, 0], v5), ReasonCode::PROTOCOL_ERROR);
    // Reserved packet type 0.
    assert_eq!(decode_err(&[0x00, 0], v5), ReasonCode::MALFORMED_PACKET);
    // Wrong fixed header flags: PUBREL, SUBSCRIBE, UNSUBSCRIBE need 0010; PINGREQ needs 0000.
    assert_eq!(decode_err(&[0x60, 2, 0, 1], v5), ReasonCode::MALFORMED_PACKET);
    assert_eq!(decode_err(&[0x80, 6, 0, 1, 0, 1, b'a', 0], v3), ReasonCode::MALFORMED_PACKET);
    assert_eq!(decode_err(&[0xC1, 0], v3), ReasonCode::MALFORMED_PACKET);
    // PUBLISH with QoS 3, DUP on QoS 0, packet id 0.
    assert_eq!(decode_err(&[0x36, 5, 0, 1, b'a', 0, 1], v3), ReasonCode::MALFORMED_PACKET);
    assert_eq!(decode_err(&[0x38, 3, 0, 1, b'a'], v3), ReasonCode::MALFORMED_PACKET);
    assert_eq!(decode_err(&[0x32, 5, 0, 1, b'a', 0, 0], v3), ReasonCode::MALFORMED_PACKET);
    // Topic that is not UTF-8, or holds U+0000.
    assert_eq!(decode_err(&[0x30, 3, 0, 1, 0xFF], v3), ReasonCode::MALFORMED_PACKET);
    assert_eq!(decode_err(&[0x30, 3, 0, 1, 0x00], v3), ReasonCode::MALFORMED_PACKET);
    // A string longer than its packet.
    assert_eq!(decode_err(&[0x30, 3, 0, 9, b'a'], v3), ReasonCode::MALFORMED_PACKET);
    // Properties: unknown identifier, a duplicate, a length past the packet.
    assert_eq!(decode_err(&[0x30, 6, 0, 1, b'a', 2, 0x7F, 0], v5), ReasonCode::MALFORMED_PACKET);
    assert_eq!(decode_err(&[0x30, 8, 0, 1, b'a', 4, 0x01, 1, 0x01, 0], v5), ReasonCode::PROTOCOL_ERROR);
    assert_eq!(decode_err(&[0x30, 5, 0, 1, b'a', 9, 0x01], v5), ReasonCode::MALFORMED_PACKET);
    // SUBSCRIBE: no filter, reserved option bits, QoS 3, retain handling 3.
    assert_eq!(decode_err(&[0x82, 2, 0, 1], v3), ReasonCode::PROTOCOL_ERROR);
    assert_eq!(decode_err(&[0x82, 6, 0, 1, 0, 1, b'a', 0x04], v3), ReasonCode::MALFORMED_PACKET);
    assert_eq!(decode_err(&[0x82, 7, 0, 1, 0, 0, 1, b'a', 0x03], v5), ReasonCode::MALFORMED_PACKET);
    assert_eq!(decode_err(&[0x82, 7, 0, 1, 0, 0, 1, b'a', 0x30], v5), ReasonCode::MALFORMED_PACKET);
    // UNSUBSCRIBE without a filter.
    assert_eq!(decode_err(&[0xA2, 2, 0, 1], v3), ReasonCode::PROTOCOL_ERROR);
    // Bytes after a PINGREQ's end; AUTH in 3.1.1.
    assert_eq!(decode_err(&[0xC0, 1, 0], v3), ReasonCode::MALFORMED_PACKET);
    assert_eq!(decode_err(&[0xF0, 0], v3), ReasonCode::MALFORMED_PACKET);
    // A five-byte remaining length.
    assert_eq!(decode_err(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], v3), ReasonCode::MALFORMED_PACKET);
}

#[test]
fn malformed_connects_get_the_right_reason() {
    fn connect(name: &[u8], level: u8, flags: u8, rest: &[u8]) -> Vec<u8> {
        let mut body = vec![0, name.len() as u8];
        body.extend_from_slice(name);
        body.extend_from_slice(&[level, flags, 0, 60]);
        body.extend_from_slice(rest);
        let mut out = vec![0x10, body.len() as u8];
        out.extend(body);
        out
    }
    let client = [0, 1, b'c'];
    assert_eq!(decode_err(&connect(b"MQTT", 3, 2, &client), None), ReasonCode::UNSUPPORTED_PROTOCOL_VERSION);
    assert_eq!(decode_err(&connect(b"MQIsdp", 3, 2, &client), None), ReasonCode::UNSUPPORTED_PROTOCOL_VERSION);
    assert_eq!(decode_err(&connect(b"HTTP", 4, 2, &client), None), ReasonCode::MALFORMED_PACKET);
    // Reserved flag; will QoS without a will; will QoS 3; password without user name (3.1.1).
    assert_eq!(decode_err(&connect(b"MQTT", 4, 3, &client), None), ReasonCode::MALFORMED_PACKET);
    assert_eq!(decode_err(&connect(b"MQTT", 4, 0b1010, &client), None), ReasonCode::MALFORMED_PACKET);
    assert_eq!(decode_err(&connect(b"MQTT", 4, 0b11110, &client), None), ReasonCode::MALFORMED_PACKET);
    assert_eq!(
        decode_err(&connect(b"MQTT", 4, 0b100_0010, &[0, 1, b'c', 0, 1, b'p']), None),
        ReasonCode::MALFORMED_PACKET
    );
    // A user name flag without the user name.
    assert_eq!(decode_err(&connect(b"MQTT", 4, 0b1000_0010, &client), None), ReasonCode::MALFORMED_PACKET);
    // v5 accepts a password without a user name.
    let ok = connect(b"MQTT", 5, 0b100_0010, &[0, 0, 1, b'c', 0, 1, b'p']);
    assert!(matches!(decode(&ok, None, MAX), Ok(Some((Packet::Connect(_), _)))));
}

#[test]
fn a_packet_over_the_limit_is_refused_from_its_header() {
    // Only the fixed header has arrived; the length alone refuses it.
    let e = decode(&[0x30, 0xFF, 0xFF, 0x7F], Some(Version::V5), 1024).unwrap_err();
    assert_eq!(e.reason, ReasonCode::PACKET_TOO_LARGE);
}

#[test]
fn session_expiry_follows_the_version() {
    let mut c = Connect {
        version: Version::V311,
        clean_start: true,
        keep_alive: 0,
        properties: Properties::default(),
        client_id: String::new(),
        will: None,
        username: None,
        password: None,
    };
    assert_eq!(session_expiry(&c), 0);
    c.clean_start = false;
    assert_eq!(session_expiry(&c), u32::MAX);
    c.version = Version::V5;
    assert_eq!(session_expiry(&c), 0);
    c.properties.push(id::SESSION_EXPIRY, Value::Four(30));
    assert_eq!(session_expiry(&c), 30);
}

proptest::proptest! {
    /// No input makes the decoder panic; whatever it reads, it reads within the buffer.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64), v5 in proptest::bool::ANY, connected in proptest::bool::ANY) {
        let version = connected.then_some(if v5 { Version::V5 } else { Version::V311 });
        if let Ok(Some((_, used))) = decode(&bytes, version, MAX) {
            proptest::prop_assert!(used <= bytes.len());
        }
    }
}
