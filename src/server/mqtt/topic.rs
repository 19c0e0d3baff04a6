//! MQTT subscription filters, pure: plain or shared (`$share/GROUP/FILTER`, spec 4.8.2). Names,
//! filters and matching are the engine's ([`crate::topic::mqtt_filter`]), since bindings route
//! with them.

pub(crate) use crate::topic::mqtt_filter::{matches, valid_filter, valid_name};

/// A subscription's filter, plain or shared.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct SubscriptionFilter {
    /// The share group of `$share/GROUP/FILTER`.
    pub group: Option<String>,
    /// The filter topics are matched against.
    pub filter: String,
}

/// Reads a SUBSCRIBE or UNSUBSCRIBE filter; `None` when it is not valid (a share group that is
/// empty or holds a wildcard, or an invalid filter).
pub(crate) fn parse_filter(text: &str) -> Option<SubscriptionFilter> {
    if let Some(rest) = text.strip_prefix("$share/") {
        let (group, filter) = rest.split_once('/')?;
        if group.is_empty() || group.contains(['+', '#']) || !valid_filter(filter) {
            return None;
        }
        return Some(SubscriptionFilter { group: Some(group.to_owned()), filter: filter.to_owned() });
    }
    valid_filter(text).then(|| SubscriptionFilter { group: None, filter: text.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_subscriptions_are_parsed() {
        assert_eq!(
            parse_filter("$share/g1/a/+"),
            Some(SubscriptionFilter { group: Some("g1".into()), filter: "a/+".into() })
        );
        assert_eq!(parse_filter("a/#"), Some(SubscriptionFilter { group: None, filter: "a/#".into() }));
        for bad in ["$share/g1", "$share//a", "$share/g+/a", "$share/g/a/#/b", "a/#/b"] {
            assert_eq!(parse_filter(bad), None, "{bad}");
        }
    }
}
