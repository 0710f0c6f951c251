//! The `peernet.file` stream protocol's two messages (docs/protocol.md, "File
//! transfer"): the sender's header and the receiver's replies, and the file-name rule.
//! Big-endian integers; every length is checked before anything is allocated.

use crate::error::{Error, Result};

/// First bytes of a header: protocol `peernet.file`, version 1.
pub(crate) const MAGIC: &[u8; 4] = b"PNF1";
/// Longest file name, in bytes. The receiver keeps `.<name>.part.info` next to the
/// file and writes it through a temp name about 30 bytes longer, which must still fit
/// the 255-byte file-name limit of Linux file systems.
pub const MAX_FILE_NAME: usize = 200;
/// Bytes of a header before the name: magic and the name's length.
pub(crate) const HEADER_PREFIX: usize = 4 + 2;
/// Bytes of a header after the name: size and SHA-256.
pub(crate) const HEADER_SUFFIX: usize = 8 + 32;
/// Bytes of a reply before its message: status, value, message length.
pub(crate) const REPLY_PREFIX: usize = 1 + 8 + 2;
/// Longest reply message, in bytes.
pub(crate) const MAX_REPLY_MESSAGE: usize = 1024;

/// Checks a file name: a base name only. Refused: empty, longer than
/// [`MAX_FILE_NAME`] bytes, a path separator (`/` or `\`), a leading `.` (which also
/// refuses `.` and `..`, and keeps names clear of the receiver's `.<name>.part`
/// files), NUL or any other control character (it would be printed on terminals).
pub fn check_file_name(name: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::invalid(format!(
            "file name {name:?} {why}; a file is sent under a base name of 1 to \
             {MAX_FILE_NAME} bytes (give another name)"
        )))
    };
    if name.is_empty() {
        return bad("is empty");
    }
    if name.len() > MAX_FILE_NAME {
        return bad(&format!("is {} bytes long", name.len()));
    }
    if name.contains(['/', '\\']) {
        return bad("contains a path separator");
    }
    if name.starts_with('.') {
        return bad("starts with '.' (hidden files, '.' and '..' are not sent)");
    }
    if name.chars().any(char::is_control) {
        return bad("contains a control character");
    }
    Ok(())
}

/// What the sender announces before the data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) name: String,
    pub(crate) size: u64,
    pub(crate) sha256: [u8; 32],
}

impl Header {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_PREFIX + self.name.len() + HEADER_SUFFIX);
        out.extend_from_slice(MAGIC);
        // The name was checked (at most MAX_FILE_NAME bytes), so it fits a u16.
        out.extend_from_slice(&(self.name.len() as u16).to_be_bytes());
        out.extend_from_slice(self.name.as_bytes());
        out.extend_from_slice(&self.size.to_be_bytes());
        out.extend_from_slice(&self.sha256);
        out
    }

    /// The name's length from the first [`HEADER_PREFIX`] bytes, checked against the
    /// limit before the name is read.
    pub(crate) fn name_len(prefix: &[u8; HEADER_PREFIX]) -> Result<usize, Refusal> {
        if &prefix[..4] != MAGIC {
            return Err(Refusal::new(
                Status::BadHeader,
                "not a peernet.file v1 header (bad magic)",
            ));
        }
        let len = usize::from(u16::from_be_bytes([prefix[4], prefix[5]]));
        if len == 0 || len > MAX_FILE_NAME {
            return Err(Refusal::new(
                Status::BadName,
                format!("the file name is {len} bytes; this receiver takes 1 to {MAX_FILE_NAME}"),
            ));
        }
        Ok(len)
    }

    /// The rest of a header (name, size, hash) once its length is known.
    pub(crate) fn decode_rest(rest: &[u8]) -> Result<Header, Refusal> {
        let Some(name_len) = rest.len().checked_sub(HEADER_SUFFIX) else {
            return Err(Refusal::new(Status::BadHeader, "truncated header"));
        };
        let name = std::str::from_utf8(&rest[..name_len])
            .map_err(|_| Refusal::new(Status::BadName, "the file name is not UTF-8"))?;
        check_file_name(name).map_err(|e| Refusal::new(Status::BadName, e.to_string()))?;
        let mut size = [0u8; 8];
        size.copy_from_slice(&rest[name_len..name_len + 8]);
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(&rest[name_len + 8..]);
        Ok(Header {
            name: name.to_owned(),
            size: u64::from_be_bytes(size),
            sha256,
        })
    }
}

/// A reply's status byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// Send the data from `value` (the bytes the receiver already has) on.
    Ready = 0,
    /// The file is in place (`value` = its size).
    Done = 1,
    /// The whole file's SHA-256 is not the header's: nothing was kept.
    BadHash = 2,
    /// Refused: the header does not decode.
    BadHeader = 16,
    /// Refused: the name breaks [`check_file_name`].
    BadName = 17,
    /// Refused: over the receiver's size limit (`value` = the limit).
    TooLarge = 18,
    /// Refused: a file of that name exists and the receiver does not overwrite.
    Exists = 19,
    /// Refused: the same name is being received from another transfer right now.
    Busy = 20,
    /// The receiver failed to store it (disk full, permissions); the message says.
    Storage = 21,
    /// The sender broke the protocol (more or fewer bytes than announced).
    Protocol = 22,
}

