//! Keep rules for pruning archives, as restic's `forget`: the newest `last`
//! archives, and the newest archive of each of the newest `daily` days,
//! `weekly` ISO weeks and `monthly` months that have one (UTC). An archive
//! kept by any rule stays. With no rule set, everything stays.

use serde::{Deserialize, Serialize};

use super::time;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Keep {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub last: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub daily: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub weekly: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub monthly: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Keep {
    pub fn is_none(&self) -> bool {
        *self == Keep::default()
    }
}

fn day(t: i64) -> i64 {
    t.div_euclid(86_400)
}

/// The bucket an archive's time falls in, for one rule.
type Bucket = dyn Fn(i64) -> (i64, u32);

/// For archives made at `times` (Unix seconds, any order): whether each is kept.
pub fn decide(times: &[i64], rules: &Keep) -> Vec<bool> {
    if rules.is_none() {
        return vec![true; times.len()];
    }
    let mut order: Vec<usize> = (0..times.len()).collect();
    order.sort_by(|a, b| times[*b].cmp(&times[*a]).then(b.cmp(a)));
    let mut keep = vec![false; times.len()];
    let buckets: [(u32, &Bucket); 4] = [
        (rules.last, &|_| (0, 0)),
        (rules.daily, &|t| (day(t), 0)),
        (rules.weekly, &|t| time::iso_week(day(t))),
        (rules.monthly, &|t| {
            let (y, m, _) = time::civil(day(t));
            (y, m)
        }),
    ];
    for (rule, (n, bucket)) in buckets.iter().enumerate() {
        let mut left = *n;
        let mut previous = None;
        for &i in &order {
            if left == 0 {
                break;
            }
            let b = bucket(times[i]);
            // `last` keeps every archive; the others one per bucket.
            if rule == 0 || previous != Some(b) {
                keep[i] = true;
                left -= 1;
                previous = Some(b);
            }
        }
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;
    // 2024-01-01 (a Monday) 00:00 UTC.
    const T0: i64 = 1_704_067_200;

    fn kept(times: &[i64], k: Keep) -> Vec<i64> {
        let d = decide(times, &k);
        let mut out: Vec<i64> = times.iter().zip(d).filter(|(_, k)| *k).map(|(t, _)| *t).collect();
        out.sort();
        out
    }

    #[test]
    fn last_keeps_the_newest() {
        let t = [T0, T0 + 10, T0 + 20, T0 + 30];
        assert_eq!(kept(&t, Keep { last: 2, ..Keep::default() }), vec![T0 + 20, T0 + 30]);
    }

    #[test]
    fn daily_keeps_the_newest_of_each_day() {
        // Two a day for five days.
        let t: Vec<i64> = (0..5).flat_map(|d| [T0 + d * DAY + 3600, T0 + d * DAY + 7200]).collect();
        assert_eq!(
            kept(&t, Keep { daily: 3, ..Keep::default() }),
            vec![T0 + 2 * DAY + 7200, T0 + 3 * DAY + 7200, T0 + 4 * DAY + 7200]
        );
    }

    #[test]
    fn weekly_and_monthly_buckets() {
        // One a day for 70 days from Monday 2024-01-01.
        let t: Vec<i64> = (0..70).map(|d| T0 + d * DAY).collect();
        let w = kept(&t, Keep { weekly: 2, ..Keep::default() });
        // Day 69 is a Sunday (end of week 10); the week before ends on day 62.
        assert_eq!(w, vec![T0 + 62 * DAY, T0 + 69 * DAY]);
        let m = kept(&t, Keep { monthly: 3, ..Keep::default() });
        // Newest of March (day 69 = Mar 10), of February (day 59 = Feb 29), of January (day 30).
        assert_eq!(m, vec![T0 + 30 * DAY, T0 + 59 * DAY, T0 + 69 * DAY]);
    }

    #[test]
    fn rules_add_up_and_none_keeps_all() {
        let t: Vec<i64> = (0..10).map(|d| T0 + d * DAY).collect();
        let both = kept(&t, Keep { last: 1, monthly: 1, daily: 2, ..Keep::default() });
        assert_eq!(both, vec![T0 + 8 * DAY, T0 + 9 * DAY]);
        assert_eq!(kept(&t, Keep::default()).len(), 10);
    }
}
