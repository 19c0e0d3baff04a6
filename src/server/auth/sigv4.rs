//! AWS Signature Version 4, checked as AWS checks it. Pure: a request's parts and the time in,
//! a verdict out.
//!
//! - **Header form**: `Authorization: AWS4-HMAC-SHA256 Credential=KEY/DATE/REGION/SERVICE/aws4_request,
//!   SignedHeaders=a;b, Signature=HEX` with the time in `X-Amz-Date` (or `Date`).
//! - **Presigned (query) form**: `X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`,
//!   `X-Amz-Expires`, `X-Amz-SignedHeaders`, `X-Amz-Signature` in the query string.
//!
//! The canonical request is `METHOD \n URI \n QUERY \n HEADERS \n SIGNED \n PAYLOAD-HASH`:
//! the URI is the path as sent, dot segments and repeated slashes removed, percent-encoded
//! once more (services other than S3 sign the encoded path encoded again); the query's
//! parameters are decoded, encoded strictly (`A-Za-z0-9-_.~` kept) and sorted; the signed
//! headers are lowercased, their values trimmed with inner runs of spaces made one, repeated
//! headers joined with `,`; the payload hash is `x-amz-content-sha256` when the client sent it
//! (`UNSIGNED-PAYLOAD` included; a hex hash must then be the body's), else the body's SHA-256.
//! The string to sign is `AWS4-HMAC-SHA256 \n TIME \n SCOPE \n hex(sha256(canonical))`, and
//! the key is HMAC'd down from `AWS4` + secret through date, region, service and `aws4_request`.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The only algorithm SigV4 has.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// How far a request's time may be from the server's: 15 minutes, either way.
pub const MAX_SKEW_MS: u64 = 15 * 60 * 1000;
/// The payload hash a client sends when it does not sign the body.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// Longest validity of a presigned request: 7 days, as AWS.
pub const MAX_EXPIRES_SECONDS: u64 = 7 * 24 * 3600;

/// Why a request's signature is refused, in AWS's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigError {
    /// No signature at all (`MissingAuthenticationToken`).
    Missing,
    /// A signature that does not follow the form (`IncompleteSignature`).
    Incomplete(String),
    /// A time outside the window, or a presigned request past its expiry (`RequestExpired`).
    Expired(String),
    /// The computed signature differs (`SignatureDoesNotMatch`).
    Mismatch(String),
}

/// A request as it came, for signing purposes.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// `GET`, `POST`, ...
    pub method: &'a str,
    /// The path as sent (percent-encoded as the client encoded it).
    pub path: &'a str,
    /// The query string as sent, without `?`.
    pub query: Option<&'a str>,
    /// Every header, names in any case, values as bytes (one entry per occurrence, in order).
    pub headers: &'a [(&'a str, &'a [u8])],
    /// The body.
    pub body: &'a [u8],
}

/// What a request's signature claims, before it is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The access key id.
    pub access_key_id: String,
    /// The scope's date, `YYYYMMDD`.
    pub date: String,
    /// The scope's region.
    pub region: String,
    /// The scope's service (`sqs`, `sns`, `kinesis`, `firehose`).
    pub service: String,
    /// The request time, `YYYYMMDDTHHMMSSZ`.
    pub time: String,
    /// Lowercase signed header names, as listed.
    pub signed_headers: Vec<String>,
    /// The signature, lowercase hex.
    pub signature: String,
    /// Seconds a presigned request stays valid; `None` for the header form.
    pub expires: Option<u64>,
}

impl Claim {
    /// `DATE/REGION/SERVICE/aws4_request`.
    pub fn scope(&self) -> String {
        format!("{}/{}/{}/aws4_request", self.date, self.region, self.service)
    }
}

fn header<'a>(req: &SignedRequest<'a>, name: &str) -> Option<&'a [u8]> {
    req.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| *v)
}

fn header_str<'a>(req: &SignedRequest<'a>, name: &str) -> Option<&'a str> {
    header(req, name).and_then(|v| std::str::from_utf8(v).ok())
}

