//! The body of a Call to `peernet.rpc` (spec 6).

use serde::Deserialize;

use crate::codec::{decode_options, put_bytes, var_len};
use crate::ProtoError;
use bincode::Options;

/// Reserved handler name for RPC calls.
pub const RPC_HANDLER: &str = "peernet.rpc";
/// Handler names with this prefix are reserved for the library.
pub const RESERVED_PREFIX: &str = "peernet.";

/// `module: str ‖ function: str ‖ args: bytes` in the bincode layout of spec 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct RpcRequest<'a> {
    /// Module name (by convention UTF-8 identifier; not checked here).
    #[serde(borrow)]
    pub module: &'a str,
    /// Function name.
    #[serde(borrow)]
    pub function: &'a str,
    /// Arguments; by convention a UTF-8 JSON array.
    #[serde(borrow)]
    pub args: &'a [u8],
}

impl<'a> RpcRequest<'a> {
    /// Decodes a request, borrowing from `b`; anything that does not decode exactly
    /// (truncated, trailing bytes, invalid UTF-8) is [`ProtoError::Malformed`].
    pub fn decode(b: &'a [u8]) -> Result<Self, ProtoError> {
        decode_options(b.len())
            .deserialize(b)
            .map_err(|_| ProtoError::Malformed("rpc request does not decode"))
    }

    /// The wire form.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            var_len(self.module.len()) + var_len(self.function.len()) + var_len(self.args.len()),
        );
        put_bytes(&mut out, self.module.as_bytes());
        put_bytes(&mut out, self.function.as_bytes());
        put_bytes(&mut out, self.args);
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[derive(serde::Serialize)]
    struct Ref<'a> {
        module: &'a str,
        function: &'a str,
        args: &'a [u8],
    }

    #[test]
    fn matches_bincode_and_rejects_garbage() {
        let r = RpcRequest {
            module: "mod",
            function: "fün",
            args: b"[1,2]",
        };
        let reference = bincode::DefaultOptions::new()
            .with_fixint_encoding()
            .with_little_endian()
            .serialize(&Ref {
                module: r.module,
                function: r.function,
                args: r.args,
            })
            .unwrap();
        assert_eq!(r.encode(), reference);
        assert_eq!(RpcRequest::decode(&reference).unwrap(), r);
        let mut trailing = reference.clone();
        trailing.push(0);
        assert!(RpcRequest::decode(&trailing).is_err());
        for cut in 0..reference.len() {
            assert!(RpcRequest::decode(&reference[..cut]).is_err());
        }
    }
}
