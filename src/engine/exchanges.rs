//! Exchanges, bindings and routed deliveries (AMQP on the engine, see ARCHITECTURE.md): an
//! exchange is a topic with an [`ExchangeDef`] in the catalog, a binding a queue subscription
//! with a [`Binding`], and a batch of routed messages one frame of the message log
//! ([`Engine::deliver`]). Queues and exchanges declared as transient (AMQP's non-durable ones)
//! go when the engine opens again ([`Engine::drop_transient`]).

use std::sync::Arc;

use crate::engine::catalog::CatalogRecord;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::names;
use crate::queue::store::BrokerMessage;
use crate::queue::Queue;
use crate::topic::{Binding, ExchangeDef, SubscriptionDef, TopicCell, TopicConfig};

/// One message to deliver to some queues (all of it in one frame with the rest of the batch).
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Where it goes (a queue listed twice gets it once).
    pub queues: Vec<Queue>,
    /// The message.
    pub message: BrokerMessage,
}

impl Engine {
    /// Creates exchange `name` (a topic that routes by its bindings) or checks an existing
    /// one: the same definition succeeds, a different one is [`Error::AlreadyExists`]. An
    /// existing plain topic (made through SNS or the library) becomes an exchange of this
    /// definition. Names follow [`names::validate_broker_name`].
    pub fn declare_exchange(&self, name: &str, exchange: ExchangeDef) -> Result<()> {
        names::validate_broker_name("exchange", name)?;
        let mut catalog = self.inner.catalog.lock();
        let now = self.now_ms();
        if let Some(existing) = catalog.state().topics.get(name) {
            return match existing.exchange {
                Some(def) if def == exchange => Ok(()),
                Some(_) => Err(Error::AlreadyExists { kind: "exchange", name: name.to_string() }),
                None => catalog.append(CatalogRecord::PutExchange { name: name.to_string(), exchange }, now),
            };
        }
        let id = catalog.state().next_topic_id;
        let config = TopicConfig::default();
        let record = CatalogRecord::PutTopic {
            id,
            name: name.to_string(),
            config,
            attributes: Default::default(),
            tags: Default::default(),
        };
        catalog.append(record, now)?;
        catalog.append(CatalogRecord::PutExchange { name: name.to_string(), exchange }, now)?;
        self.inner.topics.write().insert(name.to_string(), Arc::new(TopicCell::new(id, name.to_string(), config)));
        Ok(())
    }

    /// What exchange `name` is: `Ok(None)` for a plain topic (it routes like a fanout
    /// exchange), [`Error::NotFound`] if there is no such topic.
    pub fn exchange(&self, name: &str) -> Result<Option<ExchangeDef>> {
        names::validate_lookup_name("exchange", name)?;
        let catalog = self.inner.catalog.lock();
        catalog
            .state()
            .topics
            .get(name)
            .map(|t| t.exchange)
            .ok_or_else(|| Error::NotFound { kind: "exchange", name: name.to_string() })
    }

    /// Binds queue `queue` to exchange `exchange` with `binding`; binding again with the same
    /// key and arguments does nothing. Durable (a catalog record). Returns whether it was new.
    pub fn bind(&self, exchange: &str, queue: &str, binding: Binding) -> Result<bool> {
        let topic = self.topic(exchange)?;
        let target = self.queue(queue)?;
        if target.cell.state.lock().config.fifo {
            return Err(Error::InvalidArgument(format!(
                "{queue:?} is a FIFO queue; exchanges deliver to standard queues only"
            )));
        }
        let mut catalog = self.inner.catalog.lock();
        let Some(entry) = catalog.state().topics.get(exchange) else {
            return Err(Error::NotFound { kind: "exchange", name: exchange.to_string() });
        };
        let same = |s: &SubscriptionDef| {
            s.queue == queue
                && s.binding.as_ref().is_some_and(|b| b.key == binding.key && b.arguments == binding.arguments)
        };
        if entry.subscriptions.iter().any(same) {
            return Ok(false);
        }
        let def = SubscriptionDef {
            id: format!("sub-{:06}", catalog.state().next_subscription),
            topic: exchange.to_string(),
            queue: queue.to_string(),
            filter_policy: None,
            filter_body: false,
            raw: true,
            url: None,
            dead_letter_queue: None,
            delivery_policy: None,
            delivery_queue: None,
            token: None,
            pending: false,
            confirmed_authenticated: false,
            binding: Some(binding),
        };
        catalog.append(CatalogRecord::Subscribe { subscription: def.clone() }, self.now_ms())?;
        drop(catalog);
        topic.cell.add_durable(&def)?;
        Ok(true)
    }

