//! Queue URLs (`http://HOST/ACCOUNT/NAME`, with the host the request was sent to) and ARNs
//! (`arn:aws:sqs:REGION:ACCOUNT:NAME`), and reading a queue's name back from either. Where SQS
//! takes a queue URL, a bare queue name is accepted too.

use super::errors::{shorten, Code, SqsError};

/// The account and region the server answers for.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The 12-digit account id in URLs and ARNs.
    pub account_id: String,
    /// The region in ARNs.
    pub region: String,
}

impl Identity {
    /// The URL of queue `name` as seen by a client that reached the server at `host`.
    pub fn queue_url(&self, host: &str, name: &str) -> String {
        format!("http://{host}/{}/{name}", self.account_id)
    }

    /// The ARN of queue `name`.
    pub fn queue_arn(&self, name: &str) -> String {
        format!("arn:aws:sqs:{}:{}:{name}", self.region, self.account_id)
    }

    /// The queue a `QueueUrl` parameter names: a full URL, a path (`/ACCOUNT/NAME`) or a bare
    /// name. A URL of another account names no queue here.
    pub fn queue_from_url(&self, url: &str) -> Result<String, SqsError> {
        let path = match url.find("://") {
            Some(i) => {
                let rest = &url[i + 3..];
                match rest.find('/') {
                    Some(j) => &rest[j..],
                    None => return Err(invalid_address(url)),
                }
            }
            None => url,
        };
        let path = path.split(['?', '#']).next().unwrap_or_default();
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        match segments.as_slice() {
            [name] => Ok(name.to_string()),
            [account, name] if *account == self.account_id || !is_account_id(account) => Ok(name.to_string()),
            [_, _] => Err(SqsError::no_queue()),
            _ => Err(invalid_address(url)),
        }
    }

    /// The queue an ARN names; an ARN of another account or region names no queue here.
    pub fn queue_from_arn(&self, parameter: &str, arn: &str) -> Result<String, SqsError> {
        let parts: Vec<&str> = arn.split(':').collect();
        match parts.as_slice() {
            ["arn", _partition, "sqs", region, account, name] if !name.is_empty() => {
                if *region != self.region || *account != self.account_id {
                    return Err(SqsError::new(
                        Code::ResourceNotFoundException,
                        format!("The resource that you specified for the {parameter} parameter doesn't exist."),
                    ));
                }
                Ok(name.to_string())
            }
            _ => Err(SqsError::invalid_parameter(
                parameter,
                arn,
                "is not a valid SQS queue ARN (arn:aws:sqs:REGION:ACCOUNT:NAME)",
            )),
        }
    }
}

fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

fn invalid_address(url: &str) -> SqsError {
    SqsError::new(Code::InvalidAddress, format!("The address {} is not valid for this endpoint.", shorten(url)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> Identity {
        Identity { account_id: "000000000000".into(), region: "us-east-1".into() }
    }

    #[test]
    fn urls_and_arns_round_trip() {
        let id = identity();
        let url = id.queue_url("127.0.0.1:9324", "jobs");
        assert_eq!(url, "http://127.0.0.1:9324/000000000000/jobs");
        assert_eq!(id.queue_from_url(&url).unwrap(), "jobs");
        assert_eq!(id.queue_arn("jobs.fifo"), "arn:aws:sqs:us-east-1:000000000000:jobs.fifo");
        assert_eq!(id.queue_from_arn("SourceArn", &id.queue_arn("jobs.fifo")).unwrap(), "jobs.fifo");
    }

    #[test]
    fn names_paths_and_foreign_urls() {
        let id = identity();
        assert_eq!(id.queue_from_url("jobs").unwrap(), "jobs");
        assert_eq!(id.queue_from_url("/000000000000/jobs").unwrap(), "jobs");
        assert_eq!(id.queue_from_url("https://sqs.us-east-1.amazonaws.com/000000000000/jobs").unwrap(), "jobs");
        assert_eq!(id.queue_from_url("http://h/123456789012/jobs").unwrap_err().code, Code::QueueDoesNotExist);
        assert_eq!(id.queue_from_url("http://h").unwrap_err().code, Code::InvalidAddress);
        assert_eq!(id.queue_from_url("http://h/a/b/c").unwrap_err().code, Code::InvalidAddress);
        assert_eq!(
            id.queue_from_arn("SourceArn", "arn:aws:sqs:eu-west-1:000000000000:q").unwrap_err().code,
            Code::ResourceNotFoundException
        );
        assert_eq!(id.queue_from_arn("SourceArn", "nonsense").unwrap_err().code, Code::InvalidParameterValue);
    }
}
