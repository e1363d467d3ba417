//! UTC calendar arithmetic for archive names, store timestamps and the keep
//! rules (days from the civil calendar, H. Hinnant's algorithm).

/// (year, month 1-12, day 1-31) of a day number (days since 1970-01-01).
pub fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `YYYY-MM-DDTHH:MM:SS.000Z`, as the store writes times.
pub fn store_time(unix: i64) -> String {
    let (y, m, d) = civil(unix.div_euclid(86_400));
    let s = unix.rem_euclid(86_400);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000Z", s / 3600, s / 60 % 60, s % 60)
}

/// Unix seconds of a store time (`YYYY-MM-DDTHH:MM:SS[.fff]Z`).
pub fn parse_store_time(s: &str) -> Option<i64> {
    let num = |a: usize, b: usize| s.get(a..b).and_then(|t| t.parse::<u32>().ok());
    let (y, mo, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (h, mi, sec) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let days = days_from_civil(i64::from(y), mo, d);
    Some(days * 86_400 + i64::from(h * 3600 + mi * 60 + sec))
}

/// `YYYYMMDDTHHMMSSZ`, for file names.
pub fn file_stamp(unix: i64) -> String {
    let (y, m, d) = civil(unix.div_euclid(86_400));
    let s = unix.rem_euclid(86_400);
    format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z", s / 3600, s / 60 % 60, s % 60)
}

/// ISO week: (year, week) of a day number. Weeks start on Monday.
pub fn iso_week(days: i64) -> (i64, u32) {
    // 1970-01-01 was a Thursday; weekday 0 = Monday.
    let weekday = (days + 3).rem_euclid(7);
    let thursday = days - weekday + 3;
    let (year, _, _) = civil(thursday);
    let jan1 = days_from_civil(year, 1, 1);
    (year, ((thursday - jan1) / 7 + 1) as u32)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from(if m > 2 { m - 3 } else { m + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_times_parse_back() {
        for t in [0, 951_782_400, 1_700_000_000] {
            assert_eq!(parse_store_time(&store_time(t)), Some(t));
        }
        assert_eq!(parse_store_time("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        assert_eq!(parse_store_time("garbage"), None);
    }

    #[test]
    fn known_dates() {
        assert_eq!(store_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(store_time(1_700_000_000), "2023-11-14T22:13:20.000Z");
        assert_eq!(file_stamp(951_782_400), "20000229T000000Z");
        assert_eq!(days_from_civil(2000, 2, 29), 951_782_400 / 86_400);
        // 2021-01-03 is in week 53 of 2020; 2021-01-04 starts week 1.
        assert_eq!(iso_week(days_from_civil(2021, 1, 3)), (2020, 53));
        assert_eq!(iso_week(days_from_civil(2021, 1, 4)), (2021, 1));
    }
}
