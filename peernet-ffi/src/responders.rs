//! Responder tokens: the `peernet_responder *` a handler answers a call with is a token
//! the library looks up, never memory.
//!
//! A token is one pointer-sized word: `tag ‖ counter ‖ 0000`. The tag names one
//! *generation* of one node's responders — drawn at random, unique among the live
//! generations of every node, and not drawn again while it is among the last
//! `RETIRED_KEPT` retired ones; the counter counts that generation's calls from 1. Each
//! generation has its own table of pending replies. A token answered, or whose call
//! is gone (connection closed), leaves its table; the node's free drops all its
//! tables, so its tokens are refused from then on. When a generation's counter is
//! used up the node starts a new generation with a new tag, so within a generation no
//! counter value is handed out twice.
//!
//! On 64-bit targets: 20 tag bits and 40 counter bits (10^12 calls per generation; a
//! stale token can never meet the call it would alias). On 32-bit targets the word
//! has only 28 usable bits (10 tag, 18 counter): a token can only alias a later call
//! after its tag is drawn again by chance (1 in ~1000 per new generation, and only
//! after `RETIRED_KEPT` other generations), where the old process-wide counter
//! aliased deterministically after 2^28 calls.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use peernet_core::HandlerResult;
use tokio::sync::oneshot;

use crate::guard::lock;

/// Where a pending call's reply goes.
pub(crate) type Reply = oneshot::Sender<HandlerResult>;

/// Low bits always zero (tokens look like aligned pointers).
const LOW_BITS: u32 = 4;
/// Bits of the generation tag.
const TAG_BITS: u32 = if usize::BITS >= 64 { 20 } else { 10 };
/// Bits of the per-generation counter.
const COUNTER_BITS: u32 = usize::BITS - TAG_BITS - LOW_BITS;
/// Largest counter value of a generation.
pub(crate) const COUNTER_MAX: usize = (1 << COUNTER_BITS) - 1;
/// Largest tag (tag 0 is never used, so no token is 0).
const TAG_MAX: usize = (1 << TAG_BITS) - 1;
/// Retired tags not drawn again (bounded memory: a word each).
const RETIRED_KEPT: usize = if usize::BITS >= 64 { 4096 } else { 256 };

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Not a token (bad low bits), or of a node that was freed.
    UnknownNode,
    /// Answered already, or its call is gone (connection closed).
    NotPending,
}

impl Refused {
    /// The error text for the C caller.
    pub(crate) fn message(self) -> &'static str {
        match self {
            Refused::UnknownNode => {
                "unknown responder: not one handed to a handler, or its node was freed"
            }
            Refused::NotPending => {
                "stale responder: already answered, or its call is gone (connection closed)"
            }
        }
    }
}

/// The pending replies of one generation.
struct Table {
    node: u64,
    tag: usize,
    pending: Mutex<HashMap<usize, Reply>>,
    /// Used up (the node moved to a new generation): retired once empty.
    used_up: AtomicBool,
}

#[derive(Default)]
struct Registry {
    /// Live generations by tag.
    live: HashMap<usize, Arc<Table>>,
    /// Recently retired tags, oldest first.
    retired: VecDeque<usize>,
}

fn registry() -> &'static RwLock<Registry> {
    static R: OnceLock<RwLock<Registry>> = OnceLock::new();
    R.get_or_init(|| RwLock::new(Registry::default()))
}

fn random_tag() -> usize {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    (h.finish() as usize % TAG_MAX) + 1
}

