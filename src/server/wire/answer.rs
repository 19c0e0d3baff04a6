//! Answers of the query protocol, the same for every service that speaks it: a success is
//! `<OpResponse xmlns=NS><OpResult>..</OpResult><ResponseMetadata><RequestId>..` and an error
//! `<ErrorResponse xmlns=NS><Error><Type>Sender|Receiver</Type><Code>..</Code><Message>..`.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde_json::{Map, Value};

use super::query::{self, Naming};
use super::xml::XmlWriter;

/// The content type of query-protocol answers.
pub const XML_CONTENT_TYPE: &str = "text/xml";

/// The XML of a successful query-protocol answer to `operation`: its JSON-shaped `output`
/// inside `<operationResult>` when the operation has a result element, with the names of
/// `naming`.
pub fn query_success(
    namespace: &str,
    operation: &str,
    has_result: bool,
    output: &Map<String, Value>,
    naming: Naming<'_>,
    request_id: &str,
) -> String {
    let mut w = XmlWriter::new();
    w.open_ns(&format!("{operation}Response"), namespace);
    if has_result {
        let result = format!("{operation}Result");
        w.open(&result);
        query::write_xml(&mut w, output, naming);
        w.close(&result);
    }
    w.open("ResponseMetadata");
    w.element("RequestId", request_id);
    w.close("ResponseMetadata");
    w.close(&format!("{operation}Response"));
    w.finish()
}

/// The XML of a query-protocol error: `sender_fault` says whether the caller (`Sender`) or
/// the service (`Receiver`) is at fault.
pub fn query_error(namespace: &str, sender_fault: bool, code: &str, message: &str, request_id: &str) -> String {
    let mut w = XmlWriter::new();
    w.open_ns("ErrorResponse", namespace);
    w.open("Error");
    w.element("Type", if sender_fault { "Sender" } else { "Receiver" });
    w.element("Code", code);
    w.element("Message", message);
    w.close("Error");
    w.element("RequestId", request_id);
    w.close("ErrorResponse");
    w.finish()
}

/// An HTTP response with a body, its content type and the request id header AWS sends.
pub fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: Vec<u8>,
    request_id: &str,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert(HeaderName::from_static("x-amzn-requestid"), v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_wrapped_as_the_query_protocol_wants() {
        let mut output = Map::new();
        output.insert("TopicArn".into(), Value::String("arn:x".into()));
        let ok = query_success("urn:ns", "CreateTopic", true, &output, &[], "r-1");
        assert_eq!(
            ok,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><CreateTopicResponse xmlns=\"urn:ns\"><CreateTopicResult>\
             <TopicArn>arn:x</TopicArn></CreateTopicResult><ResponseMetadata><RequestId>r-1</RequestId>\
             </ResponseMetadata></CreateTopicResponse>"
        );
        let err = query_error("urn:ns", true, "NotFound", "Topic does not exist", "r-2");
        assert!(err.contains("<Error><Type>Sender</Type><Code>NotFound</Code><Message>Topic does not exist</Message></Error><RequestId>r-2</RequestId>"), "{err}");
    }
}
