//! Topics and subscriptions: create (with attributes and tags in one catalog record), change,
//! delete; subscribe (queues, HTTP/HTTPS endpoints with their confirmation handshake,
//! callbacks), change a subscription's attributes, confirm, unsubscribe; and the handles the
//! server delivers HTTP/HTTPS subscriptions through. Every change is a catalog record written
//! under the catalog lock before it takes effect.

use std::sync::Arc;

use bytes::Bytes;

use crate::engine::catalog::{self, CatalogRecord};
use crate::engine::tags::{validate_tags, Tags};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::format::queue_record::{MessageRecord, OWN_SEQ};
use crate::names;
use crate::queue::store::{format_id, QueueDef};
use crate::topic::envelope::{Confirmation, Writer};
use crate::topic::http::{
    delivery_queue_config, delivery_queue_name, delivery_sender_id, effective_policy, pending_deliveries,
};
use crate::topic::subscription::Subscription;
use crate::topic::{
    parse_policy, replay_into, Endpoint, EnvelopeContext, FilterScope, HttpDeliveries, MessageKind, SubscribeOptions,
    SubscriptionChanges, SubscriptionDef, SubscriptionInfo, Topic, TopicAttributes, TopicCell, TopicConfig, TopicInfo,
    TopicSettings,
};

impl Engine {
    /// Creates a topic (names as for queues; FIFO topics end in `.fifo`). Creating one that
    /// exists with the same settings succeeds.
    pub fn create_topic(&self, name: &str, config: TopicConfig) -> Result<()> {
        self.create_topic_with(name, config, TopicAttributes::default(), &Tags::new())
    }

    /// [`Engine::create_topic`] with attributes and tags, in one catalog record. For a topic
    /// that exists this succeeds if its type is the same and `attributes` are the defaults or
    /// its own (its tags are left alone, as SNS's CreateTopic), and fails otherwise.
    pub fn create_topic_with(
        &self,
        name: &str,
        config: TopicConfig,
        attributes: TopicAttributes,
        tags: &Tags,
    ) -> Result<()> {
        names::validate_queue_name("topic", name, config.fifo)?;
        config.validate()?;
        attributes.validate(config.fifo)?;
        validate_tags(tags)?;
        let mut catalog = self.inner.catalog.lock();
        if let Some(existing) = catalog.state().topics.get(name) {
            let same = existing.config == config
                && (attributes == TopicAttributes::default() || attributes == existing.attributes);
            if same {
                return Ok(());
            }
            return Err(Error::AlreadyExists { kind: "topic", name: name.to_string() });
        }
        let id = catalog.state().next_topic_id;
        let record = CatalogRecord::PutTopic {
            id,
            name: name.to_string(),
            config,
            attributes: attributes.clone(),
            tags: tags.clone(),
        };
        catalog.append(record, self.now_ms())?;
        if config.fifo {
            self.inner.queues.add_fifo_topic(id);
        }
        let cell = TopicCell::with_attributes(id, name.to_string(), config, attributes);
        self.inner.topics.write().insert(name.to_string(), Arc::new(cell));
        Ok(())
    }

    /// Changes a topic's settings to what `change` makes of them (under the catalog lock, so
    /// concurrent changes never lose one another). Its type (FIFO or not) cannot change.
    pub fn update_topic(
        &self,
        name: &str,
        change: impl FnOnce(&mut TopicConfig, &mut TopicAttributes) -> Result<()>,
    ) -> Result<()> {
        let topic = self.topic(name)?;
        let mut catalog = self.inner.catalog.lock();
        let Some(existing) = catalog.state().topics.get(name).cloned() else {
            return Err(Error::NotFound { kind: "topic", name: name.to_string() });
        };
        let (mut config, mut attributes) = (existing.config, existing.attributes.clone());
        change(&mut config, &mut attributes)?;
        if config.fifo != existing.config.fifo {
            return Err(Error::InvalidArgument("a topic's type (FIFO or standard) cannot change".into()));
        }
        config.validate()?;
        attributes.validate(config.fifo)?;
        if config == existing.config && attributes == existing.attributes {
            return Ok(());
        }
        let record = CatalogRecord::PutTopic {
            id: existing.id,
            name: name.to_string(),
            config,
            attributes: attributes.clone(),
            tags: Tags::new(),
        };
        catalog.append(record, self.now_ms())?;
        topic.cell.set_settings(TopicSettings { config, attributes });
        Ok(())
    }

