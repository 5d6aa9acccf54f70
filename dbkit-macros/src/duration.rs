//! `ttl` values: whole seconds, or a duration string such as `"90s"`,
//! `"5m"`, `"1h30m"`, `"250ms"`.

use std::time::Duration;

/// Parses a duration string made of `<number><unit>` parts, units `ms`, `s`,
/// `m`, `h`, `d`. Returns a message for the user on failure.
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!("expected a number at `{rest}`"));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("`{}` is too large", &rest[..digits]))?;
        rest = rest[digits..].trim_start();
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        let part = match unit {
            "ms" => Duration::from_millis(number),
            "s" => Duration::from_secs(number),
            "m" => Duration::from_secs(number.saturating_mul(60)),
            "h" => Duration::from_secs(number.saturating_mul(3600)),
            "d" => Duration::from_secs(number.saturating_mul(86_400)),
            "" => {
                return Err(format!(
                    "`{number}` needs a unit (`ms`, `s`, `m`, `h` or `d`)"
                ))
            }
            other => {
                return Err(format!(
                    "unknown unit `{other}`; use `ms`, `s`, `m`, `h` or `d`"
                ))
            }
        };
        total = total.saturating_add(part);
        rest = rest[unit_len..].trim_start();
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_sums_parts() {
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse("1m 30s"), Ok(Duration::from_secs(90)));
    }

    #[test]
    fn rejects_what_it_cannot_read() {
        assert!(parse("").is_err());
        assert!(parse("5").unwrap_err().contains("needs a unit"));
        assert!(parse("5 minutes").unwrap_err().contains("unknown unit"));
        assert!(parse("m5").is_err());
        assert!(parse("-5s").is_err());
    }
}
