//! The pairing error type.

use std::fmt;

/// Why a ticket, a code or a pairing attempt was refused. Every variant names what is
/// wrong and what the user can do next.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PairError {
    /// The text is not a ticket at all (wrong prefix, unknown version, bad length).
    TicketFormat(&'static str),
    /// A group of the ticket fails its check character: a typo in that group (1-based).
    TicketTypo {
        /// 1-based number of the group whose check character does not match.
        group: usize,
    },
    /// A character that is not in the ticket alphabet, in the given 1-based group.
    TicketCharacter {
        /// 1-based group number.
        group: usize,
        /// The offending character.
        ch: char,
    },
    /// The text is not a short code `N-word-word`.
    CodeFormat(&'static str),
    /// A word of a short code is not in the word list (probably misspelt).
    CodeWord {
        /// 1-based position of the word in the code.
        position: usize,
    },
    /// The invite's expiry has passed.
    Expired,
    /// The invite was already used (or its short code burned by a wrong attempt).
    Used,
    /// The other side does not know the same secret: wrong code, wrong or altered
    /// ticket, or someone in the middle.
    WrongSecret,
    /// The inviter's static key is not the one the ticket names.
    KeyMismatch,
    /// A pairing message that does not decode (length, magic, version, field).
    Malformed(&'static str),
    /// A Noise failure other than a wrong secret.
    Noise(String),
    /// A step called out of order or after the attempt ended.
    Misuse(&'static str),
}

impl fmt::Display for PairError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PairError::TicketFormat(why) => {
                write!(
                    f,
                    "not a valid peernet1 ticket ({why}); copy the whole ticket again"
                )
            }
            PairError::TicketTypo { group } => write!(
                f,
                "typo in group {group} of the ticket (its check character does not match); \
                 compare that group with the inviter's screen"
            ),
            PairError::TicketCharacter { group, ch } => write!(
                f,
                "character {ch:?} in group {group} of the ticket is not in its alphabet \
                 (A-Z, 2-7); compare that group with the inviter's screen"
            ),
            PairError::CodeFormat(why) => {
                write!(f, "not a short code like 7-copper-violin ({why})")
            }
            PairError::CodeWord { position } => write!(
                f,
                "word {position} of the code is not in the word list; check its spelling"
            ),
            PairError::Expired => f.write_str("the invite has expired; ask for a new one"),
            PairError::Used => f.write_str(
                "the invite was already used (or its code burned by a wrong attempt); \
                 ask for a new one",
            ),
            PairError::WrongSecret => f.write_str(
                "the other side does not know the same secret (wrong code or ticket, or \
                 someone in the middle); the code is burned: ask for a new invite",
            ),
            PairError::KeyMismatch => f.write_str(
                "the inviter's key is not the one in the ticket: someone in the middle; \
                 nothing was trusted",
            ),
            PairError::Malformed(why) => write!(f, "malformed pairing message: {why}"),
            PairError::Noise(why) => write!(f, "pairing handshake failed: {why}"),
            PairError::Misuse(what) => write!(f, "pairing step out of order: {what}"),
        }
    }
}

impl std::error::Error for PairError {}
