//! One AMQP channel: its methods in order, on a task of its own. Publishes that arrive
//! together are routed and written as one frame (one fsync), then confirmed together; so are
//! acknowledgements. A channel's deliveries (from its consumers and `basic.get`) are in
//! flight in the engine, held as long as the channel lives: when it closes, however it
//! closes, they go back to the head of their queues.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{mpsc, Mutex, Notify};

use super::access::{self, Resource};
use super::arguments;
use super::connection::ConnectionInfo;
use super::consumer::{self, ConsumerHandle};
use super::errors::{code, AmqpError};
use super::message::AmqpMessage;
use super::methods::{BasicConsume, Delivery, ExchangeDeclare, Method, QueueBind, QueueDeclare};
use super::properties::BasicProperties;
use super::Outbox;
use crate::engine::Delivery as EngineDelivery;
use crate::error::Error;
use crate::queue::config::{MAX_MAX_MESSAGE_BYTES, MAX_RETENTION};
use crate::queue::{Queue, QueueConfig};
use crate::server::Shared;
use crate::topic::{Binding, ExchangeDef, ExchangeKind};

/// Most publishes (or acknowledgements) taken from the inbox into one write.
const MAX_BATCH: usize = 256;
/// Most body bytes of publishes in one write.
const MAX_BATCH_BYTES: usize = 4 << 20;

/// What a channel is handed by its connection.
pub(crate) struct ChannelContext {
    pub id: u16,
    pub shared: Arc<Shared>,
    pub connection: Arc<ConnectionInfo>,
    pub outbox: Outbox,
}

/// A command from the connection, in the order the client sent it.
pub(crate) enum Command {
    /// A method without content.
    Method(Method),
    /// A `basic.publish` with its content.
    Publish(Box<Publish>),
}

/// A publish with its content.
pub(crate) struct Publish {
    pub exchange: String,
    pub routing_key: String,
    pub mandatory: bool,
    pub immediate: bool,
    pub properties: BasicProperties,
    pub body: Bytes,
}

/// Why a channel's task ended.
#[derive(Debug)]
pub(crate) enum ChannelExit {
    /// The client closed it: the connection answers close-ok.
    ClientClosed,
    /// The connection dropped it (closing, or gone).
    Dropped,
    /// An exception: a channel close (or a connection close, for hard ones).
    Error(AmqpError),
}

/// One delivery waiting for its acknowledgement.
pub(crate) struct Unacked {
    pub queue: Queue,
    pub handle: String,
    pub consumer: Option<Arc<str>>,
    /// Kept for dead-lettering on a reject.
    pub message: AmqpMessage,
}

/// The deliveries of a channel, shared with its consumers.
#[derive(Default)]
pub(crate) struct Deliveries {
    pub next_tag: u64,
    pub unacked: BTreeMap<u64, Unacked>,
    /// Unacknowledged deliveries per consumer (for its prefetch).
    pub per_consumer: HashMap<Arc<str>, u32>,
    /// Set when the channel ends: consumers deliver nothing more.
    pub closed: bool,
}

/// What a channel shares with its consumers.
pub(crate) struct Core {
    pub id: u16,
    pub outbox: Outbox,
    pub shared: Arc<Shared>,
    pub deliveries: Mutex<Deliveries>,
    /// Woken when deliveries are acknowledged (room under a prefetch) or flow resumes.
    pub room: Notify,
    /// `basic.qos` with `global`: the channel's limit (0: none).
    pub global_prefetch: AtomicU32,
    /// `channel.flow`: deliveries paused while false.
    pub flow: AtomicBool,
}

impl Core {
    /// How many more deliveries a consumer with `prefetch` may get now.
    pub fn room_for(&self, d: &Deliveries, consumer: &Arc<str>, prefetch: u32) -> u32 {
        if !self.flow.load(Ordering::SeqCst) || d.closed {
            return 0;
        }
        let mut room = u32::MAX;
        if prefetch > 0 {
            room = prefetch.saturating_sub(d.per_consumer.get(consumer).copied().unwrap_or(0));
        }
        let global = self.global_prefetch.load(Ordering::SeqCst);
        if global > 0 {
            room = room.min(global.saturating_sub(d.unacked.len() as u32));
        }
        room
    }

    /// Registers a delivery and returns its tag (0 for a delivery that needs no ack).
    pub fn register(&self, d: &mut Deliveries, unacked: Option<Unacked>) -> u64 {
        d.next_tag += 1;
        let tag = d.next_tag;
        if let Some(u) = unacked {
            if let Some(c) = &u.consumer {
                *d.per_consumer.entry(Arc::clone(c)).or_default() += 1;
            }
            d.unacked.insert(tag, u);
        }
        tag
    }
}

/// Publishes waiting for a commit, and acknowledgements too (`tx.select`).
#[derive(Default)]
struct Transaction {
    publishes: Vec<Publish>,
    /// (method, in order): ack, nack and reject.
    settlements: Vec<Method>,
}

struct Channel {
    ctx: ChannelContext,
    core: Arc<Core>,
    consumers: HashMap<String, ConsumerHandle>,
    /// Confirm mode: the sequence number of the last publish.
    confirm: Option<u64>,
    tx: Option<Transaction>,
    /// `basic.qos` without `global`: the prefetch of consumers started from now on.
    consumer_prefetch: u32,
    /// The last queue declared (an empty queue name means it).
    last_queue: Option<String>,
    /// A command read ahead while gathering a batch.
    stash: Option<Command>,
}

