//! A retry schedule written as text, for configuration: `5s,5m,30m,2h`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::{DEFAULT_THROTTLE_FLOOR, RetrySchedule};

/// The most waits a written schedule may list: more is a typo, not a policy.
const MAX_WAITS: usize = 100;
/// The longest single wait a written schedule may ask for (seven days).
const MAX_WAIT: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// Why a written retry schedule was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseScheduleError {
    why: String,
}

impl fmt::Display for ParseScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}; write the waits before each retry, separated by commas, each a whole number \
             with a unit (ms, s, m, h), e.g. `5s,5m,30m,2h`, or `none` for a single attempt",
            self.why
        )
    }
}

impl std::error::Error for ParseScheduleError {}

fn refuse(why: String) -> ParseScheduleError {
    ParseScheduleError { why }
}

impl FromStr for RetrySchedule {
    type Err = ParseScheduleError;

    /// Reads the waits before attempts 2, 3, … as comma-separated durations with a unit
    /// (`ms`, `s`, `m`, `h`): `"1s,1s,5s"` is four attempts within about 7 s, for a
    /// staging box or tests. `"none"` is a single attempt.
    ///
    /// Jitter and the `Retry-After` cap keep their defaults. The throttle floor (the
    /// shortest wait after a `429` or a timeout, 60 s by default) is lowered to the
    /// schedule's longest wait, so that a short schedule stays short.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("none") {
            return Ok(RetrySchedule::from_delays([]));
        }
        if text.is_empty() {
            return Err(refuse("the retry schedule is empty".to_owned()));
        }
        let delays = text
            .split(',')
            .enumerate()
            .map(|(index, part)| parse_wait(part.trim(), index + 1))
            .collect::<Result<Vec<_>, _>>()?;
        if delays.len() > MAX_WAITS {
            return Err(refuse(format!(
                "the retry schedule lists {} waits, more than the {MAX_WAITS} allowed",
                delays.len()
            )));
        }
        let longest = delays.iter().copied().max().unwrap_or_default();
        Ok(RetrySchedule::from_delays(delays)
            .with_throttle_floor(DEFAULT_THROTTLE_FLOOR.min(longest)))
    }
}

/// One wait, `position` counting from 1 for the messages.
fn parse_wait(part: &str, position: usize) -> Result<Duration, ParseScheduleError> {
    let digits = part
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(part.len());
    let (number, unit) = part.split_at(digits);
    if number.is_empty() {
        return Err(refuse(format!(
            "wait {position} of the retry schedule, `{part}`, does not start with a number"
        )));
    }
    let number: u64 = number.parse().map_err(|_| {
        refuse(format!(
            "wait {position} of the retry schedule, `{part}`, is too large"
        ))
    })?;
    let wait = match unit {
        "ms" => Some(Duration::from_millis(number)),
        "s" => Some(Duration::from_secs(number)),
        "m" => number.checked_mul(60).map(Duration::from_secs),
        "h" => number.checked_mul(3600).map(Duration::from_secs),
        "" => {
            return Err(refuse(format!(
                "wait {position} of the retry schedule, `{part}`, has no unit"
            )));
        }
        other => {
            return Err(refuse(format!(
                "wait {position} of the retry schedule, `{part}`, has the unknown unit `{other}`"
            )));
        }
    };
    match wait {
        Some(wait) if wait <= MAX_WAIT => Ok(wait),
        _ => Err(refuse(format!(
            "wait {position} of the retry schedule, `{part}`, is longer than 7 days"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retry::{AttemptOutcome, Decision, FailReason};

    fn secs(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn a_written_schedule_lists_the_waits_before_each_retry() {
        let schedule: RetrySchedule = "500ms, 2s,1m,2h".parse().expect("valid");
        assert_eq!(
            schedule.delays(),
            [Duration::from_millis(500), secs(2), secs(60), secs(7200)]
        );
        assert_eq!(schedule.max_attempts(), 5);
        assert_eq!(schedule.jitter(), RetrySchedule::default().jitter());
        assert_eq!(schedule.throttle_floor(), secs(60));
    }

    #[test]
    fn a_short_schedule_keeps_429_and_timeouts_short() {
        let schedule: RetrySchedule = "100ms,1s".parse().expect("valid");
        assert_eq!(schedule.throttle_floor(), secs(1));
        let throttled = AttemptOutcome::Status {
            code: 429,
            retry_after: None,
        };
        match schedule.decide(1, &throttled, || 0.5) {
            Decision::RetryAfter(wait) => assert_eq!(wait, secs(1)),
            other => panic!("expected a retry, got {other:?}"),
        }
    }

    #[test]
    fn none_is_a_single_attempt() {
        let schedule: RetrySchedule = "none".parse().expect("valid");
        assert_eq!(schedule.max_attempts(), 1);
        let failed = AttemptOutcome::Status {
            code: 500,
            retry_after: None,
        };
        assert_eq!(
            schedule.decide(1, &failed, || 0.5),
            Decision::Failed(FailReason::Exhausted { attempts: 1 })
        );
    }

    #[test]
    fn malformed_schedules_say_which_wait_is_wrong() {
        for (text, says) in [
            ("", "is empty"),
            ("  ", "is empty"),
            ("5", "wait 1 of the retry schedule, `5`, has no unit"),
            ("5s,,1m", "wait 2 of the retry schedule, ``, does not start"),
            (
                "5s,10x",
                "wait 2 of the retry schedule, `10x`, has the unknown unit `x`",
            ),
            ("-5s", "`-5s`, does not start with a number"),
            ("1.5s", "`1.5s`, has the unknown unit `.5s`"),
            ("5s;1m", "has the unknown unit `s;1m`"),
            ("99999999999999999999s", "is too large"),
            ("999999999999999999h", "longer than 7 days"),
            ("8d", "unknown unit `d`"),
            ("169h", "longer than 7 days"),
        ] {
            let err = text.parse::<RetrySchedule>().expect_err(text).to_string();
            assert!(err.contains(says), "{text:?}: {err}");
            assert!(err.contains("e.g. `5s,5m,30m,2h`"), "{text:?}: {err}");
        }
        let many = vec!["1s"; MAX_WAITS + 1].join(",");
        let err = many.parse::<RetrySchedule>().expect_err("too many");
        assert!(err.to_string().contains("101 waits"), "{err}");
    }
}
