//! Wildcard matching as IAM does it: `*` matches any run of characters (none included), `?`
//! exactly one. Actions match without regard to case, resources and condition values with it;
//! ARN operators match each of an ARN's six colon-separated parts on its own.

/// True when `text` matches `pattern`, where `*` is any run of characters and `?` one.
///
/// The classic two-pointer matcher: on a mismatch it backtracks to the last `*` and lets it
/// swallow one more character, so the work is at most `pattern.len() * text.len()` steps.
pub(crate) fn glob(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let same = |a: char, b: char| if ignore_case { a.to_lowercase().eq(b.to_lowercase()) } else { a == b };
    let (mut pi, mut ti) = (0usize, 0usize);
    // Where the last `*` was, and the text position it is currently made to end at.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && (p[pi] == '?' || same(p[pi], t[ti])) {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// An action pattern (`sqs:Send*`, `SQS:SendMessage`, `*`) against an action (`sqs:SendMessage`).
pub(crate) fn action(pattern: &str, action: &str) -> bool {
    glob(pattern, action, true)
}

/// A resource pattern (`arn:aws:sqs:*:123456789012:jobs-*`, `*`) against a resource ARN.
pub(crate) fn resource(pattern: &str, resource: &str) -> bool {
    glob(pattern, resource, false)
}

/// `ArnLike`/`ArnEquals`: both sides are ARNs of six parts
/// (`arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`), each part matched on its own, so a
/// wildcard never reaches across a colon into another part (the resource part keeps its
/// colons). A value that is not an ARN matches nothing.
pub(crate) fn arn(pattern: &str, value: &str) -> bool {
    let pattern: Vec<&str> = pattern.splitn(6, ':').collect();
    let value: Vec<&str> = value.splitn(6, ':').collect();
    if pattern.len() != 6 || value.len() != 6 || value[0] != "arn" {
        return false;
    }
    pattern.iter().zip(&value).all(|(p, v)| glob(p, v, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_as_iam_does() {
        let cases: &[(&str, &str, bool)] = &[
            ("*", "", true),
            ("*", "anything", true),
            ("", "", true),
            ("", "a", false),
            ("a", "a", true),
            ("a", "A", false),
            ("?", "a", true),
            ("?", "", false),
            ("?", "ab", false),
            ("a*c", "abbbc", true),
            ("a*c", "ac", true),
            ("a*c", "acb", false),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "aXcYb", false),
            ("*.fifo", "jobs.fifo", true),
            ("*.fifo", "jobs.fif", false),
            ("jobs-??", "jobs-01", true),
            ("jobs-??", "jobs-1", false),
            ("**", "x", true),
            ("a**?", "a", false),
            ("a**?", "ab", true),
            ("ሴ*", "ሴx", true),
        ];
        for &(pattern, text, expected) in cases {
            assert_eq!(glob(pattern, text, false), expected, "{pattern:?} against {text:?}");
        }
    }

    #[test]
    fn actions_ignore_case_resources_do_not() {
        assert!(action("SQS:SendMessage", "sqs:sendmessage"));
        assert!(action("sqs:Send*", "sqs:SendMessage"));
        assert!(action("*", "sqs:SendMessage"));
        assert!(!action("sqs:Send*", "sqs:ReceiveMessage"));
        assert!(!action("sns:*", "sqs:SendMessage"));
        assert!(resource("arn:aws:sqs:*:111122223333:jobs*", "arn:aws:sqs:us-east-1:111122223333:jobs-1"));
        assert!(!resource("arn:aws:sqs:*:111122223333:Jobs*", "arn:aws:sqs:us-east-1:111122223333:jobs-1"));
    }

    #[test]
    fn arn_parts_match_one_by_one() {
        let topic = "arn:aws:sns:us-east-1:111122223333:orders";
        assert!(arn("arn:aws:sns:*:111122223333:*", topic));
        assert!(arn("arn:aws:sns:us-east-1:111122223333:orders", topic));
        assert!(arn("arn:*:*:*:*:*", topic));
        assert!(!arn("arn:aws:sqs:*:111122223333:*", topic), "another service");
        assert!(!arn("arn:aws:sns:*", topic), "a pattern of fewer parts");
        // A star in one part does not reach into the next.
        assert!(!arn("arn:aws:sns:us-*:orders:*", topic));
        assert!(!arn("arn:aws:sns:*:*:*", "not-an-arn"));
        assert!(arn("arn:aws:s3:::bucket/a:b*", "arn:aws:s3:::bucket/a:bc"), "the resource part keeps colons");
    }
}
