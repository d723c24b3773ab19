//! When to retry a delivery, and how long to wait.
//!
//! # The policy
//!
//! **Success.** Only a `2xx` answer delivers a message. Anything else is a failed
//! attempt, including `3xx`: redirects are not followed, because a redirect could
//! point the sender at an address the SSRF guard would refuse, and a receiver
//! should publish the URL it really serves.
//!
//! **We retry** every other failure: `3xx`, `4xx` except `410`, `5xx`, timeouts,
//! refused or reset connections, and host names that do not resolve. Most of
//! these are a deploy in progress, an overloaded receiver or a secret rotated on
//! one side only, and they heal within the retry window. A `404` or `401` is
//! retried too: receivers return them for a minute during many deploys, and the
//! cost of retrying a truly wrong URL is a few requests over a day.
//!
//! **We stop at once** when retrying cannot help:
//!
//! - `410 Gone`: the receiver says the endpoint is gone for good. The message
//!   fails; for a webhook subscription, the subscription layer also disables the
//!   endpoint.
//! - the SSRF guard refused the target (a blocked address, a `file:` URL): the
//!   same URL is refused on every attempt. A host name that merely failed to
//!   resolve is retried.
//!
//! **We give up** when the schedule is exhausted: the last attempt failed and no
//! delay is left. The message is then failed (dead); it stays inspectable and can
//! be replayed.
//!
//! # How long we wait
//!
//! The default schedule, counted from the failure of the attempt before:
//!
//! | attempt | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 |
//! |---|---|---|---|---|---|---|---|---|
//! | waits | none | 5 s | 5 min | 30 min | 2 h | 5 h | 10 h | 10 h |
//!
//! Eight attempts over about 27.5 hours, so a receiver that is down for a day
//! still gets its messages. Each wait is stretched or shrunk by a random ±20 %
//! (the *jitter*), so that messages which failed together during an outage do not
//! all come back in the same second.
//!
//! Two answers lengthen a wait, never shorten it:
//!
//! - `Retry-After` (seconds or an HTTP date) is honoured when it asks for longer
//!   than the schedule, up to [`retry_after_max`](RetrySchedule::retry_after_max)
//!   (10 hours by default), so a receiver cannot park a message for weeks. A
//!   shorter `Retry-After` is ignored: a receiver answering `Retry-After: 0` would
//!   otherwise burn through all attempts within seconds.
//! - `429 Too Many Requests` and timeouts wait at least
//!   [`throttle_floor`](RetrySchedule::throttle_floor) (60 s): the receiver is
//!   overloaded or slow, and an early retry only adds to its load.
//!
//! # In configuration
//!
//! A schedule can be written as text (`RetrySchedule::from_str`): the waits before
//! each retry, `"1s,5s,30s"`, or `"none"` for a single attempt. The app's
//! `serve --retry-schedule` (or `ROUNDTRIP_RETRY_SCHEDULE`) reads it, to shorten the
//! schedule on a staging box or in tests; without it the default applies.
//!
//! # The API
//!
//! The sender describes each attempt as an [`AttemptOutcome`] and asks
//! [`RetrySchedule::decide`] for a [`Decision`]. Randomness is passed in, so tests
//! are deterministic; the workers pass numbers from the operating system.
//!
//! ```
//! use std::time::Duration;
//! use roundtrip_delivery::retry::{AttemptOutcome, Decision, RetrySchedule};
//!
//! let schedule = RetrySchedule::default();
//! let unavailable = AttemptOutcome::Status { code: 503, retry_after: None };
//! // After the first attempt fails, wait 5 s (here without jitter: 0.5 is the midpoint).
//! assert_eq!(
//!     schedule.decide(1, &unavailable, || 0.5),
//!     Decision::RetryAfter(Duration::from_secs(5)),
//! );
//! ```

mod outcome;
mod parse;
mod retry_after;

use std::fmt;
use std::time::Duration;

pub use outcome::AttemptOutcome;
pub use parse::ParseScheduleError;
pub use retry_after::parse_retry_after;

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;

