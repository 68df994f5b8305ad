//! A fast, seeded hasher for the registry's address maps, which every send looks up.
//!
//! std's SipHash costs more than the rest of a lookup. Keys here are socket addresses (a few
//! machine words), so a multiply-and-rotate mix per word is enough to spread them, and a seed
//! drawn per process from std's own random keys keeps a peer from choosing colliding addresses
//! ahead of time. A map holds at most `max_connections` entries in any case.

use std::{
    hash::{BuildHasher, Hasher},
    sync::OnceLock,
};

/// Builds [`AddrHasher`]s that share the process's seed.
#[derive(Clone, Copy)]
pub(crate) struct AddrHashState {
    seed: u64,
}

impl Default for AddrHashState {
    fn default() -> Self {
        static SEED: OnceLock<u64> = OnceLock::new();
        let seed = *SEED.get_or_init(process_seed);
        Self { seed }
    }
}

/// Drawn from std's random keys, once per process.
#[cfg(not(pea2pea_sim))]
fn process_seed() -> u64 {
    std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64) | 1
}

/// A simulation replays a run from its seed alone, so the order in which the active set
/// yields its addresses (to `connected_addrs`, to shutdown) must not change between
/// processes; and a simulated peer cannot attack the hash.
#[cfg(pea2pea_sim)]
fn process_seed() -> u64 {
    0x005e_ed0f_5eed
}

impl BuildHasher for AddrHashState {
    type Hasher = AddrHasher;

    fn build_hasher(&self) -> AddrHasher {
        AddrHasher { state: self.seed }
    }
}

/// Folds each written word into the state with a multiply and a rotate.
pub(crate) struct AddrHasher {
    state: u64,
}

const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;

impl AddrHasher {
    #[inline]
    fn mix(&mut self, word: u64) {
        self.state = (self.state ^ word).wrapping_mul(MULTIPLIER).rotate_left(29);
    }
}

impl Hasher for AddrHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.mix(u64::from_le_bytes(chunk.try_into().unwrap_or_default()));
        }
        let mut tail = [0u8; 8];
        tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        self.mix(u64::from_le_bytes(tail) ^ bytes.len() as u64);
    }

    #[inline]
    fn write_u8(&mut self, n: u8) {
        self.mix(n.into());
    }

    #[inline]
    fn write_u16(&mut self, n: u16) {
        self.mix(n.into());
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.mix(n.into());
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.mix(n);
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // a last avalanche, so that the low bits hashbrown uses depend on every input bit
        let mut z = self.state;
        z = (z ^ (z >> 32)).wrapping_mul(MULTIPLIER);
        z ^ (z >> 29)
    }
}

#[cfg(test)]
mod tests {
    use std::{collections::HashSet, net::SocketAddr};

    use super::*;

    #[test]
    fn neighbouring_addresses_spread_over_buckets() {
        let state = AddrHashState::default();
        let mut low_bits = HashSet::new();
        for port in 40_000..40_256u16 {
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            low_bits.insert(state.hash_one(addr) & 0xff);
        }
        // 256 consecutive ports should land in most of 256 buckets, not a handful
        assert!(
            low_bits.len() > 150,
            "only {} distinct buckets",
            low_bits.len()
        );
    }
}
