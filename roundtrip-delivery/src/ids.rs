//! Message ids: `msg_` followed by 27 base62 characters.
//!
//! An id is the `webhook-id` a receiver deduplicates on, so it is fixed when the message is
//! built and never changes across retries, replays or stores. The first 9 characters encode
//! the creation time in milliseconds and the other 18 are random (about 107 bits), so ids
//! sort by creation time, which keeps index inserts local and lets listings page by id.
//! Within one process, ids made in the same millisecond continue from the previous one
//! (the random part is incremented, as monotonic ULIDs do), so they sort in creation order
//! and messages sent one after the other are claimed in that order.

use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// The prefix of every message id.
pub const MESSAGE_ID_PREFIX: &str = "msg_";

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const TIME_CHARS: usize = 9;
const RANDOM_CHARS: usize = 18;
const BODY_CHARS: usize = TIME_CHARS + RANDOM_CHARS;

/// The id of a message, which is also its Standard Webhooks `webhook-id`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(String);

impl MessageId {
    /// A new id for a message created now.
    pub fn generate() -> Self {
        /// The last id made by this process: its millisecond and random digits.
        static LAST: Mutex<(u64, [u8; RANDOM_CHARS])> = Mutex::new((0, [0; RANDOM_CHARS]));
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let (millis, digits) = {
            let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
            if now > last.0 || !increment(&mut last.1) {
                last.0 = now.max(last.0);
                last.1 = random_digits();
            }
            *last
        };
        let mut out = String::with_capacity(MESSAGE_ID_PREFIX.len() + BODY_CHARS);
        out.push_str(MESSAGE_ID_PREFIX);
        let mut time = [0u8; TIME_CHARS];
        let mut rest = millis;
        for slot in time.iter_mut().rev() {
            *slot = (rest % 62) as u8;
            rest /= 62;
        }
        out.extend(
            time.iter()
                .chain(&digits)
                .map(|&d| ALPHABET[d as usize] as char),
        );
        MessageId(out)
    }

    /// The id as text, `msg_...`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Takes the id as a `String`.
    pub fn into_string(self) -> String {
        self.0
    }

    /// Wraps text read back from a store, which was checked when it was written.
    pub(crate) fn from_stored(text: String) -> Self {
        MessageId(text)
    }
}

/// Random base62 digits (values 0..62).
fn random_digits() -> [u8; RANDOM_CHARS] {
    let mut digits = [0u8; RANDOM_CHARS];
    let mut produced = 0;
    while produced < RANDOM_CHARS {
        let mut buf = [0u8; 32];
        fill_random(&mut buf);
        for byte in buf {
            // 248 = 4 * 62: rejecting the rest keeps every digit equally likely.
            if byte < 248 && produced < RANDOM_CHARS {
                digits[produced] = byte % 62;
                produced += 1;
            }
        }
    }
    digits
}

/// Adds one to base62 digits; false on overflow.
fn increment(digits: &mut [u8; RANDOM_CHARS]) -> bool {
    for d in digits.iter_mut().rev() {
        if *d < 61 {
            *d += 1;
            return true;
        }
        *d = 0;
    }
    false
}

fn fill_random(buf: &mut [u8]) {
    if getrandom::fill(buf).is_err() {
        // The OS generator failing is not something a caller can act on; fall back to a
        // time-and-counter mix so ids stay unique within this process.
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0x9e37_79b9_7f4a_7c15);
        for chunk in buf.chunks_mut(8) {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
            let mut x = COUNTER.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed) ^ nanos;
            x ^= x >> 33;
            x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
            x ^= x >> 33;
            for (slot, byte) in chunk.iter_mut().zip(x.to_le_bytes()) {
                *slot = byte;
            }
        }
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl AsRef<str> for MessageId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// The text given to [`MessageId::from_str`] is not a message id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a message id: expected `msg_` followed by 1 to 64 letters, digits, `_` or `-`"
)]
pub struct InvalidMessageId(String);

impl FromStr for MessageId {
    type Err = InvalidMessageId;

    /// Parses an id such as one a user copied from a listing.
    ///
    /// Ids this crate generates have 27 base62 characters after the prefix; ids of other
    /// origins (for example migrated from another service) are accepted if they are short
    /// and made of URL-safe characters, since receivers only compare them.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = s.strip_prefix(MESSAGE_ID_PREFIX).is_some_and(|rest| {
            !rest.is_empty()
                && rest.len() <= 64
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        });
        if ok {
            Ok(MessageId(s.to_owned()))
        } else {
            let shown: String = s.chars().take(80).collect();
            Err(InvalidMessageId(shown))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_have_the_documented_shape_and_parse_back() {
        let id = MessageId::generate();
        assert!(id.as_str().starts_with("msg_"));
        assert_eq!(id.as_str().len(), 4 + BODY_CHARS);
        assert_eq!(id.as_str().parse::<MessageId>(), Ok(id.clone()));
    }

    #[test]
    fn ids_sort_by_creation_time_and_differ() {
        let a = MessageId::generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = MessageId::generate();
        assert!(a < b, "{a} should sort before {b}");
        assert_ne!(MessageId::generate(), MessageId::generate());
    }

    #[test]
    fn ids_made_in_the_same_millisecond_keep_their_order() {
        let ids: Vec<MessageId> = (0..1000).map(|_| MessageId::generate()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
        sorted.dedup();
        assert_eq!(sorted.len(), 1000);
    }

    #[test]
    fn parse_rejects_other_text() {
        for bad in ["", "msg_", "evt_abc", "msg_a b", "msg_ä"] {
            assert!(bad.parse::<MessageId>().is_err(), "{bad:?} was accepted");
        }
    }
}