/// The default waits before attempts 2 to 8.
const DEFAULT_DELAYS: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * MINUTE),
    Duration::from_secs(30 * MINUTE),
    Duration::from_secs(2 * HOUR),
    Duration::from_secs(5 * HOUR),
    Duration::from_secs(10 * HOUR),
    Duration::from_secs(10 * HOUR),
];
const DEFAULT_JITTER: f64 = 0.2;
const DEFAULT_RETRY_AFTER_MAX: Duration = Duration::from_secs(10 * HOUR);
const DEFAULT_THROTTLE_FLOOR: Duration = Duration::from_secs(MINUTE);

/// How often and how long to wait between delivery attempts. See the
/// [module docs](self) for the policy.
#[derive(Clone, Debug, PartialEq)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
    jitter: f64,
    retry_after_max: Duration,
    throttle_floor: Duration,
}

impl Default for RetrySchedule {
    /// Immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, each ±20 %;
    /// `Retry-After` up to 10 h; 429 and timeouts wait at least 60 s.
    fn default() -> Self {
        Self::from_delays(DEFAULT_DELAYS)
    }
}

impl RetrySchedule {
    /// A schedule with these waits before attempts 2, 3, …; the first attempt is
    /// always immediate, so `delays.len() + 1` attempts in all. Jitter, the
    /// `Retry-After` cap and the throttle floor keep their defaults; tests that use
    /// millisecond delays usually lower the floor with
    /// [`with_throttle_floor`](Self::with_throttle_floor).
    pub fn from_delays(delays: impl IntoIterator<Item = Duration>) -> Self {
        Self {
            delays: delays.into_iter().collect(),
            jitter: DEFAULT_JITTER,
            retry_after_max: DEFAULT_RETRY_AFTER_MAX,
            throttle_floor: DEFAULT_THROTTLE_FLOOR,
        }
    }

    /// Sets the jitter: each wait is multiplied by a random factor in
    /// `[1 - fraction, 1 + fraction]`. Clamped to `0.0..=1.0`; `0.0` turns it off.
    #[must_use]
    pub fn with_jitter(mut self, fraction: f64) -> Self {
        self.jitter = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        self
    }

    /// Sets the longest wait a `Retry-After` header can ask for.
    #[must_use]
    pub fn with_retry_after_max(mut self, max: Duration) -> Self {
        self.retry_after_max = max;
        self
    }

    /// Sets the shortest wait after a `429` or a timeout.
    #[must_use]
    pub fn with_throttle_floor(mut self, floor: Duration) -> Self {
        self.throttle_floor = floor;
        self
    }

    /// The waits before attempts 2, 3, …, before jitter.
    pub fn delays(&self) -> &[Duration] {
        &self.delays
    }

    /// How many attempts a message gets in all, the immediate one included.
    pub fn max_attempts(&self) -> u32 {
        u32::try_from(self.delays.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1)
    }

    /// The jitter fraction (0.2 means ±20 %).
    pub fn jitter(&self) -> f64 {
        self.jitter
    }

    /// The longest wait a `Retry-After` header can ask for.
    pub fn retry_after_max(&self) -> Duration {
        self.retry_after_max
    }

    /// The shortest wait after a `429` or a timeout.
    pub fn throttle_floor(&self) -> Duration {
        self.throttle_floor
    }

    /// What to do after attempt number `attempt_number` (1 for the first) ended
    /// with `outcome`.
    ///
    /// `unit_random` yields numbers in `[0, 1)` for the jitter: the workers draw them
    /// from the operating system; pass a constant in tests (`|| 0.5` means no
    /// jitter, `|| 0.0` the shortest wait, `|| 1.0` the longest). Values outside
    /// the range are clamped.
    pub fn decide(
        &self,
        attempt_number: u32,
        outcome: &AttemptOutcome,
        mut unit_random: impl FnMut() -> f64,
    ) -> Decision {
        match outcome {
            AttemptOutcome::Status { code, .. } if (200..300).contains(code) => {
                return Decision::Succeeded;
            }
            AttemptOutcome::Status { code: 410, .. } => return Decision::Failed(FailReason::Gone),
            AttemptOutcome::Refused(_) => return Decision::Failed(FailReason::Refused),
            _ => {}
        }

        let attempt_number = attempt_number.max(1);
        let Some(&base) = usize::try_from(attempt_number - 1)
            .ok()
            .and_then(|index| self.delays.get(index))
        else {
            return Decision::Failed(FailReason::Exhausted {
                attempts: attempt_number,
            });
        };

        let mut wait = self.jittered(base, unit_random());
        if let AttemptOutcome::Status {
            retry_after: Some(asked),
            ..
        } = outcome
        {
            wait = wait.max((*asked).min(self.retry_after_max));
        }
        if outcome.is_throttle() {
            wait = wait.max(self.throttle_floor);
        }
        Decision::RetryAfter(wait)
    }

