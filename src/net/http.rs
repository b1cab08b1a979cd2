//! HTTP/1.1 over byte buffers: parse one request from the front of a
//! connection's read buffer, and append a response to its write buffer.
//! No sockets here, so every case is testable with plain bytes.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::api::civil_date;

/// Bounds a request must stay within.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Request line plus headers, in bytes (beyond: 431).
    pub max_head_bytes: usize,
    /// Body, in bytes (beyond: 413).
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head_bytes: 8 * 1024,
            max_body_bytes: 64 * 1024,
        }
    }
}

/// Most header lines a request may have (beyond: 431). Generous: a
/// browser's request through a CDN and an ingress carries 40 or more
/// (forwarding, tracing); the head's byte limit is the real bound.
pub const MAX_HEADERS: usize = 128;

/// Header lines a request usually has at most: the first parse's room.
pub const USUAL_HEADERS: usize = 32;

/// The methods the API knows; anything else is answered 405 by the router.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// `GET`
    Get,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `DELETE`
    Delete,
    /// `HEAD`: answered like any other method, but without the body.
    Head,
    /// Any other method token.
    Other,
}

/// One parsed request, borrowing from the read buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// The method.
    pub method: Method,
    /// The path, without the query string.
    pub path: &'a str,
    /// What follows `?` in the target, if anything.
    pub query: Option<&'a str>,
    /// The body: `Content-Length` bytes of the buffer, the decoded chunks
    /// of a chunked body, or empty.
    pub body: Cow<'a, [u8]>,
    /// Whether the connection stays open after the answer.
    pub keep_alive: bool,
    /// `Connection: Upgrade` with `Upgrade: websocket`.
    pub wants_websocket: bool,
    /// The `Sec-WebSocket-Key` header, if sent.
    pub websocket_key: Option<&'a [u8]>,
    /// The `Sec-WebSocket-Version` header, if sent.
    pub websocket_version: Option<&'a [u8]>,
    /// The `Content-Type` header, if sent.
    pub content_type: Option<&'a [u8]>,
    /// An `Origin` header was sent: the request comes from a web page
    /// (browsers send one with every `POST` and `PUT`).
    pub from_a_web_page: bool,
    /// The `Authorization` header, if sent.
    pub authorization: Option<&'a [u8]>,
    /// Bytes of the buffer this request used.
    pub len: usize,
}

/// What the front of a read buffer holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// Not a whole request yet. `expects_continue`: its head is whole, its
    /// body is not, and the client (HTTP/1.1) sent `Expect: 100-continue`,
    /// so it may be waiting for `100 Continue` before sending the body.
    Partial {
        /// The client asked to be told to send the body: the head, for the
        /// front to refuse it first if it would refuse it whole.
        expects_continue: Option<Head<'a>>,
    },
    /// A whole request.
    Whole(Request<'a>),
}

/// What the front needs of a request whose body it has not read yet to
/// refuse it before asking for the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head<'a> {
    /// The request's method.
    pub method: Method,
    /// The path, as [`Request::path`].
    pub path: &'a str,
    /// The `Authorization` header, if sent.
    pub authorization: Option<&'a [u8]>,
    /// The `Content-Type` header, if sent.
    pub content_type: Option<&'a [u8]>,
    /// Whether it came from a web page (an `Origin` header).
    pub from_a_web_page: bool,
}

/// The content type of every answer but `GET /metrics`.
pub const JSON: &str = "application/json";

/// The interim answer to `Expect: 100-continue`: send the body.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// A request that cannot be served; the connection is answered and closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpError {
    /// Not HTTP/1.x as we can parse it (400).
    Malformed(&'static str),
    /// Request line and headers too large (431).
    HeadTooLarge,
    /// More than [`MAX_HEADERS`] header lines (431).
    TooManyHeaders,
    /// The request line alone past the head's limit (414).
    TargetTooLong,
    /// Body larger than the limit (413).
    BodyTooLarge,
    /// A transfer coding other than `chunked` (501).
    UnsupportedTransferCoding,
    /// A request line naming an HTTP version other than 1.0 and 1.1, such
    /// as `HTTP/2.0` (505, RFC 9110 §15.6.6).
    VersionNotSupported,
}

impl HttpError {
    /// The status code that answers this error.
    pub fn status(self) -> u16 {
        match self {
            HttpError::Malformed(_) => 400,
            HttpError::HeadTooLarge | HttpError::TooManyHeaders => 431,
            HttpError::TargetTooLong => 414,
            HttpError::BodyTooLarge => 413,
            HttpError::UnsupportedTransferCoding => 501,
            HttpError::VersionNotSupported => 505,
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Malformed(why) => write!(f, "Malformed HTTP request: {why}"),
            HttpError::HeadTooLarge => f.write_str("Request headers too large"),
            HttpError::TooManyHeaders => {
                write!(f, "Too many header lines: at most {MAX_HEADERS}")
            }
            HttpError::TargetTooLong => f.write_str("Request target too long"),
            HttpError::BodyTooLarge => f.write_str("Request body too large"),
            HttpError::UnsupportedTransferCoding => f.write_str(
                "Only the chunked transfer coding is supported; send chunked or Content-Length",
            ),
            HttpError::VersionNotSupported => {
                f.write_str("HTTP version not supported: this service speaks HTTP/1.1 and HTTP/1.0")
            }
        }
    }
}

/// Whether a body with this `Content-Type` is read as JSON: one that names
/// JSON, or none from a client other than a web page (wrk, netcat and the
/// original's clients send none, and FastAPI took it as JSON). A web page
/// sends no `Content-Type` with a byte-array body, and a browser sends
/// that to any address without asking (no CORS preflight): taken as JSON,
/// any page a user opens could place orders on a service on their machine.
pub fn body_is_json(content_type: Option<&[u8]>, from_a_web_page: bool) -> bool {
    content_type.map_or(!from_a_web_page, is_json_media_type)
}

/// Whether a `Content-Type` value names JSON: `application/json` or an
/// `application/...+json` type, any parameters (`; charset=utf-8`) aside,
/// in any case.
pub fn is_json_media_type(value: &[u8]) -> bool {
    let essence = value
        .split(|&b| b == b';')
        .next()
        .unwrap_or(b"")
        .trim_ascii();
    let Some((kind, subtype)) = essence
        .iter()
        .position(|&b| b == b'/')
        .map(|slash| (&essence[..slash], &essence[slash + 1..]))
    else {
        return false;
    };
    kind.eq_ignore_ascii_case(b"application")
        && (subtype.eq_ignore_ascii_case(b"json")
            || subtype.len() > 5 && subtype[subtype.len() - 5..].eq_ignore_ascii_case(b"+json"))
}

