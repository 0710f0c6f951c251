//! Both directions' call bookkeeping: the calls this side started and waits on (with
//! their deadlines), and the calls the peer started that this side still has to answer.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

/// Calls this side started, by id, each with its deadline.
#[derive(Debug, Default)]
pub(super) struct Pending {
    deadline_of: BTreeMap<u64, Instant>,
    /// The same calls ordered by deadline, earliest first.
    by_deadline: BTreeSet<(Instant, u64)>,
}

impl Pending {
    pub(super) fn insert(&mut self, id: u64, deadline: Instant) {
        if let Some(old) = self.deadline_of.insert(id, deadline) {
            self.by_deadline.remove(&(old, id));
        }
        self.by_deadline.insert((deadline, id));
    }

    /// Takes the call out; false when it is not (or no longer) pending.
    pub(super) fn remove(&mut self, id: u64) -> bool {
        match self.deadline_of.remove(&id) {
            Some(d) => {
                self.by_deadline.remove(&(d, id));
                true
            }
            None => false,
        }
    }

    /// Takes out the calls whose deadline is at or before `now`, earliest first.
    pub(super) fn expire(&mut self, now: Instant) -> Vec<u64> {
        let mut out = Vec::new();
        while let Some(&(d, id)) = self.by_deadline.first() {
            if d > now {
                break;
            }
            self.by_deadline.pop_first();
            self.deadline_of.remove(&id);
            out.push(id);
        }
        out
    }

    /// Takes every call out, in id order (the connection ended).
    pub(super) fn drain(&mut self) -> Vec<u64> {
        self.by_deadline.clear();
        std::mem::take(&mut self.deadline_of).into_keys().collect()
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.by_deadline.first().map(|&(d, _)| d)
    }

    pub(super) fn len(&self) -> usize {
        self.deadline_of.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.deadline_of.is_empty()
    }
}

/// Calls the peer started here that have not been answered yet.
#[derive(Debug, Default)]
pub(super) struct Serving {
    ids: BTreeSet<u64>,
}

impl Serving {
    /// Adds an id; false when it is already being served.
    pub(super) fn insert(&mut self, id: u64) -> bool {
        self.ids.insert(id)
    }

    pub(super) fn contains(&self, id: u64) -> bool {
        self.ids.contains(&id)
    }

    pub(super) fn remove(&mut self, id: u64) -> bool {
        self.ids.remove(&id)
    }

    pub(super) fn clear(&mut self) {
        self.ids.clear();
    }

    pub(super) fn len(&self) -> usize {
        self.ids.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn expiry_in_deadline_order_and_removal() {
        let t = Instant::now();
        let s = Duration::from_secs(1);
        let mut p = Pending::default();
        p.insert(1, t + 3 * s);
        p.insert(2, t + s);
        p.insert(3, t + 2 * s);
        assert_eq!(p.next_deadline(), Some(t + s));
        assert!(p.remove(3));
        assert!(!p.remove(3));
        assert_eq!(p.expire(t + 2 * s), vec![2]);
        assert_eq!(p.next_deadline(), Some(t + 3 * s));
        p.insert(4, t + 9 * s);
        assert_eq!(p.drain(), vec![1, 4]);
        assert!(p.is_empty() && p.next_deadline().is_none());
    }
}
