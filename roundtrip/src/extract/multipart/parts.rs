//! Splitting a `multipart/form-data` body into its parts, within the limits.

use std::borrow::Cow;
use std::sync::Arc;

use axum::RequestExt;
use axum::extract::Request;
use bytes::Bytes;
use http::header;
use tokio::io::AsyncWriteExt;

use super::MEDIA_TYPE;
use super::upload::{Content, Spooled};
use crate::extract::BodyRejection;

/// One part of a multipart body.
#[derive(Debug)]
pub(crate) struct Part {
    pub(crate) name: String,
    pub(crate) filename: Option<String>,
    pub(super) content_type: Option<String>,
    pub(super) content: Content,
}

impl Part {
    pub(super) fn is_file(&self) -> bool {
        self.filename.is_some()
    }

    /// A text field's value (a file is never spooled text: only files spool).
    pub(crate) fn text(&self) -> Cow<'_, str> {
        match &self.content {
            Content::Memory(bytes) => String::from_utf8_lossy(bytes),
            Content::Spooled(_) => Cow::Borrowed(""),
        }
    }
}

impl std::fmt::Debug for Content {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Content::Memory(bytes) => write!(f, "Memory({} bytes)", bytes.len()),
            Content::Spooled(_) => f.write_str("Spooled"),
        }
    }
}

/// Why a multipart body could not be split into parts.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Malformed(&'static str);

/// The `boundary` parameter of a `multipart/form-data` content type.
pub(super) fn boundary(content_type: &str) -> Option<String> {
    let mut params = content_type.split(';');
    let essence = params.next()?.trim();
    if !essence.eq_ignore_ascii_case(MEDIA_TYPE) {
        return None;
    }
    params.find_map(|param| {
        let (key, value) = param.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| value.trim().trim_matches('"').to_owned())
            .filter(|b| !b.is_empty())
    })
}

/// The longest boundary RFC 2046 allows.
pub const MAX_BOUNDARY_LEN: usize = 70;

/// Caps on a `multipart/form-data` body, beside the app's body limit (which caps the
/// total size, with a 413). Set them for an app with
/// [`App::multipart_limits`](crate::App::multipart_limits).
///
/// The defaults are Starlette's: at most 1,000 parts, 1 MiB for each text field, and
/// files kept in memory up to 1 MiB and spooled to a temporary file past it; a file may
/// be as large as the body limit allows. A boundary longer than RFC 2046's 70 characters
/// is refused (422) before the body is read. Parsing is `multer`'s, which finds
/// boundaries in linear time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MultipartLimits {
    max_parts: usize,
    max_field_size: usize,
    max_file_size: usize,
    spool_threshold: usize,
}

/// The size past which an uploaded file is written to a temporary file: 1 MiB, as
/// Starlette's `UploadFile`.
pub const DEFAULT_SPOOL_THRESHOLD: usize = 1024 * 1024;

impl Default for MultipartLimits {
    fn default() -> Self {
        MultipartLimits {
            max_parts: 1000,
            max_field_size: 1024 * 1024,
            max_file_size: usize::MAX,
            spool_threshold: DEFAULT_SPOOL_THRESHOLD,
        }
    }
}

impl MultipartLimits {
    /// How many parts (fields and files) a body may have; more answer 413.
    pub fn max_parts(mut self, parts: usize) -> Self {
        self.max_parts = parts;
        self
    }

    /// How large a text field may be, in bytes; larger answers 413.
    pub fn max_field_size(mut self, bytes: usize) -> Self {
        self.max_field_size = bytes;
        self
    }

    /// How large one file may be, in bytes; larger answers 413.
    pub fn max_file_size(mut self, bytes: usize) -> Self {
        self.max_file_size = bytes;
        self
    }

