//! Queue administration beyond create and delete: creating with tags in one catalog record,
//! changing attributes (read-modify-write under the catalog lock), and SQS's permissions
//! (statements of the queue's access policy, by label).

use crate::engine::catalog::CatalogRecord;
use crate::engine::tags::{validate_tags, Tags};
use crate::engine::{check_redrive, Engine};
use crate::error::{Error, Result};
use crate::names;
use crate::queue::policy;
use crate::queue::store::QueueDef;
use crate::queue::QueueConfig;

impl Engine {
    /// The engine clock's reading.
    pub(crate) fn now_ms(&self) -> u64 {
        self.inner.options.clock.now_ms()
    }

    /// [`Engine::create_queue`] with tags: the queue and its tags are one catalog record, so a
    /// crash leaves either both or neither. For a queue that exists with the same attributes
    /// this succeeds and leaves its tags alone (as SQS's CreateQueue does).
    pub fn create_queue_with(&self, name: &str, config: QueueConfig, tags: &Tags) -> Result<()> {
        match &config.broker {
            Some(_) if !config.fifo => names::validate_broker_name("queue", name)?,
            _ => names::validate_queue_name("queue", name, config.fifo)?,
        }
        config.validate()?;
        validate_tags(tags)?;
        let mut catalog = self.inner.catalog.lock();
        if let Some(existing) = catalog.state().queues.get(name) {
            if existing.config == config {
                return Ok(());
            }
            return Err(Error::AlreadyExists { kind: "queue", name: name.to_string() });
        }
        check_redrive(catalog.state(), name, &config)?;
        let id = catalog.state().next_queue_id;
        let record = CatalogRecord::PutQueue { id, name: name.to_string(), config: config.clone(), tags: tags.clone() };
        let created_ms = catalog.append_stamped(record, self.now_ms())?;
        self.inner.queues.add_queue(QueueDef {
            id,
            name: name.to_string(),
            config,
            created_ms,
            modified_ms: created_ms,
        });
        Ok(())
    }

    /// Replaces a queue's attributes with what `change` makes of the current ones, holding the
    /// catalog lock from the read to the write, so concurrent changes (another
    /// `update_queue_config`, a permission added) never lose one another. An error from
    /// `change` is returned as it is, and changes nothing.
    pub fn update_queue_config(
        &self,
        name: &str,
        change: impl FnOnce(&QueueConfig) -> Result<QueueConfig>,
    ) -> Result<()> {
        let queue = self.queue(name)?;
        let mut catalog = self.inner.catalog.lock();
        let Some(existing) = catalog.state().queues.get(name).cloned() else {
            return Err(Error::NotFound { kind: "queue", name: name.to_string() });
        };
        let config = change(&existing.config)?;
        config.validate()?;
        if existing.config.fifo != config.fifo {
            return Err(Error::InvalidArgument("a queue's type (FIFO or standard) cannot change".into()));
        }
        check_redrive(catalog.state(), name, &config)?;
        // Expiry is computed from the current retention: make it durable under the shorter of
        // the two, so neither a shorter nor a longer setting revives what is already gone.
        self.inner.queues.expire_for_retention(&queue.cell, config.retention.min(existing.config.retention))?;
        let record = CatalogRecord::PutQueue {
            id: existing.id,
            name: name.to_string(),
            config: config.clone(),
            tags: Tags::new(),
        };
        let modified_ms = catalog.append_stamped(record, self.now_ms())?;
        self.inner.queues.set_config(&queue.cell, config, modified_ms)
    }

    /// Grants `actions` on queue `queue` to the accounts `principals` (12-digit account ids),
    /// as SQS's AddPermission: a statement with `Sid` `label` is added to the queue's access
    /// policy (created if the queue has none, with `Id` `<resource_arn>/SQSDefaultPolicy`).
    /// `actions` are SQS action names without the `SQS:` prefix, or `*`. A label the policy
    /// already has is an error; so is a 21st statement ([`Error::LimitExceeded`]).
    pub fn add_queue_permission(
        &self,
        queue: &str,
        label: &str,
        principals: &[String],
        actions: &[String],
        resource_arn: &str,
    ) -> Result<()> {
        let statement = policy::Statement { label, principals, actions, resource_arn };
        statement.validate()?;
        self.update_queue_config(queue, |current| {
            let policy = policy::add_statement(current.policy.as_deref(), &statement)?;
            Ok(QueueConfig { policy: Some(policy), ..current.clone() })
        })
    }

    /// Removes the statement with `Sid` `label` from the queue's access policy, as SQS's
    /// RemovePermission; the policy goes away with its last statement. A label the policy
    /// does not have is an error.
    pub fn remove_queue_permission(&self, queue: &str, label: &str) -> Result<()> {
        policy::validate_label(label)?;
        self.update_queue_config(queue, |current| {
            let policy = policy::remove_statement(current.policy.as_deref(), label)?;
            Ok(QueueConfig { policy, ..current.clone() })
        })
    }
}