    /// A topic's settings and subscription counts.
    pub fn topic_info(&self, name: &str) -> Result<TopicInfo> {
        let topic = self.topic(name)?;
        let subs = topic.cell.all_subscriptions();
        let pending = subs.iter().filter(|s| s.def.pending).count() as u64;
        Ok(TopicInfo {
            name: name.to_string(),
            config: topic.cell.config(),
            attributes: topic.cell.attributes(),
            subscriptions_confirmed: subs.len() as u64 - pending,
            subscriptions_pending: pending,
        })
    }

    /// Deletes a topic and its subscriptions (the queues stay; HTTP/HTTPS deliveries not made
    /// yet are dropped).
    pub fn delete_topic(&self, name: &str) -> Result<()> {
        let topic = self.topic(name)?;
        let mut catalog = self.inner.catalog.lock();
        let subscriptions = catalog.state().topics.get(name).map(|t| t.subscriptions.clone()).unwrap_or_default();
        catalog.append(CatalogRecord::DeleteTopic { name: name.to_string() }, self.now_ms())?;
        self.inner.topics.write().remove(name);
        topic.cell.mark_deleted();
        self.inner.queues.remove_topic(topic.cell.id);
        for sub in subscriptions.iter().filter(|s| s.delivery_queue.is_some()) {
            self.inner.queues.remove_queue(&delivery_queue_name(&sub.id));
        }
        Ok(())
    }

    /// Names of all topics, sorted.
    pub fn list_topics(&self) -> Vec<String> {
        self.inner.topics.read().keys().cloned().collect()
    }

    /// A topic by name.
    pub fn topic(&self, name: &str) -> Result<Topic> {
        let cell = names::find_named("topic", name, || self.inner.topics.read().get(name).cloned())?;
        Ok(Topic { store: Arc::clone(&self.inner.queues), cell, env: Arc::clone(&self.inner.topic_env) })
    }

    /// Subscribes an endpoint to a topic and returns the subscription id. A FIFO topic takes only
    /// FIFO queues and a standard topic only standard queues or HTTP/HTTPS endpoints, as SNS. A
    /// malformed filter or delivery policy is rejected here with the reason. Queue and
    /// HTTP/HTTPS subscriptions are durable; callbacks last until the engine is dropped.
    ///
    /// Subscribing an endpoint the topic has already returns that subscription (as SNS does),
    /// or fails if it was subscribed with other settings. An HTTP/HTTPS subscription starts
    /// pending: a confirmation request is queued for its endpoint (again on every subscribe
    /// while it is pending), and nothing else is delivered until
    /// [`Engine::confirm_subscription`].
    pub fn subscribe(&self, topic: &str, endpoint: Endpoint, options: SubscribeOptions) -> Result<String> {
        let topic = self.topic(topic)?;
        parse_policy(options.filter_policy.as_deref(), options.filter_scope)?;
        match endpoint {
            Endpoint::Queue(queue) => self.subscribe_durable(&topic, Some(queue), None, &options),
            Endpoint::Http(url) => self.subscribe_durable(&topic, None, Some(url), &options),
            Endpoint::Callback(f) => {
                // Not durable, so not in the catalog: ids of their own kind never collide with
                // the durable `sub-` ones.
                let n = self.inner.next_callback.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let id = format!("cb-{n:06}");
                topic.cell.add_callback(id.clone(), f, &options)?;
                Ok(id)
            }
        }
    }

