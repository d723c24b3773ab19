//! The retry policy: the default schedule, jitter bounds, and which outcomes retry,
//! stop or succeed. Jitter is injected, so every expectation is exact.

use std::time::Duration;

use roundtrip_delivery::retry::{AttemptOutcome, Decision, FailReason, RetrySchedule};
use roundtrip_delivery::ssrf::{SsrfPolicy, check_url};

const MIDPOINT: fn() -> f64 = || 0.5; // no jitter
const SHORTEST: fn() -> f64 = || 0.0;
const LONGEST: fn() -> f64 = || 1.0;

fn secs(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

fn status(code: u16) -> AttemptOutcome {
    AttemptOutcome::Status {
        code,
        retry_after: None,
    }
}

fn wait(decision: Decision) -> Duration {
    match decision {
        Decision::RetryAfter(wait) => wait,
        other => panic!("expected a retry, got {other:?}"),
    }
}

fn assert_close(actual: Duration, expected: Duration) {
    let difference = actual.abs_diff(expected);
    assert!(
        difference < Duration::from_millis(1),
        "{actual:?} is not {expected:?}"
    );
}

#[test]
fn default_schedule_is_immediate_then_5s_5m_30m_2h_5h_10h_10h() {
    let schedule = RetrySchedule::default();
    let expected = [
        secs(5),
        secs(5 * 60),
        secs(30 * 60),
        secs(2 * 3600),
        secs(5 * 3600),
        secs(10 * 3600),
        secs(10 * 3600),
    ];
    assert_eq!(schedule.delays(), expected);
    assert_eq!(schedule.max_attempts(), 8);
    assert_eq!(schedule.jitter(), 0.2);
    assert_eq!(schedule.throttle_floor(), secs(60));
    assert_eq!(schedule.retry_after_max(), secs(10 * 3600));

    for (index, delay) in expected.iter().enumerate() {
        let attempt = index as u32 + 1;
        let decision = schedule.decide(attempt, &status(500), MIDPOINT);
        assert_close(wait(decision), *delay);
    }
}

#[test]
fn jitter_stays_within_twenty_percent() {
    let schedule = RetrySchedule::default();
    for (index, delay) in schedule.delays().iter().enumerate() {
        let attempt = index as u32 + 1;
        let low = wait(schedule.decide(attempt, &status(503), SHORTEST));
        let high = wait(schedule.decide(attempt, &status(503), LONGEST));
        assert_close(low, delay.mul_f64(0.8));
        assert_close(high, delay.mul_f64(1.2));
    }
    // With real randomness: see `retry::tests` (the workers' source of randomness is
    // private to the crate).
}

#[test]
fn out_of_range_randomness_is_clamped() {
    let schedule = RetrySchedule::default();
    assert_close(wait(schedule.decide(1, &status(500), || 7.0)), secs(6));
    assert_close(wait(schedule.decide(1, &status(500), || -3.0)), secs(4));
    assert_close(wait(schedule.decide(1, &status(500), || f64::NAN)), secs(5));
}

#[test]
fn an_exhausted_schedule_fails_the_message() {
    let schedule = RetrySchedule::default();
    assert!(matches!(
        schedule.decide(7, &status(500), MIDPOINT),
        Decision::RetryAfter(_)
    ));
    assert_eq!(
        schedule.decide(8, &status(500), MIDPOINT),
        Decision::Failed(FailReason::Exhausted { attempts: 8 })
    );
    assert_eq!(
        schedule.decide(8, &AttemptOutcome::Timeout, MIDPOINT),
        Decision::Failed(FailReason::Exhausted { attempts: 8 })
    );
    let no_retries = RetrySchedule::from_delays([]);
    assert_eq!(no_retries.max_attempts(), 1);
    assert_eq!(
        no_retries.decide(1, &status(502), MIDPOINT),
        Decision::Failed(FailReason::Exhausted { attempts: 1 })
    );
}

#[test]
fn gone_stops_at_once() {
    let schedule = RetrySchedule::default();
    for attempt in [1, 3, 8] {
        assert_eq!(
            schedule.decide(attempt, &status(410), MIDPOINT),
            Decision::Failed(FailReason::Gone)
        );
    }
    let gone_with_retry_after = AttemptOutcome::Status {
        code: 410,
        retry_after: Some(secs(30)),
    };
    assert_eq!(
        schedule.decide(1, &gone_with_retry_after, MIDPOINT),
        Decision::Failed(FailReason::Gone)
    );
}

#[test]
fn only_2xx_succeeds() {
    let schedule = RetrySchedule::default();
    for code in [200, 201, 202, 204, 299] {
        assert_eq!(
            schedule.decide(1, &status(code), MIDPOINT),
            Decision::Succeeded,
            "{code}"
        );
        assert!(status(code).is_success());
    }
    for code in [
        100, 199, 300, 400, 401, 404, 409, 422, 500, 502, 503, 504, 599,
    ] {
        assert!(
            matches!(
                schedule.decide(1, &status(code), MIDPOINT),
                Decision::RetryAfter(_)
            ),
            "{code} retries"
        );
        assert!(!status(code).is_success());
    }
}

#[test]
fn redirects_are_failures_that_retry() {
    let schedule = RetrySchedule::default();
    for code in [301, 302, 303, 307, 308] {
        assert_close(wait(schedule.decide(1, &status(code), MIDPOINT)), secs(5));
    }
}

#[test]
fn too_many_requests_and_timeouts_wait_at_least_a_minute() {
    let schedule = RetrySchedule::default();
    // The first retry would be 5 s; throttling lifts it to the floor, even at the
    // longest jitter.
    for outcome in [status(429), AttemptOutcome::Timeout] {
        assert_eq!(
            schedule.decide(1, &outcome, LONGEST),
            Decision::RetryAfter(secs(60))
        );
        assert_eq!(
            schedule.decide(1, &outcome, SHORTEST),
            Decision::RetryAfter(secs(60))
        );
        // Later waits are longer than the floor and stay as scheduled.
        assert_close(wait(schedule.decide(2, &outcome, MIDPOINT)), secs(300));
    }
    // Other failures are not floored.
    assert_close(wait(schedule.decide(1, &status(503), MIDPOINT)), secs(5));
    let refused = AttemptOutcome::Connect("connection refused".into());
    assert_close(wait(schedule.decide(1, &refused, MIDPOINT)), secs(5));
    // The floor is configurable, for tests with millisecond schedules.
    let fast = RetrySchedule::from_delays([Duration::from_millis(10)])
        .with_jitter(0.0)
        .with_throttle_floor(Duration::from_millis(50));
    assert_eq!(
        fast.decide(1, &status(429), MIDPOINT),
        Decision::RetryAfter(Duration::from_millis(50))
    );
}

#[test]
fn retry_after_lengthens_a_wait_up_to_the_cap() {
    let schedule = RetrySchedule::default();
    let asked = |seconds| AttemptOutcome::Status {
        code: 503,
        retry_after: Some(secs(seconds)),
    };
    // Longer than the schedule: honoured.
    assert_eq!(
        schedule.decide(1, &asked(120), MIDPOINT),
        Decision::RetryAfter(secs(120))
    );
    // Larger than the cap: capped at 10 h.
    assert_eq!(
        schedule.decide(1, &asked(3 * 24 * 3600), MIDPOINT),
        Decision::RetryAfter(secs(10 * 3600))
    );
    let capped = schedule.clone().with_retry_after_max(secs(600));
    assert_eq!(
        capped.decide(1, &asked(3600), MIDPOINT),
        Decision::RetryAfter(secs(600))
    );
    // Shorter than the schedule: the schedule wins.
    assert_close(wait(schedule.decide(2, &asked(0), MIDPOINT)), secs(300));
    assert_close(wait(schedule.decide(2, &asked(10), MIDPOINT)), secs(300));
    // A 429 with a short Retry-After still waits the floor.
    let throttled = AttemptOutcome::Status {
        code: 429,
        retry_after: Some(secs(2)),
    };
    assert_eq!(
        schedule.decide(1, &throttled, MIDPOINT),
        Decision::RetryAfter(secs(60))
    );
}

#[test]
fn an_ssrf_refusal_fails_at_once() {
    let error = check_url(
        &url::Url::parse("http://169.254.169.254/").expect("a URL"),
        &SsrfPolicy::default(),
    )
    .expect_err("metadata is refused");
    let outcome = AttemptOutcome::Refused(error);
    assert_eq!(outcome.kind(), "refused");
    assert_eq!(
        RetrySchedule::default().decide(1, &outcome, MIDPOINT),
        Decision::Failed(FailReason::Refused)
    );
    assert!(outcome.to_string().contains("169.254.169.254"), "{outcome}");
}

#[test]
fn jitter_fraction_is_clamped() {
    assert_eq!(RetrySchedule::default().with_jitter(3.0).jitter(), 1.0);
    assert_eq!(RetrySchedule::default().with_jitter(-1.0).jitter(), 0.0);
    assert_eq!(RetrySchedule::default().with_jitter(f64::NAN).jitter(), 0.0);
    // Full jitter never goes negative.
    let full = RetrySchedule::default().with_jitter(1.0);
    assert_eq!(
        full.decide(1, &status(500), SHORTEST),
        Decision::RetryAfter(Duration::ZERO)
    );
}

#[test]
fn huge_delays_do_not_panic() {
    let schedule = RetrySchedule::from_delays([Duration::MAX]);
    assert_eq!(
        schedule.decide(1, &status(500), LONGEST),
        Decision::RetryAfter(Duration::MAX)
    );
    let asked = AttemptOutcome::Status {
        code: 503,
        retry_after: Some(Duration::MAX),
    };
    let capped = RetrySchedule::default().decide(1, &asked, MIDPOINT);
    assert_eq!(capped, Decision::RetryAfter(secs(10 * 3600)));
}

#[test]
fn fail_reasons_say_what_to_do() {
    assert!(FailReason::Gone.to_string().contains("410"));
    assert!(
        FailReason::Exhausted { attempts: 8 }
            .to_string()
            .contains("all 8 attempts failed; fix the receiver, then replay")
    );
}
