//! [`UploadFile`]: an uploaded file, in memory while it is small and in a temporary file
//! past the spool threshold, as Starlette's `SpooledTemporaryFile` keeps it.

use std::borrow::Cow;
use std::cell::RefCell;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, MapAccess, Visitor};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

/// An uploaded file: FastAPI's `UploadFile`.
///
/// A file up to the spool threshold
/// ([`MultipartLimits::spool_threshold`](super::MultipartLimits::spool_threshold), 1 MiB
/// by default) is held in memory. A larger one is written to a temporary file while the
/// body is read, so an upload costs at most the threshold in memory whatever its size;
/// the file is deleted when the last clone of this value is dropped. Read it with
/// [`bytes`](Self::bytes) (all of it, in memory), [`reader`](Self::reader) (a stream) or
/// [`save_to`](Self::save_to) (a copy on disk).
///
/// ```
/// # async fn example(file: roundtrip::UploadFile) -> std::io::Result<()> {
/// use tokio::io::AsyncReadExt;
///
/// let mut reader = file.reader().await?;
/// let mut first = [0u8; 4];
/// let read = reader.read(&mut first).await?;
/// println!("{:?} is {} bytes; it starts with {:?}", file.filename, file.len(), &first[..read]);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Default)]
pub struct UploadFile {
    /// The name the client gave the file, if any.
    pub filename: Option<String>,
    /// The media type the client declared for the file, if any.
    pub content_type: Option<String>,
    pub(super) content: Content,
}

/// Where a file's content is.
#[derive(Clone)]
pub(super) enum Content {
    Memory(Bytes),
    Spooled(Arc<Spooled>),
}

impl Default for Content {
    fn default() -> Self {
        Content::Memory(Bytes::new())
    }
}

/// A file's content in a temporary file, deleted when this is dropped.
pub(super) struct Spooled {
    file: tempfile::NamedTempFile,
    len: u64,
}

impl Spooled {
    pub(super) fn new(file: tempfile::NamedTempFile, len: u64) -> Self {
        Spooled { file, len }
    }
}

impl UploadFile {
    /// A file held in memory, as a test or a caller that builds one needs.
    pub fn new(bytes: impl Into<Bytes>) -> Self {
        UploadFile {
            content: Content::Memory(bytes.into()),
            ..UploadFile::default()
        }
    }

    /// The same file with the name the client gave it.
    pub fn with_filename(mut self, filename: impl Into<String>) -> Self {
        self.filename = Some(filename.into());
        self
    }

    /// The same file with the media type the client declared.
    pub fn with_content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Some(content_type.into());
        self
    }

    /// The file's size in bytes.
    pub fn len(&self) -> u64 {
        match &self.content {
            Content::Memory(bytes) => bytes.len() as u64,
            Content::Spooled(spooled) => spooled.len,
        }
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the file was larger than the spool threshold and is in a temporary file.
    pub fn is_spooled(&self) -> bool {
        matches!(self.content, Content::Spooled(_))
    }

    /// The temporary file holding a spooled file's content, while this value (or a clone)
    /// lives; `None` for a file in memory. Move it elsewhere with
    /// [`save_to`](Self::save_to), which copies: the temporary file is deleted on drop.
    pub fn path(&self) -> Option<&Path> {
        match &self.content {
            Content::Memory(_) => None,
            Content::Spooled(spooled) => Some(spooled.file.path()),
        }
    }

    /// The whole content, read into memory (a spooled file is read from its temporary
    /// file; one in memory is returned without a copy).
    pub async fn bytes(&self) -> io::Result<Bytes> {
        match &self.content {
            Content::Memory(bytes) => Ok(bytes.clone()),
            Content::Spooled(spooled) => {
                let mut reader = self.reader().await?;
                let mut out = Vec::with_capacity(usize::try_from(spooled.len).unwrap_or(0));
                reader.read_to_end(&mut out).await?;
                Ok(Bytes::from(out))
            }
        }
    }

    /// A stream of the content from its start. Each call gets its own position.
    pub async fn reader(&self) -> io::Result<UploadReader> {
        Ok(UploadReader(match &self.content {
            Content::Memory(bytes) => Reader::Memory(io::Cursor::new(bytes.clone())),
            Content::Spooled(spooled) => {
                let spooled = Arc::clone(spooled);
                // `reopen` opens the file by its path: a descriptor with its own offset.
                let file = tokio::task::spawn_blocking(move || spooled.file.reopen())
                    .await
                    .map_err(io::Error::other)??;
                Reader::File(tokio::fs::File::from_std(file))
            }
        }))
    }

    /// Copies the content to a file at `destination` (created or truncated), and returns
    /// how many bytes were written.
    pub async fn save_to(&self, destination: impl AsRef<Path>) -> io::Result<u64> {
        let mut out = tokio::fs::File::create(destination).await?;
        let written = tokio::io::copy(&mut self.reader().await?, &mut out).await?;
        tokio::io::AsyncWriteExt::flush(&mut out).await?;
        Ok(written)
    }
}

