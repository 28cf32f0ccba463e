//! An epoll set, for the sessions parked on a core (`serve::lot`, `proxy::rest`): one io_uring
//! poll of the set stands for a readiness wait on every socket in it, so a parked session needs
//! no operation of its own in flight, only its registration here.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// An epoll set of sockets, each registered for one readiness report.
pub struct Epoll {
    fd: OwnedFd,
}

impl Epoll {
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: epoll_create1 takes no pointers; a non-negative result is a new descriptor
        // that nothing else owns.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just created and is owned by nothing else.
        Ok(Epoll {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// The set's own descriptor, to wait for it with an io_uring poll (`io::poll_readable`).
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Registers `fd` for its next readiness to read (or its end), reported with `data`;
    /// after that report it stays registered but silent until `remove`d.
    pub fn add(&self, fd: RawFd, data: u64) -> io::Result<()> {
        let mut event = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLONESHOT) as u32,
            u64: data,
        };
        // SAFETY: `event` is a valid epoll_event for the call's duration; the kernel copies it.
        let r = unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut event) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Unregisters `fd` (before it is closed, or once it is someone else's to read).
    pub fn remove(&self, fd: RawFd) {
        // SAFETY: EPOLL_CTL_DEL ignores the event pointer (null is allowed since Linux 2.6.9).
        unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), libc::EPOLL_CTL_DEL, fd, std::ptr::null_mut()) };
    }

    /// The data of every registration that is ready now, without waiting.
    pub fn ready(&self, out: &mut Vec<u64>) -> io::Result<()> {
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 256];
        loop {
            // SAFETY: `events` has room for the count passed; the kernel writes at most that
            // many entries and returns how many it wrote.
            let n = unsafe { libc::epoll_wait(self.fd.as_raw_fd(), events.as_mut_ptr(), events.len() as i32, 0) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let n = n as usize;
            out.extend(events[..n].iter().map(|e| e.u64));
            if n < events.len() {
                return Ok(());
            }
        }
    }
}

/// An event's data for a parked session: its key in its lot, and the descriptor to check the
/// slot against when the event comes (the slot may have been taken by another since).
pub fn tag(key: u32, fd: RawFd) -> u64 {
    (u64::from(fd as u32) << 32) | u64::from(key)
}

pub fn untag(t: u64) -> (u32, RawFd) {
    (t as u32, (t >> 32) as u32 as RawFd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_carry_key_and_descriptor() {
        for (key, fd) in [(0, 0), (7, 12), (u32::MAX, i32::MAX), (3, 1 << 20)] {
            assert_eq!(untag(tag(key, fd)), (key, fd));
        }
    }
}
