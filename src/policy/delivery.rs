//! Cross-service delivery: may a topic send its messages to a queue? The topic publish path
//! asks [`TopicDelivery::allowed`] once per queue subscription.
//!
//! The question is put as AWS puts it: the principal `sns.amazonaws.com` asks for
//! `sqs:SendMessage` on the queue, with `aws:SourceArn` the topic's ARN and
//! `aws:SourceAccount` its account, and the queue's access policy decides (an explicit `Deny`
//! wins; an `Allow` naming the service, or everyone, allows). A queue **without** a policy is
//! its owner's alone, and in weir the owner made both the topic and the subscription: such a
//! queue takes its owner's topics' messages (AWS would drop them until a policy allows).

use super::{evaluate, Context, Decision, Identity, Policy, PolicyKind, Principal, Request};

/// The service principal that delivers a topic's messages.
pub const SNS_SERVICE: &str = "sns.amazonaws.com";

/// The partition, region and account that ARNs of this engine's resources name. The server
/// sets them from `--account-id` and `--region`; an engine on its own uses the defaults
/// (`aws`, `us-east-1`, `000000000000`, as `weir serve`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArnScope {
    /// `aws`.
    pub partition: String,
    /// `us-east-1`.
    pub region: String,
    /// The owning account, 12 digits.
    pub account: String,
}

impl Default for ArnScope {
    fn default() -> Self {
        ArnScope { partition: "aws".into(), region: "us-east-1".into(), account: "000000000000".into() }
    }
}

impl ArnScope {
    /// `arn:aws:sqs:REGION:ACCOUNT:NAME`.
    pub fn queue_arn(&self, name: &str) -> String {
        format!("arn:{}:sqs:{}:{}:{name}", self.partition, self.region, self.account)
    }

    /// `arn:aws:sns:REGION:ACCOUNT:NAME`.
    pub fn topic_arn(&self, name: &str) -> String {
        format!("arn:{}:sns:{}:{}:{name}", self.partition, self.region, self.account)
    }
}

/// One topic's deliveries into queues, decided against each queue's policy.
#[derive(Debug, Clone)]
pub struct TopicDelivery<'a> {
    /// Where ARNs point.
    pub scope: &'a ArnScope,
    /// The publishing topic's name.
    pub topic: &'a str,
    /// The engine clock's time (for `aws:CurrentTime` conditions).
    pub now_ms: u64,
}

impl TopicDelivery<'_> {
    /// Whether the topic may deliver to queue `queue` whose access policy is `queue_policy`.
    /// A policy that does not parse (the engine only checks that it is a JSON object) allows
    /// nothing: a delivery is never let through by a policy weir cannot read.
    pub fn allowed(&self, queue: &str, queue_policy: Option<&str>) -> bool {
        let Some(text) = queue_policy else { return true };
        let Ok(policy) = Policy::parse(text, PolicyKind::Resource) else { return false };
        let topic_arn = self.scope.topic_arn(self.topic);
        let queue_arn = self.scope.queue_arn(queue);
        let context = Context::at(self.now_ms)
            .with("aws:SourceArn", topic_arn)
            .with("aws:SourceAccount", self.scope.account.clone());
        let principal = Principal::Service(SNS_SERVICE.to_string());
        let request = Request {
            principal: &principal,
            action: "sqs:SendMessage",
            resource: &queue_arn,
            resource_account: &self.scope.account,
            context: &context,
        };
        evaluate(Identity::None, Some(&policy), &request) == Decision::Allow
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_topic_delivers_where_the_queue_policy_or_its_absence_lets_it() {
        let scope = ArnScope { account: "111122223333".into(), ..ArnScope::default() };
        let orders = TopicDelivery { scope: &scope, topic: "orders", now_ms: 0 };
        let fan_out = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
            "Principal":{"Service":"sns.amazonaws.com"},"Action":"sqs:SendMessage",
            "Resource":"arn:aws:sqs:us-east-1:111122223333:audit",
            "Condition":{"ArnEquals":{"aws:SourceArn":"arn:aws:sns:us-east-1:111122223333:orders"}}}]}"#;
        assert!(orders.allowed("audit", None), "no policy: the owner's queue");
        assert!(orders.allowed("audit", Some(fan_out)));
        let other_topic = TopicDelivery { topic: "refunds", ..orders.clone() };
        assert!(!other_topic.allowed("audit", Some(fan_out)), "aws:SourceArn names another topic");
        assert!(!orders.allowed("other-queue", Some(fan_out)), "the statement's Resource is another queue");
        let only_accounts = r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"444455556666"},
            "Action":"sqs:*","Resource":"*"}]}"#;
        assert!(!orders.allowed("audit", Some(only_accounts)), "a policy without the service allows it nothing");
        let everyone_but_denied = r#"{"Statement":[
            {"Effect":"Allow","Principal":"*","Action":"sqs:SendMessage","Resource":"*"},
            {"Effect":"Deny","Principal":"*","Action":"sqs:SendMessage","Resource":"*",
             "Condition":{"ArnLike":{"aws:SourceArn":"arn:aws:sns:*:*:ord*"}}}]}"#;
        assert!(!orders.allowed("audit", Some(everyone_but_denied)), "an explicit deny wins");
        assert!(other_topic.allowed("audit", Some(everyone_but_denied)));
        assert!(!orders.allowed("audit", Some("{not json")), "an unreadable policy allows nothing");
        let until = r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"sns.amazonaws.com"},
            "Action":"sqs:SendMessage","Resource":"*",
            "Condition":{"DateLessThan":{"aws:CurrentTime":"2026-01-01T00:00:00Z"}}}]}"#;
        assert!(orders.allowed("audit", Some(until)));
        let later = TopicDelivery { now_ms: 1_767_225_600_000, ..orders.clone() };
        assert!(!later.allowed("audit", Some(until)), "the engine clock's time reaches the condition");
    }
}
