//! How a value is laid out in Redis.
//!
//! ```text
//! b"DBK" 1 | checksum: u64 LE | n: u8 | n × generation: u64 LE | postcard payload
//! ```
//!
//! The payload is [postcard](https://docs.rs/postcard): compact (varints, no
//! field names), fast, and serde-driven, so any `Serialize + Deserialize`
//! type works. It is not self-describing, so a value written by other code
//! could decode into nonsense instead of failing: the key already holds the
//! function's signature and crate version, and the checksum (a fixed-seed
//! hash of everything after it) turns a corrupt or truncated value into a
//! miss rather than a wrong answer.

use std::hash::BuildHasher;

use serde::de::DeserializeOwned;
use serde::Serialize;

const MAGIC: &[u8; 4] = b"DBK\x02";
const HEADER: usize = MAGIC.len() + 8 + 8 + 1;

/// Why a stored value was not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Undecodable {
    /// Not dbkit's framing, or the checksum does not match.
    Corrupt,
    /// Framed and intact, but the payload is not this function's type.
    Foreign(String),
}

fn checksum(bytes: &[u8]) -> u64 {
    foldhash::quality::FixedState::with_seed(0x6462_6b69_745f_6c32).hash_one(bytes)
}

/// Frames `value` with the generations its tables had before its query ran.
pub(crate) fn encode<V: Serialize>(
    generations: &[u64],
    expires_at_ms: u64,
    value: &V,
) -> Result<Vec<u8>, postcard::Error> {
    let count =
        u8::try_from(generations.len()).map_err(|_| postcard::Error::SerializeBufferFull)?;
    let mut frame = Vec::with_capacity(HEADER + 8 * generations.len() + 64);
    frame.extend_from_slice(MAGIC);
    frame.extend_from_slice(&[0; 8]);
    frame.extend_from_slice(&expires_at_ms.to_le_bytes());
    frame.push(count);
    for g in generations {
        frame.extend_from_slice(&g.to_le_bytes());
    }
    let mut frame = postcard::to_extend(value, frame)?;
    let sum = checksum(&frame[MAGIC.len() + 8..]);
    frame[MAGIC.len()..MAGIC.len() + 8].copy_from_slice(&sum.to_le_bytes());
    Ok(frame)
}

/// The generations a frame was stored with, and its payload.
/// An opened frame: the generations its value was read at, when it
/// expires, and the value's bytes.
#[derive(Debug)]
pub(crate) struct Opened<'f> {
    pub generations: Vec<u64>,
    pub expires_at_ms: u64,
    pub payload: &'f [u8],
}

pub(crate) fn open(frame: &[u8]) -> Result<Opened<'_>, Undecodable> {
    if frame.len() < HEADER || &frame[..MAGIC.len()] != MAGIC {
        return Err(Undecodable::Corrupt);
    }
    let mut sum = [0; 8];
    sum.copy_from_slice(&frame[MAGIC.len()..MAGIC.len() + 8]);
    let body = &frame[MAGIC.len() + 8..];
    if checksum(body) != u64::from_le_bytes(sum) {
        return Err(Undecodable::Corrupt);
    }
    let mut expires = [0; 8];
    expires.copy_from_slice(&body[..8]);
    let body = &body[8..];
    let count = usize::from(body[0]);
    let gens_end = 1 + 8 * count;
    if body.len() < gens_end {
        return Err(Undecodable::Corrupt);
    }
    let generations = body[1..gens_end]
        .chunks_exact(8)
        .map(|c| {
            let mut g = [0; 8];
            g.copy_from_slice(c);
            u64::from_le_bytes(g)
        })
        .collect();
    Ok(Opened {
        generations,
        expires_at_ms: u64::from_le_bytes(expires),
        payload: &body[gens_end..],
    })
}

/// Decodes a payload that [`open`] returned.
pub(crate) fn decode<V: DeserializeOwned>(payload: &[u8]) -> Result<V, Undecodable> {
    match postcard::take_from_bytes::<V>(payload) {
        Ok((value, [])) => Ok(value),
        Ok(_) => Err(Undecodable::Foreign(
            "bytes left over after the value".into(),
        )),
        Err(e) => Err(Undecodable::Foreign(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_generations_and_value() {
        let frame = encode(&[7, u64::MAX], 1_234, &(42_u32, "ada".to_owned())).unwrap();
        let opened = open(&frame).unwrap();
        assert_eq!(opened.generations, vec![7, u64::MAX]);
        assert_eq!(opened.expires_at_ms, 1_234);
        assert_eq!(
            decode::<(u32, String)>(opened.payload).unwrap(),
            (42, "ada".to_owned())
        );
    }

    #[test]
    fn any_flipped_byte_is_corrupt() {
        let frame = encode(&[1], 99, &vec![1_u64, 2, 3]).unwrap();
        for i in 0..frame.len() {
            let mut bad = frame.clone();
            bad[i] ^= 0x40;
            assert!(open(&bad).is_err(), "byte {i} flipped was accepted");
        }
        assert_eq!(open(b"garbage").unwrap_err(), Undecodable::Corrupt);
        assert_eq!(
            open(&frame[..frame.len() - 1]).unwrap_err(),
            Undecodable::Corrupt
        );
    }

    #[test]
    fn another_type_is_foreign_not_a_panic() {
        let frame = encode(&[], 0, &"a string".to_owned()).unwrap();
        let payload = open(&frame).unwrap().payload;
        // postcard is not self-describing: a string's bytes also read as a
        // `Vec<u64>` of small numbers. That is why the key carries the
        // signature and the crate version; what does not fit is refused.
        assert!(matches!(
            decode::<bool>(payload),
            Err(Undecodable::Foreign(_))
        ));
    }
}
