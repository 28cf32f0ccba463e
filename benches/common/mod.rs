//! What the benches share: the ~100 KiB message most of them move.

/// A realistic ~100 KiB text message: headers, 76-column lines, every 50th starting with
/// '.' (so RETR has dots to stuff).
pub fn message(size: usize) -> Vec<u8> {
    let mut m = b"From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nSubject: benchmark\r\n\
Message-ID: <bench@example.org>\r\nDate: Thu, 26 Nov 2026 10:00:00 +0000\r\n\r\n"
        .to_vec();
    let mut n = 0;
    while m.len() < size {
        n += 1;
        if n % 50 == 0 {
            m.extend_from_slice(b".a line that starts with a dot and must be stuffed on the wire\r\n");
        } else {
            m.extend_from_slice(b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod te\r\n");
        }
    }
    m
}
