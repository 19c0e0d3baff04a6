//! AMQP 0-9-1 methods: class and method ids and the arguments of each (spec section 1.x,
//! "amqp0-9-1.xml"), both ways. Pure. Reserved arguments are read and skipped, written as
//! zeros; unknown class or method ids are errors (a connection exception, 503
//! `COMMAND_INVALID`, or 540 `NOT_IMPLEMENTED` for a known class's unknown method).

use bytes::Bytes;

use super::codec::{CodecError, FieldTable, Reader, Writer};

/// Class ids (the methods' own are in [`Method::ids`]).
pub mod class {
    /// basic: the one class with content.
    pub const BASIC: u16 = 60;
}

/// `exchange.declare` arguments.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExchangeDeclare {
    pub exchange: String,
    pub kind: String,
    pub passive: bool,
    pub durable: bool,
    pub auto_delete: bool,
    pub internal: bool,
    pub no_wait: bool,
    pub arguments: FieldTable,
}

/// `queue.declare` arguments.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueueDeclare {
    pub queue: String,
    pub passive: bool,
    pub durable: bool,
    pub exclusive: bool,
    pub auto_delete: bool,
    pub no_wait: bool,
    pub arguments: FieldTable,
}

/// `queue.bind` and `queue.unbind` arguments (unbind has no no-wait).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueueBind {
    pub queue: String,
    pub exchange: String,
    pub routing_key: String,
    pub no_wait: bool,
    pub arguments: FieldTable,
}

/// `basic.consume` arguments.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BasicConsume {
    pub queue: String,
    pub consumer_tag: String,
    pub no_local: bool,
    pub no_ack: bool,
    pub exclusive: bool,
    pub no_wait: bool,
    pub arguments: FieldTable,
}

/// `basic.deliver` and `basic.get-ok` share these.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Delivery {
    pub delivery_tag: u64,
    pub redelivered: bool,
    pub exchange: String,
    pub routing_key: String,
}

/// One method with its arguments. Field names follow the spec (with `-` as `_`).
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq)]
pub enum Method {
    ConnectionStart {
        version_major: u8,
        version_minor: u8,
        server_properties: FieldTable,
        mechanisms: Bytes,
        locales: Bytes,
    },
    ConnectionStartOk {
        client_properties: FieldTable,
        mechanism: String,
        response: Bytes,
        locale: String,
    },
    ConnectionSecure {
        challenge: Bytes,
    },
    ConnectionSecureOk {
        response: Bytes,
    },
    ConnectionTune {
        channel_max: u16,
        frame_max: u32,
        heartbeat: u16,
    },
    ConnectionTuneOk {
        channel_max: u16,
        frame_max: u32,
        heartbeat: u16,
    },
    ConnectionOpen {
        virtual_host: String,
    },
    ConnectionOpenOk,
    ConnectionClose {
        reply_code: u16,
        reply_text: String,
        class_id: u16,
        method_id: u16,
    },
    ConnectionCloseOk,
    ConnectionBlocked {
        reason: String,
    },
    ConnectionUnblocked,
    ChannelOpen,
    ChannelOpenOk,
    ChannelFlow {
        active: bool,
    },
    ChannelFlowOk {
        active: bool,
    },
    ChannelClose {
        reply_code: u16,
        reply_text: String,
        class_id: u16,
        method_id: u16,
    },
    ChannelCloseOk,
    ExchangeDeclare(ExchangeDeclare),
    ExchangeDeclareOk,
    ExchangeDelete {
        exchange: String,
        if_unused: bool,
        no_wait: bool,
    },
    ExchangeDeleteOk,
    ExchangeBind {
        destination: String,
        source: String,
        routing_key: String,
        no_wait: bool,
        arguments: FieldTable,
    },
    ExchangeBindOk,
    ExchangeUnbind {
        destination: String,
        source: String,
        routing_key: String,
        no_wait: bool,
        arguments: FieldTable,
    },
    ExchangeUnbindOk,
    QueueDeclare(QueueDeclare),
    QueueDeclareOk {
        queue: String,
        message_count: u32,
        consumer_count: u32,
    },
    QueueBind(QueueBind),
    QueueBindOk,
    QueuePurge {
        queue: String,
        no_wait: bool,
    },
    QueuePurgeOk {
        message_count: u32,
    },
    QueueDelete {
        queue: String,
        if_unused: bool,
        if_empty: bool,
        no_wait: bool,
    },
    QueueDeleteOk {
        message_count: u32,
    },
    QueueUnbind(QueueBind),
    QueueUnbindOk,
    BasicQos {
        prefetch_size: u32,
        prefetch_count: u16,
        global: bool,
    },
    BasicQosOk,
    BasicConsume(BasicConsume),
    BasicConsumeOk {
        consumer_tag: String,
    },
    BasicCancel {
        consumer_tag: String,
        no_wait: bool,
    },
    BasicCancelOk {
        consumer_tag: String,
    },
    BasicPublish {
        exchange: String,
        routing_key: String,
        mandatory: bool,
        immediate: bool,
    },
    BasicReturn {
        reply_code: u16,
        reply_text: String,
        exchange: String,
        routing_key: String,
    },
    BasicDeliver {
        consumer_tag: String,
        delivery: Delivery,
    },
    BasicGet {
        queue: String,
        no_ack: bool,
    },
    BasicGetOk {
        delivery: Delivery,
        message_count: u32,
    },
    BasicGetEmpty,
    BasicAck {
        delivery_tag: u64,
        multiple: bool,
    },
    BasicReject {
        delivery_tag: u64,
        requeue: bool,
    },
    BasicRecoverAsync {
        requeue: bool,
    },
    BasicRecover {
        requeue: bool,
    },
    BasicRecoverOk,
    BasicNack {
        delivery_tag: u64,
        multiple: bool,
        requeue: bool,
    },
    ConfirmSelect {
        no_wait: bool,
    },
    ConfirmSelectOk,
    TxSelect,
    TxSelectOk,
    TxCommit,
    TxCommitOk,
    TxRollback,
    TxRollbackOk,
}

