//! The receive buffer between a stream's machine side and its handle: one allocation
//! of `INBOX_CAP` bytes (made when the first bytes arrive), filled by the driver
//! straight from the machine and read by the program, so a received byte is copied
//! once on its way out of the machine and once into the program's buffer.

/// Bytes `start..end` of `buf` are received and not yet read.
#[derive(Debug, Default)]
pub(crate) struct Inbox {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Inbox {
    /// Bytes waiting to be read.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.end - self.start
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Drops what is buffered and the allocation.
    pub(crate) fn clear(&mut self) {
        *self = Inbox::default();
    }

    /// Copies up to `out.len()` bytes out; returns how many.
    pub(crate) fn take(&mut self, out: &mut [u8]) -> usize {
        let src = self.buf.get(self.start..self.end).unwrap_or_default();
        let n = out.len().min(src.len());
        if let (Some(dst), Some(src)) = (out.get_mut(..n), src.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        n
    }

    /// Room for more bytes at the end, up to `cap` buffered (when the end is reached,
    /// the unread bytes move to the front first); fill it, then [`Inbox::commit`].
    pub(crate) fn spare(&mut self, cap: usize) -> &mut [u8] {
        if self.buf.len() < cap {
            self.buf.resize(cap, 0);
        }
        if self.start > 0 && self.end >= cap {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        self.buf.get_mut(self.end..cap).unwrap_or_default()
    }

    /// `n` bytes of [`Inbox::spare`] were filled.
    pub(crate) fn commit(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::Inbox;

    #[test]
    fn bytes_come_out_in_order_across_partial_reads_and_refills() {
        let mut q = Inbox::default();
        let mut next = 0u8;
        let mut want = 0u8;
        for round in 0..50 {
            let room = q.spare(64);
            let n = room.len().min(7 + round % 13);
            for b in room.iter_mut().take(n) {
                *b = next;
                next = next.wrapping_add(1);
            }
            q.commit(n);
            assert!(q.len() <= 64);
            let mut out = vec![0; 1 + round % 11];
            let got = q.take(&mut out);
            for &b in &out[..got] {
                assert_eq!(b, want);
                want = want.wrapping_add(1);
            }
        }
        let mut rest = vec![0; 64];
        let got = q.take(&mut rest);
        for &b in &rest[..got] {
            assert_eq!(b, want);
            want = want.wrapping_add(1);
        }
        assert_eq!(want, next);
        assert!(q.is_empty());
    }
}
