#!/usr/bin/env bash
# Multi-host test of discovery, reconnect, network monitor and heartbeat: four network
# namespaces on a bridge, one peernet-node process in each (peernet-core/tests/netns.rs);
# then pairing between three hosts (peernet-core/tests/pairing_netns.rs).
# Needs root and iproute2; the test removes its namespaces even when it fails, and
# prints why it skipped when it cannot run.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build -q -p peernet-core --example peernet-node
# Leftovers of a run killed with SIGKILL (the test's own cleanup could not run).
for ns in $(ip netns list 2>/dev/null | awk '/^p[np][0-9]+(n[0-9]+|hub)/ {print $1}'); do
    pid=${ns#p[np]}; pid=${pid%%[nh]*}
    kill -0 "$pid" 2>/dev/null || ip netns del "$ns" 2>/dev/null || true
done
cargo test -q -p peernet-core --test netns -- --nocapture 2>&1 | tee /tmp/peernet-netns.$$.log
grep -q "test result: ok" /tmp/peernet-netns.$$.log
# Pairing between three hosts (namespaces pp<pid>...).
cargo test -q -p peernet-core --test pairing_netns -- --nocapture 2>&1 | tee /tmp/peernet-netns.$$.log
grep -q "test result: ok" /tmp/peernet-netns.$$.log
rm -f /tmp/peernet-netns.$$.log
