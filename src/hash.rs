//! One fast hasher for the crate's maps whose keys are chosen on this side:
//! the push handlers' events (`src/client/processor.rs`, the crate's own
//! enum) and the local gate's ids and message keys (`src/gate/state/`).
//!
//! It is the Fx hash rustc uses: one rotate, xor and multiplication per
//! integer, instead of SipHash's rounds. It does not resist chosen keys, so
//! it is used only where nobody else picks them: the events are the crate's
//! own, and the gate is a local emulator. Maps keyed by what the network sends
//! (the push duplicate filter, `src/client/dedup.rs`) keep std's keyed hash.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A `HashMap` hashed with [`FastHasher`].
pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// The Fx hash: the multiplication spreads consecutive integers over the top
/// bits, which hashbrown uses for its control bytes, as well as over the low
/// bits it uses for the bucket index (tested below).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FastHasher(u64);

impl FastHasher {
    fn add(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        for &b in chunks.remainder() {
            self.add(u64::from(b));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::hash::BuildHasher;

    /// Low bits pick the bucket, the top 7 the control byte: both must vary
    /// over consecutive keys.
    fn spread(h: &[u64]) -> (usize, usize) {
        let low: HashSet<u64> = h.iter().map(|x| x & 63).collect();
        let top: HashSet<u64> = h.iter().map(|x| x >> 57).collect();
        (low.len(), top.len())
    }

    #[test]
    fn consecutive_keys_differ_in_the_bits_the_map_uses() {
        let b = BuildHasherDefault::<FastHasher>::default();
        let ids: Vec<u64> = (1..=64u32).map(|n| b.hash_one(n)).collect();
        let (low, top) = spread(&ids);
        assert!(low > 32 && top > 32, "u32 ids: {low} {top}");
        let keys: Vec<u64> = (1..=64i64).map(|n| b.hash_one((1u8, 7i64, n))).collect();
        let (low, top) = spread(&keys);
        assert!(low > 32 && top > 32, "tuple keys: {low} {top}");
    }

    #[test]
    fn a_fast_map_works_as_a_map() {
        let mut m: FastMap<(u8, i64), &str> = FastMap::default();
        for i in 0..1000 {
            m.insert((1, i), "x");
        }
        assert_eq!(m.len(), 1000);
        assert_eq!(m.get(&(1, 999)), Some(&"x"));
        assert_eq!(m.get(&(2, 999)), None);
    }
}
