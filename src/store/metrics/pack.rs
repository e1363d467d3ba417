//! The packed values of one raw sample row: for each series, in id order,
//! the id's distance from the previous one and the value scaled to an
//! integer (`scale`), both as LEB128 varints (the value zigzagged). About
//! five bytes a value instead of some thirty for a row each.

use crate::model::metrics::{Figure, Unit};

/// What a figure's values are multiplied by to be stored as integers:
/// ratios to 1/10000, loads and counts to 1/100, bytes and seconds whole.
pub fn scale(figure: Figure) -> f64 {
    match figure.unit() {
        Unit::Ratio => 10_000.0,
        Unit::Count => 100.0,
        Unit::Bytes | Unit::BytesPerSecond | Unit::Seconds => 1.0,
    }
}

pub fn to_int(figure: Figure, v: f64) -> i64 {
    let s = (v * scale(figure)).round();
    if s.is_finite() { s.clamp(i64::MIN as f64, i64::MAX as f64) as i64 } else { 0 }
}

pub fn from_int(figure: Figure, v: i64) -> f64 {
    v as f64 / scale(figure)
}

fn put(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn get(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*at)?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Packs (series id, scaled value) pairs; ids need not be sorted.
pub fn pack(values: &mut [(i64, i64)]) -> Vec<u8> {
    values.sort_unstable_by_key(|(id, _)| *id);
    let mut out = Vec::with_capacity(values.len() * 5);
    let mut prev = 0i64;
    for (id, v) in values.iter() {
        put(&mut out, id.wrapping_sub(prev) as u64);
        put(&mut out, ((v << 1) ^ (v >> 63)) as u64);
        prev = *id;
    }
    out
}

/// The pairs of a packed row; a damaged tail is dropped.
pub fn unpack(bytes: &[u8]) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let (mut at, mut id) = (0usize, 0i64);
    while at < bytes.len() {
        let (Some(d), Some(z)) = (get(bytes, &mut at), get(bytes, &mut at)) else { break };
        id = id.wrapping_add(d as i64);
        out.push((id, ((z >> 1) as i64) ^ -((z & 1) as i64)));
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn values_keep_their_precision() {
        assert_eq!(from_int(Figure::HostCpuRatio, to_int(Figure::HostCpuRatio, 0.12345)), 0.1235);
        assert_eq!(from_int(Figure::HostLoad1, to_int(Figure::HostLoad1, 1.5)), 1.5);
        assert_eq!(to_int(Figure::HostMemoryUsedBytes, f64::NAN), 0);
    }

    proptest! {
        #[test]
        fn pack_round_trips(mut v in proptest::collection::btree_map(0i64..100_000, any::<i64>(), 0..300)
            .prop_map(|m| m.into_iter().collect::<Vec<_>>())) {
            let packed = pack(&mut v);
            prop_assert_eq!(unpack(&packed), v);
        }

        #[test]
        fn any_bytes_unpack_without_panic(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = unpack(&b);
        }
    }
}
