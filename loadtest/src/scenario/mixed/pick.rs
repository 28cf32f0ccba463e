//! Which operation a `mixed` client (one user each, an exact model) picks next, by weight.

pub use loadtest::mixed::rng::Rng;

/// The operations a client picks from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Select,
    FetchFlags,
    FetchEnvelope,
    Store,
    Search,
    Append,
    Expunge,
    Noop,
    Reconnect,
}

/// How often each operation is picked: weights out of their sum. `Reconnect` comes last, so
/// the mix without it is the table without its last entry.
const OPS: [(Op, u32); 9] = [
    (Op::Select, 4),
    (Op::FetchFlags, 18),
    (Op::FetchEnvelope, 14),
    (Op::Store, 20),
    (Op::Search, 14),
    (Op::Append, 12),
    (Op::Expunge, 8),
    (Op::Noop, 6),
    (Op::Reconnect, 2),
];

/// The next operation, by weight; never `Reconnect` unless `reconnect`.
pub fn op(rng: &mut Rng, reconnect: bool) -> Op {
    let ops = if reconnect { &OPS[..] } else { &OPS[..OPS.len() - 1] };
    rng.weighted(ops)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_choices() {
        let ops = |seed, client| {
            let mut rng = Rng::new(seed, client);
            (0..50).map(|_| op(&mut rng, true)).collect::<Vec<_>>()
        };
        assert_eq!(ops(1, 0), ops(1, 0));
        assert_ne!(ops(1, 0), ops(1, 1), "clients differ");
        assert_ne!(ops(1, 0), ops(2, 0), "seeds differ");
    }

    #[test]
    fn every_op_is_picked_about_as_weighted() {
        let mut rng = Rng::new(7, 0);
        let mut counts = [0u32; OPS.len()];
        for _ in 0..98_000 {
            let picked = op(&mut rng, true);
            counts[OPS.iter().position(|(o, _)| *o == picked).unwrap()] += 1;
        }
        for ((op, weight), count) in OPS.iter().zip(counts) {
            let expected = weight * 1000;
            assert!(count.abs_diff(expected) < expected / 5 + 200, "{op:?}: {count}");
        }
    }

    #[test]
    fn without_reconnect_the_rest_keep_their_weights() {
        assert_eq!(OPS[OPS.len() - 1].0, Op::Reconnect);
        let mut rng = Rng::new(7, 0);
        let picked: Vec<Op> = (0..10_000).map(|_| op(&mut rng, false)).collect();
        assert!(!picked.contains(&Op::Reconnect));
        assert!(picked.contains(&Op::Noop) && picked.contains(&Op::Select));
    }
}