/// Why a method payload was refused: an unknown class or method (with the ids, for the reply),
/// or bad arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MethodError {
    /// A class id the spec does not define.
    UnknownClass(u16, u16),
    /// A method id its class does not define.
    UnknownMethod(u16, u16),
    /// The arguments do not decode.
    Syntax(u16, u16, String),
}

impl From<CodecError> for MethodError {
    fn from(e: CodecError) -> Self {
        MethodError::Syntax(0, 0, e.0)
    }
}

impl Method {
    /// The (class, method) ids.
    pub fn ids(&self) -> (u16, u16) {
        use Method::*;
        match self {
            ConnectionStart { .. } => (10, 10),
            ConnectionStartOk { .. } => (10, 11),
            ConnectionSecure { .. } => (10, 20),
            ConnectionSecureOk { .. } => (10, 21),
            ConnectionTune { .. } => (10, 30),
            ConnectionTuneOk { .. } => (10, 31),
            ConnectionOpen { .. } => (10, 40),
            ConnectionOpenOk => (10, 41),
            ConnectionClose { .. } => (10, 50),
            ConnectionCloseOk => (10, 51),
            ConnectionBlocked { .. } => (10, 60),
            ConnectionUnblocked => (10, 61),
            ChannelOpen => (20, 10),
            ChannelOpenOk => (20, 11),
            ChannelFlow { .. } => (20, 20),
            ChannelFlowOk { .. } => (20, 21),
            ChannelClose { .. } => (20, 40),
            ChannelCloseOk => (20, 41),
            ExchangeDeclare(_) => (40, 10),
            ExchangeDeclareOk => (40, 11),
            ExchangeDelete { .. } => (40, 20),
            ExchangeDeleteOk => (40, 21),
            ExchangeBind { .. } => (40, 30),
            ExchangeBindOk => (40, 31),
            ExchangeUnbind { .. } => (40, 40),
            ExchangeUnbindOk => (40, 51),
            QueueDeclare(_) => (50, 10),
            QueueDeclareOk { .. } => (50, 11),
            QueueBind(_) => (50, 20),
            QueueBindOk => (50, 21),
            QueuePurge { .. } => (50, 30),
            QueuePurgeOk { .. } => (50, 31),
            QueueDelete { .. } => (50, 40),
            QueueDeleteOk { .. } => (50, 41),
            QueueUnbind(_) => (50, 50),
            QueueUnbindOk => (50, 51),
            BasicQos { .. } => (60, 10),
            BasicQosOk => (60, 11),
            BasicConsume(_) => (60, 20),
            BasicConsumeOk { .. } => (60, 21),
            BasicCancel { .. } => (60, 30),
            BasicCancelOk { .. } => (60, 31),
            BasicPublish { .. } => (60, 40),
            BasicReturn { .. } => (60, 50),
            BasicDeliver { .. } => (60, 60),
            BasicGet { .. } => (60, 70),
            BasicGetOk { .. } => (60, 71),
            BasicGetEmpty => (60, 72),
            BasicAck { .. } => (60, 80),
            BasicReject { .. } => (60, 90),
            BasicRecoverAsync { .. } => (60, 100),
            BasicRecover { .. } => (60, 110),
            BasicRecoverOk => (60, 111),
            BasicNack { .. } => (60, 120),
            ConfirmSelect { .. } => (85, 10),
            ConfirmSelectOk => (85, 11),
            TxSelect => (90, 10),
            TxSelectOk => (90, 11),
            TxCommit => (90, 20),
            TxCommitOk => (90, 21),
            TxRollback => (90, 30),
            TxRollbackOk => (90, 31),
        }
    }