/// The query's parameters, decoded (`+` is a plus: SigV4 clients encode spaces as `%20`).
fn query_params(query: Option<&str>) -> Result<Vec<(String, String)>, SigError> {
    let mut out = Vec::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| {
            percent_decode(s)
                .ok_or_else(|| SigError::Incomplete("the query string has a malformed percent-encoding".into()))
        };
        out.push((decode(k)?, decode(v)?));
    }
    Ok(out)
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            let text = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(text, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// SigV4's strict encoding: unreserved characters kept, every other byte `%XX` (uppercase);
/// `/` kept when `keep_slash`.
pub fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Reads the signature a request claims: `Ok(None)` when it carries none (neither an
/// `Authorization` header nor `X-Amz-Signature` in its query).
pub fn claim(req: &SignedRequest<'_>) -> Result<Option<Claim>, SigError> {
    let params = query_params(req.query)?;
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    if let Some(authorization) = header(req, "authorization") {
        let authorization = std::str::from_utf8(authorization)
            .map_err(|_| SigError::Incomplete("the Authorization header is not text".into()))?;
        return header_claim(req, authorization).map(Some);
    }
    if param("X-Amz-Signature").is_none() && param("X-Amz-Algorithm").is_none() && param("X-Amz-Credential").is_none() {
        return Ok(None);
    }
    let required = |name: &str| {
        param(name).ok_or_else(|| {
            SigError::Incomplete(format!(
                "AWS query-string parameters must include '{name}'. Re-examine the query-string parameters."
            ))
        })
    };
    let algorithm = required("X-Amz-Algorithm")?;
    if algorithm != ALGORITHM {
        return Err(SigError::Incomplete(format!("Unsupported AWS 'algorithm': '{}'", short(algorithm))));
    }
    let credential = required("X-Amz-Credential")?;
    let time = required("X-Amz-Date")?.to_string();
    let expires = required("X-Amz-Expires")?;
    let signed = required("X-Amz-SignedHeaders")?;
    let signature = required("X-Amz-Signature")?;
    let expires: u64 = expires
        .parse()
        .ok()
        .filter(|s: &u64| *s <= MAX_EXPIRES_SECONDS)
        .ok_or_else(|| SigError::Incomplete(format!("X-Amz-Expires must be 0 to {MAX_EXPIRES_SECONDS} seconds")))?;
    let mut claim = scope_claim(credential, signed, signature, time)?;
    claim.expires = Some(expires);
    Ok(Some(claim))
}

fn header_claim(req: &SignedRequest<'_>, authorization: &str) -> Result<Claim, SigError> {
    let (algorithm, rest) = authorization.trim().split_once(' ').unwrap_or((authorization.trim(), ""));
    if algorithm != ALGORITHM {
        return Err(SigError::Incomplete(format!(
            "Unsupported AWS 'algorithm': '{}'; this endpoint verifies {ALGORITHM} (Signature Version 4) only",
            short(algorithm)
        )));
    }
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',') {
        let part = part.trim();
        if let Some((k, v)) = part.split_once('=') {
            match k.trim() {
                "Credential" => credential = Some(v.trim()),
                "SignedHeaders" => signed = Some(v.trim()),
                "Signature" => signature = Some(v.trim()),
                _ => {}
            }
        }
    }
    let missing = |what: &str| {
        SigError::Incomplete(format!(
            "Authorization header requires '{what}' parameter. Authorization={}",
            short(authorization)
        ))
    };
    let credential = credential.ok_or_else(|| missing("Credential"))?;
    let signed = signed.ok_or_else(|| missing("SignedHeaders"))?;
    let signature = signature.ok_or_else(|| missing("Signature"))?;
    let time = match header_str(req, "x-amz-date") {
        Some(t) => t.trim().to_string(),
        None => match header_str(req, "date").and_then(http_date_to_amz) {
            Some(t) => t,
            None => {
                return Err(SigError::Incomplete(
                    "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.".into(),
                ))
            }
        },
    };
    scope_claim(credential, signed, signature, time)
}

fn scope_claim(credential: &str, signed: &str, signature: &str, time: String) -> Result<Claim, SigError> {
    let parts: Vec<&str> = credential.split('/').collect();
    if parts.len() != 5 || parts.iter().any(|p| p.is_empty()) {
        return Err(SigError::Incomplete(format!(
            "Credential should be scoped to a valid region (KEY/DATE/REGION/SERVICE/aws4_request), not '{}'",
            short(credential)
        )));
    }
    if parts[4] != "aws4_request" {
        return Err(SigError::Incomplete(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{}'",
            short(parts[4])
        )));
    }
    if parts[1].len() != 8 || !parts[1].bytes().all(|b| b.is_ascii_digit()) {
        return Err(SigError::Incomplete(format!("Credential date '{}' is not YYYYMMDD", short(parts[1]))));
    }
    if parse_amz_time_ms(&time).is_none() {
        return Err(SigError::Incomplete(format!(
            "the request time '{}' is not in the ISO 8601 basic format YYYYMMDD'T'HHMMSS'Z'",
            short(&time)
        )));
    }
    if !time.starts_with(parts[1]) {
        return Err(SigError::Mismatch(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{}'",
            short(parts[1]),
            short(&time[..8.min(time.len())]),
            short(&time)
        )));
    }
    let signed_headers: Vec<String> = signed.split(';').map(str::to_string).collect();
    if signed_headers.iter().any(|h| h.is_empty() || h.bytes().any(|b| b.is_ascii_uppercase())) {
        return Err(SigError::Incomplete("SignedHeaders must be lowercase names separated by ';'".into()));
    }
    if !signed_headers.iter().any(|h| h == "host") {
        return Err(SigError::Incomplete(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".into(),
        ));
    }
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SigError::Incomplete("the Signature must be 64 hexadecimal digits".into()));
    }
    Ok(Claim {
        access_key_id: parts[0].to_string(),
        date: parts[1].to_string(),
        region: parts[2].to_string(),
        service: parts[3].to_string(),
        time,
        signed_headers,
        signature: signature.to_ascii_lowercase(),
        expires: None,
    })
}