    fn subscribe_durable(
        &self,
        topic: &Topic,
        queue: Option<String>,
        url: Option<String>,
        options: &SubscribeOptions,
    ) -> Result<String> {
        let fifo = topic.cell.config().fifo;
        if let Some(queue) = &queue {
            self.check_queue_type(queue, fifo, "delivers only to")?;
        }
        if url.is_some() {
            if fifo {
                return Err(Error::InvalidArgument(
                    "a FIFO topic delivers to FIFO queues only, not to HTTP/HTTPS endpoints".into(),
                ));
            }
            if options.replay_from_ms.is_some() {
                return Err(Error::InvalidArgument("replaying past publishes is for queue subscriptions only".into()));
            }
        }
        if let Some(dlq) = &options.dead_letter_queue {
            self.check_queue_type(dlq, fifo, "dead-letters only into")?;
        }
        let mut catalog = self.inner.catalog.lock();
        let mut def = SubscriptionDef {
            id: format!("sub-{:06}", catalog.state().next_subscription),
            topic: topic.cell.name.clone(),
            queue: queue.unwrap_or_default(),
            url,
            filter_policy: options.filter_policy.clone(),
            filter_body: options.filter_scope == FilterScope::MessageBody,
            raw: options.raw,
            dead_letter_queue: options.dead_letter_queue.clone(),
            delivery_policy: options.delivery_policy.clone(),
            delivery_queue: None,
            token: None,
            pending: false,
            confirmed_authenticated: false,
            binding: None,
        };
        def.validate()?;
        let existing = catalog
            .state()
            .topics
            .get(&topic.cell.name)
            .and_then(|t| {
                t.subscriptions.iter().find(|s| s.queue == def.queue && s.url == def.url && s.binding.is_none())
            })
            .cloned();
        if let Some(existing) = existing {
            if !existing.same_settings(&def) {
                return Err(Error::AlreadyExists { kind: "subscription", name: existing.id });
            }
            drop(catalog);
            if existing.pending {
                self.send_confirmation(topic, &existing)?;
            }
            return Ok(existing.id);
        }
        if def.url.is_some() {
            def.delivery_queue = Some(catalog.state().next_queue_id);
            def.token = Some(catalog::secret_hex(&catalog::new_secret()));
            def.pending = true;
        }
        let stamp = catalog.append_stamped(CatalogRecord::Subscribe { subscription: def.clone() }, self.now_ms())?;
        if let Some(id) = def.delivery_queue {
            let name = delivery_queue_name(&def.id);
            let config = delivery_queue_config();
            self.inner.queues.add_queue(QueueDef { id, name, config, created_ms: stamp, modified_ms: stamp });
        }
        drop(catalog);
        let live_from = topic.cell.add_durable_at(&def, || self.inner.queues.log().written_next())?;
        self.inner.queues.pauses.at(crate::queue::pause::Pause::SubscribeReplay);
        if def.pending {
            self.send_confirmation(topic, &def)?;
        } else if let Some(from_ms) = options.replay_from_ms {
            replay_into(topic, &def, from_ms, live_from)?;
        }
        Ok(def.id)
    }

    /// Checks that queue `name` exists and is FIFO exactly when the topic is.
    fn check_queue_type(&self, name: &str, fifo_topic: bool, what: &str) -> Result<()> {
        let queue = self.queue(name)?;
        let fifo = queue.cell.state.lock().config.fifo;
        if fifo != fifo_topic {
            let kind = |f: bool| if f { "FIFO" } else { "standard" };
            return Err(Error::InvalidArgument(format!(
                "a {} topic {what} {} queues; {name:?} is {}",
                kind(fifo_topic),
                kind(fifo_topic),
                kind(fifo)
            )));
        }
        Ok(())
    }

    /// Queues the confirmation request of a pending HTTP/HTTPS subscription.
    fn send_confirmation(&self, topic: &Topic, def: &SubscriptionDef) -> Result<()> {
        let (Some(token), Some(cell)) = (def.token.as_deref(), self.inner.queues.cell(&delivery_queue_name(&def.id)))
        else {
            return Ok(());
        };
        let context = self.envelope_context();
        let message_id = self.inner.queues.new_message_id();
        let writer = Writer {
            context: &context,
            key: &self.inner.topic_env.signing_key,
            signature_version: topic.cell.attributes().signature_version,
        };
        let body = writer.confirmation(&Confirmation {
            message_id: &format_id(&message_id),
            topic_arn: &context.topic_arn(&topic.cell.name),
            token,
            timestamp_ms: self.now_ms(),
        });
        let message = MessageRecord {
            queue: cell.id,
            key: OWN_SEQ,
            message_id,
            sent_ms: 0,
            visible_at_ms: 0,
            first_receive_ms: 0,
            receive_count: 0,
            origin_queue: 0,
            group: Bytes::new(),
            dedup: Bytes::new(),
            trace_header: Bytes::new(),
            sender_id: delivery_sender_id(MessageKind::SubscriptionConfirmation, false),
            attributes: Vec::new(),
            body: Bytes::from(body),
        };
        self.inner.queues.enqueue(&cell, message)
    }