/// Registers a new generation for `node`; returns its tag and table. (At most
/// `TAG_MAX` generations can be live at once; beyond, tags are reused from the
/// retired window, oldest first, which can only happen with ~10^6 live nodes on
/// 64-bit.)
fn new_generation(node: u64) -> (usize, Arc<Table>) {
    let mut r = registry().write().unwrap_or_else(|p| p.into_inner());
    let mut tag = random_tag();
    for _ in 0..64 {
        if !r.live.contains_key(&tag) && !r.retired.contains(&tag) {
            break;
        }
        tag = random_tag();
    }
    if r.live.contains_key(&tag) || r.retired.contains(&tag) {
        // Crowded: the first tag neither live nor recently retired, else the oldest
        // retired one.
        tag = (1..=TAG_MAX)
            .find(|t| !r.live.contains_key(t) && !r.retired.contains(t))
            .or_else(|| r.retired.pop_front())
            .unwrap_or(tag);
        r.retired.retain(|t| *t != tag);
    }
    let table = Arc::new(Table {
        node,
        tag,
        pending: Mutex::new(HashMap::new()),
        used_up: AtomicBool::new(false),
    });
    r.live.insert(tag, Arc::clone(&table));
    (tag, table)
}

fn retire(r: &mut Registry, tag: usize) {
    r.live.remove(&tag);
    r.retired.push_back(tag);
    while r.retired.len() > RETIRED_KEPT {
        r.retired.pop_front();
    }
}

struct Current {
    tag: usize,
    table: Arc<Table>,
    next: usize,
}

/// One node's responders (held by its `NodeCtx`).
pub(crate) struct NodeResponders {
    node: u64,
    current: Mutex<Option<Current>>,
}

impl NodeResponders {
    /// No generation yet: the first call starts one.
    pub(crate) fn new(node: u64) -> NodeResponders {
        NodeResponders {
            node,
            current: Mutex::new(None),
        }
    }

    /// Registers a pending reply; returns its token (never 0).
    pub(crate) fn register(&self, tx: Reply) -> usize {
        let mut cur = lock(&self.current);
        let fresh = match cur.as_ref() {
            Some(c) => c.next > COUNTER_MAX,
            None => true,
        };
        if fresh {
            // A used-up generation stays live until its pending calls are answered or
            // gone, then it is retired (see `take`).
            if let Some(old) = cur.as_ref() {
                old.table.used_up.store(true, Ordering::Release);
                if lock(&old.table.pending).is_empty() {
                    retire(
                        &mut registry().write().unwrap_or_else(|p| p.into_inner()),
                        old.tag,
                    );
                }
            }
            let (tag, table) = new_generation(self.node);
            *cur = Some(Current {
                tag,
                table,
                next: 1,
            });
        }
        let Some(c) = cur.as_mut() else {
            return 0;
        };
        let counter = c.next;
        c.next += 1;
        lock(&c.table.pending).insert(counter, tx);
        (c.tag << (COUNTER_BITS + LOW_BITS)) | (counter << LOW_BITS)
    }

    /// Drops every pending reply of the node (node free): its calls fail and every
    /// token of the node is refused from now on.
    pub(crate) fn drop_all(&self) {
        *lock(&self.current) = None;
        let mut gone = Vec::new();
        {
            let mut r = registry().write().unwrap_or_else(|p| p.into_inner());
            let tags: Vec<usize> = r
                .live
                .iter()
                .filter(|(_, t)| t.node == self.node)
                .map(|(k, _)| *k)
                .collect();
            for tag in tags {
                if let Some(t) = r.live.get(&tag) {
                    gone.extend(lock(&t.pending).drain().map(|(_, tx)| tx));
                }
                retire(&mut r, tag);
            }
        }
        drop(gone);
    }

    /// Test hook: makes the current generation's counter used up.
    #[cfg(test)]
    pub(crate) fn exhaust(&self) {
        if let Some(c) = lock(&self.current).as_mut() {
            c.next = COUNTER_MAX + 1;
        }
    }
}

