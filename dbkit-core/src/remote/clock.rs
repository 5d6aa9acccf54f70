//! The shared table clock's keys, scripts and messages.

use std::hash::BuildHasher;
use std::time::Instant;

use crate::tables::TableState;

/// `P:gen:<table>`: the table's generation.
pub(crate) fn generation_key(prefix: &str, table: &TableState) -> String {
    format!("{prefix}:gen:{}", table.name())
}

/// `P:mark:<table>`: writes to the table in flight.
pub(crate) fn mark_key(prefix: &str, table: &TableState) -> String {
    format!("{prefix}:mark:{}", table.name())
}

/// `P:invalidate`: the invalidation bus.
pub(crate) fn channel(prefix: &str) -> String {
    format!("{prefix}:invalidate")
}

/// Increments one mark per key, refreshing its expiry (ARGV[1], ms).
pub(crate) const MARK: &str = r"
for i = 1, #KEYS do
  redis.call('INCR', KEYS[i])
  redis.call('PEXPIRE', KEYS[i], ARGV[1])
end
return #KEYS";

/// Decrements one mark per key; a mark that reaches zero (or expired
/// meanwhile) is deleted, so it never goes negative and hides a later write.
pub(crate) const RELEASE: &str = r"
for i = 1, #KEYS do
  if redis.call('DECR', KEYS[i]) <= 0 then redis.call('DEL', KEYS[i]) end
end
return #KEYS";

/// KEYS: n generations, then (if ARGV[2] == '1') their n marks to release.
/// Bumps the generations (a missing one starts at ARGV[5], random), releases
/// the marks, publishes ARGV[4] on ARGV[3]: one round trip, and no reader
/// sees the marks gone before the bump.
pub(crate) const COMMIT: &str = r"
local n = tonumber(ARGV[1])
for i = 1, n do
  if redis.call('SET', KEYS[i], ARGV[5], 'NX') == false then redis.call('INCR', KEYS[i]) end
end
if ARGV[2] == '1' then
  for i = n + 1, 2 * n do
    if redis.call('DECR', KEYS[i]) <= 0 then redis.call('DEL', KEYS[i]) end
  end
end
return redis.call('PUBLISH', ARGV[3], ARGV[4])";

/// A starting generation for a table Redis has none for: random, so that a
/// generation lost (evicted, server restarted) and recreated does not
/// coincide with one an old value was stored under. Below 2^52: `INCR` has
/// room for ever.
pub(crate) fn fresh_generation() -> u64 {
    let seed = foldhash::fast::RandomState::default();
    (seed.hash_one(Instant::now()) >> 12).max(1)
}

/// What one invalidation message says: `<origin> <table>,<table>`.
pub(crate) fn message(origin: u64, tables: &[&TableState]) -> String {
    let mut text = format!("{origin:016x} ");
    for (i, t) in tables.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(t.name());
    }
    text
}

/// The sender and the tables of a message; `None` if it is not one of ours.
pub(crate) fn parse_message(payload: &[u8]) -> Option<(u64, Vec<&str>)> {
    let text = std::str::from_utf8(payload).ok()?;
    let (origin, tables) = text.split_once(' ')?;
    let origin = u64::from_str_radix(origin, 16).ok()?;
    let tables: Vec<&str> = tables.split(',').filter(|t| !t.is_empty()).collect();
    (!tables.is_empty()).then_some((origin, tables))
}

/// What one lookup's `MGET` of marks, generations and value found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Seen {
    /// A write to one of the tables is in flight somewhere.
    pub marked: bool,
    /// The generations now, or `None` if one is missing (never written, or
    /// lost): nothing may be served or stored against it until it is set.
    pub generations: Option<Vec<u64>>,
    /// The stored frame, if any.
    pub value: Option<Vec<u8>>,
}

/// Reads an `MGET` reply of `n` marks, `n` generations and one value.
pub(crate) fn read_reply(n: usize, mut reply: Vec<Option<Vec<u8>>>) -> Option<Seen> {
    if reply.len() != 2 * n + 1 {
        return None;
    }
    let value = reply.pop().flatten();
    let number = |bytes: &Option<Vec<u8>>| -> Option<i64> {
        std::str::from_utf8(bytes.as_deref()?).ok()?.parse().ok()
    };
    let marked = reply[..n].iter().any(|m| number(m).is_some_and(|c| c > 0));
    let generations = reply[n..]
        .iter()
        .map(|g| number(g).and_then(|g| u64::try_from(g).ok()))
        .collect();
    Some(Seen {
        marked,
        generations,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::{table, table_all};

    #[test]
    fn messages_round_trip_and_strangers_are_ignored() {
        let text = message(0xabc, &[table("clock_users"), table_all()]);
        assert_eq!(text, "0000000000000abc clock_users,*");
        assert_eq!(
            parse_message(text.as_bytes()),
            Some((0xabc, vec!["clock_users", "*"]))
        );
        assert_eq!(parse_message(b"hello"), None);
        assert_eq!(parse_message(b"zz users"), None);
        assert_eq!(parse_message(b"01 "), None);
    }

    #[test]
    fn replies_say_marked_missing_or_current() {
        let b = |s: &str| Some(s.as_bytes().to_vec());
        let seen = read_reply(2, vec![None, b("0"), b("5"), b("9"), b("v")]).unwrap();
        assert_eq!(
            seen,
            Seen {
                marked: false,
                generations: Some(vec![5, 9]),
                value: b("v")
            }
        );
        assert!(read_reply(1, vec![b("2"), b("1"), None]).unwrap().marked);
        assert_eq!(
            read_reply(1, vec![None, None, None]).unwrap().generations,
            None
        );
        assert_eq!(
            read_reply(1, vec![None, b("x"), None]).unwrap().generations,
            None
        );
        assert_eq!(read_reply(1, vec![None]), None);
    }

    #[test]
    fn fresh_generations_leave_room_to_count() {
        let g = fresh_generation();
        assert!((1..1 << 52).contains(&g));
    }
}
