//! RPC for specifically trusted peers (spec section 6): `apply(module, function, args)`.

use peernet_proto::Key;

use crate::handlers::{Caller, Handler};

/// One RPC request, handed to the dispatcher only for peers granted RPC rights.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcCall {
    /// The authenticated caller (granted RPC rights).
    pub from: Key,
    /// Module name.
    pub module: String,
    /// Function name.
    pub function: String,
    /// Arguments; by convention a UTF-8 JSON array.
    pub args: Vec<u8>,
}

impl Caller for RpcCall {
    fn caller(&self) -> &Key {
        &self.from
    }
}

/// The RPC dispatcher: a handler of [`RpcCall`]s, async or blocking. Its result is the
/// reply (by convention one UTF-8 JSON value).
pub type RpcDispatcher = Handler<RpcCall>;