/// Serves a channel until it closes; then its consumers stop and its deliveries go back.
pub(crate) async fn run(ctx: ChannelContext, mut commands: mpsc::Receiver<Command>) -> ChannelExit {
    let core = Arc::new(Core {
        id: ctx.id,
        outbox: ctx.outbox.clone(),
        shared: Arc::clone(&ctx.shared),
        deliveries: Mutex::new(Deliveries::default()),
        room: Notify::new(),
        global_prefetch: AtomicU32::new(0),
        flow: AtomicBool::new(true),
    });
    let mut channel = Channel {
        ctx,
        core,
        consumers: HashMap::new(),
        confirm: None,
        tx: None,
        consumer_prefetch: 0,
        last_queue: None,
        stash: None,
    };
    let exit = channel.serve(&mut commands).await;
    channel.shutdown().await;
    exit
}

impl Channel {
    async fn serve(&mut self, commands: &mut mpsc::Receiver<Command>) -> ChannelExit {
        loop {
            let command = match self.stash.take() {
                Some(c) => c,
                None => match commands.recv().await {
                    Some(c) => c,
                    None => return ChannelExit::Dropped,
                },
            };
            let outcome = match command {
                Command::Publish(first) => {
                    let batch = self.gather_publishes(*first, commands);
                    self.publish(batch).await
                }
                Command::Method(Method::ChannelClose { .. }) => return ChannelExit::ClientClosed,
                Command::Method(
                    m @ (Method::BasicAck { .. } | Method::BasicNack { .. } | Method::BasicReject { .. }),
                ) => {
                    let batch = self.gather_settlements(m, commands);
                    self.settle_all(batch).await
                }
                Command::Method(m) => {
                    let ids = m.ids();
                    self.method(m).await.map_err(|e| if e.class_id == 0 { e.on(ids) } else { e })
                }
            };
            if let Err(e) = outcome {
                return ChannelExit::Error(e);
            }
        }
    }

