//! Room written ahead of the end of data.mdb.
//!
//! A commit whose new pages go past the end of the file grows it, and making that durable
//! costs the file system a metadata write on top of the data: on a journalled ext4 or XFS a
//! journal commit, on ext4 without a journal a synchronous inode write. LMDB grows its file a
//! few pages at a time, so most commits of a growing store paid that. Instead the writer keeps
//! zeros written and synced ahead of the last page, a step at a time while no request waits
//! (or at once when the room runs low), and LMDB overwrites them in place: a commit then makes
//! only its pages durable.
//!
//! Zeros past LMDB's last page are never read: LMDB addresses pages up to its last page number
//! only, and a crash during a step leaves at most some zeros more. The step is written while
//! holding LMDB's write lock (an aborted write transaction), so no writer in another process
//! (the CLI beside a running server) can be putting pages there meanwhile.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use heed::{Env, WithoutTls};

/// Written at a time in a large store: the writer serves no request while it writes and syncs
/// a step, so a step is what a delivery arriving meanwhile waits. A step of 1 MiB took 2–9 ms
/// on this project's test disk, and at 1,000 deliveries a second (a store growing by 5.5 MiB/s)
/// made the fan-out's p99 5.2–15 ms; 128 KiB steps made it 3.4–4.8 ms, for about 5 % fewer
/// deliveries a second at full load (BENCHMARKS.md, "Room made in smaller steps"). A small
/// store steps by a sixteenth of its size (at least `MIN_STEP`), so that a new one does not
/// write megabytes of zeros for a few messages.
const MAX_STEP: u64 = 128 << 10;
const MIN_STEP: u64 = 64 << 10;
/// The writer keeps this many steps of room once it has had quiet moments; while requests
/// wait it makes room only when less than one step is left.
const STEPS_AHEAD: u64 = 4;

static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

/// The data file, opened for the zeros.
pub(super) struct Room {
    file: File,
    page_size: u64,
}

impl Room {
    pub(super) fn open(env: &Env<WithoutTls>) -> io::Result<Room> {
        let file = File::options().write(true).open(env.path().join("data.mdb"))?;
        let page_size = u64::from(env.unnamed_database_stat().page_size);
        Ok(Room { file, page_size })
    }

    /// Makes one step of room if there is less than `STEPS_AHEAD` steps, or, while requests
    /// are `waiting`, only if there is less than one. Gives the bytes written.
    pub(super) fn make(&self, env: &Env<WithoutTls>, waiting: bool) -> Result<u64, super::StoreError> {
        let wanted = |end: u64| step(end) * if waiting { 1 } else { STEPS_AHEAD };
        let (end, room) = self.room(env)?;
        if room >= wanted(end) {
            return Ok(0);
        }
        // Held until the step is synced: no other process's writer commits meanwhile.
        let wtxn = env.write_txn()?;
        let (end, room) = self.room(env)?;
        if room >= wanted(end) {
            return Ok(0);
        }
        let (from, step) = (end + room, step(end));
        let mut at = from;
        while at < from + step {
            let n = ZEROS.len().min((from + step - at) as usize);
            self.file.write_all_at(&ZEROS[..n], at)?;
            at += n as u64;
        }
        self.file.sync_data()?;
        wtxn.abort();
        Ok(step)
    }

    /// Where LMDB's last page ends, and how far past it the file goes.
    fn room(&self, env: &Env<WithoutTls>) -> io::Result<(u64, u64)> {
        let end = (env.info().last_page_number as u64 + 1) * self.page_size;
        let len = self.file.metadata()?.len();
        Ok((end, len.saturating_sub(end)))
    }
}

/// The step for a store whose pages end at `end`: whole blocks of `MIN_STEP`.
fn step(end: u64) -> u64 {
    (end / 16).clamp(MIN_STEP, MAX_STEP) / MIN_STEP * MIN_STEP
}

#[cfg(test)]
mod tests {
    use heed::types::Bytes;
    use heed::{Database, EnvOpenOptions};

    use super::*;

    /// An environment of its own (no writer thread), so that only the test writes to it.
    fn env(dir: &std::path::Path) -> Env<WithoutTls> {
        let mut options = EnvOpenOptions::new().read_txn_without_tls();
        options.map_size(1 << 30).max_dbs(1);
        // SAFETY: a fresh directory, opened once, and only LMDB and `Room` write to its file.
        unsafe { options.open(dir) }.unwrap()
    }

    fn put(env: &Env<WithoutTls>, db: Database<Bytes, Bytes>, keys: std::ops::Range<u32>) {
        let mut wtxn = env.write_txn().unwrap();
        for k in keys {
            db.put(&mut wtxn, &k.to_be_bytes(), &value(k)).unwrap();
        }
        wtxn.commit().unwrap();
    }

    fn value(k: u32) -> Vec<u8> {
        k.to_le_bytes().repeat(1000)
    }

    fn len(dir: &std::path::Path) -> u64 {
        std::fs::metadata(dir.join("data.mdb")).unwrap().len()
    }

    #[test]
    fn commits_fill_the_room_made_ahead_instead_of_growing_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let env = env(dir.path());
        let wtxn = env.write_txn().unwrap();
        let db: Database<Bytes, Bytes> = env
            .create_databases_and_commit(wtxn, |opener, wtxn| {
                let db = opener.create_database(wtxn, None)?;
                Ok::<_, heed::Error>(heed::CommitOrAbort::<_, ()>::Commit(db))
            })
            .unwrap()
            .unwrap_commit();
        put(&env, db, 0..400);
        let room = Room::open(&env).unwrap();
        let (end, none) = room.room(&env).unwrap();
        assert_eq!(none, 0, "LMDB's own growth ends at its last page");
        let step = step(end);
        // While requests wait, one step is made only when less than one is left.
        assert_eq!(room.make(&env, true).unwrap(), step);
        assert_eq!(room.make(&env, true).unwrap(), 0);
        // In quiet moments, up to four steps, one at a time.
        let made: Vec<u64> = std::iter::repeat_with(|| room.make(&env, false).unwrap())
            .take(4)
            .collect();
        assert_eq!(made, [step, step, step, 0]);
        let full = len(dir.path());
        assert_eq!(room.room(&env).unwrap().1, 4 * step);

        // Commits smaller than the room land in it: the file does not grow.
        for batch in 0..4 {
            put(&env, db, 400 + batch * 10..410 + batch * 10);
            assert_eq!(len(dir.path()), full, "commit {batch} grew the file");
        }
        assert!(
            room.room(&env).unwrap().1 < 4 * step,
            "the commits used some of the room"
        );
        // Past it, LMDB grows the file itself, as before.
        put(&env, db, 1000..1000 + (5 * step / 4096) as u32);
        assert!(len(dir.path()) > full);

        // Nothing written ahead ever covered a page in use.
        room.make(&env, false).unwrap();
        let rtxn = env.read_txn().unwrap();
        let keys = (0..440).chain(1000..1000 + (5 * step / 4096) as u32);
        for k in keys {
            assert_eq!(db.get(&rtxn, &k.to_be_bytes()).unwrap(), Some(&value(k)[..]), "key {k}");
        }
    }
}