impl std::fmt::Debug for UploadFile {
    // The content can be large and private: only its size is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadFile")
            .field("filename", &self.filename)
            .field("content_type", &self.content_type)
            .field("len", &self.len())
            .field("spooled", &self.is_spooled())
            .finish()
    }
}

/// A stream of an [`UploadFile`]'s content, from [`UploadFile::reader`].
#[derive(Debug)]
pub struct UploadReader(Reader);

#[derive(Debug)]
enum Reader {
    Memory(io::Cursor<Bytes>),
    File(tokio::fs::File),
}

impl AsyncRead for UploadReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.get_mut().0 {
            Reader::Memory(cursor) => Pin::new(cursor).poll_read(cx, buf),
            Reader::File(file) => Pin::new(file).poll_read(cx, buf),
        }
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

/// The keys under which a file reaches [`UploadFile`]'s `Deserialize`: its content is
/// under `bytes` when in memory, or under `spooled` (an index into [`SPOOLED`]).
pub(super) const FILE_KEYS: [&str; 4] = ["filename", "content_type", "bytes", "spooled"];

/// What FastAPI says when a plain field arrives where a file is expected.
const NOT_A_FILE: &str = "Expected UploadFile, received: <class 'str'>";

thread_local! {
    /// Spooled files on their way into the `UploadFile`s of the body being deserialized.
    /// serde carries data, not file handles: the deserializer of the parts puts a spooled
    /// file here and hands `UploadFile` its index, and `UploadFile` takes it back out.
    /// Deserialization is synchronous, so the body being deserialized is the only one on
    /// this thread; [`SpoolScope`] empties the table when it ends.
    static SPOOLED: RefCell<Vec<Option<Arc<Spooled>>>> = const { RefCell::new(Vec::new()) };
}

/// Puts a spooled file in the table for the deserialization under way; its index.
pub(super) fn lend(spooled: Arc<Spooled>) -> u64 {
    SPOOLED.with(|table| {
        let mut table = table.borrow_mut();
        table.push(Some(spooled));
        (table.len() - 1) as u64
    })
}

/// Empties the table of spooled files when a body's deserialization ends, however it ends.
pub(super) struct SpoolScope(());

impl SpoolScope {
    pub(super) fn new() -> Self {
        SPOOLED.with(|table| table.borrow_mut().clear());
        SpoolScope(())
    }
}

impl Drop for SpoolScope {
    fn drop(&mut self) {
        SPOOLED.with(|table| table.borrow_mut().clear());
    }
}

fn take_lent(index: u64) -> Option<Arc<Spooled>> {
    SPOOLED.with(|table| {
        let mut table = table.borrow_mut();
        usize::try_from(index)
            .ok()
            .and_then(|i| table.get_mut(i))
            .and_then(Option::take)
    })
}

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
                        "bytes" => {
                            file.content = Content::Memory(map.next_value::<ByteBuf>()?.0);
                        }
                        "spooled" => {
                            let index = map.next_value::<u64>()?;
                            let spooled = take_lent(index).ok_or_else(|| {
                                de::Error::custom("an uploaded file was read twice")
                            })?;
                            file.content = Content::Spooled(spooled);
                        }
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