    fn jittered(&self, base: Duration, unit: f64) -> Duration {
        let unit = if unit.is_nan() {
            0.5
        } else {
            unit.clamp(0.0, 1.0)
        };
        let factor = 1.0 + self.jitter * (2.0 * unit - 1.0);
        Duration::try_from_secs_f64(base.as_secs_f64() * factor).unwrap_or(base)
    }
}

/// What to do after an attempt, as the schedule decides it: a wait, or a reason to stop.
///
/// The workers place it in time and record it as the message's
/// [`message::Decision`](crate::message::Decision).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The message is delivered.
    Succeeded,
    /// Try again after this long.
    RetryAfter(Duration),
    /// Stop: the message has failed. It can still be replayed by hand.
    Failed(FailReason),
}

/// Why a message failed for good.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailReason {
    /// The receiver answered `410 Gone`.
    Gone,
    /// Every attempt of the schedule failed.
    Exhausted {
        /// How many attempts were made.
        attempts: u32,
    },
    /// The SSRF guard refused the target URL.
    Refused,
}

impl fmt::Display for FailReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Gone => f.write_str(
                "the receiver answered 410 Gone: the endpoint no longer exists, so retrying stopped",
            ),
            Self::Exhausted { attempts } => write!(
                f,
                "all {attempts} attempts failed; fix the receiver, then replay the message"
            ),
            Self::Refused => f.write_str(
                "the SSRF guard refused the target URL; no retry can change that \
                 (see the attempt's error for the address and range)",
            ),
        }
    }
}

/// A random number in `[0, 1)` from the operating system, for the jitter of
/// [`RetrySchedule::decide`]. Returns `0.5` (no jitter) if the OS gives none.
pub(crate) fn random_unit() -> f64 {
    match getrandom::u64() {
        // The top 53 bits fill an f64 mantissa exactly.
        Ok(bits) => (bits >> 11) as f64 / (1u64 << 53) as f64,
        Err(_) => 0.5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIDPOINT: fn() -> f64 = || 0.5; // no jitter

    fn status(code: u16) -> AttemptOutcome {
        AttemptOutcome::Status {
            code,
            retry_after: None,
        }
    }

    fn secs(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    fn wait(decision: Decision) -> Duration {
        match decision {
            Decision::RetryAfter(wait) => wait,
            other => panic!("expected a retry, got {other:?}"),
        }
    }

    #[test]
    fn jitter_with_real_randomness_stays_within_twenty_percent_and_varies() {
        // Every wait lands inside the bounds, and not all on the same value.
        let schedule = RetrySchedule::default();
        let mut seen = Vec::new();
        for _ in 0..200 {
            let drawn = wait(schedule.decide(2, &status(503), random_unit));
            assert!(drawn >= secs(240) && drawn <= secs(360), "{drawn:?}");
            seen.push(drawn);
        }
        seen.dedup();
        assert!(seen.len() > 1, "jitter varies");
    }

    #[test]
    fn millisecond_schedules_for_tests() {
        let schedule =
            RetrySchedule::from_delays([1, 2, 3].map(Duration::from_millis)).with_jitter(0.0);
        assert_eq!(schedule.max_attempts(), 4);
        for (attempt, millis) in [(1, 1), (2, 2), (3, 3)] {
            assert_eq!(
                schedule.decide(attempt, &status(500), random_unit),
                Decision::RetryAfter(Duration::from_millis(millis))
            );
        }
        assert_eq!(
            schedule.decide(4, &status(500), MIDPOINT),
            Decision::Failed(FailReason::Exhausted { attempts: 4 })
        );
        // Attempt 0 is read as the first attempt.
        assert_eq!(
            schedule.decide(0, &status(500), MIDPOINT),
            Decision::RetryAfter(Duration::from_millis(1))
        );
    }
}