    /// The publishes waiting right behind `first`, up to a batch.
    fn gather_publishes(&mut self, first: Publish, commands: &mut mpsc::Receiver<Command>) -> Vec<Publish> {
        let mut bytes = first.body.len();
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
            match commands.try_recv() {
                Ok(Command::Publish(p)) => {
                    bytes += p.body.len();
                    batch.push(*p);
                }
                Ok(other) => {
                    self.stash = Some(other);
                    break;
                }
                Err(_) => break,
            }
        }
        batch
    }

    /// The acknowledgements (acks, nacks, rejects) waiting right behind `first`.
    fn gather_settlements(&mut self, first: Method, commands: &mut mpsc::Receiver<Command>) -> Vec<Method> {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH * 16 {
            match commands.try_recv() {
                Ok(Command::Method(
                    m @ (Method::BasicAck { .. } | Method::BasicNack { .. } | Method::BasicReject { .. }),
                )) => batch.push(m),
                Ok(other) => {
                    self.stash = Some(other);
                    break;
                }
                Err(_) => break,
            }
        }
        batch
    }

    async fn reply(&self, method: Method) {
        self.ctx.outbox.method(self.ctx.id, &method).await;
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&crate::Engine) -> T + Send + 'static,
    ) -> Result<T, AmqpError> {
        self.ctx.shared.blocking(f).await.map_err(|e| AmqpError::new(code::INTERNAL_ERROR, e.0))
    }

    async fn authorize(&self, action: &'static str, resource: Resource<'_>) -> Result<(), AmqpError> {
        access::check(&self.ctx.shared, &self.ctx.connection.principal, action, resource).await
    }

    async fn method(&mut self, method: Method) -> Result<(), AmqpError> {
        match method {
            Method::ExchangeDeclare(d) => self.exchange_declare(d).await,
            Method::ExchangeDelete { exchange, if_unused, no_wait } => {
                self.exchange_delete(exchange, if_unused, no_wait).await
            }
            Method::QueueDeclare(d) => self.queue_declare(d).await,
            Method::QueueBind(b) => self.queue_bind(b, true).await,
            Method::QueueUnbind(b) => self.queue_bind(b, false).await,
            Method::QueuePurge { queue, no_wait } => self.queue_purge(queue, no_wait).await,
            Method::QueueDelete { queue, if_unused, if_empty, no_wait } => {
                self.queue_delete(queue, if_unused, if_empty, no_wait).await
            }
            Method::BasicQos { prefetch_size, prefetch_count, global } => {
                if prefetch_size != 0 {
                    return Err(AmqpError::new(code::NOT_IMPLEMENTED, "prefetch_size!=0 (weir limits by count)"));
                }
                if global {
                    self.core.global_prefetch.store(u32::from(prefetch_count), Ordering::SeqCst);
                } else {
                    self.consumer_prefetch = u32::from(prefetch_count);
                }
                self.core.room.notify_waiters();
                self.reply(Method::BasicQosOk).await;
                Ok(())
            }
            Method::BasicConsume(c) => self.basic_consume(c).await,
            Method::BasicCancel { consumer_tag, no_wait } => {
                self.cancel_consumer(&consumer_tag).await;
                if !no_wait {
                    self.reply(Method::BasicCancelOk { consumer_tag }).await;
                }
                Ok(())
            }
            Method::BasicGet { queue, no_ack } => self.basic_get(queue, no_ack).await,
            Method::BasicRecover { requeue } | Method::BasicRecoverAsync { requeue } => {
                if !requeue {
                    return Err(AmqpError::new(code::NOT_IMPLEMENTED, "basic.recover with requeue=false"));
                }
                let all: Vec<Unacked> =
                    std::mem::take(&mut self.core.deliveries.lock().await.unacked).into_values().collect();
                self.core.deliveries.lock().await.per_consumer.clear();
                self.release(all).await?;
                self.core.room.notify_waiters();
                if matches!(method, Method::BasicRecover { .. }) {
                    self.reply(Method::BasicRecoverOk).await;
                }
                Ok(())
            }
            Method::ConfirmSelect { no_wait } => {
                if self.tx.is_some() {
                    return Err(AmqpError::new(code::PRECONDITION_FAILED, "cannot switch from tx to confirm mode"));
                }
                self.confirm.get_or_insert(0);
                if !no_wait {
                    self.reply(Method::ConfirmSelectOk).await;
                }
                Ok(())
            }
            Method::TxSelect => {
                if self.confirm.is_some() {
                    return Err(AmqpError::new(code::PRECONDITION_FAILED, "cannot switch from confirm to tx mode"));
                }
                self.tx.get_or_insert_with(Transaction::default);
                self.reply(Method::TxSelectOk).await;
                Ok(())
            }
            Method::TxCommit => {
                let Some(tx) = self.tx.as_mut() else {
                    return Err(AmqpError::new(code::PRECONDITION_FAILED, "channel is not transactional"));
                };
                let publishes = std::mem::take(&mut tx.publishes);
                let settlements = std::mem::take(&mut tx.settlements);
                if !publishes.is_empty() {
                    self.route_and_write(publishes).await?;
                }
                if !settlements.is_empty() {
                    self.apply_settlements(settlements).await?;
                }
                self.reply(Method::TxCommitOk).await;
                Ok(())
            }
            Method::TxRollback => {
                let Some(tx) = self.tx.as_mut() else {
                    return Err(AmqpError::new(code::PRECONDITION_FAILED, "channel is not transactional"));
                };
                *tx = Transaction::default();
                self.reply(Method::TxRollbackOk).await;
                Ok(())
            }
            Method::ChannelFlow { active } => {
                self.core.flow.store(active, Ordering::SeqCst);
                self.core.room.notify_waiters();
                self.reply(Method::ChannelFlowOk { active }).await;
                Ok(())
            }
            // The answer to a flow the server never sends, and a close-ok for no close.
            Method::ChannelFlowOk { .. } | Method::ChannelCloseOk => Ok(()),
            Method::ExchangeBind { .. } | Method::ExchangeUnbind { .. } => {
                Err(AmqpError::new(code::NOT_IMPLEMENTED, "exchange-to-exchange bindings"))
            }
            other => {
                Err(AmqpError::new(code::COMMAND_INVALID, "a method a client does not send on a channel")
                    .on(other.ids()))
            }
        }
    }

    // ----- exchanges -----

    async fn exchange_declare(&mut self, d: ExchangeDeclare) -> Result<(), AmqpError> {
        let ids = Method::ExchangeDeclare(ExchangeDeclare::default()).ids();
        if d.exchange.is_empty() {
            return Err(AmqpError::new(code::ACCESS_REFUSED, "operation not permitted on the default exchange"));
        }
        let name = d.exchange.clone();
        let lookup = name.clone();
        let existing = self.blocking(move |e| e.exchange(&lookup)).await?;
        if d.passive {
            self.authorize("sns:GetTopicAttributes", Resource::Exchange(&name)).await?;
            return match existing {
                Ok(_) => {
                    if !d.no_wait {
                        self.reply(Method::ExchangeDeclareOk).await;
                    }
                    Ok(())
                }
                Err(Error::NotFound { .. }) => {
                    Err(AmqpError::new(code::NOT_FOUND, format!("no exchange '{name}' in vhost '/'")))
                }
                Err(e) => Err(e.into()),
            };
        }
        let Some(kind) = ExchangeKind::parse(&d.kind) else {
            return Err(AmqpError::new(code::COMMAND_INVALID, format!("invalid exchange type '{}'", d.kind)).on(ids));
        };
        let def = ExchangeDef { kind, durable: d.durable, auto_delete: d.auto_delete, internal: d.internal };
        match existing {
            Ok(Some(current)) if current != def => {
                let (arg, got, now) = if current.kind != def.kind {
                    ("type", def.kind.name().to_string(), current.kind.name().to_string())
                } else if current.durable != def.durable {
                    ("durable", def.durable.to_string(), current.durable.to_string())
                } else if current.auto_delete != def.auto_delete {
                    ("auto_delete", def.auto_delete.to_string(), current.auto_delete.to_string())
                } else {
                    ("internal", def.internal.to_string(), current.internal.to_string())
                };
                return Err(AmqpError::new(
                    code::PRECONDITION_FAILED,
                    format!("inequivalent arg '{arg}' for exchange '{name}' in vhost '/': received '{got}' but current is '{now}'"),
                ));
            }
            Ok(Some(_)) => {}
            _ if name.starts_with("amq.") => {
                return Err(AmqpError::new(
                    code::ACCESS_REFUSED,
                    format!("exchange name '{name}' contains reserved prefix 'amq.*'"),
                ))
            }
            _ => {
                self.authorize("sns:CreateTopic", Resource::Exchange(&name)).await?;
                let declared = name.clone();
                self.blocking(move |e| e.declare_exchange(&declared, def)).await??;
            }
        }
        if !d.no_wait {
            self.reply(Method::ExchangeDeclareOk).await;
        }
        Ok(())
    }

    async fn exchange_delete(&mut self, name: String, if_unused: bool, no_wait: bool) -> Result<(), AmqpError> {
        if name.is_empty() || name.starts_with("amq.") {
            return Err(AmqpError::new(code::ACCESS_REFUSED, format!("operation not permitted on exchange '{name}'")));
        }
        self.authorize("sns:DeleteTopic", Resource::Exchange(&name)).await?;
        let target = name.clone();
        let outcome = self
            .blocking(move |e| -> Result<bool, Error> {
                match e.bindings(&target) {
                    Ok(b) if if_unused && !b.is_empty() => Ok(false),
                    Ok(_) => e.delete_topic(&target).map(|()| true),
                    // Deleting an exchange that is not there succeeds, as in RabbitMQ.
                    Err(Error::NotFound { .. }) => Ok(true),
                    Err(err) => Err(err),
                }
            })
            .await??;
        if !outcome {
            return Err(AmqpError::new(code::PRECONDITION_FAILED, format!("exchange '{name}' in vhost '/' in use")));
        }
        if !no_wait {
            self.reply(Method::ExchangeDeleteOk).await;
        }
        Ok(())
    }

    // ----- queues -----

    /// The queue an empty name means (the last one declared on this channel).
    fn queue_name(&self, name: String) -> Result<String, AmqpError> {
        if !name.is_empty() {
            return Ok(name);
        }
        self.last_queue.clone().ok_or_else(|| AmqpError::new(code::NOT_FOUND, "no previously declared queue"))
    }

    /// A queue's handle, refusing another connection's exclusive queue.
    async fn queue(&self, name: &str) -> Result<Queue, AmqpError> {
        self.check_owner(name)?;
        let lookup = name.to_string();
        match self.blocking(move |e| e.queue(&lookup)).await? {
            Ok(q) => Ok(q),
            Err(Error::NotFound { .. } | Error::InvalidName { .. }) => {
                Err(AmqpError::new(code::NOT_FOUND, format!("no queue '{name}' in vhost '/'")))
            }
            Err(e) => Err(e.into()),
        }
    }

    fn check_owner(&self, name: &str) -> Result<(), AmqpError> {
        match self.ctx.shared.registry.owner(name) {
            Some(owner) if owner != self.ctx.connection.id => Err(AmqpError::new(
                code::RESOURCE_LOCKED,
                format!("cannot obtain exclusive access to locked queue '{name}' in vhost '/'"),
            )),
            _ => Ok(()),
        }
    }

    async fn queue_declare(&mut self, d: QueueDeclare) -> Result<(), AmqpError> {
        let name =
            if d.queue.is_empty() && !d.passive { server_named("amq.gen-") } else { self.queue_name(d.queue.clone())? };
        if d.passive {
            self.authorize("sqs:GetQueueUrl", Resource::Queue(&name)).await?;
            let queue = self.queue(&name).await?;
            return self.declare_ok(name, queue, d.no_wait).await;
        }
        if name.starts_with("amq.") && !d.queue.is_empty() {
            return Err(AmqpError::new(
                code::ACCESS_REFUSED,
                format!("queue name '{name}' contains reserved prefix 'amq.*'"),
            ));
        }
        let wanted = arguments::queue_options(&name, d.durable, d.exclusive, d.auto_delete, &d.arguments)?;
        self.check_owner(&name)?;
        self.authorize("sqs:CreateQueue", Resource::Queue(&name)).await?;
        let config = QueueConfig {
            max_message_bytes: MAX_MAX_MESSAGE_BYTES,
            retention: MAX_RETENTION,
            broker: Some(wanted.clone()),
            ..QueueConfig::default()
        };
        let created = name.clone();
        let queue = self
            .blocking(move |e| -> Result<Result<Queue, AmqpError>, Error> {
                if let Ok(q) = e.queue(&created) {
                    let a = q.attributes();
                    let current = a.broker.clone().unwrap_or_default();
                    return Ok(match arguments::first_difference(&current, &wanted) {
                        // A queue made through SQS is a durable queue without arguments.
                        None => Ok(q),
                        Some((arg, got, now)) => Err(AmqpError::new(
                            code::PRECONDITION_FAILED,
                            format!("inequivalent arg '{arg}' for queue '{created}' in vhost '/': received {got} but current is {now}"),
                        )),
                    });
                }
                e.create_queue(&created, config)?;
                Ok(Ok(e.queue(&created)?))
            })
            .await??;
        let queue = queue?;
        if d.exclusive {
            self.ctx.shared.registry.set_owner(&name, self.ctx.connection.id);
        }
        self.declare_ok(name, queue, d.no_wait).await
    }

    async fn declare_ok(&mut self, name: String, queue: Queue, no_wait: bool) -> Result<(), AmqpError> {
        let (ready, _) = self.blocking(move |_| queue.ready_and_in_flight()).await?;
        let consumers = self.ctx.shared.registry.consumers(&name);
        self.last_queue = Some(name.clone());
        if !no_wait {
            self.reply(Method::QueueDeclareOk {
                queue: name,
                message_count: u32::try_from(ready).unwrap_or(u32::MAX),
                consumer_count: consumers as u32,
            })
            .await;
        }
        Ok(())
    }

    async fn queue_bind(&mut self, b: QueueBind, bind: bool) -> Result<(), AmqpError> {
        if b.exchange.is_empty() {
            return Err(AmqpError::new(code::ACCESS_REFUSED, "operation not permitted on the default exchange"));
        }
        let queue = self.queue_name(b.queue.clone())?;
        self.queue(&queue).await?;
        let action = if bind { "sns:Subscribe" } else { "sns:Unsubscribe" };
        self.authorize(action, Resource::Exchange(&b.exchange)).await?;
        let exchange = b.exchange.clone();
        let kind = match self.blocking(move |e| e.exchange(&exchange)).await? {
            Ok(def) => def.map_or(ExchangeKind::Fanout, |d| d.kind),
            Err(Error::NotFound { .. } | Error::InvalidName { .. }) => {
                return Err(AmqpError::new(code::NOT_FOUND, format!("no exchange '{}' in vhost '/'", b.exchange)))
            }
            Err(e) => return Err(e.into()),
        };
        let identity = arguments::identity(&b.arguments);
        let (exchange, key) = (b.exchange.clone(), b.routing_key.clone());
        if bind {
            let headers =
                if kind == ExchangeKind::Headers { Some(arguments::headers_filter(&b.arguments)?) } else { None };
            let binding = Binding::new(kind, &b.routing_key, identity, headers)?;
            self.blocking(move |e| e.bind(&exchange, &queue, binding)).await??;
            if !b.no_wait {
                self.reply(Method::QueueBindOk).await;
            }
        } else {
            self.blocking(move |e| e.unbind(&exchange, &queue, &key, &identity)).await??;
            self.reply(Method::QueueUnbindOk).await;
        }
        Ok(())
    }

    async fn queue_purge(&mut self, name: String, no_wait: bool) -> Result<(), AmqpError> {
        let name = self.queue_name(name)?;
        self.authorize("sqs:PurgeQueue", Resource::Queue(&name)).await?;
        let queue = self.queue(&name).await?;
        let purged = self.blocking(move |_| queue.purge_ready()).await??;
        if !no_wait {
            self.reply(Method::QueuePurgeOk { message_count: u32::try_from(purged).unwrap_or(u32::MAX) }).await;
        }
        Ok(())
    }

    async fn queue_delete(
        &mut self,
        name: String,
        if_unused: bool,
        if_empty: bool,
        no_wait: bool,
    ) -> Result<(), AmqpError> {
        let name = self.queue_name(name)?;
        self.authorize("sqs:DeleteQueue", Resource::Queue(&name)).await?;
        let queue = match self.queue(&name).await {
            Ok(q) => q,
            // Deleting a queue that is not there succeeds, as in RabbitMQ.
            Err(e) if e.code == code::NOT_FOUND => {
                if !no_wait {
                    self.reply(Method::QueueDeleteOk { message_count: 0 }).await;
                }
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        if if_unused && self.ctx.shared.registry.consumers(&name) > 0 {
            return Err(AmqpError::new(code::PRECONDITION_FAILED, format!("queue '{name}' in vhost '/' in use")));
        }
        let doomed = name.clone();
        let count = self
            .blocking(move |e| -> Result<Option<u64>, Error> {
                let (ready, _) = queue.ready_and_in_flight();
                if if_empty && ready > 0 {
                    return Ok(None);
                }
                e.unbind_queue(&doomed)?;
                e.delete_queue(&doomed)?;
                Ok(Some(ready))
            })
            .await??;
        let Some(count) = count else {
            return Err(AmqpError::new(code::PRECONDITION_FAILED, format!("queue '{name}' in vhost '/' is not empty")));
        };
        self.ctx.shared.registry.forget_queue(&name);
        if !no_wait {
            self.reply(Method::QueueDeleteOk { message_count: u32::try_from(count).unwrap_or(u32::MAX) }).await;
        }
        Ok(())
    }

    // ----- consumers -----

    async fn basic_consume(&mut self, c: BasicConsume) -> Result<(), AmqpError> {
        let name = self.queue_name(c.queue.clone())?;
        self.authorize("sqs:ReceiveMessage", Resource::Queue(&name)).await?;
        let queue = self.queue(&name).await?;
        let tag = if c.consumer_tag.is_empty() { server_named("amq.ctag-") } else { c.consumer_tag.clone() };
        if self.consumers.contains_key(&tag) {
            return Err(AmqpError::new(code::NOT_ALLOWED, format!("attempt to reuse consumer tag '{tag}'")));
        }
        if self.ctx.shared.registry.add_consumer(&name, c.exclusive, self.ctx.connection.id).is_err() {
            return Err(AmqpError::new(code::ACCESS_REFUSED, format!("queue '{name}' in vhost '/' in exclusive use")));
        }
        if !c.no_wait {
            self.reply(Method::BasicConsumeOk { consumer_tag: tag.clone() }).await;
        }
        let handle = consumer::start(
            Arc::clone(&self.core),
            queue,
            name,
            Arc::from(tag.as_str()),
            c.no_ack,
            c.exclusive,
            self.consumer_prefetch,
        );
        self.consumers.insert(tag, handle);
        Ok(())
    }

    /// Stops a consumer (its unacknowledged deliveries stay with the channel) and deletes its
    /// queue if it was auto-delete and this was its last consumer.
    async fn cancel_consumer(&mut self, tag: &str) {
        let Some(handle) = self.consumers.remove(tag) else { return };
        let (queue, exclusive) = (handle.queue_name.clone(), handle.exclusive);
        handle.stop().await;
        self.after_consumer(&queue, exclusive).await;
    }

    async fn after_consumer(&self, queue: &str, exclusive: bool) {
        let left = self.ctx.shared.registry.remove_consumer(queue, exclusive);
        if left > 0 {
            return;
        }
        let name = queue.to_string();
        let deleted = self
            .blocking(move |e| {
                let auto = e.queue(&name).ok().and_then(|q| q.attributes().broker).is_some_and(|b| b.auto_delete);
                if auto {
                    let _ = e.unbind_queue(&name);
                    return e.delete_queue(&name).is_ok();
                }
                false
            })
            .await;
        if deleted.unwrap_or(false) {
            self.ctx.shared.registry.forget_queue(queue);
        }
    }

    async fn basic_get(&mut self, queue: String, no_ack: bool) -> Result<(), AmqpError> {
        let name = self.queue_name(queue)?;
        self.authorize("sqs:ReceiveMessage", Resource::Queue(&name)).await?;
        let queue = self.queue(&name).await?;
        let q = queue.clone();
        let (mut got, ready) = self
            .blocking(move |_| -> Result<_, Error> {
                let got = q.receive_held(1)?;
                if no_ack && !got.is_empty() {
                    let handles: Vec<&str> = got.iter().map(|m| m.receipt_handle.as_str()).collect();
                    q.ack(&handles)?;
                }
                Ok((got, q.ready_and_in_flight().0))
            })
            .await??;
        let Some(received) = got.pop() else {
            self.reply(Method::BasicGetEmpty).await;
            return Ok(());
        };
        let message = AmqpMessage::from_received(&name, &received);
        let mut d = self.core.deliveries.lock().await;
        let unacked = (!no_ack).then(|| Unacked {
            queue,
            handle: received.receipt_handle.clone(),
            consumer: None,
            message: message.clone(),
        });
        let tag = self.core.register(&mut d, unacked);
        let method = Method::BasicGetOk {
            delivery: Delivery {
                delivery_tag: tag,
                redelivered: received.receive_count > 1,
                exchange: message.exchange.clone(),
                routing_key: message.routing_key.clone(),
            },
            message_count: u32::try_from(ready).unwrap_or(u32::MAX),
        };
        self.ctx.outbox.content(self.ctx.id, &method, &message.properties, &message.body).await;
        Ok(())
    }

    // ----- acknowledgements -----

    async fn settle_all(&mut self, batch: Vec<Method>) -> Result<(), AmqpError> {
        if let Some(tx) = self.tx.as_mut() {
            tx.settlements.extend(batch);
            return Ok(());
        }
        self.apply_settlements(batch).await
    }

    /// Acks, nacks and rejects, in order: each takes its deliveries from the channel, then
    /// the acknowledged are deleted (together), the requeued go back to the head of their
    /// queues, and the rejected without requeue are dead-lettered (or dropped).
    async fn apply_settlements(&mut self, batch: Vec<Method>) -> Result<(), AmqpError> {
        let mut acked = Vec::new();
        let mut requeued = Vec::new();
        let mut rejected = Vec::new();
        let mut failure = None;
        {
            let mut d = self.core.deliveries.lock().await;
            for m in batch {
                let (tag, multiple, outcome) = match m {
                    Method::BasicAck { delivery_tag, multiple } => (delivery_tag, multiple, 0),
                    Method::BasicNack { delivery_tag, multiple, requeue } => {
                        (delivery_tag, multiple, if requeue { 1 } else { 2 })
                    }
                    Method::BasicReject { delivery_tag, requeue } => (delivery_tag, false, if requeue { 1 } else { 2 }),
                    _ => continue,
                };
                let ids = m_ids(outcome, multiple);
                let taken = match take(&mut d, tag, multiple) {
                    Some(t) => t,
                    None => {
                        failure = Some(
                            AmqpError::new(code::PRECONDITION_FAILED, format!("unknown delivery tag {tag}")).on(ids),
                        );
                        break;
                    }
                };
                match outcome {
                    0 => acked.extend(taken),
                    1 => requeued.extend(taken),
                    _ => rejected.extend(taken),
                }
            }
        }
        self.core.room.notify_waiters();
        self.ack(acked).await?;
        self.release(requeued).await?;
        self.dead_letter(rejected).await?;
        failure.map_or(Ok(()), Err)
    }

    async fn ack(&self, unacked: Vec<Unacked>) -> Result<(), AmqpError> {
        for (queue, handles) in by_queue(unacked) {
            // A message that went meanwhile (its queue deleted, expired) needs no ack.
            self.blocking(move |_| {
                let refs: Vec<&str> = handles.iter().map(String::as_str).collect();
                queue.ack(&refs)
            })
            .await?
            .or_else(ignore_gone)?;
        }
        Ok(())
    }

    async fn release(&self, unacked: Vec<Unacked>) -> Result<(), AmqpError> {
        release_all(&self.ctx.shared, unacked).await
    }

    /// Rejected without requeue: to the queue's dead-letter exchange if it has one (the
    /// message leaves its queue in the same frame its copies arrive), else deleted.
    async fn dead_letter(&self, rejected: Vec<Unacked>) -> Result<(), AmqpError> {
        let mut drop = Vec::new();
        for u in rejected {
            let (queue, handle, message) = (u.queue.clone(), u.handle.clone(), u.message.clone());
            let moved = self
                .blocking(move |e| -> Result<bool, Error> {
                    let broker = queue.attributes().broker;
                    let Some(exchange) = broker.as_ref().and_then(|b| b.dead_letter_exchange.clone()) else {
                        return Ok(false);
                    };
                    let routing_key = broker
                        .as_ref()
                        .and_then(|b| b.dead_letter_routing_key.clone())
                        .unwrap_or_else(|| message.routing_key.clone());
                    let mut message = message;
                    let mut headers = message.properties.headers.take().unwrap_or_default();
                    headers.insert("x-first-death-queue", super::codec::FieldValue::text(queue.name()));
                    headers.insert("x-first-death-reason", super::codec::FieldValue::text("rejected"));
                    headers.insert("x-first-death-exchange", super::codec::FieldValue::text(&message.exchange));
                    message.properties.headers = Some(headers);
                    // A dead-lettered message keeps its routing key unless the queue names one.
                    let targets = route(e, &exchange, &routing_key, &message)?;
                    let delivery = EngineDelivery { queues: targets, message: message.to_broker() };
                    e.move_out(&queue, &handle, &delivery).map(|_| true)
                })
                .await?;
            match moved {
                Ok(true) => {}
                Ok(false) => drop.push(u),
                Err(e) => ignore_gone::<()>(e)?,
            }
        }
        self.ack(drop).await
    }

    // ----- publishing -----

    async fn publish(&mut self, batch: Vec<Publish>) -> Result<(), AmqpError> {
        if batch.iter().any(|p| p.immediate) {
            return Err(AmqpError::new(code::NOT_IMPLEMENTED, "immediate=true"));
        }
        if let Some(tx) = self.tx.as_mut() {
            tx.publishes.extend(batch);
            return Ok(());
        }
        self.route_and_write(batch).await
    }

    /// Routes a batch of publishes, writes them as one frame, returns the unroutable
    /// mandatory ones and confirms the batch. A publish to a missing exchange ends the batch:
    /// those before it are written, then the channel closes.
    async fn route_and_write(&mut self, batch: Vec<Publish>) -> Result<(), AmqpError> {
        let mut failure = None;
        let mut checked = Vec::with_capacity(batch.len());
        for p in batch {
            let (action, resource) = if p.exchange.is_empty() {
                ("sqs:SendMessage", Resource::Queue(&p.routing_key))
            } else {
                ("sns:Publish", Resource::Exchange(&p.exchange))
            };
            if let Err(e) = self.authorize(action, resource).await {
                failure = Some(e);
                break;
            }
            // As RabbitMQ: a message may not claim to come from another user.
            let user = &self.ctx.connection.user;
            if let Some(claimed) = p.properties.user_id.as_ref().filter(|claimed| *claimed != user) {
                failure = Some(AmqpError::new(
                    code::PRECONDITION_FAILED,
                    format!("user_id property set to '{claimed}' but authenticated user was '{user}'"),
                ));
                break;
            }
            checked.push(p);
        }
        let messages: Vec<(AmqpMessage, bool)> = checked
            .into_iter()
            .map(|p| {
                let m = AmqpMessage {
                    exchange: p.exchange,
                    routing_key: p.routing_key,
                    properties: p.properties,
                    body: p.body,
                };
                (m, p.mandatory)
            })
            .collect();
        let for_engine: Vec<AmqpMessage> = messages.iter().map(|(m, _)| m.clone()).collect();
        let outcome = self
            .blocking(move |e| -> (Vec<usize>, Option<AmqpError>, Option<Error>) {
                let mut batch = Vec::with_capacity(for_engine.len());
                let mut failure = None;
                for m in &for_engine {
                    match route(e, &m.exchange, &m.routing_key, m) {
                        Ok(queues) => batch.push(EngineDelivery { queues, message: m.to_broker() }),
                        Err(err) => {
                            failure = Some(routing_error(&m.exchange, err));
                            break;
                        }
                    }
                }
                match e.deliver(&batch) {
                    Ok(counts) => (counts, failure, None),
                    Err(err) => (Vec::new(), failure, Some(err)),
                }
            })
            .await?;
        let (counts, routing_failure, storage_failure) = outcome;
        let written = counts.len();
        for ((m, mandatory), count) in messages.iter().zip(&counts) {
            if *mandatory && *count == 0 {
                let method = Method::BasicReturn {
                    reply_code: code::NO_ROUTE,
                    reply_text: "NO_ROUTE".into(),
                    exchange: m.exchange.clone(),
                    routing_key: m.routing_key.clone(),
                };
                self.ctx.outbox.content(self.ctx.id, &method, &m.properties, &m.body).await;
            }
        }
        if let Some(seq) = self.confirm.as_mut() {
            let confirmed = if storage_failure.is_some() { messages.len() } else { written };
            if confirmed > 0 {
                let first = *seq + 1;
                *seq += confirmed as u64;
                let (delivery_tag, multiple) = (*seq, confirmed > 1 || first != *seq);
                let reply = if storage_failure.is_some() {
                    Method::BasicNack { delivery_tag, multiple, requeue: false }
                } else {
                    Method::BasicAck { delivery_tag, multiple }
                };
                self.reply(reply).await;
            }
        }
        if let Some(err) = storage_failure {
            return Err(AmqpError::from(err));
        }
        match failure.or(routing_failure) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// At the end: consumers stop, every unacknowledged delivery goes back to the head of its
    /// queue, auto-delete queues whose last consumer this was go.
    async fn shutdown(&mut self) {
        let tags: Vec<String> = self.consumers.keys().cloned().collect();
        let mut stopped = Vec::new();
        {
            self.core.deliveries.lock().await.closed = true;
        }
        for tag in tags {
            if let Some(handle) = self.consumers.remove(&tag) {
                stopped.push((handle.queue_name.clone(), handle.exclusive));
                handle.stop().await;
            }
        }
        let unacked: Vec<Unacked> =
            std::mem::take(&mut self.core.deliveries.lock().await.unacked).into_values().collect();
        let _ = self.release(unacked).await;
        for (queue, exclusive) in stopped {
            self.after_consumer(&queue, exclusive).await;
        }
    }
}

/// The queues a message published to `exchange` with `routing_key` reaches: the default
/// exchange routes to the queue the key names; an exchange by its bindings.
fn route(
    engine: &crate::Engine,
    exchange: &str,
    routing_key: &str,
    message: &AmqpMessage,
) -> Result<Vec<Queue>, Error> {
    if exchange.is_empty() {
        return Ok(engine.queue(routing_key).ok().into_iter().collect());
    }
    let def = engine.exchange(exchange)?;
    if def.is_some_and(|d| d.internal) {
        return Err(Error::InvalidArgument(format!("cannot publish to internal exchange '{exchange}' in vhost '/'")));
    }
    let topic = engine.topic(exchange)?;
    Ok(topic.route_targets(routing_key, &message.match_headers(), &Default::default(), &message.body))
}

fn routing_error(exchange: &str, e: Error) -> AmqpError {
    match e {
        Error::NotFound { .. } | Error::InvalidName { .. } => {
            AmqpError::new(code::NOT_FOUND, format!("no exchange '{exchange}' in vhost '/'")).on((60, 40))
        }
        Error::InvalidArgument(why) => AmqpError::new(code::ACCESS_REFUSED, why).on((60, 40)),
        other => AmqpError::from(other).on((60, 40)),
    }
}

/// A name the server makes: `prefix` and 22 random characters of `[A-Za-z0-9_-]`.
pub(crate) fn server_named(prefix: &str) -> String {
    let bytes = crate::engine::catalog::new_secret();
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
    let tail: String = bytes.iter().take(22).map(|b| alphabet[usize::from(b & 63)] as char).collect();
    format!("{prefix}{tail}")
}

/// Takes the deliveries an ack (or nack) names: `tag`, or with `multiple` every one up to it
/// (`0` with `multiple`: all). `None` if it names none the channel has.
fn take(d: &mut Deliveries, tag: u64, multiple: bool) -> Option<Vec<Unacked>> {
    let taken: Vec<Unacked> = if multiple {
        let upto = if tag == 0 { u64::MAX } else { tag };
        let keys: Vec<u64> = d.unacked.range(..=upto).map(|(k, _)| *k).collect();
        if keys.is_empty() && tag != 0 {
            return None;
        }
        keys.into_iter().filter_map(|k| d.unacked.remove(&k)).collect()
    } else {
        vec![d.unacked.remove(&tag)?]
    };
    for u in &taken {
        if let Some(c) = &u.consumer {
            if let Some(n) = d.per_consumer.get_mut(c) {
                *n = n.saturating_sub(1);
            }
        }
    }
    Some(taken)
}

fn m_ids(outcome: u8, multiple: bool) -> (u16, u16) {
    match (outcome, multiple) {
        (0, _) => (60, 80),
        (_, true) => (60, 120),
        _ => (60, 90),
    }
}

fn by_queue(unacked: Vec<Unacked>) -> Vec<(Queue, Vec<String>)> {
    let mut out: Vec<(Queue, Vec<String>)> = Vec::new();
    for u in unacked {
        match out.iter_mut().find(|(q, _)| q.name() == u.queue.name()) {
            Some((_, handles)) => handles.push(u.handle),
            None => out.push((u.queue, vec![u.handle])),
        }
    }
    out
}

/// Puts deliveries back at the head of their queues.
pub(crate) async fn release_all(shared: &Arc<Shared>, unacked: Vec<Unacked>) -> Result<(), AmqpError> {
    for (queue, handles) in by_queue(unacked) {
        shared
            .blocking(move |_| {
                let refs: Vec<&str> = handles.iter().map(String::as_str).collect();
                queue.release_to_head(&refs)
            })
            .await
            .map_err(|e| AmqpError::new(code::INTERNAL_ERROR, e.0))?
            .or_else(ignore_gone)?;
    }
    Ok(())
}

/// A queue deleted under its deliveries has nothing to acknowledge or release.
fn ignore_gone<T: Default>(e: Error) -> Result<T, AmqpError> {
    match e {
        Error::NotFound { .. } => Ok(T::default()),
        other => Err(other.into()),
    }
}
