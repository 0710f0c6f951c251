//! RPC body decoder: never panics; what decodes re-encodes to the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use peernet_proto::rpc::RpcRequest;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = RpcRequest::decode(data) {
        assert_eq!(req.encode(), data);
    }
});
