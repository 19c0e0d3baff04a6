//! MQTT topic names and filters (MQTT 5 spec 4.7), pure: validation and wildcard matching
//! (`+` one level, `#` every level below, `$`-topics matched only by filters that name their
//! first level). A binding's [`super::RouteFilter::Mqtt`] routes with it.

/// Whether a PUBLISH's topic name is valid: not empty, no wildcards.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(['+', '#'])
}

/// Whether a topic filter is valid: not empty; `#` only as a whole last level; `+` only as a
/// whole level.
pub fn valid_filter(filter: &str) -> bool {
    if filter.is_empty() {
        return false;
    }
    let levels: Vec<&str> = filter.split('/').collect();
    let last = levels.len() - 1;
    levels.iter().enumerate().all(|(i, level)| match *level {
        "#" => i == last,
        "+" => true,
        l => !l.contains(['+', '#']),
    })
}

/// Whether a topic name matches a (valid) filter.
pub fn matches(filter: &str, name: &str) -> bool {
    // A wildcard at the first level does not match a `$` topic (spec 4.7.2).
    if name.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut names = name.split('/');
    for level in filter.split('/') {
        match level {
            "#" => return true,
            "+" => {
                if names.next().is_none() {
                    return false;
                }
            }
            l => {
                if names.next() != Some(l) {
                    return false;
                }
            }
        }
    }
    names.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_examples_match() {
        // Spec 4.7.1.2 and 4.7.1.3.
        assert!(matches("sport/tennis/player1/#", "sport/tennis/player1"));
        assert!(matches("sport/tennis/player1/#", "sport/tennis/player1/ranking"));
        assert!(matches("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon"));
        assert!(matches("sport/#", "sport"));
        assert!(matches("#", "a/b/c"));
        assert!(matches("sport/tennis/+", "sport/tennis/player1"));
        assert!(!matches("sport/tennis/+", "sport/tennis/player1/ranking"));
        assert!(!matches("sport/+", "sport"));
        assert!(matches("sport/+", "sport/"));
        assert!(matches("+/+", "/finance"));
        assert!(matches("/+", "/finance"));
        assert!(!matches("+", "/finance"));
        assert!(matches("+/tennis/#", "sport/tennis"));
        assert!(!matches("a/b", "a/b/c"));
        assert!(!matches("a/b/c", "a/b"));
        // Spec 4.7.2: `$` topics.
        assert!(!matches("#", "$SYS/x"));
        assert!(!matches("+/monitor/Clients", "$SYS/monitor/Clients"));
        assert!(matches("$SYS/#", "$SYS/monitor/Clients"));
        assert!(matches("$SYS/monitor/+", "$SYS/monitor/Clients"));
    }

    #[test]
    fn filters_and_names_are_validated() {
        for ok in ["#", "+", "a/#", "+/+", "/", "a//b", "sport/+/player1", "$SYS/#"] {
            assert!(valid_filter(ok), "{ok}");
        }
        for bad in ["", "a#", "a/#/b", "sport+", "a/b+/c", "##"] {
            assert!(!valid_filter(bad), "{bad}");
        }
        assert!(valid_name("a/b") && valid_name("/"));
        assert!(!valid_name("") && !valid_name("a/+") && !valid_name("a/#"));
    }

    proptest::proptest! {
        /// A filter equal to the name matches; `#` matches every name not starting with `$`;
        /// replacing any one level by `+` still matches.
        #[test]
        fn matching_agrees_with_its_definition(levels in proptest::collection::vec("[a-c]{0,2}", 1..5), plus in 0usize..5) {
            let name = levels.join("/");
            proptest::prop_assert!(matches(&name, &name));
            proptest::prop_assert!(matches("#", &name));
            let mut f = levels.clone();
            let i = plus % f.len();
            f[i] = "+".into();
            proptest::prop_assert!(matches(&f.join("/"), &name));
            f.truncate(i);
            f.push("#".into());
            proptest::prop_assert!(matches(&f.join("/"), &name));
        }
    }
}
