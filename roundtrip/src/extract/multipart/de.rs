//! Deserializing `T` from the parts of a body: text fields from their validated values,
//! files as [`UploadFile`](super::UploadFile)s.

use bytes::Bytes;
use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, Visitor};
use serde_json::Value;

use super::parts::Part;
use super::upload::{Content, FILE_KEYS, lend};

/// A field's value, on its way into `T`.
pub(super) enum Entry {
    Text(Value),
    File(Part),
    Files(Vec<Part>),
}

/// Deserializes `T` from the parts: text fields from their validated (and coerced)
/// values, files as [`UploadFile`]s.
pub(super) struct PartsDeserializer {
    pub(super) entries: Vec<(String, Entry)>,
}

/// A deserialization error: the field it concerns, and serde's reason.
#[derive(Debug)]
pub(super) struct FieldError(String);

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
            content,
            ..
        } = self.0;
        visitor.visit_map(FileMap {
            filename: Some(filename),
            content_type: Some(content_type),
            content: Some(content),
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
    content: Option<Content>,
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
        } else {
            match &self.content {
                Some(Content::Memory(_)) => FILE_KEYS[2],
                Some(Content::Spooled(_)) => FILE_KEYS[3],
                None => return Ok(None),
            }
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
        match self.content.take() {
            Some(Content::Memory(body)) => seed.deserialize(BytesDe(body)),
            Some(Content::Spooled(spooled)) => seed.deserialize(lend(spooled).into_deserializer()),
            None => Err(FieldError("a value was read before its key".to_owned())),
        }
    }
}

/// A file's bytes, handed over without a copy.
struct BytesDe(Bytes);

impl<'de> de::Deserializer<'de> for BytesDe {
    type Error = FieldError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        visitor.visit_byte_buf(Vec::from(self.0))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
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