/// `path` with its escapes of unreserved characters decoded (`%6F` is
/// `o`, `%30` is `0`), which RFC 3986 §6.2.2.2 makes the same path; other
/// escapes (`%2F` is not `/`) are kept, and a malformed one keeps the path
/// as it is, so the path matches no route rather than another one.
pub fn normalized_path(path: &str) -> Cow<'_, str> {
    crate::api::percent_decoded_if(path, |b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// The path and query of a request target: an absolute-form target
/// (`http://host:8000/order/1`, as a client talking to a proxy sends) is
/// read as its origin form (`/order/1`; its path may be empty, which is
/// `/`), which RFC 9112 §3.2.2 says a server must accept; any other form
/// is returned as it is.
fn origin_form(target: &str) -> &str {
    let after_scheme = ["http://", "https://"].iter().find_map(|scheme| {
        let head = target.get(..scheme.len())?;
        head.eq_ignore_ascii_case(scheme)
            .then(|| &target[scheme.len()..])
    });
    match after_scheme {
        Some(rest) => rest.find(['/', '?']).map_or("", |start| &rest[start..]),
        None => target,
    }
}

fn header_is(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|part| part.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// Whether the request line is a method, a target and a well-formed HTTP
/// version (`HTTP/d.d`): one httparse refuses is then another version,
/// not noise such as a space inside the target.
fn names_an_http_version(buf: &[u8]) -> bool {
    let line = buf.split(|&b| b == b'\n').next().unwrap_or(buf);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    // The third of exactly three parts.
    let mut parts = line.split(|&b| b == b' ').skip(2);
    let (Some(version), None) = (parts.next(), parts.next()) else {
        return false;
    };
    matches!(version, [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
        if major.is_ascii_digit() && minor.is_ascii_digit())
}

/// A head past the limit: 414 if its request line alone is (a long
/// query, say), which tells the client what to shorten; 431 otherwise.
fn too_large(buf: &[u8], limits: &Limits) -> HttpError {
    let within = &buf[..buf.len().min(limits.max_head_bytes)];
    match within.contains(&b'\n') {
        true => HttpError::HeadTooLarge,
        false => HttpError::TargetTooLong,
    }
}

/// Parses the request at the front of `buf`: [`Parsed::Partial`] while it
/// is incomplete, [`Parsed::Whole`] once it is whole.
pub fn parse_request<'a>(buf: &'a [u8], limits: &Limits) -> Result<Parsed<'a>, HttpError> {
    // Most requests have a handful of headers: the array for all of
    // `MAX_HEADERS` is only made when the first is too small (it cost 29
    // ns of a 165 ns parse, `examples/head_parse_cost`).
    let mut few = [httparse::EMPTY_HEADER; USUAL_HEADERS];
    let mut many;
    let mut parsed = httparse::Request::new(&mut few);
    let mut status = parsed.parse(buf);
    if let Err(httparse::Error::TooManyHeaders) = status {
        many = [httparse::EMPTY_HEADER; MAX_HEADERS];
        parsed = httparse::Request::new(&mut many);
        status = parsed.parse(buf);
    }
    let head_len = match status {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            if buf.len() > limits.max_head_bytes {
                return Err(too_large(buf, limits));
            }
            return Ok(Parsed::Partial {
                expects_continue: None,
            });
        }
        Err(httparse::Error::TooManyHeaders) => return Err(HttpError::TooManyHeaders),
        Err(httparse::Error::Version) if names_an_http_version(buf) => {
            return Err(HttpError::VersionNotSupported)
        }
        Err(httparse::Error::Version) => return Err(HttpError::Malformed("unsupported version")),
        Err(_) => return Err(HttpError::Malformed("bad request line or header")),
    };
    if head_len > limits.max_head_bytes {
        return Err(too_large(buf, limits));
    }
    let method = match parsed.method.unwrap_or("") {
        "GET" => Method::Get,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "HEAD" => Method::Head,
        _ => Method::Other,
    };
    let sent = parsed.path.unwrap_or("/");
    let target = origin_form(sent);
    // An origin-form path, an absolute URL (read as its path, shorter) or
    // `*` (the whole server, for OPTIONS only); anything else is an invalid
    // request line (RFC 9112 §3.2), which a route lookup would answer 404.
    let absolute = target.len() < sent.len();
    let asterisk = sent == "*" && parsed.method == Some("OPTIONS");
    if !(sent.starts_with('/') || absolute || asterisk) {
        return Err(HttpError::Malformed(
            "the request target must be a path starting with / or an absolute http URL",
        ));
    }
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    let path = if path.is_empty() { "/" } else { path };
    let http10 = parsed.version == Some(0);
    let mut keep_alive = !http10;
    let mut closes = false;
    let mut content_length: Option<usize> = None;
    let mut upgrade_websocket = false;
    let mut connection_upgrade = false;
    let mut websocket_key = None;
    let mut websocket_version = None;
    let mut expects_continue = false;
    let mut content_type = None;
    let mut from_a_web_page = false;
    let mut authorization = None;
    let mut chunked = false;
    let mut hosts = 0;
    for header in parsed.headers.iter() {
        let name = header.name;
        if name.eq_ignore_ascii_case("host") {
            hosts += 1;
        } else if name.eq_ignore_ascii_case("content-length") {
            // Digits only (RFC 9110 §8.6): `parse` would also take `+5`,
            // which a proxy in front may read otherwise.
            let digits = header.value.trim_ascii();
            let length: usize = std::str::from_utf8(digits)
                .ok()
                .filter(|text| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|text| text.parse().ok())
                .ok_or(HttpError::Malformed("bad Content-Length"))?;
            if content_length.is_some_and(|seen| seen != length) {
                return Err(HttpError::Malformed("conflicting Content-Length headers"));
            }
            content_length = Some(length);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // HTTP/1.0 has no transfer codings: its framing is faulty.
            if http10 {
                return Err(HttpError::Malformed("Transfer-Encoding in HTTP/1.0"));
            }
            // Codings are listed in the order applied; chunked must be
            // the last, and once (RFC 9112 §6.1, §6.3): anything after it
            // leaves the body's end unknown. Another coding is one this
            // server does not decode.
            let mut codings = (header.value.split(|&b| b == b','))
                .map(<[u8]>::trim_ascii)
                .filter(|coding| !coding.is_empty())
                .peekable();
            if codings.peek().is_none() {
                return Err(HttpError::Malformed("an empty Transfer-Encoding"));
            }
            for coding in codings {
                if chunked {
                    return Err(HttpError::Malformed("a transfer coding after chunked"));
                }
                if !coding.eq_ignore_ascii_case(b"chunked") {
                    return Err(HttpError::UnsupportedTransferCoding);
                }
                chunked = true;
            }
        } else if name.eq_ignore_ascii_case("connection") {
            // A `close` anywhere wins (RFC 9112 §9.6), whatever other
            // `Connection` lines say.
            if header_is(header.value, "close") {
                closes = true;
            } else if header_is(header.value, "keep-alive") {
                keep_alive = true;
            }
            connection_upgrade |= header_is(header.value, "upgrade");
        } else if name.eq_ignore_ascii_case("upgrade") {
            upgrade_websocket = header_is(header.value, "websocket");
        } else if name.eq_ignore_ascii_case("sec-websocket-key") {
            // RFC 6455 §11.3.1: it must not appear more than once.
            if websocket_key.replace(header.value).is_some() {
                return Err(HttpError::Malformed(
                    "more than one Sec-WebSocket-Key header",
                ));
            }
        } else if name.eq_ignore_ascii_case("sec-websocket-version") {
            websocket_version = Some(header.value);
        } else if name.eq_ignore_ascii_case("expect") {
            // Other expectations are ignored, as RFC 9110 allows.
            expects_continue = header_is(header.value, "100-continue");
        } else if name.eq_ignore_ascii_case("content-type") {
            content_type = Some(header.value);
        } else if name.eq_ignore_ascii_case("origin") {
            from_a_web_page = true;
        } else if name.eq_ignore_ascii_case("authorization") {
            // One credential (RFC 9110 §11.6.2 allows no list): of two, a
            // proxy in front may check one and the service take the other.
            if authorization.replace(header.value).is_some() {
                return Err(HttpError::Malformed("more than one Authorization header"));
            }
        }
    }
    // RFC 9112 §3.2: a server must refuse an HTTP/1.1 request without a
    // Host, and any with two (which a proxy in front may read otherwise).
    match hosts {
        0 if !http10 => return Err(HttpError::Malformed("missing Host header")),
        2.. => return Err(HttpError::Malformed("more than one Host header")),
        _ => {}
    }
    // An HTTP/1.0 client must not be sent an interim answer. The front
    // refuses from the head what the routes would refuse whole.
    let expects_continue = expects_continue && !http10;
    let partial = Ok(Parsed::Partial {
        expects_continue: expects_continue.then_some(Head {
            method,
            path,
            authorization,
            content_type,
            from_a_web_page,
        }),
    });
    let (body, len) = if chunked {
        // Both lengths at once is how requests are smuggled past proxies
        // that read the other one (RFC 9112 §6.1 allows refusing it).
        if content_length.is_some() {
            return Err(HttpError::Malformed(
                "both Content-Length and Transfer-Encoding",
            ));
        }
        match dechunk(buf, head_len, limits)? {
            Some((body, len)) => (Cow::Owned(body), len),
            None => return partial,
        }
    } else {
        let body_len = content_length.unwrap_or(0);
        if body_len > limits.max_body_bytes {
            return Err(HttpError::BodyTooLarge);
        }
        let len = head_len + body_len;
        if buf.len() < len {
            return partial;
        }
        (Cow::Borrowed(&buf[head_len..len]), len)
    };
    Ok(Parsed::Whole(Request {
        method,
        path,
        query,
        body,
        keep_alive: keep_alive && !closes,
        // HTTP/1.0 has no upgrade (RFC 9110 §7.8: its Upgrade is ignored).
        wants_websocket: upgrade_websocket && connection_upgrade && !http10,
        websocket_key,
        websocket_version,
        content_type,
        from_a_web_page,
        authorization,
        len,
    }))
}