    /// True for methods that carry content (a header and body frames follow).
    pub fn has_content(&self) -> bool {
        matches!(
            self,
            Method::BasicPublish { .. }
                | Method::BasicReturn { .. }
                | Method::BasicDeliver { .. }
                | Method::BasicGetOk { .. }
        )
    }

    /// Decodes a method frame's payload.
    pub fn decode(payload: &[u8]) -> Result<Method, MethodError> {
        let mut r = Reader::new(payload);
        let class = r.u16().map_err(|e| MethodError::Syntax(0, 0, e.0))?;
        let method = r.u16().map_err(|e| MethodError::Syntax(class, 0, e.0))?;
        let known_class = matches!(class, 10 | 20 | 40 | 50 | 60 | 85 | 90);
        let decoded = decode_args(class, method, &mut r).map_err(|e| MethodError::Syntax(class, method, e.0))?;
        match decoded {
            Some(m) => Ok(m),
            None if known_class => Err(MethodError::UnknownMethod(class, method)),
            None => Err(MethodError::UnknownClass(class, method)),
        }
    }

    /// Encodes the method as a frame payload.
    pub fn encode(&self) -> Bytes {
        use Method::*;
        let mut w = Writer::new();
        let (class, method) = self.ids();
        w.u16(class).u16(method);
        match self {
            ConnectionStart { version_major, version_minor, server_properties, mechanisms, locales } => {
                w.u8(*version_major).u8(*version_minor).table(server_properties).longstr(mechanisms).longstr(locales);
            }
            ConnectionStartOk { client_properties, mechanism, response, locale } => {
                w.table(client_properties).shortstr(mechanism).longstr(response).shortstr(locale);
            }
            ConnectionSecure { challenge } => {
                w.longstr(challenge);
            }
            ConnectionSecureOk { response } => {
                w.longstr(response);
            }
            ConnectionTune { channel_max, frame_max, heartbeat }
            | ConnectionTuneOk { channel_max, frame_max, heartbeat } => {
                w.u16(*channel_max).u32(*frame_max).u16(*heartbeat);
            }
            ConnectionOpen { virtual_host } => {
                w.shortstr(virtual_host).shortstr("").bit(false);
            }
            ConnectionOpenOk => {
                w.shortstr("");
            }
            ConnectionClose { reply_code, reply_text, class_id, method_id }
            | ChannelClose { reply_code, reply_text, class_id, method_id } => {
                w.u16(*reply_code).shortstr(reply_text).u16(*class_id).u16(*method_id);
            }
            ConnectionBlocked { reason } => {
                w.shortstr(reason);
            }
            ChannelOpen => {
                w.shortstr("");
            }
            ChannelOpenOk => {
                w.longstr(b"");
            }
            ChannelFlow { active } | ChannelFlowOk { active } => {
                w.bit(*active);
            }
            ExchangeDeclare(d) => {
                w.u16(0).shortstr(&d.exchange).shortstr(&d.kind);
                w.bit(d.passive).bit(d.durable).bit(d.auto_delete).bit(d.internal).bit(d.no_wait);
                w.table(&d.arguments);
            }
            ExchangeDelete { exchange, if_unused, no_wait } => {
                w.u16(0).shortstr(exchange).bit(*if_unused).bit(*no_wait);
            }
            ExchangeBind { destination, source, routing_key, no_wait, arguments }
            | ExchangeUnbind { destination, source, routing_key, no_wait, arguments } => {
                w.u16(0).shortstr(destination).shortstr(source).shortstr(routing_key).bit(*no_wait).table(arguments);
            }
            QueueDeclare(d) => {
                w.u16(0).shortstr(&d.queue);
                w.bit(d.passive).bit(d.durable).bit(d.exclusive).bit(d.auto_delete).bit(d.no_wait);
                w.table(&d.arguments);
            }
            QueueDeclareOk { queue, message_count, consumer_count } => {
                w.shortstr(queue).u32(*message_count).u32(*consumer_count);
            }
            QueueBind(b) => {
                w.u16(0)
                    .shortstr(&b.queue)
                    .shortstr(&b.exchange)
                    .shortstr(&b.routing_key)
                    .bit(b.no_wait)
                    .table(&b.arguments);
            }
            QueueUnbind(b) => {
                w.u16(0).shortstr(&b.queue).shortstr(&b.exchange).shortstr(&b.routing_key).table(&b.arguments);
            }
            QueuePurge { queue, no_wait } => {
                w.u16(0).shortstr(queue).bit(*no_wait);
            }
            QueuePurgeOk { message_count } | QueueDeleteOk { message_count } => {
                w.u32(*message_count);
            }
            QueueDelete { queue, if_unused, if_empty, no_wait } => {
                w.u16(0).shortstr(queue).bit(*if_unused).bit(*if_empty).bit(*no_wait);
            }
            BasicQos { prefetch_size, prefetch_count, global } => {
                w.u32(*prefetch_size).u16(*prefetch_count).bit(*global);
            }
            BasicConsume(c) => {
                w.u16(0).shortstr(&c.queue).shortstr(&c.consumer_tag);
                w.bit(c.no_local).bit(c.no_ack).bit(c.exclusive).bit(c.no_wait).table(&c.arguments);
            }
            BasicConsumeOk { consumer_tag } | BasicCancelOk { consumer_tag } => {
                w.shortstr(consumer_tag);
            }
            BasicCancel { consumer_tag, no_wait } => {
                w.shortstr(consumer_tag).bit(*no_wait);
            }
            BasicPublish { exchange, routing_key, mandatory, immediate } => {
                w.u16(0).shortstr(exchange).shortstr(routing_key).bit(*mandatory).bit(*immediate);
            }
            BasicReturn { reply_code, reply_text, exchange, routing_key } => {
                w.u16(*reply_code).shortstr(reply_text).shortstr(exchange).shortstr(routing_key);
            }
            BasicDeliver { consumer_tag, delivery } => {
                w.shortstr(consumer_tag).u64(delivery.delivery_tag).bit(delivery.redelivered);
                w.shortstr(&delivery.exchange).shortstr(&delivery.routing_key);
            }
            BasicGet { queue, no_ack } => {
                w.u16(0).shortstr(queue).bit(*no_ack);
            }
            BasicGetOk { delivery, message_count } => {
                w.u64(delivery.delivery_tag).bit(delivery.redelivered);
                w.shortstr(&delivery.exchange).shortstr(&delivery.routing_key).u32(*message_count);
            }
            BasicGetEmpty => {
                w.shortstr("");
            }
            BasicAck { delivery_tag, multiple } => {
                w.u64(*delivery_tag).bit(*multiple);
            }
            BasicReject { delivery_tag, requeue } => {
                w.u64(*delivery_tag).bit(*requeue);
            }
            BasicRecoverAsync { requeue } | BasicRecover { requeue } => {
                w.bit(*requeue);
            }
            BasicNack { delivery_tag, multiple, requeue } => {
                w.u64(*delivery_tag).bit(*multiple).bit(*requeue);
            }
            ConfirmSelect { no_wait } => {
                w.bit(*no_wait);
            }
            // No arguments.
            ConnectionCloseOk | ConnectionUnblocked | ChannelCloseOk | ExchangeDeclareOk | ExchangeDeleteOk
            | ExchangeBindOk | ExchangeUnbindOk | QueueBindOk | QueueUnbindOk | BasicQosOk | BasicRecoverOk
            | ConfirmSelectOk | TxSelect | TxSelectOk | TxCommit | TxCommitOk | TxRollback | TxRollbackOk => {}
        }
        w.finish()
    }
}

