//! Number and date formatting shared by the tour's sections.

use std::time::{SystemTime, UNIX_EPOCH};

/// Scientific notation with `digits` after the point: `-1.061e-5`.
pub fn sci(v: f64, digits: usize) -> String {
    if v == 0.0 {
        return "0".into();
    }
    format!("{v:.digits$e}")
}

/// A number for a table: plain digits between 1e-3 and 1e5, scientific outside.
pub fn num(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e5).contains(&a) { sci(v, 3) } else { format!("{v:.4}") }
}

/// A percentage with one decimal.
pub fn pct(v: f64) -> String {
    format!("{:.1}%", 100.0 * v)
}

/// The current UTC time as `YYYY-MM-DD HH:MM UTC` (no timezone database needed).
pub fn utc_now() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02} UTC", rem / 3600, (rem % 3600) / 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers_for_tables() {
        assert_eq!(num(0.5), "0.5000");
        assert_eq!(num(-1.06113639e-5), "-1.061e-5");
        assert_eq!(sci(0.0, 3), "0");
        assert_eq!(pct(0.925), "92.5%");
        assert!(utc_now().ends_with("UTC") && utc_now().starts_with("20"));
    }
}