/// Takes a pending reply out of its table: `Err` says why the token is refused.
pub(crate) fn take(token: usize) -> Result<Reply, Refused> {
    if token == 0 || token & ((1 << LOW_BITS) - 1) != 0 {
        return Err(Refused::UnknownNode);
    }
    let tag = token >> (COUNTER_BITS + LOW_BITS);
    let counter = (token >> LOW_BITS) & COUNTER_MAX;
    let table = registry()
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .live
        .get(&tag)
        .cloned()
        .ok_or(Refused::UnknownNode)?;
    let (tx, now_empty) = {
        let mut p = lock(&table.pending);
        let tx = p.remove(&counter).ok_or(Refused::NotPending)?;
        (tx, p.is_empty())
    };
    if now_empty && table.used_up.load(Ordering::Acquire) {
        let mut r = registry().write().unwrap_or_else(|p| p.into_inner());
        if r.live
            .get(&table.tag)
            .is_some_and(|t| Arc::ptr_eq(t, &table))
        {
            retire(&mut r, table.tag);
        }
    }
    Ok(tx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(r: &NodeResponders) -> (usize, oneshot::Receiver<HandlerResult>) {
        let (tx, rx) = oneshot::channel();
        (r.register(tx), rx)
    }

    fn answer(token: usize, body: &[u8]) -> Result<(), Refused> {
        take(token).map(|tx| {
            let _ = tx.send(Ok(body.to_vec()));
        })
    }

    #[test]
    fn a_token_answers_its_own_call_once_and_never_another() {
        let a = NodeResponders::new(1_000_001);
        let (t1, mut r1) = pending(&a);
        assert_ne!(t1, 0);
        assert_eq!(t1 & 0xf, 0);
        answer(t1, b"one").unwrap();
        assert_eq!(r1.try_recv().unwrap().unwrap(), b"one");
        // Used twice: refused, and the next call is untouched.
        let (t2, mut r2) = pending(&a);
        assert_eq!(answer(t1, b"again"), Err(Refused::NotPending));
        assert!(
            r2.try_recv().is_err(),
            "a stale token answered another call"
        );
        // Expired: its call went away (the connection closed), whose cleanup takes the
        // entry out; answering later is refused.
        let (t3, r3) = pending(&a);
        drop(take(t3).unwrap());
        drop(r3);
        assert_eq!(answer(t3, b"late"), Err(Refused::NotPending));
        answer(t2, b"two").unwrap();
        assert_eq!(r2.try_recv().unwrap().unwrap(), b"two");
        // Not a token at all.
        assert_eq!(answer(t2 | 1, b"x"), Err(Refused::UnknownNode));
        a.drop_all();
    }

    #[test]
    fn tokens_of_a_freed_or_other_node_never_answer() {
        let a = NodeResponders::new(1_000_002);
        let b = NodeResponders::new(1_000_003);
        let (ta, _ra) = pending(&a);
        let (tb, mut rb) = pending(&b);
        // Same counter value, different nodes: different tokens.
        assert_ne!(ta, tb);
        a.drop_all();
        assert_eq!(answer(ta, b"x"), Err(Refused::UnknownNode));
        // A new node after the free: the old token still answers nothing.
        let c = NodeResponders::new(1_000_004);
        let (tc, mut rc) = pending(&c);
        assert_ne!(ta, tc);
        assert_eq!(answer(ta, b"x"), Err(Refused::UnknownNode));
        assert!(rc.try_recv().is_err() && rb.try_recv().is_err());
        answer(tb, b"b").unwrap();
        answer(tc, b"c").unwrap();
        b.drop_all();
        c.drop_all();
    }

    #[test]
    fn when_a_generation_is_used_up_old_tokens_never_alias_new_calls() {
        let a = NodeResponders::new(1_000_005);
        let mut old = Vec::new();
        for _ in 0..4 {
            let (t, _r) = pending(&a);
            answer(t, b"x").unwrap();
            old.push(t);
        }
        // The counter wraps (after 2^40 calls on 64-bit, 2^18 on 32-bit).
        a.exhaust();
        let mut fresh = Vec::new();
        for _ in 0..4 {
            fresh.push(pending(&a));
        }
        for t in &old {
            assert!(
                fresh.iter().all(|(f, _)| f != t),
                "a token was handed out twice"
            );
            // Its generation was retired with its last call.
            assert_eq!(answer(*t, b"stale"), Err(Refused::UnknownNode));
        }
        for (_, r) in &mut fresh {
            assert!(r.try_recv().is_err(), "a stale token answered a new call");
        }
        a.drop_all();
    }
}