fn decode_args(class: u16, method: u16, r: &mut Reader<'_>) -> Result<Option<Method>, CodecError> {
    use Method::*;
    Ok(Some(match (class, method) {
        (10, 10) => ConnectionStart {
            version_major: r.u8()?,
            version_minor: r.u8()?,
            server_properties: r.table()?,
            mechanisms: r.longstr()?,
            locales: r.longstr()?,
        },
        (10, 11) => ConnectionStartOk {
            client_properties: r.table()?,
            mechanism: r.shortstr()?,
            response: r.longstr()?,
            locale: r.shortstr()?,
        },
        (10, 20) => ConnectionSecure { challenge: r.longstr()? },
        (10, 21) => ConnectionSecureOk { response: r.longstr()? },
        (10, 30) => ConnectionTune { channel_max: r.u16()?, frame_max: r.u32()?, heartbeat: r.u16()? },
        (10, 31) => ConnectionTuneOk { channel_max: r.u16()?, frame_max: r.u32()?, heartbeat: r.u16()? },
        (10, 40) => {
            let virtual_host = r.shortstr()?;
            r.shortstr_bytes()?;
            r.bit()?;
            ConnectionOpen { virtual_host }
        }
        (10, 41) => {
            r.shortstr_bytes()?;
            ConnectionOpenOk
        }
        (10, 50) => ConnectionClose {
            reply_code: r.u16()?,
            reply_text: lossy(r.shortstr_bytes()?),
            class_id: r.u16()?,
            method_id: r.u16()?,
        },
        (10, 51) => ConnectionCloseOk,
        (10, 60) => ConnectionBlocked { reason: lossy(r.shortstr_bytes()?) },
        (10, 61) => ConnectionUnblocked,
        (20, 10) => {
            r.shortstr_bytes()?;
            ChannelOpen
        }
        (20, 11) => {
            r.longstr()?;
            ChannelOpenOk
        }
        (20, 20) => ChannelFlow { active: r.bit()? },
        (20, 21) => ChannelFlowOk { active: r.bit()? },
        (20, 40) => ChannelClose {
            reply_code: r.u16()?,
            reply_text: lossy(r.shortstr_bytes()?),
            class_id: r.u16()?,
            method_id: r.u16()?,
        },
        (20, 41) => ChannelCloseOk,
        (40, 10) => {
            r.u16()?;
            let exchange = r.shortstr()?;
            let kind = r.shortstr()?;
            let (passive, durable, auto_delete, internal, no_wait) = (r.bit()?, r.bit()?, r.bit()?, r.bit()?, r.bit()?);
            ExchangeDeclare(self::ExchangeDeclare {
                exchange,
                kind,
                passive,
                durable,
                auto_delete,
                internal,
                no_wait,
                arguments: r.table()?,
            })
        }
        (40, 11) => ExchangeDeclareOk,
        (40, 20) => {
            r.u16()?;
            ExchangeDelete { exchange: r.shortstr()?, if_unused: r.bit()?, no_wait: r.bit()? }
        }
        (40, 21) => ExchangeDeleteOk,
        (40, 30) | (40, 40) => {
            r.u16()?;
            let (destination, source, routing_key) = (r.shortstr()?, r.shortstr()?, r.shortstr()?);
            let (no_wait, arguments) = (r.bit()?, r.table()?);
            if method == 30 {
                ExchangeBind { destination, source, routing_key, no_wait, arguments }
            } else {
                ExchangeUnbind { destination, source, routing_key, no_wait, arguments }
            }
        }
        (40, 31) => ExchangeBindOk,
        (40, 51) => ExchangeUnbindOk,
        (50, 10) => {
            r.u16()?;
            let queue = r.shortstr()?;
            let (passive, durable, exclusive, auto_delete, no_wait) =
                (r.bit()?, r.bit()?, r.bit()?, r.bit()?, r.bit()?);
            QueueDeclare(self::QueueDeclare {
                queue,
                passive,
                durable,
                exclusive,
                auto_delete,
                no_wait,
                arguments: r.table()?,
            })
        }
        (50, 11) => QueueDeclareOk { queue: r.shortstr()?, message_count: r.u32()?, consumer_count: r.u32()? },
        (50, 20) => {
            r.u16()?;
            QueueBind(self::QueueBind {
                queue: r.shortstr()?,
                exchange: r.shortstr()?,
                routing_key: r.shortstr()?,
                no_wait: r.bit()?,
                arguments: r.table()?,
            })
        }
        (50, 21) => QueueBindOk,
        (50, 30) => {
            r.u16()?;
            QueuePurge { queue: r.shortstr()?, no_wait: r.bit()? }
        }
        (50, 31) => QueuePurgeOk { message_count: r.u32()? },
        (50, 40) => {
            r.u16()?;
            QueueDelete { queue: r.shortstr()?, if_unused: r.bit()?, if_empty: r.bit()?, no_wait: r.bit()? }
        }
        (50, 41) => QueueDeleteOk { message_count: r.u32()? },
        (50, 50) => {
            r.u16()?;
            QueueUnbind(self::QueueBind {
                queue: r.shortstr()?,
                exchange: r.shortstr()?,
                routing_key: r.shortstr()?,
                no_wait: false,
                arguments: r.table()?,
            })
        }
        (50, 51) => QueueUnbindOk,
        (60, 10) => BasicQos { prefetch_size: r.u32()?, prefetch_count: r.u16()?, global: r.bit()? },
        (60, 11) => BasicQosOk,
        (60, 20) => {
            r.u16()?;
            let (queue, consumer_tag) = (r.shortstr()?, r.shortstr()?);
            let (no_local, no_ack, exclusive, no_wait) = (r.bit()?, r.bit()?, r.bit()?, r.bit()?);
            BasicConsume(self::BasicConsume {
                queue,
                consumer_tag,
                no_local,
                no_ack,
                exclusive,
                no_wait,
                arguments: r.table()?,
            })
        }
        (60, 21) => BasicConsumeOk { consumer_tag: r.shortstr()? },
        (60, 30) => BasicCancel { consumer_tag: r.shortstr()?, no_wait: r.bit()? },
        (60, 31) => BasicCancelOk { consumer_tag: r.shortstr()? },
        (60, 40) => {
            r.u16()?;
            BasicPublish {
                exchange: r.shortstr()?,
                routing_key: r.shortstr()?,
                mandatory: r.bit()?,
                immediate: r.bit()?,
            }
        }
        (60, 50) => BasicReturn {
            reply_code: r.u16()?,
            reply_text: lossy(r.shortstr_bytes()?),
            exchange: r.shortstr()?,
            routing_key: r.shortstr()?,
        },
        (60, 60) => BasicDeliver {
            consumer_tag: r.shortstr()?,
            delivery: Delivery {
                delivery_tag: r.u64()?,
                redelivered: r.bit()?,
                exchange: r.shortstr()?,
                routing_key: r.shortstr()?,
            },
        },
        (60, 70) => {
            r.u16()?;
            BasicGet { queue: r.shortstr()?, no_ack: r.bit()? }
        }
        (60, 71) => BasicGetOk {
            delivery: Delivery {
                delivery_tag: r.u64()?,
                redelivered: r.bit()?,
                exchange: r.shortstr()?,
                routing_key: r.shortstr()?,
            },
            message_count: r.u32()?,
        },
        (60, 72) => {
            r.shortstr_bytes()?;
            BasicGetEmpty
        }
        (60, 80) => BasicAck { delivery_tag: r.u64()?, multiple: r.bit()? },
        (60, 90) => BasicReject { delivery_tag: r.u64()?, requeue: r.bit()? },
        (60, 100) => BasicRecoverAsync { requeue: r.bit()? },
        (60, 110) => BasicRecover { requeue: r.bit()? },
        (60, 111) => BasicRecoverOk,
        (60, 120) => BasicNack { delivery_tag: r.u64()?, multiple: r.bit()?, requeue: r.bit()? },
        (85, 10) => ConfirmSelect { no_wait: r.bit()? },
        (85, 11) => ConfirmSelectOk,
        (90, 10) => TxSelect,
        (90, 11) => TxSelectOk,
        (90, 20) => TxCommit,
        (90, 21) => TxCommitOk,
        (90, 30) => TxRollback,
        (90, 31) => TxRollbackOk,
        _ => return Ok(None),
    }))
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::amqp::codec::FieldValue;

    fn every_method() -> Vec<Method> {
        use Method::*;
        let mut args = FieldTable::default();
        args.insert("x-message-ttl", FieldValue::I32(1000));
        let delivery =
            Delivery { delivery_tag: 7, redelivered: true, exchange: "ex".into(), routing_key: "a.b".into() };
        vec![
            ConnectionStart {
                version_major: 0,
                version_minor: 9,
                server_properties: args.clone(),
                mechanisms: Bytes::from_static(b"PLAIN"),
                locales: Bytes::from_static(b"en_US"),
            },
            ConnectionStartOk {
                client_properties: args.clone(),
                mechanism: "PLAIN".into(),
                response: Bytes::from_static(b"\0u\0p"),
                locale: "en_US".into(),
            },
            ConnectionSecure { challenge: Bytes::from_static(b"c") },
            ConnectionSecureOk { response: Bytes::from_static(b"r") },
            ConnectionTune { channel_max: 2047, frame_max: 131072, heartbeat: 60 },
            ConnectionTuneOk { channel_max: 10, frame_max: 4096, heartbeat: 0 },
            ConnectionOpen { virtual_host: "/".into() },
            ConnectionOpenOk,
            ConnectionClose { reply_code: 320, reply_text: "bye".into(), class_id: 0, method_id: 0 },
            ConnectionCloseOk,
            ConnectionBlocked { reason: "disk".into() },
            ConnectionUnblocked,
            ChannelOpen,
            ChannelOpenOk,
            ChannelFlow { active: false },
            ChannelFlowOk { active: true },
            ChannelClose { reply_code: 404, reply_text: "NOT_FOUND".into(), class_id: 50, method_id: 10 },
            ChannelCloseOk,
            ExchangeDeclare(self::ExchangeDeclare {
                exchange: "logs".into(),
                kind: "topic".into(),
                durable: true,
                internal: true,
                arguments: args.clone(),
                ..Default::default()
            }),
            ExchangeDeclareOk,
            ExchangeDelete { exchange: "logs".into(), if_unused: true, no_wait: false },
            ExchangeDeleteOk,
            ExchangeBind {
                destination: "d".into(),
                source: "s".into(),
                routing_key: "k".into(),
                no_wait: true,
                arguments: args.clone(),
            },
            ExchangeBindOk,
            ExchangeUnbind {
                destination: "d".into(),
                source: "s".into(),
                routing_key: "k".into(),
                no_wait: false,
                arguments: FieldTable::default(),
            },
            ExchangeUnbindOk,
            QueueDeclare(self::QueueDeclare {
                queue: "q".into(),
                durable: true,
                exclusive: true,
                no_wait: true,
                arguments: args.clone(),
                ..Default::default()
            }),
            QueueDeclareOk { queue: "q".into(), message_count: 3, consumer_count: 1 },
            QueueBind(self::QueueBind {
                queue: "q".into(),
                exchange: "e".into(),
                routing_key: "#".into(),
                no_wait: false,
                arguments: args.clone(),
            }),
            QueueBindOk,
            QueuePurge { queue: "q".into(), no_wait: false },
            QueuePurgeOk { message_count: 9 },
            QueueDelete { queue: "q".into(), if_unused: false, if_empty: true, no_wait: false },
            QueueDeleteOk { message_count: 2 },
            QueueUnbind(self::QueueBind {
                queue: "q".into(),
                exchange: "e".into(),
                routing_key: "k".into(),
                no_wait: false,
                arguments: FieldTable::default(),
            }),
            QueueUnbindOk,
            BasicQos { prefetch_size: 0, prefetch_count: 10, global: true },
            BasicQosOk,
            BasicConsume(self::BasicConsume {
                queue: "q".into(),
                consumer_tag: "c1".into(),
                no_ack: true,
                exclusive: true,
                ..Default::default()
            }),
            BasicConsumeOk { consumer_tag: "c1".into() },
            BasicCancel { consumer_tag: "c1".into(), no_wait: true },
            BasicCancelOk { consumer_tag: "c1".into() },
            BasicPublish { exchange: "".into(), routing_key: "q".into(), mandatory: true, immediate: false },
            BasicReturn {
                reply_code: 312,
                reply_text: "NO_ROUTE".into(),
                exchange: "e".into(),
                routing_key: "k".into(),
            },
            BasicDeliver { consumer_tag: "c1".into(), delivery: delivery.clone() },
            BasicGet { queue: "q".into(), no_ack: false },
            BasicGetOk { delivery, message_count: 4 },
            BasicGetEmpty,
            BasicAck { delivery_tag: u64::MAX, multiple: true },
            BasicReject { delivery_tag: 1, requeue: true },
            BasicRecoverAsync { requeue: true },
            BasicRecover { requeue: false },
            BasicRecoverOk,
            BasicNack { delivery_tag: 5, multiple: false, requeue: true },
            ConfirmSelect { no_wait: false },
            ConfirmSelectOk,
            TxSelect,
            TxSelectOk,
            TxCommit,
            TxCommitOk,
            TxRollback,
            TxRollbackOk,
        ]
    }

    #[test]
    fn every_method_round_trips() {
        for m in every_method() {
            let bytes = m.encode();
            assert_eq!(Method::decode(&bytes), Ok(m.clone()), "{m:?}");
            // Every prefix short of the whole is an error, never a panic.
            for cut in 0..bytes.len() {
                let cut_decoded = Method::decode(&bytes[..cut]);
                if let Ok(other) = &cut_decoded {
                    // Trailing bits and tables can be cut only where the spec's layout ends.
                    assert!(bytes.len() - cut <= 5, "{m:?} cut at {cut} decoded as {other:?}");
                }
            }
        }
    }

    #[test]
    fn layouts_follow_the_spec() {
        // basic.publish: class 60, method 40, reserved short, exchange, routing key, bits.
        let publish =
            Method::BasicPublish { exchange: "e".into(), routing_key: "rk".into(), mandatory: true, immediate: false };
        assert_eq!(&publish.encode()[..], &[0, 60, 0, 40, 0, 0, 1, b'e', 2, b'r', b'k', 0b01]);
        // basic.ack: tag as a long long, multiple bit.
        assert_eq!(
            &Method::BasicAck { delivery_tag: 2, multiple: true }.encode()[..],
            &[0, 60, 0, 80, 0, 0, 0, 0, 0, 0, 0, 2, 1]
        );
        // queue.declare: passive, durable, exclusive, auto-delete, no-wait packed in one octet.
        let declare = Method::QueueDeclare(QueueDeclare {
            queue: "q".into(),
            durable: true,
            auto_delete: true,
            ..Default::default()
        });
        assert_eq!(&declare.encode()[..], &[0, 50, 0, 10, 0, 0, 1, b'q', 0b1010, 0, 0, 0, 0]);
        assert_eq!(Method::decode(&[0, 99, 0, 1]), Err(MethodError::UnknownClass(99, 1)));
        assert_eq!(Method::decode(&[0, 60, 0, 99]), Err(MethodError::UnknownMethod(60, 99)));
        assert!(matches!(Method::decode(&[0, 60]), Err(MethodError::Syntax(60, 0, _))));
        assert!(Method::BasicPublish {
            exchange: String::new(),
            routing_key: String::new(),
            mandatory: false,
            immediate: false
        }
        .has_content());
        assert!(!Method::BasicAck { delivery_tag: 1, multiple: false }.has_content());
    }
}