/// The canonical URI: the path as sent, normalized (dot segments and empty segments gone, a
/// trailing slash kept) and encoded once more.
pub fn canonical_uri(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut normalized = String::from("/");
    normalized.push_str(&segments.join("/"));
    if path.ends_with('/') && !segments.is_empty() {
        normalized.push('/');
    }
    uri_encode(&normalized, true)
}

/// The canonical query string: every parameter but `X-Amz-Signature`, encoded strictly, sorted
/// by name then value.
pub fn canonical_query(query: Option<&str>) -> Result<String, SigError> {
    let mut params: Vec<(String, String)> = query_params(query)?
        .into_iter()
        .filter(|(k, _)| k != "X-Amz-Signature")
        .map(|(k, v)| (uri_encode(&k, false), uri_encode(&v, false)))
        .collect();
    params.sort();
    Ok(params.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&"))
}

/// A header value as signed: trimmed, inner runs of whitespace made one space.
fn canonical_value(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(value);
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The canonical request for `claim`'s signed headers, with `host` taken from the `Host`
/// header or, in HTTP/2, from `authority`.
pub fn canonical_request(req: &SignedRequest<'_>, claim: &Claim, authority: Option<&str>) -> Result<String, SigError> {
    let mut headers = String::new();
    for name in &claim.signed_headers {
        let values: Vec<String> =
            req.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| canonical_value(v)).collect();
        let value = if values.is_empty() {
            match (name.as_str(), authority) {
                ("host", Some(a)) => a.to_string(),
                _ => {
                    return Err(SigError::Mismatch(format!(
                        "the signed header '{}' is not in the request",
                        short(name)
                    )))
                }
            }
        } else {
            values.join(",")
        };
        headers.push_str(name);
        headers.push(':');
        headers.push_str(&value);
        headers.push('\n');
    }
    let payload = payload_hash(req, claim)?;
    Ok(format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        canonical_uri(req.path),
        canonical_query(req.query)?,
        headers,
        claim.signed_headers.join(";"),
        payload
    ))
}

/// `x-amz-content-sha256` when sent (`UNSIGNED-PAYLOAD`, or the body's hash, which must
/// then be right), else the body's SHA-256.
fn payload_hash(req: &SignedRequest<'_>, _claim: &Claim) -> Result<String, SigError> {
    let actual = hex(&Sha256::digest(req.body));
    match header_str(req, "x-amz-content-sha256").map(str::trim) {
        None => Ok(actual),
        Some(UNSIGNED_PAYLOAD) => Ok(UNSIGNED_PAYLOAD.to_string()),
        Some(claimed) if claimed.eq_ignore_ascii_case(&actual) => Ok(claimed.to_string()),
        Some(claimed) => Err(SigError::Mismatch(format!(
            "The provided 'x-amz-content-sha256' header does not match what was computed ('{}').",
            short(claimed)
        ))),
    }
}