impl Status {
    fn from_byte(b: u8) -> Option<Status> {
        Some(match b {
            0 => Status::Ready,
            1 => Status::Done,
            2 => Status::BadHash,
            16 => Status::BadHeader,
            17 => Status::BadName,
            18 => Status::TooLarge,
            19 => Status::Exists,
            20 => Status::Busy,
            21 => Status::Storage,
            22 => Status::Protocol,
            _ => return None,
        })
    }
}

/// A refusal on its way to the sender (status and message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) status: Status,
    pub(crate) value: u64,
    pub(crate) message: String,
}

impl Refusal {
    pub(crate) fn new(status: Status, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            value: 0,
            message: message.into(),
        }
    }

    pub(crate) fn reply(&self) -> Reply {
        Reply {
            status: self.status,
            value: self.value,
            message: self.message.clone(),
        }
    }
}

/// One reply of the receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    pub(crate) status: Status,
    pub(crate) value: u64,
    pub(crate) message: String,
}

impl Reply {
    pub(crate) fn new(status: Status, value: u64) -> Reply {
        Reply {
            status,
            value,
            message: String::new(),
        }
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let msg = truncate(&self.message, MAX_REPLY_MESSAGE);
        let mut out = Vec::with_capacity(REPLY_PREFIX + msg.len());
        out.push(self.status as u8);
        out.extend_from_slice(&self.value.to_be_bytes());
        out.extend_from_slice(&(msg.len() as u16).to_be_bytes());
        out.extend_from_slice(msg.as_bytes());
        out
    }

    /// Status, value and the message's length from the first [`REPLY_PREFIX`] bytes.
    pub(crate) fn decode_prefix(p: &[u8; REPLY_PREFIX]) -> Result<(Status, u64, usize)> {
        let status = Status::from_byte(p[0]).ok_or_else(|| {
            Error::HandlerFailed(format!(
                "the file receiver answered with unknown status {} (a newer peer?)",
                p[0]
            ))
        })?;
        let mut v = [0u8; 8];
        v.copy_from_slice(&p[1..9]);
        let len = usize::from(u16::from_be_bytes([p[9], p[10]]));
        if len > MAX_REPLY_MESSAGE {
            return Err(Error::HandlerFailed(format!(
                "the file receiver's reply message is {len} bytes, over {MAX_REPLY_MESSAGE}"
            )));
        }
        Ok((status, u64::from_be_bytes(v), len))
    }
}

/// `s` cut to at most `max` bytes on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names() {
        for ok in [
            "a",
            "report.pdf",
            "a..b",
            "ünïcode",
            &"x".repeat(MAX_FILE_NAME),
        ] {
            check_file_name(ok).unwrap();
        }
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            "a\\b",
            ".hidden",
            "a\nb",
            "a\0b",
            &"x".repeat(MAX_FILE_NAME + 1),
        ] {
            assert!(check_file_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn header_round_trip_and_limits() {
        let h = Header {
            name: "f.bin".into(),
            size: 0x0102_0304_0506_0708,
            sha256: [7; 32],
        };
        let b = h.encode();
        let prefix: [u8; HEADER_PREFIX] = b[..HEADER_PREFIX].try_into().unwrap();
        assert_eq!(Header::name_len(&prefix).unwrap(), 5);
        assert_eq!(Header::decode_rest(&b[HEADER_PREFIX..]).unwrap(), h);
        assert_eq!(
            hex(&b[..HEADER_PREFIX + 5 + 8]),
            "504e46310005662e62696e0102030405060708"
        );
        let long = [b'P', b'N', b'F', b'1', 0x13, 0x88]; // 5000
        assert_eq!(Header::name_len(&long).unwrap_err().status, Status::BadName);
        let magic = [b'X', b'N', b'F', b'1', 0, 1];
        assert_eq!(
            Header::name_len(&magic).unwrap_err().status,
            Status::BadHeader
        );
        let mut rest = b"../x".to_vec();
        rest.extend_from_slice(&[0; HEADER_SUFFIX]);
        assert_eq!(
            Header::decode_rest(&rest).unwrap_err().status,
            Status::BadName
        );
    }

    #[test]
    fn reply_round_trip_and_cut() {
        let r = Reply {
            status: Status::TooLarge,
            value: 10,
            message: "é".repeat(600),
        };
        let b = r.encode();
        let p: [u8; REPLY_PREFIX] = b[..REPLY_PREFIX].try_into().unwrap();
        let (s, v, len) = Reply::decode_prefix(&p).unwrap();
        assert_eq!((s, v), (Status::TooLarge, 10));
        assert_eq!(len, 1024);
        assert!(std::str::from_utf8(&b[REPLY_PREFIX..]).is_ok());
        assert_eq!(
            hex(&Reply::new(Status::Ready, 3).encode()),
            "0000000000000000030000"
        );
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}