    /// How large a file may grow in memory, in bytes: past it, the file is written to a
    /// temporary file (in the system's temporary directory, `TMPDIR`) as the body is
    /// read, and deleted when its [`UploadFile`](super::UploadFile) is dropped.
    pub fn spool_threshold(mut self, bytes: usize) -> Self {
        self.spool_threshold = bytes;
        self
    }
}

/// The answer for a part over one of the caps.
fn too_large(detail: String) -> BodyRejection {
    BodyRejection::Limit {
        status: http::StatusCode::PAYLOAD_TOO_LARGE,
        detail,
    }
}

/// Splits a body into its parts (RFC 7578) with `multer`, within `limits`, as it arrives:
/// no more than one chunk of it and the text fields are in memory at once, with each file
/// in memory up to the spool threshold and in a temporary file past it.
pub(super) async fn read_parts<B>(
    body: B,
    boundary: &str,
    limits: &MultipartLimits,
) -> Result<Vec<Part>, BodyRejection>
where
    B: futures_util::Stream<Item = Result<Bytes, axum::Error>> + Send + 'static,
{
    let mut multipart = multer::Multipart::new(body, boundary);
    let mut parts = Vec::new();
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => return Ok(parts),
            Err(err) => return Err(refused(err)),
        };
        if parts.len() >= limits.max_parts {
            return Err(too_large(format!(
                "Too many parts in the multipart/form-data body: at most {} are allowed",
                limits.max_parts
            )));
        }
        let (name, filename) = match field
            .headers()
            .get(header::CONTENT_DISPOSITION)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        {
            Some(disposition) => names(&disposition).map_err(|Malformed(why)| malformed(&why))?,
            None => return Err(malformed(&"a part has no Content-Disposition")),
        };
        let content_type = field
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned());
        let content = read_content(field, &name, filename.is_some(), limits).await?;
        parts.push(Part {
            name,
            filename,
            content_type,
            content,
        });
    }
}

/// What `multer` reports: the body limit's error, which reaches it from the body stream,
/// is a 413; anything else is a malformed body.
fn refused(err: multer::Error) -> BodyRejection {
    if crate::extract::is_length_limit(&err) {
        BodyRejection::TooLarge
    } else {
        malformed(&err)
    }
}

fn malformed(err: &dyn std::fmt::Display) -> BodyRejection {
    BodyRejection::Unreadable(format!("the multipart/form-data body is malformed: {err}"))
}

/// One part's content, within its cap: a text field in memory, a file in memory up to
/// the spool threshold and in a temporary file past it.
async fn read_content(
    mut field: multer::Field<'static>,
    name: &str,
    is_file: bool,
    limits: &MultipartLimits,
) -> Result<Content, BodyRejection> {
    let (cap, what) = if is_file {
        (limits.max_file_size, "file")
    } else {
        (limits.max_field_size, "field")
    };
    let over_cap = || {
        too_large(format!(
            "The {what} `{name}` is larger than {cap} bytes, the most allowed"
        ))
    };
    let mut data = bytes::BytesMut::new();
    let mut spool: Option<(tempfile::NamedTempFile, tokio::fs::File)> = None;
    let mut len: usize = 0;
    while let Some(chunk) = field.chunk().await.map_err(refused)? {
        len = len.saturating_add(chunk.len());
        if len > cap {
            return Err(over_cap());
        }
        if let Some((_, file)) = &mut spool {
            file.write_all(&chunk).await.map_err(spool_failed)?;
        } else if is_file && len > limits.spool_threshold {
            let (named, mut file) = spool_file().await?;
            file.write_all(&data).await.map_err(spool_failed)?;
            file.write_all(&chunk).await.map_err(spool_failed)?;
            data = bytes::BytesMut::new();
            spool = Some((named, file));
        } else {
            data.extend_from_slice(&chunk);
        }
    }
    match spool {
        None => Ok(Content::Memory(data.freeze())),
        Some((named, mut file)) => {
            // tokio writes in the background: the last write has landed once flushed.
            file.flush().await.map_err(spool_failed)?;
            Ok(Content::Spooled(Arc::new(Spooled::new(named, len as u64))))
        }
    }
}

