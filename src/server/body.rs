//! Reading request bodies with a bound. A body over the limit is read on and thrown away (up
//! to [`MAX_DRAIN_BYTES`]) so that the connection stays usable for the next request and the
//! client gets an error instead of a reset; past that the connection is closed.

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;

/// The most bytes read and discarded after the limit before giving up on the connection.
pub const MAX_DRAIN_BYTES: usize = 64 << 20;

/// Why a body could not be read.
#[derive(Debug)]
pub enum BodyError {
    /// Over the limit (how many bytes were seen; the body may be longer).
    TooLarge {
        /// Bytes seen.
        seen: usize,
        /// The limit.
        limit: usize,
    },
    /// The connection failed while the body was read.
    Broken(String),
}

/// Reads a whole body of at most `limit` bytes.
pub async fn read_limited(mut body: Incoming, limit: usize) -> Result<Bytes, BodyError> {
    // A body that arrives in one frame (most: HTTP/1.1 with Content-Length read in one go) is
    // that frame's bytes, not a copy; only a body in several frames is gathered.
    let mut first: Option<Bytes> = None;
    let mut buf = BytesMut::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyError::Broken(e.to_string()))?;
        let Ok(data) = frame.into_data() else { continue }; // trailers
        seen = seen.saturating_add(data.len());
        if seen > limit {
            if seen > limit.saturating_add(MAX_DRAIN_BYTES) {
                return Err(BodyError::TooLarge { seen, limit });
            }
            continue; // drain
        }
        match first.take() {
            None if buf.is_empty() => first = Some(data),
            earlier => {
                if let Some(earlier) = earlier {
                    buf.extend_from_slice(&earlier);
                }
                buf.extend_from_slice(&data);
            }
        }
    }
    if seen > limit {
        return Err(BodyError::TooLarge { seen, limit });
    }
    Ok(first.unwrap_or_else(|| buf.freeze()))
}
