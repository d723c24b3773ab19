//! `multipart/form-data` bodies: form fields and uploaded files, as FastAPI's `File()`
//! and `UploadFile`, documented under FastAPI's `Body_<operation id>` component with
//! `format: binary` for each file.
//!
//! ```
//! use roundtrip::extract::{Multipart, UploadFile};
//!
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! struct Upload {
//!     file: UploadFile,
//!     #[schemars(length(min = 1))]
//!     token: String,
//!     attachments: Option<Vec<UploadFile>>,
//! }
//!
//! async fn upload(Multipart(upload): Multipart<Upload>) -> String {
//!     format!("{} bytes", upload.file.bytes.len())
//! }
//! ```
//!
//! The body is read whole, within the app's body limit (413 beyond it), as form and
//! JSON bodies are; text fields are validated against the schema they publish, with
//! FastAPI's errors under `loc: ["body", <field>]`. Parsing is `multer`'s (linear time),
//! within [`MultipartLimits`]: the boundary's length (70, checked before the body is
//! read), the number of parts and the size of each, each with its own 413 or 422.

use std::borrow::Cow;

use axum::extract::{FromRequest, Request};
use bytes::Bytes;
use http::header;
use roundtrip_openapi::schema::publish;
use roundtrip_openapi::validate::{LocItem, ValidationError};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

use super::validation::type_validator;
use super::{BodyRejection, read_body};
use crate::error::RequestValidationError;
use crate::operation::{OperationContext, OperationInput};

const MEDIA_TYPE: &str = "multipart/form-data";

/// A `multipart/form-data` body: each field of `T` is one form field or one file
/// ([`UploadFile`], `Option<UploadFile>`, `Vec<UploadFile>`).
#[derive(Debug, Clone, Default)]
pub struct Multipart<T>(pub T);

impl<T> std::ops::Deref for Multipart<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> std::ops::DerefMut for Multipart<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

/// An uploaded file: FastAPI's `UploadFile`, held in memory.
#[derive(Clone, Default)]
pub struct UploadFile {
    /// The name the client gave the file, if any.
    pub filename: Option<String>,
    /// The media type the client declared for the file, if any.
    pub content_type: Option<String>,
    /// The file's content.
    pub bytes: Bytes,
}

impl std::fmt::Debug for UploadFile {
    // The content can be large and private: only its size is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadFile")
            .field("filename", &self.filename)
            .field("content_type", &self.content_type)
            .field("len", &self.bytes.len())
            .finish()
    }
}

impl JsonSchema for UploadFile {
    fn schema_name() -> Cow<'static, str> {
        "UploadFile".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "format": "binary"})
    }
}

/// The keys under which a file reaches [`UploadFile`]'s `Deserialize`.
const FILE_KEYS: [&str; 3] = ["filename", "content_type", "bytes"];

/// What FastAPI says when a plain field arrives where a file is expected.
const NOT_A_FILE: &str = "Expected UploadFile, received: <class 'str'>";

impl<'de> serde::Deserialize<'de> for UploadFile {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FileVisitor;

        impl<'de> Visitor<'de> for FileVisitor {
            type Value = UploadFile;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an uploaded file in a multipart/form-data body")
            }

            fn visit_str<E: de::Error>(self, _text: &str) -> Result<UploadFile, E> {
                Err(E::custom(NOT_A_FILE))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UploadFile, A::Error> {
                let mut file = UploadFile::default();
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    match key.as_ref() {
                        "filename" => file.filename = map.next_value()?,
                        "content_type" => file.content_type = map.next_value()?,
                        "bytes" => file.bytes = map.next_value::<ByteBuf>()?.0,
                        _ => {
                            map.next_value::<de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(file)
            }
        }

        // `any`: a file arrives as a map, and a plain field (a string) gets FastAPI's
        // "Expected UploadFile" rather than serde's "invalid type".
        deserializer.deserialize_any(FileVisitor)
    }
}

/// Bytes deserialized without going through a list of numbers.
struct ByteBuf(Bytes);

impl<'de> serde::Deserialize<'de> for ByteBuf {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BytesVisitor;