/// Most chunks a body may come in. Until a chunked request is whole, every
/// arrival of bytes reads its chunk sizes again from the start; the bound
/// keeps a client dripping one-byte chunks from making that quadratic.
/// Real clients send one chunk per write, a handful per body.
const MAX_CHUNKS: usize = 1024;

/// Decodes the chunked body that starts at `from` (RFC 9112 §7.1): the
/// body and the request's whole length once its last chunk and trailer
/// section are in, `None` before. The decoded body may be at most
/// `max_body_bytes`, and its framing (chunk size lines, extensions and
/// trailer fields) counts with the head against `max_head_bytes`, so
/// that the whole request fits the read buffer as a plain one does.
fn dechunk(
    buf: &[u8],
    from: usize,
    limits: &Limits,
) -> Result<Option<(Vec<u8>, usize)>, HttpError> {
    // Find the end first, copying nothing: this runs on every read until
    // the request is whole.
    let Some(len) = walk_chunks(buf, from, limits, |_| {})? else {
        return Ok(None);
    };
    let mut body = Vec::new();
    walk_chunks(buf, from, limits, |data| body.extend_from_slice(data))?;
    Ok(Some((body, len)))
}

/// Walks the chunks from `from`, handing each one's data to `data`: the
/// request's whole length once it is all there, `None` before.
fn walk_chunks(
    buf: &[u8],
    from: usize,
    limits: &Limits,
    mut data: impl FnMut(&[u8]),
) -> Result<Option<usize>, HttpError> {
    // Up to `at`, all but the `decoded` bytes are head and framing.
    let too_far = |at: usize, decoded: usize| at - decoded > limits.max_head_bytes;
    let mut decoded = 0;
    let mut at = from;
    for chunk in 0.. {
        let (used, size) = match httparse::parse_chunk_size(&buf[at..]) {
            Ok(httparse::Status::Complete(found)) => found,
            Ok(httparse::Status::Partial) if too_far(buf.len(), decoded) => {
                return Err(HttpError::BodyTooLarge)
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err(HttpError::Malformed("bad chunk size")),
        };
        // httparse reads a line with no digits as size 0, the last chunk:
        // `\r\n` and what follows would be taken as the trailer.
        if !buf[at].is_ascii_hexdigit() {
            return Err(HttpError::Malformed("bad chunk size"));
        }
        if !chunk_extensions_valid(&buf[at..at + used]) {
            return Err(HttpError::Malformed("bad chunk extension"));
        }
        at += used;
        if too_far(at, decoded) {
            return Err(HttpError::BodyTooLarge);
        }
        if size == 0 {
            break;
        }
        if chunk == MAX_CHUNKS {
            return Err(HttpError::Malformed("more than 1024 chunks"));
        }
        let size = usize::try_from(size)
            .ok()
            .filter(|&size| size <= limits.max_body_bytes - decoded)
            .ok_or(HttpError::BodyTooLarge)?;
        if too_far(at + 2, decoded) {
            return Err(HttpError::BodyTooLarge);
        }
        if buf.len() < at + size + 2 {
            return Ok(None);
        }
        if &buf[at + size..at + size + 2] != b"\r\n" {
            return Err(HttpError::Malformed("chunk data not followed by CRLF"));
        }
        data(&buf[at..at + size]);
        decoded += size;
        at += size + 2;
    }
    // The trailer section: field lines, then an empty line, read past
    // (not used) by the parser that reads the head's, so that a line it
    // would refuse there (no colon, a NUL, obs-fold) is refused here too:
    // a proxy in front that read it otherwise would frame another request.
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    match httparse::parse_headers(&buf[at..], &mut fields) {
        Ok(httparse::Status::Complete((len, _))) if too_far(at + len, decoded) => {
            Err(HttpError::BodyTooLarge)
        }
        Ok(httparse::Status::Complete((len, _))) => Ok(Some(at + len)),
        Ok(httparse::Status::Partial) if too_far(buf.len(), decoded) => {
            Err(HttpError::BodyTooLarge)
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => Err(HttpError::TooManyHeaders),
        Err(_) => Err(HttpError::Malformed("bad trailer field")),
    }
}

/// Whether a chunk size line (`line`, its CRLF included, as httparse
/// found it) has only extensions of RFC 9112 §7.1.1's grammar after its
/// digits: `;name` or `;name=value`, a token or a quoted string, with
/// spaces or tabs about them. httparse skips to the CRLF, a bare LF or a
/// NUL included; a proxy in front that ended the line at that LF would
/// read another body than ours, which is how requests are smuggled.
fn chunk_extensions_valid(line: &[u8]) -> bool {
    let Some(line) = line.strip_suffix(b"\r\n") else {
        return false;
    };
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    let mut rest = &line[digits..];
    let skip_blanks = |rest: &mut &[u8]| {
        while let [b' ' | b'\t', after @ ..] = *rest {
            *rest = after;
        }
    };
    let token = |rest: &mut &[u8]| {
        let len = rest.iter().take_while(|&&b| is_token_byte(b)).count();
        *rest = &rest[len..];
        len > 0
    };
    loop {
        skip_blanks(&mut rest);
        let [b';', after @ ..] = rest else {
            return rest.is_empty();
        };
        rest = after;
        skip_blanks(&mut rest);
        if !token(&mut rest) {
            return false;
        }
        skip_blanks(&mut rest);
        let [b'=', after @ ..] = rest else {
            continue;
        };
        rest = after;
        skip_blanks(&mut rest);
        let valid = match rest {
            [b'"', after @ ..] => match quoted_string_len(after) {
                Some(len) => {
                    rest = &after[len..];
                    true
                }
                None => false,
            },
            _ => token(&mut rest),
        };
        if !valid {
            return false;
        }
    }
}

/// A token's bytes (RFC 9110 §5.6.2 `tchar`).
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The length of a quoted string's rest after its opening quote, through
/// its closing one (RFC 9110 §5.6.4), if it is one.
fn quoted_string_len(after_quote: &[u8]) -> Option<usize> {
    let text = |b: u8| b == b'\t' || b == b' ' || (0x21..=0x7e).contains(&b) || b >= 0x80;
    let mut i = 0;
    while let Some(&b) = after_quote.get(i) {
        match b {
            b'"' => return Some(i + 1),
            b'\\' => match after_quote.get(i + 1) {
                Some(&escaped) if text(escaped) => i += 2,
                _ => return None,
            },
            b if text(b) => i += 1,
            _ => return None,
        }
    }
    None
}

/// The reason phrase of the statuses this server sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Payload Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// Appends a decimal number without going through `fmt`.
pub fn push_decimal(out: &mut Vec<u8>, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Appends a whole JSON response: status line, `Content-Type`, a correct
/// `Content-Length`, `Connection: keep-alive` or `close`,
/// then the body.
pub fn write_response(out: &mut Vec<u8>, status: u16, body: &[u8], keep_alive: bool) {
    write_head(out, status, body.len(), keep_alive);
    out.extend_from_slice(body);
}

/// Appends only the status line and headers of a response whose body would
/// be `body_len` bytes: the answer to a `HEAD`.
pub fn write_head(out: &mut Vec<u8>, status: u16, body_len: usize, keep_alive: bool) {
    write_head_of_type(out, status, JSON, body_len, keep_alive, "");
}

/// What follows a response's head.
#[derive(Clone, Copy, Debug)]
pub enum Body<'a> {
    /// These bytes.
    Bytes(&'a [u8]),
    /// Nothing, for a `HEAD`: the head still gives the length the body
    /// would have had.
    HeadOnly(usize),
}

impl Body<'_> {
    /// The body's length (as `Content-Length` gives it).
    pub fn len(&self) -> usize {
        match self {
            Body::Bytes(bytes) => bytes.len(),
            Body::HeadOnly(len) => *len,
        }
    }

    /// True for an empty body.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A whole response of any `Content-Type` (JSON, or the Prometheus text of
/// `GET /metrics`), or only its head. `extra_headers` are whole header
/// lines, each starting `\r\n` (an `Allow` for a 405), or empty.
pub fn write_typed_response(
    out: &mut Vec<u8>,
    status: u16,
    content_type: &str,
    body: Body<'_>,
    keep_alive: bool,
    extra_headers: &str,
) {
    write_head_of_type(
        out,
        status,
        content_type,
        body.len(),
        keep_alive,
        extra_headers,
    );
    if let Body::Bytes(bytes) = body {
        out.extend_from_slice(bytes);
    }
}

fn write_head_of_type(
    out: &mut Vec<u8>,
    status: u16,
    content_type: &str,
    body_len: usize,
    keep_alive: bool,
    extra_headers: &str,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    push_decimal(out, status as u64);
    out.push(b' ');
    out.extend_from_slice(reason(status).as_bytes());
    out.extend_from_slice(b"\r\nContent-Type: ");
    out.extend_from_slice(content_type.as_bytes());
    out.extend_from_slice(b"\r\nContent-Length: ");
    push_decimal(out, body_len as u64);
    out.extend_from_slice(b"\r\nDate: ");
    push_date_now(out);
    if let Some(line) = ALLOW_ORIGIN.get() {
        out.extend_from_slice(line);
    }
    out.extend_from_slice(extra_headers.as_bytes());
    // Said either way: an HTTP/1.0 client that asked for keep-alive takes
    // a response without `Connection: keep-alive` as the last on the
    // connection and waits for the close (ApacheBench's `ab -k` hung until
    // its 30 s timeout); HTTP/1.1 clients read it as the default it is.
    if keep_alive {
        out.extend_from_slice(b"\r\nConnection: keep-alive");
    } else {
        out.extend_from_slice(b"\r\nConnection: close");
    }
    out.extend_from_slice(b"\r\n\r\n");
}

/// `--cors-origin`'s header line, sent on every answer once set.
static ALLOW_ORIGIN: OnceLock<Box<[u8]>> = OnceLock::new();

/// Sends `Access-Control-Allow-Origin: origin` on every answer from now
/// on, so pages served from `origin` (`*`: any) may read the service's
/// answers. Nothing else of CORS is granted: a preflight is never allowed,
/// so such a page still cannot send a JSON body (an order) here. The
/// first call wins.
pub fn allow_origin(origin: &str) {
    let line = format!("\r\nAccess-Control-Allow-Origin: {origin}");
    let _ = ALLOW_ORIGIN.set(line.into_bytes().into_boxed_slice());
}

/// Checks a `--cors-origin` value: `*`, or a scheme, host and optional
/// port (`https://dash.example.com:8443`), nothing that could break the
/// header.
pub fn parse_origin(text: &str) -> Result<String, String> {
    let valid = text == "*"
        || ["http://", "https://"].iter().any(|scheme| {
            text.strip_prefix(scheme).is_some_and(|host| {
                !host.is_empty()
                    && host
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
            })
        });
    if valid {
        Ok(text.to_owned())
    } else {
        Err("must be * or an origin such as https://dash.example.com".to_owned())
    }
}

/// The `Date` of an answer made now (RFC 9110 §6.6.1: a server with a
/// clock sends one on every answer). Formatted once a second per thread.
fn push_date_now(out: &mut Vec<u8>) {
    thread_local! {
        static FORMATTED: Cell<(u64, [u8; 29])> = const { Cell::new((u64::MAX, [0; 29])) };
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    FORMATTED.with(|formatted| {
        let (second, mut text) = formatted.get();
        if second != now {
            text = imf_fixdate(now);
            formatted.set((now, text));
        }
        out.extend_from_slice(&text);
    });
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` for seconds since the epoch: HTTP's
/// one date format to send.
fn imf_fixdate(seconds: u64) -> [u8; 29] {
    const WEEKDAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let days = seconds / 86_400;
    let in_day = seconds % 86_400;
    let (year, month, day) = civil_date(days as i64);
    let two = |n: u64| [b'0' + (n / 10 % 10) as u8, b'0' + (n % 10) as u8];
    let mut text = [0u8; 29];
    text[..3].copy_from_slice(WEEKDAYS[(days % 7) as usize]);
    text[3..5].copy_from_slice(b", ");
    text[5..7].copy_from_slice(&two(day as u64));
    text[7] = b' ';
    text[8..11].copy_from_slice(MONTHS[month as usize - 1]);
    text[11] = b' ';
    text[12..14].copy_from_slice(&two(year as u64 / 100));
    text[14..16].copy_from_slice(&two(year as u64));
    text[16] = b' ';
    text[17..19].copy_from_slice(&two(in_day / 3_600));
    text[19] = b':';
    text[20..22].copy_from_slice(&two(in_day / 60 % 60));
    text[22] = b':';
    text[23..25].copy_from_slice(&two(in_day % 60));
    text[25..].copy_from_slice(b" GMT");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Ok(None)` while partial (whatever it expects).
    fn parse(bytes: &[u8]) -> Result<Option<Request<'_>>, HttpError> {
        parse_request(bytes, &Limits::default()).map(|parsed| match parsed {
            Parsed::Partial { .. } => None,
            Parsed::Whole(request) => Some(request),
        })
    }

    #[test]
    fn a_whole_head_with_expect_100_continue_and_no_body_yet_asks_for_continue() {
        let head = b"POST /order/ HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n";
        fn partial(bytes: &[u8]) -> Result<Parsed<'_>, HttpError> {
            parse_request(bytes, &Limits::default())
        }
        assert_eq!(
            partial(head),
            Ok(Parsed::Partial {
                expects_continue: Some(Head {
                    method: Method::Post,
                    path: "/order/",
                    authorization: None,
                    content_type: None,
                    from_a_web_page: false,
                })
            })
        );
        // Not before the head is whole, not from HTTP/1.0, not without it.
        assert_eq!(
            partial(&head[..30]),
            Ok(Parsed::Partial {
                expects_continue: None
            })
        );
        let old = b"POST /order/ HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n";
        assert_eq!(
            partial(old),
            Ok(Parsed::Partial {
                expects_continue: None
            })
        );
        let plain = b"POST /order/ HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n";
        assert_eq!(
            partial(plain),
            Ok(Parsed::Partial {
                expects_continue: None
            })
        );
        // A body over the limit is refused at once instead.
        let huge = b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 9999999\r\n\r\n";
        assert_eq!(partial(huge), Err(HttpError::BodyTooLarge));
        // With its body it is a whole request.
        let mut whole = head.to_vec();
        whole.extend_from_slice(b"hello");
        assert_eq!(&parse(&whole).unwrap().unwrap().body[..], b"hello");
    }

    #[test]
    fn dates_are_imf_fixdate() {
        for (seconds, expected) in [
            (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
            (784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT"), // RFC 9110's example
            (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
            (1_798_761_599, "Thu, 31 Dec 2026 23:59:59 GMT"),
            (4_107_542_400, "Mon, 01 Mar 2100 00:00:00 GMT"),
        ] {
            assert_eq!(
                std::str::from_utf8(&imf_fixdate(seconds)).unwrap(),
                expected
            );
        }
    }

    #[test]
    fn a_body_without_a_type_is_json_but_from_a_web_page() {
        let raw = b"POST /order HTTP/1.1\r\nHost: x\r\norigin: null\r\n\r\n";
        assert!(parse(raw).unwrap().unwrap().from_a_web_page);
        let raw = b"POST /order HTTP/1.1\r\nHost: x\r\n\r\n";
        assert!(!parse(raw).unwrap().unwrap().from_a_web_page);
        assert!(body_is_json(None, false));
        assert!(!body_is_json(None, true));
        assert!(body_is_json(Some(b"application/json"), true));
        assert!(!body_is_json(Some(b"text/plain"), false));
    }

    #[test]
    fn keeps_the_content_type_and_knows_json_media_types() {
        let raw = b"PUT /order/x HTTP/1.1\r\nHost: x\r\ncontent-type: text/plain\r\n\r\n";
        assert_eq!(
            parse(raw).unwrap().unwrap().content_type,
            Some(&b"text/plain"[..])
        );
        let raw = b"PUT /order/x HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(parse(raw).unwrap().unwrap().content_type, None);
        for json in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            " application/json ;charset=UTF-8",
            "application/vnd.api+json",
            "application/problem+JSON",
        ] {
            assert!(is_json_media_type(json.as_bytes()), "{json}");
        }
        for other in [
            "",
            "text/plain",
            "text/plain;charset=UTF-8",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "text/json",
            "application/jsonx",
            "application/+json",
            "application",
            "json",
        ] {
            assert!(!is_json_media_type(other.as_bytes()), "{other}");
        }
    }

    #[test]
    fn parses_a_post_with_its_body() {
        let raw = b"POST /order/ HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET";
        let request = parse(raw).unwrap().unwrap();
        assert_eq!(request.method, Method::Post);
        assert_eq!(request.path, "/order/");
        assert_eq!(&request.body[..], b"hello");
        assert!(request.keep_alive);
        assert_eq!(
            request.len,
            raw.len() - 3,
            "the next request's bytes are left"
        );
    }

    #[test]
    fn incomplete_head_or_body_waits_for_more() {
        assert_eq!(parse(b"GET /orders HTTP/1.1\r\nHost"), Ok(None));
        assert_eq!(
            parse(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"),
            Ok(None)
        );
    }

    #[test]
    fn splits_the_query_string() {
        let request = parse(b"GET /trades?limit=5 HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!((request.path, request.query), ("/trades", Some("limit=5")));
    }

    #[test]
    fn an_http_1_1_request_names_one_host_and_an_http_1_0_one_may_name_none() {
        let missing = parse(b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(missing, Err(HttpError::Malformed("missing Host header")));
        let two = parse(b"GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n");
        assert_eq!(two, Err(HttpError::Malformed("more than one Host header")));
        let two_old = parse(b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n");
        assert_eq!(
            two_old,
            Err(HttpError::Malformed("more than one Host header"))
        );
        assert!(parse(b"GET / HTTP/1.0\r\n\r\n").unwrap().is_some());
        assert!(parse(b"GET / HTTP/1.1\r\nHOST: \r\n\r\n")
            .unwrap()
            .is_some());
    }

    #[test]
    fn escapes_of_unreserved_characters_in_a_path_are_decoded_and_no_others() {
        for (path, normal) in [
            ("/orders", "/orders"),
            ("/%6frders", "/orders"),
            ("/%6F%72ders/", "/orders/"),
            ("/order/%30b9f", "/order/0b9f"),
            ("/order%2F1", "/order%2F1"),
            ("/a%7E%2e%5f%2D", "/a~._-"),
            ("/bad%zz%4", "/bad%zz%4"),
            ("/%C3%A9", "/%C3%A9"),
        ] {
            assert_eq!(normalized_path(path), normal, "{path}");
        }
        assert!(matches!(normalized_path("/orders"), Cow::Borrowed(_)));
    }

    #[test]
    fn an_absolute_form_target_is_read_as_its_path_and_query() {
        for (target, path, query) in [
            ("http://127.0.0.1:8000/order/1", "/order/1", None),
            ("HTTPS://h/trades?limit=5", "/trades", Some("limit=5")),
            ("http://h", "/", None),
            ("http://h?x=1", "/", Some("x=1")),
            ("http://user@h:1/a/b/", "/a/b/", None),
            ("/http://h/x", "/http://h/x", None),
        ] {
            let raw = format!("GET {target} HTTP/1.1\r\nHost: h\r\n\r\n");
            let request = parse(raw.as_bytes()).unwrap().unwrap();
            assert_eq!((request.path, request.query), (path, query), "{target}");
        }
    }

    #[test]
    fn a_target_that_is_neither_a_path_nor_an_http_url_is_refused() {
        for target in ["ftp://h/x", "order/1", "h:80", "%2Forder", "*", "?x=1"] {
            let raw = format!("GET {target} HTTP/1.1\r\nHost: h\r\n\r\n");
            let refused = parse(raw.as_bytes()).err();
            let why = "the request target must be a path starting with / or an absolute http URL";
            assert_eq!(refused, Some(HttpError::Malformed(why)), "{target}");
        }
        let star = parse(b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(
            (star.method, star.path, star.query),
            (Method::Other, "*", None)
        );
    }

    #[test]
    fn another_http_version_is_505_and_a_version_that_is_none_400() {
        for line in [
            "GET /health HTTP/2.0",
            "GET /health HTTP/1.2",
            "PRI * HTTP/2.0",
            "GET /health HTTP/3.0",
        ] {
            let refused = parse(format!("{line}\r\nHost: h\r\n\r\n").as_bytes()).err();
            assert_eq!(refused, Some(HttpError::VersionNotSupported), "{line}");
            assert_eq!(HttpError::VersionNotSupported.status(), 505);
        }
        for line in [
            "GET /a b HTTP/1.1",
            "GET /health HTTP/1",
            "GET /health HTTX/1.1",
        ] {
            let refused = parse(format!("{line}\r\nHost: h\r\n\r\n").as_bytes()).err();
            assert!(
                matches!(refused, Some(HttpError::Malformed(_))),
                "{line}: {refused:?}"
            );
        }
    }

    #[test]
    fn connection_close_and_http_1_0_end_keep_alive() {
        let request = parse(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!request.keep_alive);
        let request = parse(b"GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(!request.keep_alive);
        let request = parse(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(request.keep_alive);
        // A `close` wins over a `keep-alive` on another line, either way
        // round and in either version.
        for version in ["1.1", "1.0"] {
            for lines in [
                "Connection: close\r\nConnection: keep-alive\r\n",
                "Connection: keep-alive\r\nConnection: close\r\n",
                "Connection: keep-alive, close\r\n",
            ] {
                let head = format!("GET / HTTP/{version}\r\nHost: x\r\n{lines}\r\n");
                let request = parse(head.as_bytes()).unwrap().unwrap();
                assert!(!request.keep_alive, "{head}");
            }
        }
    }

    #[test]
    fn garbage_is_malformed() {
        assert!(matches!(
            parse(b"\x00\x01\x02 nonsense\r\n\r\n"),
            Err(HttpError::Malformed(_))
        ));
        for length in [
            "ten",
            "+5",
            "-5",
            "5 5",
            "5,5",
            "",
            "0x5",
            "99999999999999999999999",
        ] {
            let head =
                format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\nhello");
            assert!(
                matches!(
                    parse(head.as_bytes()),
                    Err(HttpError::Malformed("bad Content-Length"))
                ),
                "{length:?}"
            );
        }
        let spaced = parse(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length:  5 \r\n\r\nhello");
        assert_eq!(&spaced.unwrap().unwrap().body[..], b"hello");
    }

    #[test]
    fn oversized_head_and_body_are_refused() {
        let mut huge = b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: ".to_vec();
        huge.extend(std::iter::repeat_n(b'a', 9000));
        assert_eq!(parse(&huge), Err(HttpError::HeadTooLarge));
        // A request line alone past the limit, whole or still coming.
        let long_target = format!(
            "GET /trades?{} HTTP/1.1\r\nHost: x\r\n\r\n",
            "a".repeat(9000)
        );
        assert_eq!(parse(long_target.as_bytes()), Err(HttpError::TargetTooLong));
        assert_eq!(
            parse(&long_target.as_bytes()[..8500]),
            Err(HttpError::TargetTooLong)
        );
        assert_eq!(
            parse(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9999999\r\n\r\n"),
            Err(HttpError::BodyTooLarge)
        );
    }

    const CHUNKED_HEAD: &[u8] =
        b"POST /order HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";

    fn chunked(encoded_body: &[u8]) -> Vec<u8> {
        [CHUNKED_HEAD, encoded_body].concat()
    }

    #[test]
    fn a_chunk_size_line_without_digits_and_malformed_trailer_lines_are_refused() {
        // An empty size line was read as the last chunk, and the request
        // after it swallowed as trailer lines.
        let smuggled = chunked(b"\r\nDELETE /orders HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(
            parse(&smuggled),
            Err(HttpError::Malformed("bad chunk size"))
        );
        assert_eq!(
            parse(&chunked(b";x=1\r\n0\r\n\r\n")),
            Err(HttpError::Malformed("bad chunk size"))
        );
        for trailer in [
            &b"no colon\r\n"[..],
            b"X: a\0b\r\n",
            b"X: y\r\n folded\r\n",
            b": no name\r\n",
            b"X y: z\r\n",
        ] {
            let body = chunked(&[&b"5\r\nhello\r\n0\r\n"[..], trailer, b"\r\n"].concat());
            assert_eq!(
                parse(&body),
                Err(HttpError::Malformed("bad trailer field")),
                "{:?}",
                String::from_utf8_lossy(trailer)
            );
        }
        // Well-formed trailer fields are still read past.
        let fine = chunked(b"5\r\nhello\r\n0\r\nX-A: 1\r\nX-B:\tt w\r\n\r\n");
        assert_eq!(&parse(&fine).unwrap().unwrap().body[..], b"hello");
    }

    #[test]
    fn a_chunked_body_is_decoded_once_whole_and_never_before() {
        // Two chunks (one with an extension), a trailer field, then the
        // next request.
        let encoded: &[u8] = b"5\r\nhello\r\n7;note=x\r\n, world\r\n0\r\nX-Check: 1\r\n\r\n";
        let mut bytes = chunked(encoded);
        let whole = bytes.len();
        bytes.extend_from_slice(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
        let request = parse(&bytes).unwrap().unwrap();
        assert_eq!(&request.body[..], b"hello, world");
        assert_eq!(request.len, whole, "the next request's bytes are left");
        // Cut anywhere before its end, it is not whole yet.
        for cut in CHUNKED_HEAD.len()..whole {
            assert_eq!(parse(&bytes[..cut]), Ok(None), "cut at {cut}");
        }
        // Trailer lines ended by a bare LF, as head lines may be.
        for trailer in [&b"X: y\n\r\n"[..], b"X: y\r\n\n", b"\n"] {
            let bare = chunked(&[&b"5\r\nhello\r\n0\r\n"[..], trailer].concat());
            let request = parse(&bare).unwrap().unwrap();
            assert_eq!(
                (&request.body[..], request.len),
                (&b"hello"[..], bare.len())
            );
        }
        // Upper-case hex, no trailers, and an empty body.
        let ten = chunked(b"A\r\n0123456789\r\n0\r\n\r\n");
        let request = parse(&ten).unwrap().unwrap();
        assert_eq!(&request.body[..], b"0123456789");
        assert_eq!(
            &parse(&chunked(b"0\r\n\r\n")).unwrap().unwrap().body[..],
            b""
        );
    }

    #[test]
    fn chunk_extensions_must_follow_the_grammar() {
        let read = |line: &[u8]| {
            let encoded = [line, b"hi\r\n0\r\n\r\n"].concat();
            parse(&chunked(&encoded)).map(|parsed| parsed.map(|request| request.body.to_vec()))
        };
        for line in [
            &b"2\r\n"[..],
            b"2;a\r\n",
            b"2;a=b\r\n",
            b"2 ; a = b ;c\r\n",
            b"2;a=\"q \\\" ;x\"\r\n",
            b"2;n!#$%&'*+-.^_`|~=\"\"\r\n",
        ] {
            assert_eq!(
                read(line),
                Ok(Some(b"hi".to_vec())),
                "{:?}",
                line.escape_ascii().to_string()
            );
        }
        for line in [
            &b"2;x\nyy\r\n"[..],
            b"2;x\0\r\n",
            b"2;=\r\n",
            b"2;\r\n",
            b"2; \r\n",
            b"2;a=\r\n",
            b"2;a=\"b\r\n",
            b"2;a b\r\n",
            b"2;a=b c\r\n",
            b"2;a(b)\r\n",
        ] {
            assert_eq!(
                read(line).map(|_| ()),
                Err(HttpError::Malformed("bad chunk extension")),
                "{:?}",
                line.escape_ascii().to_string()
            );
        }
    }

    #[test]
    fn bad_or_oversized_chunked_bodies_and_other_codings_are_refused() {
        let limits = Limits {
            max_head_bytes: 100,
            max_body_bytes: 10,
        };
        let with = |encoded: &[u8]| parse_request(&chunked(encoded), &limits).map(|_| ());
        assert_eq!(with(b"A\r\n0123456789\r\n0\r\n\r\n"), Ok(()));
        assert_eq!(with(b"B\r\n0123456789A"), Err(HttpError::BodyTooLarge));
        assert_eq!(
            with(b"6\r\n012345\r\n5\r\n6789A"),
            Err(HttpError::BodyTooLarge)
        );
        // Framing counts too: ten 1-byte chunks under a long extension each.
        let long_extension = b"1;x=aaaaaaaaaaaaaaaaaaaa\r\na\r\n".repeat(10);
        assert_eq!(with(&long_extension), Err(HttpError::BodyTooLarge));
        // Framing counts with the head, whatever room the body leaves:
        // a 1-byte body under a 45-byte framing (61 + 45 + 1 bytes fit
        // the head and body limits together, not the head's alone).
        let one_long = [&b"1;x="[..], &[b'a'; 32], b"\r\na\r\n0\r\n\r\n"].concat();
        assert_eq!(with(&one_long), Err(HttpError::BodyTooLarge));
        let fitting = [&b"1;x="[..], &[b'a'; 20], b"\r\na\r\n0\r\n\r\n"].concat();
        assert_eq!(with(&fitting), Ok(()));
        // Trailer fields that never end are bounded as well.
        let endless_trailer = [&b"0\r\n"[..], &b"X: y\r\n".repeat(30)].concat();
        assert_eq!(with(&endless_trailer), Err(HttpError::BodyTooLarge));
        assert_eq!(
            with(b"zz\r\nhello\r\n0\r\n\r\n"),
            Err(HttpError::Malformed("bad chunk size"))
        );
        assert_eq!(
            with(b"2\r\nhello\r\n0\r\n\r\n"),
            Err(HttpError::Malformed("chunk data not followed by CRLF"))
        );
        let many = Limits {
            max_head_bytes: 8 * 1024,
            max_body_bytes: 64 * 1024,
        };
        let chunks = |n: usize| [b"1\r\nx\r\n".repeat(n), b"0\r\n\r\n".to_vec()].concat();
        let body = |n| {
            parse_request(&chunked(&chunks(n)), &many).map(|p| match p {
                Parsed::Whole(request) => request.body.len(),
                Parsed::Partial { .. } => 0,
            })
        };
        assert_eq!(body(1024), Ok(1024));
        assert_eq!(
            body(1025),
            Err(HttpError::Malformed("more than 1024 chunks"))
        );
        let coded = |codings: &str| {
            let head = format!("POST / HTTP/1.1\r\nHost: x\r\n{codings}\r\n0\r\n\r\n");
            parse(head.as_bytes()).map(|_| ())
        };
        let after_chunked = Err(HttpError::Malformed("a transfer coding after chunked"));
        for (codings, read) in [
            ("Transfer-Encoding: chunked\r\n", Ok(())),
            ("Transfer-Encoding: , Chunked ,\r\n", Ok(())),
            (
                "Transfer-Encoding: gzip, chunked\r\n",
                Err(HttpError::UnsupportedTransferCoding),
            ),
            ("Transfer-Encoding: chunked, chunked\r\n", after_chunked),
            ("Transfer-Encoding: chunked, gzip\r\n", after_chunked),
            (
                "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                after_chunked,
            ),
            (
                "Transfer-Encoding: \r\n",
                Err(HttpError::Malformed("an empty Transfer-Encoding")),
            ),
        ] {
            assert_eq!(coded(codings), read, "{codings:?}");
        }
        assert_eq!(
            parse(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"),
            Err(HttpError::Malformed("both Content-Length and Transfer-Encoding"))
        );
        assert_eq!(
            parse(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            Err(HttpError::Malformed("Transfer-Encoding in HTTP/1.0"))
        );
    }

    #[test]
    fn recognises_a_websocket_upgrade() {
        let raw = b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: abc\r\n\r\n";
        let request = parse(raw).unwrap().unwrap();
        assert!(request.wants_websocket);
        assert_eq!(request.websocket_key, Some(&b"abc"[..]));
        let twice = b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: abc\r\nSec-WebSocket-Key: abc\r\n\r\n";
        assert_eq!(
            parse(twice),
            Err(HttpError::Malformed(
                "more than one Sec-WebSocket-Key header"
            ))
        );
        // HTTP/1.0 has no upgrade: a plain GET then.
        let old = b"GET /ws HTTP/1.0\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: abc\r\n\r\n";
        assert!(!parse(old).unwrap().unwrap().wants_websocket);
    }

    #[test]
    fn header_lines_up_to_the_limit_are_read_and_one_more_is_431() {
        let head = |lines: usize| {
            let fields: String = (1..lines).map(|i| format!("X{i}: y\r\n")).collect();
            format!("GET / HTTP/1.1\r\nHost: x\r\n{fields}\r\n")
        };
        assert!(parse(head(MAX_HEADERS).as_bytes()).unwrap().is_some());
        let over = head(MAX_HEADERS + 1);
        assert_eq!(parse(over.as_bytes()), Err(HttpError::TooManyHeaders));
        assert_eq!(HttpError::TooManyHeaders.status(), 431);
        assert_eq!(
            HttpError::TooManyHeaders.to_string(),
            "Too many header lines: at most 128"
        );
    }

    /// Every status the API document lists, and every one a request's
    /// framing is refused with, goes out with its phrase (`409 Unknown`
    /// went out once).
    #[test]
    fn every_status_sent_has_its_reason_phrase() {
        let document: serde_json::Value =
            serde_json::from_str(crate::net::api_docs::OPENAPI_JSON).unwrap();
        let mut sent: Vec<u16> = (document["paths"].as_object().unwrap().values())
            .flat_map(|path| path.as_object().unwrap().values())
            .filter_map(|operation| operation["responses"].as_object())
            .flat_map(|responses| responses.keys())
            .filter_map(|status| status.parse().ok())
            .collect();
        sent.extend([
            HttpError::Malformed("").status(),
            HttpError::HeadTooLarge.status(),
            HttpError::TargetTooLong.status(),
            HttpError::BodyTooLarge.status(),
            HttpError::UnsupportedTransferCoding.status(),
        ]);
        assert!(sent.contains(&409) && sent.contains(&101), "{sent:?}");
        for status in sent {
            assert_ne!(reason(status), "Unknown", "{status}");
        }
        assert_eq!(reason(409), "Conflict");
    }

    #[test]
    fn responses_carry_type_and_exact_length() {
        let mut out = Vec::new();
        write_response(&mut out, 200, b"{\"a\":1}", true);
        let (before_date, date_on) = out.split_at(74);
        assert_eq!(
            before_date,
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\nDate: "
        );
        let (date, after_date) = date_on.split_at(29);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(
            [imf_fixdate(now - 1), imf_fixdate(now)].contains(&date.try_into().unwrap()),
            "{:?}",
            String::from_utf8_lossy(date)
        );
        assert_eq!(after_date, b"\r\nConnection: keep-alive\r\n\r\n{\"a\":1}");
        out.clear();
        let body = Body::Bytes(b"{}");
        write_typed_response(&mut out, 405, JSON, body, true, "\r\nAllow: GET, HEAD");
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
            "{text}"
        );
        assert!(
            text.ends_with("\r\nAllow: GET, HEAD\r\nConnection: keep-alive\r\n\r\n{}"),
            "{text}"
        );
        out.clear();
        write_response(&mut out, 404, b"{}", false);
        assert!(out.starts_with(b"HTTP/1.1 404 Not Found\r\n"));
        assert!(out.windows(19).any(|w| w == b"Connection: close\r\n"));
    }

    #[test]
    fn a_cors_origin_is_star_or_a_plain_origin() {
        for good in [
            "*",
            "https://dash.example.com",
            "http://localhost:3000",
            "http://[::1]:8080",
        ] {
            assert_eq!(parse_origin(good), Ok(good.to_owned()), "{good}");
        }
        for bad in [
            "",
            "dash.example.com",
            "https://",
            "https://a.com/path",
            "https://a.com\r\nX: y",
            "ftp://a.com",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad:?}");
        }
    }
}
