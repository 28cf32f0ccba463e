//! Temporary stand-in while the real MIME module is being written; replaced wholesale.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IngestError {
    #[error("message has no header/body separator")]
    NoSeparator,
    #[error("message contains NUL bytes")]
    Nul,
    #[error("message is empty")]
    Empty,
}
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Structure {
    pub size: u64,
    pub header_len: u32,
}
impl Structure {
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap()
    }
    pub fn from_bytes(b: &[u8]) -> Result<Structure, serde_json::Error> {
        serde_json::from_slice(b)
    }
}
pub fn normalize_line_endings(raw: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    std::borrow::Cow::Borrowed(raw)
}
pub fn analyze(msg: &[u8]) -> Result<Structure, IngestError> {
    let i = memchr::memmem::find(msg, b"\r\n\r\n").ok_or(IngestError::NoSeparator)?;
    Ok(Structure {
        size: msg.len() as u64,
        header_len: i as u32 + 4,
    })
}