        impl Visitor<'_> for BytesVisitor {
            type Value = ByteBuf;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }

            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<ByteBuf, E> {
                Ok(ByteBuf(Bytes::copy_from_slice(v)))
            }

            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<ByteBuf, E> {
                Ok(ByteBuf(Bytes::from(v)))
            }
        }

        deserializer.deserialize_byte_buf(BytesVisitor)
    }
}

/// One part of a multipart body.
#[derive(Debug)]
pub(crate) struct Part {
    pub(crate) name: String,
    pub(crate) filename: Option<String>,
    content_type: Option<String>,
    pub(crate) body: Bytes,
}

impl Part {
    fn is_file(&self) -> bool {
        self.filename.is_some()
    }
}

/// Why a multipart body could not be split into parts.
#[derive(Debug, PartialEq, Eq)]
struct Malformed(&'static str);

/// The `boundary` parameter of a `multipart/form-data` content type.
fn boundary(content_type: &str) -> Option<String> {
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
/// The defaults are Starlette's: at most 1,000 parts, and 1 MiB for each text field; a
/// file may be as large as the body limit allows. A boundary longer than RFC 2046's 70
/// characters is refused (422) before the body is read. Parsing is `multer`'s, which
/// finds boundaries in linear time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MultipartLimits {
    max_parts: usize,
    max_field_size: usize,
    max_file_size: usize,
}

impl Default for MultipartLimits {
    fn default() -> Self {
        MultipartLimits {
            max_parts: 1000,
            max_field_size: 1024 * 1024,
            max_file_size: usize::MAX,
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
}

/// Splits a body into its parts (RFC 7578) with `multer`, within `limits`.
async fn read_parts(
    body: Bytes,
    boundary: &str,
    limits: &MultipartLimits,
) -> Result<Vec<Part>, BodyRejection> {
    let malformed = |err: &dyn std::fmt::Display| {
        BodyRejection::Unreadable(format!("the multipart/form-data body is malformed: {err}"))
    };
    let stream = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut parts = Vec::new();
    loop {
        let mut field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => return Ok(parts),
            Err(err) => return Err(malformed(&err)),
        };
        if parts.len() >= limits.max_parts {
            return Err(BodyRejection::Limit {
                status: http::StatusCode::PAYLOAD_TOO_LARGE,
                detail: format!(
                    "Too many parts in the multipart/form-data body: at most {} are allowed",
                    limits.max_parts
                ),
            });
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
        let (cap, what) = match filename {
            Some(_) => (limits.max_file_size, "file"),
            None => (limits.max_field_size, "field"),
        };
        let mut data = bytes::BytesMut::new();
        loop {
            match field.chunk().await {
                Ok(Some(chunk)) => {
                    if data.len() + chunk.len() > cap {
                        return Err(BodyRejection::Limit {
                            status: http::StatusCode::PAYLOAD_TOO_LARGE,
                            detail: format!(
                                "The {what} `{name}` is larger than {cap} bytes, the most allowed"
                            ),
                        });
                    }
                    data.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(err) => return Err(malformed(&err)),
            }
        }
        parts.push(Part {
            name,
            filename,
            content_type,
            body: data.freeze(),
        });
    }
}

/// A part's name and file name, from its `Content-Disposition`.
fn names(disposition: &str) -> Result<(String, Option<String>), Malformed> {
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
pub(crate) async fn request_parts<S: Send + Sync>(
    req: Request,
    state: &S,
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
    let bytes = read_body(req, state).await?;
    read_parts(bytes, &boundary, &limits).await
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

/// A field's value, on its way into `T`.
enum Entry {
    Text(Value),
    File(Part),
    Files(Vec<Part>),
}

/// Deserializes `T` from the parts: text fields from their validated (and coerced)
/// values, files as [`UploadFile`]s.
struct PartsDeserializer {
    entries: Vec<(String, Entry)>,
}

/// A deserialization error: the field it concerns, and serde's reason.
#[derive(Debug)]
struct FieldError(String);

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FieldError {}

impl de::Error for FieldError {
    fn custom<M: std::fmt::Display>(msg: M) -> Self {
        FieldError(msg.to_string())
    }
}

impl<'de> de::Deserializer<'de> for PartsDeserializer {
    type Error = FieldError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        visitor.visit_map(PartsMap {
            entries: self.entries.into_iter(),
            pending: None,
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}

struct PartsMap {
    entries: std::vec::IntoIter<(String, Entry)>,
    pending: Option<Entry>,
}

impl<'de> MapAccess<'de> for PartsMap {
    type Error = FieldError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, FieldError> {
        let Some((key, entry)) = self.entries.next() else {
            return Ok(None);
        };
        self.pending = Some(entry);
        seed.deserialize(key.into_deserializer()).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, FieldError> {
        match self.pending.take() {
            Some(Entry::Text(value)) => seed
                .deserialize(value)
                .map_err(|e| FieldError(e.to_string())),
            Some(Entry::File(part)) => seed.deserialize(FileDeserializer(part)),
            Some(Entry::Files(parts)) => seed.deserialize(FilesDeserializer(parts)),
            None => Err(FieldError("a value was read before its key".to_owned())),
        }
    }
}

/// One file, offered to [`UploadFile`] as a map of its filename, media type and bytes.
struct FileDeserializer(Part);

impl<'de> de::Deserializer<'de> for FileDeserializer {
    type Error = FieldError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        let Part {
            filename,
            content_type,
            body,
            ..
        } = self.0;
        visitor.visit_map(FileMap {
            filename: Some(filename),
            content_type: Some(content_type),
            body: Some(body),
        })
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        visitor.visit_some(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        FilesDeserializer(vec![self.0]).deserialize_seq(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct newtype_struct tuple tuple_struct map struct enum
        identifier ignored_any
    }
}

struct FileMap {
    filename: Option<Option<String>>,
    content_type: Option<Option<String>>,
    body: Option<Bytes>,
}

impl<'de> MapAccess<'de> for FileMap {
    type Error = FieldError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, FieldError> {
        let key = if self.filename.is_some() {
            FILE_KEYS[0]
        } else if self.content_type.is_some() {
            FILE_KEYS[1]
        } else if self.body.is_some() {
            FILE_KEYS[2]
        } else {
            return Ok(None);
        };
        seed.deserialize(key.into_deserializer()).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, FieldError> {
        let text = |value: Option<String>| value.map_or(Value::Null, Value::String);
        if let Some(filename) = self.filename.take() {
            return seed
                .deserialize(text(filename))
                .map_err(|e| FieldError(e.to_string()));
        }
        if let Some(content_type) = self.content_type.take() {
            return seed
                .deserialize(text(content_type))
                .map_err(|e| FieldError(e.to_string()));
        }
        match self.body.take() {
            Some(body) => seed.deserialize(de::value::BytesDeserializer::new(&body)),
            None => Err(FieldError("a value was read before its key".to_owned())),
        }
    }
}

/// Several files under one name, for `Vec<UploadFile>`.
struct FilesDeserializer(Vec<Part>);

impl<'de> de::Deserializer<'de> for FilesDeserializer {
    type Error = FieldError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        visitor.visit_seq(de::value::SeqDeserializer::new(
            self.0.into_iter().map(FileDeserializer),
        ))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        visitor.visit_some(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}

impl<'de> IntoDeserializer<'de, FieldError> for FileDeserializer {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

fn body_loc() -> LocItem {
    LocItem::Key("body".to_owned())
}

fn invalid(errors: Vec<ValidationError>) -> BodyRejection {
    BodyRejection::Invalid(RequestValidationError::new(errors))
}

/// Validates the text fields (and the presence of files) of `T`, then builds it.
fn from_parts<T: DeserializeOwned + JsonSchema + 'static>(
    parts: Vec<Part>,
) -> Result<T, BodyRejection> {
    let tv = type_validator::<T>().ok();
    let params = tv.map(|tv| tv.validator.params()).unwrap_or_default();
    let mut parts: Vec<Option<Part>> = parts.into_iter().map(Some).collect();
    let mut object = Map::new();
    let mut files: Vec<(String, Vec<Part>, bool)> = Vec::new();
    for param in params {
        let mine: Vec<Part> = parts
            .iter_mut()
            .filter(|p| p.as_ref().is_some_and(|p| p.name == param.name()))
            .filter_map(Option::take)
            .collect();
        if mine.is_empty() {
            continue;
        }
        // A file is validated as the string the schema says it is (its name); its
        // content joins the value after validation.
        let as_text = |p: &Part| {
            Value::String(match &p.filename {
                Some(name) => name.clone(),
                None => String::from_utf8_lossy(&p.body).into_owned(),
            })
        };
        let value = if param.is_list() {
            Value::Array(mine.iter().map(as_text).collect())
        } else {
            mine.last().map(as_text).unwrap_or(Value::Null)
        };
        object.insert(param.name().to_owned(), value);
        if mine.iter().any(Part::is_file) {
            files.push((param.name().to_owned(), mine, param.is_list()));
        }
    }
    let mut value = Value::Object(object);
    if let Some(tv) = tv {
        let mut errors = Vec::new();
        tv.validator
            .validate_params(&mut value, &[body_loc()], &mut errors);
        if !errors.is_empty() {
            return Err(invalid(errors));
        }
    }
    let Value::Object(object) = value else {
        return Err(invalid(Vec::new()));
    };
    let mut entries: Vec<(String, Entry)> = Vec::with_capacity(object.len());
    for (name, text) in object {
        let entry = match files.iter().position(|(n, _, _)| *n == name) {
            Some(i) => {
                let (_, mut mine, list) = files.swap_remove(i);
                if list {
                    Entry::Files(mine)
                } else {
                    // As for text fields, the last part of a name wins.
                    match mine.pop() {
                        Some(part) if part.is_file() => Entry::File(part),
                        _ => Entry::Text(text),
                    }
                }
            }
            None => Entry::Text(text),
        };
        entries.push((name, entry));
    }
    T::deserialize(PartsDeserializer { entries }).map_err(|err| {
        invalid(vec![ValidationError {
            error_type: "value_error".into(),
            loc: vec![body_loc()],
            msg: format!("Value error, {err}"),
            input: Value::Null,
            ctx: None,
        }])
    })
}

impl<T, S> FromRequest<S> for Multipart<T>
where
    T: DeserializeOwned + JsonSchema + 'static,
    S: Send + Sync,
{
    type Rejection = BodyRejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        let parts = request_parts(req, state, &content_type).await?;
        from_parts(parts).map(Multipart)
    }
}

impl<T: JsonSchema + 'static> OperationInput for Multipart<T> {
    fn describe(ctx: &mut OperationContext<'_>) {
        let name = format!("Body_{}", ctx.operation_id());
        let mut schema = publish(&ctx.registry().inline_schema_for::<T>());
        if let Value::Object(map) = &mut schema {
            map.insert("title".to_owned(), Value::String(name.clone()));
        }
        let reference = ctx.registry().insert(&name, schema);
        ctx.set_request_body(MEDIA_TYPE, reference, true);
        if let Err(err) = type_validator::<T>() {
            ctx.error(err);
        }
    }
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

    async fn parse(body: &str) -> Result<Vec<Part>, BodyRejection> {
        read_parts(
            Bytes::from(body.to_owned()),
            "XyZ",
            &MultipartLimits::default(),
        )
        .await
    }

    #[tokio::test]
    async fn parts_are_split_with_their_names_files_and_types() {
        let parts = parse(BODY).await.expect("well formed");
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "token");
        assert_eq!(parts[0].filename, None);
        assert_eq!(&parts[0].body[..], b"abc");
        assert_eq!(parts[1].name, "file");
        assert_eq!(parts[1].filename.as_deref(), Some("a \"b\".txt"));
        assert_eq!(parts[1].content_type.as_deref(), Some("text/plain"));
        assert_eq!(&parts[1].body[..], b"line 1\r\nline 2");
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
        let refused = read_parts(Bytes::from(many.clone()), "XyZ", &limits).await;
        assert!(
            matches!(&refused, Err(BodyRejection::Limit { status, detail })
                if *status == http::StatusCode::PAYLOAD_TOO_LARGE && detail.contains("at most 3")),
            "{refused:?}"
        );
        let limits = MultipartLimits::default().max_parts(4);
        assert_eq!(
            read_parts(Bytes::from(many), "XyZ", &limits)
                .await
                .map(|p| p.len())
                .ok(),
            Some(4)
        );
        let limits = MultipartLimits::default()
            .max_field_size(2)
            .max_file_size(5);
        let refused = read_parts(Bytes::from(BODY), "XyZ", &limits).await;
        assert!(
            matches!(&refused, Err(BodyRejection::Limit { detail, .. })
                if detail.contains("field `token`") && detail.contains("2 bytes")),
            "{refused:?}"
        );
        let limits = MultipartLimits::default().max_file_size(5);
        let refused = read_parts(Bytes::from(BODY), "XyZ", &limits).await;
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

    mod served {
        use roundtrip_test::TestClient;
        use serde_json::{Value, json};

        use crate::extract::{Multipart, UploadFile};
        use crate::{App, Json, post};

        #[derive(serde::Deserialize, schemars::JsonSchema)]
        struct Upload {
            file: UploadFile,
            #[schemars(length(min = 3))]
            token: String,
            count: Option<i64>,
            notes: Option<UploadFile>,
            attachments: Option<Vec<UploadFile>>,
        }

        async fn upload(Multipart(u): Multipart<Upload>) -> Json<Value> {
            let text = |f: &UploadFile| String::from_utf8_lossy(&f.bytes).into_owned();
            Json(json!({
                "filename": u.file.filename, "content_type": u.file.content_type,
                "content": text(&u.file), "token": u.token, "count": u.count,
                "notes": u.notes.as_ref().map(text),
                "attachments": u.attachments.unwrap_or_default().iter().map(text).collect::<Vec<_>>(),
            }))
        }

        fn client() -> TestClient {
            let router = App::new()
                .body_limit(64 * 1024)
                .route("/upload", post(upload))
                .into_router()
                .expect("the app builds");
            TestClient::new(router)
        }

        /// A multipart body: `(name, Some(filename), content)` is a file.
        fn body(parts: &[(&str, Option<&str>, &str)]) -> String {
            let mut out = String::new();
            for (name, filename, content) in parts {
                out.push_str("--B0und\r\n");
                match filename {
                    Some(f) => out.push_str(&format!(
                        "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: text/plain\r\n\r\n"
                    )),
                    None => out.push_str(&format!(
                        "Content-Disposition: form-data; name=\"{name}\"\r\n\r\n"
                    )),
                }
                out.push_str(content);
                out.push_str("\r\n");
            }
            out.push_str("--B0und--\r\n");
            out
        }

        async fn send(parts: &[(&str, Option<&str>, &str)]) -> roundtrip_test::TestResponse {
            client()
                .post("/upload")
                .header("content-type", "multipart/form-data; boundary=B0und")
                .body(body(parts))
                .send()
                .await
        }

        #[tokio::test]
        async fn files_and_fields_reach_the_handler() {
            let response = send(&[
                ("token", None, "abcd"),
                ("count", None, "7"),
                ("file", Some("a.txt"), "hello"),
                ("attachments", Some("1.txt"), "one"),
                ("attachments", Some("2.txt"), "two"),
            ])
            .await;
            assert_eq!(response.status(), 200, "{}", response.text());
            assert_eq!(
                response.json::<Value>(),
                json!({
                    "filename": "a.txt", "content_type": "text/plain", "content": "hello",
                    "token": "abcd", "count": 7, "notes": null, "attachments": ["one", "two"],
                })
            );
        }

        #[tokio::test]
        async fn missing_files_and_bad_fields_get_fastapis_422() {
            let response = send(&[("token", None, "ab"), ("count", None, "x")]).await;
            assert_eq!(response.status(), 422);
            assert_eq!(
                response.json::<Value>()["detail"],
                json!([
                    {"type": "missing", "loc": ["body", "file"], "msg": "Field required", "input": null},
                    {"type": "string_too_short", "loc": ["body", "token"],
                     "msg": "String should have at least 3 characters", "input": "ab",
                     "ctx": {"min_length": 3}},
                    {"type": "int_parsing", "loc": ["body", "count"],
                     "msg": "Input should be a valid integer, unable to parse string as an integer",
                     "input": "x"},
                ])
            );
        }

        #[tokio::test]
        async fn a_plain_field_where_a_file_belongs_is_refused() {
            let response = send(&[("token", None, "abcd"), ("file", None, "not a file")]).await;
            assert_eq!(response.status(), 422);
            let detail = &response.json::<Value>()["detail"][0];
            assert_eq!(detail["type"], "value_error");
            assert!(
                detail["msg"]
                    .as_str()
                    .is_some_and(|m| m.contains("Expected UploadFile")),
                "{detail}"
            );
        }

        #[tokio::test]
        async fn other_bodies_are_refused_clearly() {
            let client = client();
            let json = client
                .post("/upload")
                .json(&json!({"token": "abcd"}))
                .send()
                .await;
            assert_eq!(json.status(), 415);
            let no_boundary = client
                .post("/upload")
                .header("content-type", "multipart/form-data")
                .body("x")
                .send()
                .await;
            assert_eq!(no_boundary.status(), 415);
            let malformed = client
                .post("/upload")
                .header("content-type", "multipart/form-data; boundary=B0und")
                .body("--B0und\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nno end")
                .send()
                .await;
            assert_eq!(malformed.status(), 400);
            assert!(
                malformed.text().contains("malformed"),
                "{}",
                malformed.text()
            );
            let big = "x".repeat(100 * 1024);
            let too_large = send(&[("token", None, "abcd"), ("file", Some("big"), &big)]).await;
            assert_eq!(too_large.status(), 413);
        }

        #[tokio::test]
        async fn the_body_is_documented_as_fastapi_documents_files() {
            let doc: Value = client().get("/openapi.json").send().await.json();
            let body = &doc["paths"]["/upload"]["post"]["requestBody"];
            assert_eq!(body["required"], true);
            assert_eq!(
                body["content"]["multipart/form-data"]["schema"]["$ref"],
                "#/components/schemas/Body_upload_upload_post"
            );
            let schema = &doc["components"]["schemas"]["Body_upload_upload_post"];
            assert_eq!(schema["title"], "Body_upload_upload_post");
            assert_eq!(schema["required"], json!(["file", "token"]));
            let props = &schema["properties"];
            assert_eq!(props["file"]["type"], "string");
            assert_eq!(props["file"]["format"], "binary");
            assert_eq!(props["file"]["title"], "File");
            assert_eq!(props["token"]["minLength"], 3);
            let attachments = props["attachments"].to_string();
            assert!(
                attachments.contains(r#""format":"binary""#),
                "{attachments}"
            );
            assert!(doc["components"]["schemas"].get("UploadFile").is_none());
            roundtrip_test::oas::assert_valid_openapi_31(&doc);
        }
    }
}
