//! The `mixed` scenario's random choices: a small seeded generator, so the same `--seed`
//! gives each client the same choices on every machine, and the picks made with it (an item
//! by weight, a window of messages, some positions, a subset of flags).

/// The most messages one FETCH asks for.
pub const MAX_WINDOW: usize = 50;

/// splitmix64: small, fast, and the same sequence for the same seed everywhere.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64, client: usize) -> Rng {
        Rng(seed ^ (client as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// 0..n; `n` must not be 0.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    /// One of `table`'s items, each as often as its weight out of their sum; the sum must
    /// not be 0.
    pub fn weighted<T: Copy>(&mut self, table: &[(T, u32)]) -> T {
        let total: u32 = table.iter().map(|(_, w)| w).sum();
        let mut pick = self.below(total as usize) as u32;
        for &(item, weight) in table {
            if pick < weight {
                return item;
            }
            pick -= weight;
        }
        unreachable!("pick is below the sum of the weights")
    }

    /// A run of 1 to MAX_WINDOW of `n` positions: (first, last), 0-based.
    pub fn window(&mut self, n: usize) -> (usize, usize) {
        let len = 1 + self.below(n.min(MAX_WINDOW));
        let first = self.below(n - len + 1);
        (first, first + len - 1)
    }

    /// Up to `k` distinct positions of `n`, ascending.
    pub fn positions(&mut self, n: usize, k: usize) -> Vec<usize> {
        let mut picked: Vec<usize> = (0..k).map(|_| self.below(n)).collect();
        picked.sort_unstable();
        picked.dedup();
        picked
    }

    /// A random subset of `names` (empty unless `non_empty`).
    pub fn subset(&mut self, names: &[&str], non_empty: bool) -> Vec<String> {
        loop {
            let bits = self.next_u64();
            let chosen: Vec<String> = (0..names.len())
                .filter(|i| bits & (1 << i) != 0)
                .map(|i| names[i].to_owned())
                .collect();
            if !non_empty || !chosen.is_empty() {
                return chosen;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_positions_and_subsets_stay_in_bounds() {
        let mut rng = Rng::new(3, 2);
        for n in [1, 2, 7, 50, 51, 10_000] {
            for _ in 0..200 {
                let (a, b) = rng.window(n);
                assert!(a <= b && b < n && b - a < MAX_WINDOW, "{n}: {a}..{b}");
                let picked = rng.positions(n, 5);
                assert!(!picked.is_empty() && picked.len() <= 5);
                assert!(picked.windows(2).all(|w| w[0] < w[1]) && picked.iter().all(|&p| p < n));
            }
        }
        for _ in 0..100 {
            assert!(!rng.subset(&["a", "b", "c", "d"], true).is_empty());
            assert!(rng.subset(&["a", "b", "c"], false).len() <= 3);
        }
    }
}