    /// Confirms the pending HTTP/HTTPS subscription of `topic` whose confirmation request
    /// carried `token` (SNS's ConfirmSubscription, or a visit of its SubscribeURL), and returns
    /// its id; deliveries start. `authenticated`: the confirming request was signed (SNS's
    /// `ConfirmationWasAuthenticated`). Confirming again returns the same id. A token no
    /// subscription of the topic carries fails with `NotFound` of kind `confirmation token`.
    pub fn confirm_subscription(&self, topic: &str, token: &str, authenticated: bool) -> Result<String> {
        let topic = self.topic(topic)?;
        let mut catalog = self.inner.catalog.lock();
        let def = catalog
            .state()
            .topics
            .get(&topic.cell.name)
            .and_then(|t| t.subscriptions.iter().find(|s| s.token.as_deref().is_some_and(|t| same_token(t, token))))
            .cloned()
            .ok_or_else(|| Error::NotFound { kind: "confirmation token", name: shorten(token) })?;
        if !def.pending {
            return Ok(def.id);
        }
        let confirmed = SubscriptionDef { pending: false, confirmed_authenticated: authenticated, ..def };
        catalog.append(CatalogRecord::UpdateSubscription { subscription: confirmed.clone() }, self.now_ms())?;
        topic.cell.replace_durable(&confirmed)?;
        Ok(confirmed.id)
    }

    /// Changes a durable subscription's filter policy and scope, raw delivery, dead-letter
    /// queue or delivery policy, and returns it as it is now.
    pub fn set_subscription_attributes(&self, id: &str, changes: &SubscriptionChanges) -> Result<SubscriptionInfo> {
        let (topic, _) = self.find_subscription(id)?;
        let mut catalog = self.inner.catalog.lock();
        let current = catalog
            .state()
            .topics
            .get(&topic.cell.name)
            .and_then(|t| t.subscriptions.iter().find(|s| s.id == id))
            .cloned()
            .ok_or_else(|| Error::NotFound { kind: "subscription", name: id.to_string() })?;
        let changed = changes.apply(&current);
        changed.validate()?;
        if let Some(dlq) = &changed.dead_letter_queue {
            self.check_queue_type(dlq, topic.cell.config().fifo, "dead-letters only into")?;
        }
        if changed != current {
            catalog.append(CatalogRecord::UpdateSubscription { subscription: changed.clone() }, self.now_ms())?;
            topic.cell.replace_durable(&changed)?;
        }
        drop(catalog);
        self.subscription(id)
    }

    /// Removes a subscription (an HTTP/HTTPS one's deliveries not made yet are dropped).
    pub fn unsubscribe(&self, subscription_id: &str) -> Result<()> {
        let (topic, _) = self.find_subscription(subscription_id)?;
        let mut catalog = self.inner.catalog.lock();
        catalog.append(CatalogRecord::Unsubscribe { id: subscription_id.to_string() }, self.now_ms())?;
        topic.cell.remove_subscription(subscription_id);
        self.inner.queues.remove_queue(&delivery_queue_name(subscription_id));
        Ok(())
    }

    fn find_subscription(&self, id: &str) -> Result<(Topic, Arc<Subscription>)> {
        let topics: Vec<Arc<TopicCell>> = self.inner.topics.read().values().cloned().collect();
        topics
            .into_iter()
            .find_map(|cell| {
                let sub = cell.subscription(id)?;
                let topic =
                    Topic { store: Arc::clone(&self.inner.queues), cell, env: Arc::clone(&self.inner.topic_env) };
                Some((topic, sub))
            })
            .ok_or_else(|| Error::NotFound { kind: "subscription", name: id.to_string() })
    }