    /// Removes the binding of `queue` to `exchange` with `key` and `arguments`. Returns whether
    /// there was one.
    pub fn unbind(&self, exchange: &str, queue: &str, key: &str, arguments: &str) -> Result<bool> {
        let topic = self.topic(exchange)?;
        let mut catalog = self.inner.catalog.lock();
        let Some(entry) = catalog.state().topics.get(exchange) else {
            return Err(Error::NotFound { kind: "exchange", name: exchange.to_string() });
        };
        let Some(id) = entry
            .subscriptions
            .iter()
            .find(|s| s.queue == queue && s.binding.as_ref().is_some_and(|b| b.key == key && b.arguments == arguments))
            .map(|s| s.id.clone())
        else {
            return Ok(false);
        };
        catalog.append(CatalogRecord::Unsubscribe { id: id.clone() }, self.now_ms())?;
        drop(catalog);
        topic.cell.remove_subscription(&id);
        Ok(true)
    }

    /// Removes every binding of queue `queue` (AMQP deletes a queue's bindings with it).
    pub fn unbind_queue(&self, queue: &str) -> Result<usize> {
        let mut catalog = self.inner.catalog.lock();
        let doomed: Vec<(String, String)> = catalog
            .state()
            .topics
            .iter()
            .flat_map(|(topic, t)| {
                t.subscriptions
                    .iter()
                    .filter(|s| s.queue == queue && s.binding.is_some())
                    .map(move |s| (topic.clone(), s.id.clone()))
            })
            .collect();
        for (topic, id) in &doomed {
            catalog.append(CatalogRecord::Unsubscribe { id: id.clone() }, self.now_ms())?;
            if let Some(cell) = self.inner.topics.read().get(topic) {
                cell.remove_subscription(id);
            }
        }
        Ok(doomed.len())
    }

    /// The bindings of exchange `exchange`: (queue, binding).
    pub fn bindings(&self, exchange: &str) -> Result<Vec<(String, Binding)>> {
        let catalog = self.inner.catalog.lock();
        let entry = catalog
            .state()
            .topics
            .get(exchange)
            .ok_or_else(|| Error::NotFound { kind: "exchange", name: exchange.to_string() })?;
        Ok(entry.subscriptions.iter().filter_map(|s| Some((s.queue.clone(), s.binding.clone()?))).collect())
    }

    /// Writes a batch of messages, each to its queues, as one frame: all of them are durable
    /// together (or none, on an error). Returns per message how many queues took it (a queue
    /// refuses a message larger than its maximum, and FIFO queues take none).
    pub fn deliver(&self, batch: &[Delivery]) -> Result<Vec<usize>> {
        self.inner.queues.deliver(&Self::items(batch))
    }

    /// Moves a message out of `from` (the one `receipt_handle` names) into the queues of
    /// `delivery`, as one frame: it leaves its queue exactly when its copies arrive (a broker's
    /// dead-lettering). Returns how many queues took it.
    pub fn move_out(&self, from: &Queue, receipt_handle: &str, delivery: &Delivery) -> Result<usize> {
        let removal = [(Arc::clone(&from.cell), receipt_handle)];
        let moved = self.inner.queues.deliver_and_remove(&Self::items(std::slice::from_ref(delivery)), &removal)?;
        Ok(moved.first().copied().unwrap_or(0))
    }

    pub(super) fn items(batch: &[Delivery]) -> Vec<Vec<(Arc<crate::queue::store::QueueCell>, BrokerMessage)>> {
        batch
            .iter()
            .map(|d| {
                let mut cells: Vec<_> = d
                    .queues
                    .iter()
                    .filter(|q| !q.cell.state.lock().config.fifo)
                    .map(|q| (Arc::clone(&q.cell), d.message.clone()))
                    .collect();
                cells.sort_by_key(|(c, _)| c.id);
                cells.dedup_by_key(|(c, _)| c.id);
                cells
            })
            .collect()
    }

    /// Deletes the queues and exchanges declared transient (AMQP's non-durable queues and
    /// exchanges, and exclusive queues): what their connections made is gone with them. Open
    /// calls this; it returns how many it deleted.
    pub fn drop_transient(&self) -> Result<usize> {
        let (queues, exchanges): (Vec<String>, Vec<String>) = {
            let catalog = self.inner.catalog.lock();
            let state = catalog.state();
            (
                state
                    .queues
                    .iter()
                    .filter(|(_, q)| q.config.broker.as_ref().is_some_and(|b| b.transient))
                    .map(|(n, _)| n.clone())
                    .collect(),
                state
                    .topics
                    .iter()
                    .filter(|(_, t)| t.exchange.is_some_and(|e| !e.durable))
                    .map(|(n, _)| n.clone())
                    .collect(),
            )
        };
        for name in &queues {
            self.unbind_queue(name)?;
            self.delete_queue(name)?;
        }
        for name in &exchanges {
            self.delete_topic(name)?;
        }
        Ok(queues.len() + exchanges.len())
    }
}