/// A new temporary file, and a handle to write it.
async fn spool_file() -> Result<(tempfile::NamedTempFile, tokio::fs::File), BodyRejection> {
    tokio::task::spawn_blocking(|| {
        let named = tempfile::Builder::new()
            .prefix("roundtrip-upload-")
            .tempfile()?;
        let file = named.as_file().try_clone()?;
        Ok((named, tokio::fs::File::from_std(file)))
    })
    .await
    .map_err(std::io::Error::other)
    .and_then(|made| made)
    .map_err(spool_failed)
}

/// A file that could not be spooled is the server's problem: logged, and a 500 that
/// names no path.
fn spool_failed(err: std::io::Error) -> BodyRejection {
    tracing::error!(error = %err, "an uploaded file could not be written to a temporary file");
    BodyRejection::Storage
}

/// A part's name and file name, from its `Content-Disposition`.
pub(super) fn names(disposition: &str) -> Result<(String, Option<String>), Malformed> {
    let params = disposition_params(disposition);
    let name = params
        .iter()
        .find(|(k, _)| k == "name")
        .map(|(_, v)| v.clone())
        .ok_or(Malformed("a part has no name"))?;
    let filename = params
        .iter()
        .find(|(k, _)| k == "filename*")
        .and_then(|(_, v)| decode_ext_value(v))
        .or_else(|| {
            params
                .iter()
                .find(|(k, _)| k == "filename")
                .map(|(_, v)| v.clone())
        });
    Ok((name, filename))
}

/// The parts of a `multipart/form-data` request, read within the app's limits: for
/// [`Multipart`] and for [`Form`](crate::Form), which reads both form encodings.
pub(crate) async fn request_parts(
    req: Request,
    content_type: &str,
) -> Result<Vec<Part>, BodyRejection> {
    let Some(boundary) = boundary(content_type) else {
        return Err(BodyRejection::unsupported(content_type, MEDIA_TYPE));
    };
    if boundary.len() > MAX_BOUNDARY_LEN {
        return Err(BodyRejection::Limit {
            status: http::StatusCode::UNPROCESSABLE_ENTITY,
            detail: format!(
                "The multipart boundary is {} characters long: at most {MAX_BOUNDARY_LEN} \
                 are allowed (RFC 2046)",
                boundary.len()
            ),
        });
    }
    let limits = req
        .extensions()
        .get::<MultipartLimits>()
        .copied()
        .unwrap_or_default();
    // Read as it arrives, within the app's body limit (axum's `DefaultBodyLimit`).
    read_parts(
        req.into_limited_body().into_data_stream(),
        &boundary,
        &limits,
    )
    .await
}

/// The `key=value` parameters of a `Content-Disposition` value, quoted strings unquoted.
fn disposition_params(value: &str) -> Vec<(String, String)> {
    let mut params = Vec::new();
    let mut chars = value.char_indices().peekable();
    // Skip the disposition type (`form-data`).
    for (_, c) in chars.by_ref() {
        if c == ';' {
            break;
        }
    }
    loop {
        let mut key = String::new();
        while let Some((_, c)) = chars.peek().copied() {
            chars.next();
            if c == '=' {
                break;
            }
            if c != ';' {
                key.push(c);
            }
        }
        let key = key.trim().to_ascii_lowercase();
        if key.is_empty() {
            return params;
        }
        while chars.peek().is_some_and(|(_, c)| *c == ' ') {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek().is_some_and(|(_, c)| *c == '"') {
            chars.next();
            while let Some((_, c)) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    other => value.push(other),
                }
            }
            // Up to the next parameter.
            for (_, c) in chars.by_ref() {
                if c == ';' {
                    break;
                }
            }
        } else {
            for (_, c) in chars.by_ref() {
                if c == ';' {
                    break;
                }
                value.push(c);
            }
            value = value.trim().to_owned();
        }
        params.push((key, value));
    }
}