    fn info_of(&self, topic: &TopicCell, sub: &Subscription) -> SubscriptionInfo {
        if sub.def.url.is_none() {
            return sub.info(None, None);
        }
        let pending = self
            .inner
            .queues
            .cell(&delivery_queue_name(&sub.def.id))
            .map(|q| pending_deliveries(&self.inner.queues, &q));
        sub.info(Some(pending.unwrap_or(0)), Some(effective_policy(sub, topic).to_json()))
    }

    /// A subscription by id, with its pending delivery count.
    pub fn subscription(&self, id: &str) -> Result<SubscriptionInfo> {
        let (topic, sub) = self.find_subscription(id)?;
        Ok(self.info_of(&topic.cell, &sub))
    }

    /// The subscriptions of a topic, in the order they were made.
    pub fn list_subscriptions(&self, topic: &str) -> Result<Vec<SubscriptionInfo>> {
        let topic = self.topic(topic)?;
        Ok(topic.cell.all_subscriptions().iter().map(|s| self.info_of(&topic.cell, s)).collect())
    }

    /// Every topic's subscriptions, topic by topic (topics in name order).
    pub fn list_all_subscriptions(&self) -> Vec<SubscriptionInfo> {
        let topics: Vec<Arc<TopicCell>> = self.inner.topics.read().values().cloned().collect();
        topics
            .iter()
            .flat_map(|t| t.all_subscriptions().iter().map(|s| self.info_of(t, s)).collect::<Vec<_>>())
            .collect()
    }

    /// Ids of every HTTP/HTTPS subscription (pending ones included: their confirmation request
    /// is a delivery too).
    pub fn http_subscription_ids(&self) -> Vec<String> {
        let topics: Vec<Arc<TopicCell>> = self.inner.topics.read().values().cloned().collect();
        topics
            .iter()
            .flat_map(|t| t.all_subscriptions())
            .filter(|s| s.def.url.is_some())
            .map(|s| s.def.id.clone())
            .collect()
    }

    /// The pending deliveries of an HTTP/HTTPS subscription, for whoever makes them.
    pub fn http_deliveries(&self, subscription_id: &str) -> Result<HttpDeliveries> {
        let (topic, sub) = self.find_subscription(subscription_id)?;
        let not_http = || Error::NotFound { kind: "HTTP subscription", name: subscription_id.to_string() };
        if sub.def.url.is_none() {
            return Err(not_http());
        }
        let queue = self.inner.queues.cell(&delivery_queue_name(subscription_id)).ok_or_else(not_http)?;
        Ok(HttpDeliveries {
            store: Arc::clone(&self.inner.queues),
            queue,
            topic: topic.cell,
            env: Arc::clone(&self.inner.topic_env),
            subscription_id: subscription_id.to_string(),
        })
    }

    /// Sets where envelopes say topics live and how to reach the endpoint that confirms and
    /// ends subscriptions (`weir serve` sets its own when it starts). Documents made before
    /// keep what they say. The region and account are also the ARN scope the topic -> queue
    /// delivery check works in ([`Engine::set_arn_scope`]): one setting for where topics live.
    pub fn set_envelope_context(&self, context: EnvelopeContext) {
        self.set_arn_scope(crate::policy::ArnScope {
            region: context.region.clone(),
            account: context.account_id.clone(),
            ..Default::default()
        });
        *self.inner.topic_env.context.write() = context;
    }

    /// The envelope context in force.
    pub fn envelope_context(&self) -> EnvelopeContext {
        self.inner.topic_env.context.read().clone()
    }
}

/// Token equality in time that does not depend on where the two differ: a token is the only
/// proof a confirming request needs, so its comparison must not leak its prefix.
fn same_token(stored: &str, given: &str) -> bool {
    stored.len() == given.len() && stored.bytes().zip(given.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

fn shorten(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::same_token;

    #[test]
    fn tokens_match_only_whole() {
        assert!(same_token("ab12", "ab12"));
        for other in ["ab13", "bb12", "ab1", "ab123", ""] {
            assert!(!same_token("ab12", other), "{other}");
        }
    }
}
