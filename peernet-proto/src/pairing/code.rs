//! Short codes `N-word-word` (magic-wormhole style): `N` (1..=999) only finds the
//! inviter on the LAN and is public; the two words (16 bits from [`WORDS`]) are the
//! SPAKE2 password together with `N`. 16 bits are safe only because every attempt is
//! online, tests one guess, and a wrong one burns the code.

use std::fmt;

use super::words::{index_of, WORDS};
use super::PairError;

/// Largest accepted code number.
pub const MAX_NUMBER: u16 = 999;
/// Longest accepted code text (checked before anything else).
pub const MAX_TEXT_LEN: usize = 64;

/// A short code. `Debug` shows only the number.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ShortCode {
    number: u16,
    words: [u8; 2],
}

impl fmt::Debug for ShortCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ShortCode({}-…)", self.number)
    }
}

impl fmt::Display for ShortCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b] = self.words;
        write!(
            f,
            "{}-{}-{}",
            self.number,
            WORDS[usize::from(a)],
            WORDS[usize::from(b)]
        )
    }
}

impl ShortCode {
    /// A code from 4 random bytes: number 1..=99 (short to type; it is public), words
    /// from the last two bytes.
    pub fn from_random(r: [u8; 4]) -> ShortCode {
        let n = u16::from_be_bytes([r[0], r[1]]) % 99 + 1;
        ShortCode {
            number: n,
            words: [r[2], r[3]],
        }
    }

    /// A code from its parts; `number` must be 1..=999.
    pub fn new(number: u16, words: [u8; 2]) -> Result<ShortCode, PairError> {
        if number == 0 || number > MAX_NUMBER {
            return Err(PairError::CodeFormat("the number must be 1 to 999"));
        }
        Ok(ShortCode { number, words })
    }

    /// The public rendezvous number.
    pub fn number(&self) -> u16 {
        self.number
    }

    /// The SPAKE2 password: the canonical text `N-word-word` (lowercase, ASCII).
    pub fn password(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }

    /// Parses `N-word-word` (any case; dashes or spaces between the parts).
    pub fn parse(text: &str) -> Result<ShortCode, PairError> {
        if text.len() > MAX_TEXT_LEN {
            return Err(PairError::CodeFormat("too long"));
        }
        let mut parts = text
            .trim()
            .split(|c: char| c == '-' || c.is_whitespace())
            .filter(|p| !p.is_empty());
        let num = parts.next().ok_or(PairError::CodeFormat("empty"))?;
        if num.len() > 3 || !num.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PairError::CodeFormat(
                "it must start with a number, 1 to 999",
            ));
        }
        let number: u16 = num
            .parse()
            .map_err(|_| PairError::CodeFormat("it must start with a number, 1 to 999"))?;
        let mut words = [0u8; 2];
        for (i, w) in words.iter_mut().enumerate() {
            let part = parts
                .next()
                .ok_or(PairError::CodeFormat("it needs two words after the number"))?;
            *w = index_of(part).ok_or(PairError::CodeWord { position: i + 1 })?;
        }
        if parts.next().is_some() {
            return Err(PairError::CodeFormat("more than two words"));
        }
        ShortCode::new(number, words)
    }

    /// True if `text` looks like a short code rather than a ticket (starts with a
    /// digit); used to pick how to parse what a user typed.
    pub fn looks_like_code(text: &str) -> bool {
        text.trim_start()
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_digit())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_its_own_display_in_any_case() {
        let c = ShortCode::new(7, [94, 249]).unwrap();
        let s = c.to_string();
        assert_eq!(ShortCode::parse(&s).unwrap(), c);
        assert_eq!(ShortCode::parse(&s.to_uppercase()).unwrap(), c);
        assert_eq!(ShortCode::parse(&s.replace('-', " ")).unwrap(), c);
        assert_eq!(c.password(), s.as_bytes());
    }

    #[test]
    fn refuses_bad_codes_naming_the_word() {
        assert_eq!(
            ShortCode::parse("7-copper-violn"),
            Err(PairError::CodeWord { position: 2 })
        );
        assert!(matches!(
            ShortCode::parse("0-acid-acid"),
            Err(PairError::CodeFormat(_))
        ));
        assert!(matches!(
            ShortCode::parse("1000-acid-acid"),
            Err(PairError::CodeFormat(_))
        ));
        assert!(matches!(
            ShortCode::parse("acid-acid"),
            Err(PairError::CodeFormat(_))
        ));
        assert!(matches!(
            ShortCode::parse("7-acid"),
            Err(PairError::CodeFormat(_))
        ));
        assert!(matches!(
            ShortCode::parse("7-acid-acid-acid"),
            Err(PairError::CodeFormat(_))
        ));
        assert!(matches!(
            ShortCode::parse(&"9".repeat(100)),
            Err(PairError::CodeFormat(_))
        ));
        let r = ShortCode::from_random([0xff, 0xff, 1, 2]);
        assert!((1..=99).contains(&r.number()));
    }
}