/// `AWS4-HMAC-SHA256 \n TIME \n SCOPE \n hex(sha256(canonical request))`.
pub fn string_to_sign(claim: &Claim, canonical_request: &str) -> String {
    format!("{ALGORITHM}\n{}\n{}\n{}", claim.time, claim.scope(), hex(&Sha256::digest(canonical_request.as_bytes())))
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The signing key of a secret for one day, region and service.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

/// The signature (lowercase hex) of a string to sign.
pub fn signature(key: &[u8; 32], string_to_sign: &str) -> String {
    hex(&hmac(key, string_to_sign.as_bytes()))
}

/// Checks `claim` (read by [`claim`] from `req`) with `secret`, at `now_ms` (the engine
/// clock): the time within [`MAX_SKEW_MS`] (a presigned request: not before its time minus the
/// skew, not after its time plus its `X-Amz-Expires`), then the signature, compared in
/// constant time.
pub fn verify(
    req: &SignedRequest<'_>,
    claim: &Claim,
    secret: &str,
    authority: Option<&str>,
    now_ms: u64,
) -> Result<(), SigError> {
    let signed_ms = parse_amz_time_ms(&claim.time).ok_or_else(|| SigError::Incomplete("bad request time".into()))?;
    let now_text = format_amz_time(now_ms);
    match claim.expires {
        None => {
            if signed_ms.saturating_add(MAX_SKEW_MS) < now_ms {
                return Err(SigError::Expired(format!(
                    "Signature expired: {} is now earlier than {} ({now_text} - 15 min.)",
                    claim.time,
                    format_amz_time(now_ms - MAX_SKEW_MS),
                )));
            }
            if signed_ms > now_ms.saturating_add(MAX_SKEW_MS) {
                return Err(SigError::Expired(format!(
                    "Signature not yet current: {} is still later than {} ({now_text} + 15 min.)",
                    claim.time,
                    format_amz_time(now_ms.saturating_add(MAX_SKEW_MS)),
                )));
            }
        }
        Some(expires) => {
            let end = signed_ms.saturating_add(expires.saturating_mul(1000));
            if now_ms > end {
                return Err(SigError::Expired(format!(
                    "Request has expired: signed at {}, valid for {expires} seconds, now {now_text}",
                    claim.time
                )));
            }
            if signed_ms > now_ms.saturating_add(MAX_SKEW_MS) {
                return Err(SigError::Expired(format!(
                    "Request is not yet valid: signed at {}, now {now_text}",
                    claim.time
                )));
            }
        }
    }
    let canonical = canonical_request(req, claim, authority)?;
    let to_sign = string_to_sign(claim, &canonical);
    let expected = signature(&signing_key(secret, &claim.date, &claim.region, &claim.service), &to_sign);
    if !constant_time_eq(expected.as_bytes(), claim.signature.as_bytes()) {
        return Err(SigError::Mismatch(
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
                .into(),
        ));
    }
    Ok(())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn hex(bytes: &[u8]) -> String {
    crate::text::hex(bytes)
}

fn short(s: &str) -> String {
    s.chars().take(100).collect()
}

/// `YYYYMMDDTHHMMSSZ` in milliseconds since the epoch.
pub fn parse_amz_time_ms(t: &str) -> Option<u64> {
    let b = t.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let iso = format!(
        "{}-{}-{}T{}:{}:{}Z",
        t.get(0..4)?,
        t.get(4..6)?,
        t.get(6..8)?,
        t.get(9..11)?,
        t.get(11..13)?,
        t.get(13..15)?
    );
    let digits_ok = b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit);
    if !digits_ok {
        return None;
    }
    crate::policy::parse_date_ms(&iso).and_then(|ms| u64::try_from(ms).ok())
}

/// Milliseconds since the epoch as `YYYYMMDDTHHMMSSZ`.
pub fn format_amz_time(ms: u64) -> String {
    let iso = crate::text::iso8601(ms); // YYYY-MM-DDTHH:MM:SS.sssZ
    let digits: String = iso.chars().take(19).filter(|c| c.is_ascii_digit() || *c == 'T').collect();
    format!("{digits}Z")
}

/// An HTTP `Date` header (`Sun, 30 Aug 2015 12:36:00 GMT`) as `YYYYMMDDTHHMMSSZ`.
fn http_date_to_amz(date: &str) -> Option<String> {
    let parts: Vec<&str> = date.split_whitespace().collect();
    if parts.len() != 6 || parts[5] != "GMT" {
        return None;
    }
    let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        .iter()
        .position(|m| *m == parts[2])?
        + 1;
    let day: u32 = parts[1].parse().ok()?;
    let year: u32 = parts[3].parse().ok()?;
    let hms: Vec<&str> = parts[4].split(':').collect();
    if hms.len() != 3 || hms.iter().any(|p| p.len() != 2 || !p.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    Some(format!("{year:04}{month:02}{day:02}T{}{}{}Z", hms[0], hms[1], hms[2]))
}

#[cfg(test)]
mod tests;