/// An RFC 8187 extended value (`UTF-8''na%C3%AFve.txt`).
fn decode_ext_value(value: &str) -> Option<String> {
    let (charset, rest) = value.split_once('\'')?;
    let (_language, encoded) = rest.split_once('\'')?;
    if !charset.eq_ignore_ascii_case("utf-8") {
        return None;
    }
    let bytes: Vec<u8> =
        url::form_urlencoded::parse(format!("x={}", encoded.replace('+', "%2B")).as_bytes())
            .next()
            .map(|(_, v)| v.into_owned().into_bytes())?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = "preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"token\"\r\n\r\nabc\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a \\\"b\\\".txt\"\r\nContent-Type: text/plain\r\n\r\nline 1\r\nline 2\r\n--XyZ--\r\nepilogue";

    #[test]
    fn the_boundary_is_read_from_the_content_type() {
        assert_eq!(
            boundary("multipart/form-data; boundary=XyZ").as_deref(),
            Some("XyZ")
        );
        assert_eq!(
            boundary("Multipart/Form-Data; charset=utf-8; boundary=\"a b\"").as_deref(),
            Some("a b")
        );
        assert_eq!(boundary("multipart/form-data"), None);
        assert_eq!(boundary("multipart/form-data; boundary="), None);
        assert_eq!(boundary("application/json; boundary=x"), None);
    }

    /// `body` as a stream of chunks of at most `chunk` bytes.
    fn chunked(
        body: impl Into<Bytes>,
        chunk: usize,
    ) -> impl futures_util::Stream<Item = Result<Bytes, axum::Error>> + Send + 'static {
        let body: Bytes = body.into();
        let chunks: Vec<_> = (0..body.len())
            .step_by(chunk)
            .map(|at| Ok(body.slice(at..body.len().min(at + chunk))))
            .collect();
        futures_util::stream::iter(chunks)
    }

    async fn read(
        body: impl Into<Bytes>,
        limits: &MultipartLimits,
    ) -> Result<Vec<Part>, BodyRejection> {
        read_parts(chunked(body, 7), "XyZ", limits).await
    }

    async fn parse(body: &str) -> Result<Vec<Part>, BodyRejection> {
        read(body.to_owned(), &MultipartLimits::default()).await
    }

    fn in_memory(part: &Part) -> &[u8] {
        match &part.content {
            Content::Memory(bytes) => bytes,
            Content::Spooled(_) => panic!("{} was spooled", part.name),
        }
    }

    #[tokio::test]
    async fn files_past_the_threshold_are_spooled_and_fields_never() {
        let file = "0123456789".repeat(10);
        let body = format!(
            "--XyZ\r\nContent-Disposition: form-data; name=\"small\"; filename=\"s\"\r\n\r\n0123\r\n\
             --XyZ\r\nContent-Disposition: form-data; name=\"big\"; filename=\"b\"\r\n\r\n{file}\r\n\
             --XyZ\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\n{file}\r\n--XyZ--\r\n"
        );
        let limits = MultipartLimits::default().spool_threshold(16);
        let parts = read(body, &limits).await.expect("well formed");
        assert_eq!(in_memory(&parts[0]), b"0123");
        let Content::Spooled(spooled) = &parts[1].content else {
            panic!("the big file stayed in memory: {:?}", parts[1]);
        };
        let upload = super::super::UploadFile {
            filename: None,
            content_type: None,
            content: Content::Spooled(Arc::clone(spooled)),
        };
        assert_eq!(upload.len(), 100);
        let path = upload.path().expect("a spooled file has a path").to_owned();
        assert_eq!(
            std::fs::read(&path).expect("the temporary file"),
            file.as_bytes()
        );
        assert_eq!(
            &upload.bytes().await.expect("readable")[..],
            file.as_bytes()
        );
        assert_eq!(in_memory(&parts[2]), file.as_bytes());
        drop(upload);
        drop(parts);
        assert!(!path.exists(), "{} outlived its upload", path.display());
    }

    #[tokio::test]
    async fn the_body_limit_of_the_stream_is_a_413() {
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n".to_owned()
            + &"x".repeat(100);
        let limited = axum::body::Body::new(http_body_util::Limited::new(
            http_body_util::Full::new(Bytes::from(body)),
            50,
        ))
        .into_data_stream();
        let refused = read_parts(limited, "XyZ", &MultipartLimits::default()).await;
        assert!(
            matches!(refused, Err(BodyRejection::TooLarge)),
            "{refused:?}"
        );
        let broken = futures_util::stream::iter([
            Ok(Bytes::from_static(
                b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nabc",
            )),
            Err(axum::Error::new(std::io::Error::other("reset"))),
        ]);
        let refused = read_parts(broken, "XyZ", &MultipartLimits::default()).await;
        assert!(
            matches!(refused, Err(BodyRejection::Unreadable(_))),
            "{refused:?}"
        );
    }

    #[tokio::test]
    async fn parts_are_split_with_their_names_files_and_types() {
        let parts = parse(BODY).await.expect("well formed");
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "token");
        assert_eq!(parts[0].filename, None);
        assert_eq!(in_memory(&parts[0]), b"abc");
        assert_eq!(parts[1].name, "file");
        assert_eq!(parts[1].filename.as_deref(), Some("a \"b\".txt"));
        assert_eq!(parts[1].content_type.as_deref(), Some("text/plain"));
        assert_eq!(in_memory(&parts[1]), b"line 1\r\nline 2");
    }

    #[tokio::test]
    async fn malformed_bodies_are_refused_not_panicked_on() {
        for body in [
            "",
            "--XyZ",
            "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nno end",
            "--XyZ\r\n\r\nx\r\n--XyZ--",
            "--XyZ\r\nContent-Disposition: form-data\r\n\r\nx\r\n--XyZ--",
            "--XyZ\r\nContent-Disposition: form-data; name=\"a\"",
        ] {
            assert!(
                matches!(parse(body).await, Err(BodyRejection::Unreadable(_))),
                "{body:?}"
            );
        }
    }

    #[tokio::test]
    async fn each_cap_has_its_own_answer() {
        let many = "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n".repeat(4)
            + "--XyZ--";
        let limits = MultipartLimits::default().max_parts(3);
        let refused = read(many.clone(), &limits).await;
        assert!(
            matches!(&refused, Err(BodyRejection::Limit { status, detail })
                if *status == http::StatusCode::PAYLOAD_TOO_LARGE && detail.contains("at most 3")),
            "{refused:?}"
        );
        let limits = MultipartLimits::default().max_parts(4);
        assert_eq!(read(many, &limits).await.map(|p| p.len()).ok(), Some(4));
        let limits = MultipartLimits::default()
            .max_field_size(2)
            .max_file_size(5);
        let refused = read(BODY, &limits).await;
        assert!(
            matches!(&refused, Err(BodyRejection::Limit { detail, .. })
                if detail.contains("field `token`") && detail.contains("2 bytes")),
            "{refused:?}"
        );
        let limits = MultipartLimits::default().max_file_size(5);
        let refused = read(BODY, &limits).await;
        assert!(
            matches!(&refused, Err(BodyRejection::Limit { detail, .. })
                if detail.contains("file `file`") && detail.contains("5 bytes")),
            "{refused:?}"
        );
    }

    #[test]
    fn extended_filenames_are_decoded() {
        let (name, filename) =
            names("form-data; name=f; filename=\"plain.txt\"; filename*=UTF-8''na%C3%AFve+1.txt")
                .expect("well formed");
        assert_eq!(filename.as_deref(), Some("naïve+1.txt"));
        assert_eq!(name, "f");
    }
}
