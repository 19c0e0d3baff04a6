//! What an SNS operation runs with: the server's shared state and who the request acts as;
//! the one way operations call the engine (on the blocking pool, errors mapped by
//! [`from_engine`]); and ARNs, read and made with the engine's envelope context (which the
//! server set from `--region`, `--account-id` and its address), so what an operation answers
//! and what an envelope says never differ.

use std::sync::Arc;

use super::errors::{from_engine, shorten, Code, SnsError};
use crate::server::auth::Principal;
use crate::server::Shared;
use crate::topic::EnvelopeContext;
use crate::Engine;

/// An operation's context. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub shared: Arc<Shared>,
    pub principal: Arc<Principal>,
}

impl Ctx {
    /// Runs `f` with the engine on the blocking pool.
    pub async fn engine<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Engine) -> crate::Result<T> + Send + 'static,
    ) -> Result<T, SnsError> {
        match self.shared.blocking(f).await {
            Ok(result) => result.map_err(|e| from_engine(&e)),
            Err(failed) => Err(SnsError::new(Code::InternalError, format!("The request failed: {}", failed.0))),
        }
    }

    /// Where ARNs say things are.
    pub fn context(&self) -> EnvelopeContext {
        self.shared.engine.envelope_context()
    }

    /// The account id (a topic's and a subscription's `Owner`).
    pub fn account(&self) -> String {
        self.shared.config.account_id.clone()
    }

    /// True if the request was signed with a key (the server runs with `--auth`).
    pub fn authenticated(&self) -> bool {
        self.principal.user.is_some()
    }

    /// The topic an ARN parameter names (`arn:aws:sns:REGION:ACCOUNT:NAME`). A topic of another
    /// region or account does not exist here.
    pub fn topic_from_arn(&self, parameter: &str, arn: &str) -> Result<String, SnsError> {
        match split_arn(arn, "sns").as_deref() {
            Some([region, account, name]) if !name.is_empty() => {
                self.check_home(region, account)?;
                Ok(name.to_string())
            }
            _ => Err(SnsError::invalid(parameter, format!("{} is not a topic ARN", shorten(arn)))),
        }
    }

    /// The subscription id an ARN names (`arn:aws:sns:REGION:ACCOUNT:TOPIC:ID`).
    pub fn subscription_from_arn(&self, arn: &str) -> Result<String, SnsError> {
        match split_arn(arn, "sns").as_deref() {
            Some([region, account, topic, id]) if !topic.is_empty() && !id.is_empty() => {
                self.check_home(region, account).map_err(|_| SnsError::no_subscription())?;
                Ok(id.to_string())
            }
            _ => Err(SnsError::invalid("SubscriptionArn", format!("{} is not a subscription ARN", shorten(arn)))),
        }
    }

    /// The queue an SQS ARN names (`arn:aws:sqs:REGION:ACCOUNT:NAME`), as `parameter`.
    pub fn queue_from_arn(&self, parameter: &str, arn: &str) -> Result<String, SnsError> {
        match split_arn(arn, "sqs").as_deref() {
            Some([region, account, name]) if !name.is_empty() => {
                if *region != self.context().region || *account != self.context().account_id {
                    return Err(SnsError::invalid(
                        parameter,
                        format!("queue {} is not in this endpoint's region and account", shorten(arn)),
                    ));
                }
                Ok(name.to_string())
            }
            _ => Err(SnsError::invalid(parameter, format!("{} is not an SQS queue ARN", shorten(arn)))),
        }
    }

    /// The ARN of queue `name`.
    pub fn queue_arn(&self, name: &str) -> String {
        let c = self.context();
        format!("arn:aws:sqs:{}:{}:{name}", c.region, c.account_id)
    }

    fn check_home(&self, region: &str, account: &str) -> Result<(), SnsError> {
        let c = self.context();
        if region != c.region || account != c.account_id {
            return Err(SnsError::no_topic());
        }
        Ok(())
    }

    /// Wakes the HTTP delivery supervisor (a subscription appeared or was confirmed).
    pub fn nudge_deliveries(&self) {
        self.shared.sns_deliveries.nudge();
    }
}

/// The parts after `arn:PARTITION:SERVICE:` of an ARN of `service`, split at `:`.
fn split_arn<'a>(arn: &'a str, service: &str) -> Option<Vec<&'a str>> {
    let mut parts = arn.split(':');
    if parts.next() != Some("arn") {
        return None;
    }
    let partition = parts.next()?;
    if partition.is_empty() || parts.next() != Some(service) {
        return None;
    }
    let rest: Vec<&str> = parts.collect();
    (rest.len() <= 4).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::split_arn;

    #[test]
    fn arns_split_into_their_parts() {
        assert_eq!(
            split_arn("arn:aws:sns:us-east-1:000000000000:t", "sns"),
            Some(vec!["us-east-1", "000000000000", "t"])
        );
        assert_eq!(split_arn("arn:aws:sns:r:a:t:s", "sns").map(|p| p.len()), Some(4));
        assert_eq!(split_arn("arn:aws:sqs:r:a:q", "sns"), None);
        assert_eq!(split_arn("nope", "sns"), None);
        assert_eq!(split_arn("arn::sns:r:a:t", "sns"), None);
        assert_eq!(split_arn("arn:aws:sns:a:b:c:d:e", "sns"), None);
    }
}
