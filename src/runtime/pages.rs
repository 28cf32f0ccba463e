//! Parked sessions (`serve::lot`'s sleepers, `proxy::rest`'s resting relays) in pages of a
//! fixed number of slots: a lot grows a page at a time and never moves what it holds. (A vector
//! that doubles holds up to twice what it needs, and both copies at once while it grows: at
//! thousands of sessions a core, that is most of a parked session's memory again.) Keys are
//! handed out and reused as a slab's are.

/// A page's size: one of mimalloc's size classes exactly, so a page's allocation wastes no
/// more than the room of one slot (a page of 64 slots of 664 bytes would take a 48 KiB block
/// and leave 13 % of it unused).
const PAGE_BYTES: usize = 64 * 1024;
/// No free slot.
const NONE: u32 = u32::MAX;

enum Slot<T> {
    /// Free; the next free slot's key.
    Free(u32),
    Taken(T),
}

pub(crate) struct Pages<T> {
    pages: Vec<Box<[Slot<T>]>>,
    /// The free slot to fill next (the one freed last), or `NONE`.
    free: u32,
}

impl<T> Pages<T> {
    /// Slots a page.
    const PAGE: usize = {
        let slot = std::mem::size_of::<Slot<T>>();
        if slot == 0 || slot >= PAGE_BYTES {
            1
        } else {
            PAGE_BYTES / slot
        }
    };

    pub fn new() -> Pages<T> {
        Pages {
            pages: Vec::new(),
            free: NONE,
        }
    }

    /// The key the next `insert` gives.
    pub fn vacant_key(&self) -> u32 {
        match self.free {
            NONE => self.end(),
            key => key,
        }
    }

    pub fn insert(&mut self, value: T) -> u32 {
        if self.free == NONE {
            self.grow();
        }
        let key = self.free;
        let slot = &mut self.pages[key as usize / Self::PAGE][key as usize % Self::PAGE];
        if let Slot::Free(next) = *slot {
            self.free = next;
        }
        *slot = Slot::Taken(value);
        key
    }

    pub fn get(&self, key: u32) -> Option<&T> {
        match self
            .pages
            .get(key as usize / Self::PAGE)?
            .get(key as usize % Self::PAGE)?
        {
            Slot::Taken(value) => Some(value),
            Slot::Free(_) => None,
        }
    }

    pub fn try_remove(&mut self, key: u32) -> Option<T> {
        let slot = self
            .pages
            .get_mut(key as usize / Self::PAGE)?
            .get_mut(key as usize % Self::PAGE)?;
        match std::mem::replace(slot, Slot::Free(self.free)) {
            Slot::Taken(value) => {
                self.free = key;
                Some(value)
            }
            free => {
                *slot = free;
                None
            }
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (u32, &T)> {
        self.pages.iter().enumerate().flat_map(|(p, page)| {
            page.iter().enumerate().filter_map(move |(i, slot)| match slot {
                Slot::Taken(value) => Some(((p * Self::PAGE + i) as u32, value)),
                Slot::Free(_) => None,
            })
        })
    }

    /// The first key past the last page.
    fn end(&self) -> u32 {
        u32::try_from(self.pages.len() * Self::PAGE).unwrap_or(NONE)
    }

    /// A new page, its slots free in order.
    fn grow(&mut self) {
        let base = self.end();
        let page: Box<[Slot<T>]> = (1..=Self::PAGE as u32)
            .map(|i| Slot::Free(if i < Self::PAGE as u32 { base + i } else { NONE }))
            .collect();
        self.pages.push(page);
        self.free = base;
    }
}

/// What one slot of `T`s takes.
#[cfg(test)]
pub(crate) fn slot_size<T>() -> usize {
    std::mem::size_of::<Slot<T>>()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Big enough that a page holds 16: the keys cross pages.
    struct Big(i32, [u8; 4088]);

    fn big(n: i32) -> Big {
        Big(n, [n as u8; 4088])
    }

    #[test]
    fn keys_are_given_reused_and_kept_apart() {
        assert_eq!(Pages::<Big>::PAGE, 16);
        let mut pages = Pages::new();
        let keys: Vec<u32> = (0..200).map(|i| pages.insert(big(i))).collect();
        assert_eq!(keys, (0..200).collect::<Vec<u32>>());
        assert_eq!(pages.pages.len(), 13);
        assert_eq!(pages.try_remove(70).map(|b| b.0), Some(70));
        assert!(pages.try_remove(70).is_none());
        assert_eq!(pages.try_remove(5).map(|b| b.0), Some(5));
        assert!(pages.get(5).is_none());
        assert_eq!(pages.get(6).map(|b| (b.0, b.1[4087])), Some((6, 6)));
        assert!(pages.get(10_000).is_none());
        assert!(pages.try_remove(10_000).is_none());
        // The slot freed last is filled first.
        assert_eq!(pages.vacant_key(), 5);
        assert_eq!(pages.insert(big(1005)), 5);
        assert_eq!(pages.insert(big(1070)), 70);
        // Past the last page's last slot: a new page.
        assert_eq!(pages.vacant_key(), 200);
        for i in 200..208 {
            pages.insert(big(i));
        }
        assert_eq!(pages.pages.len(), 13);
        assert_eq!(pages.insert(big(208)), 208);
        assert_eq!(pages.pages.len(), 14);
        let all: Vec<(u32, i32)> = pages.iter().map(|(k, b)| (k, b.0)).collect();
        assert_eq!(all.len(), 209);
        assert_eq!(all[5], (5, 1005));
        assert_eq!(all[70], (70, 1070));
        for k in 0..209 {
            assert!(pages.try_remove(k).is_some());
        }
        assert_eq!(pages.iter().count(), 0);
        // Emptied, it keeps its pages and hands out their keys again.
        assert!(pages.insert(big(1)) < 209);
        assert_eq!(pages.pages.len(), 14);
    }
}
