//! Starts mDNS discovery (`discovery::mdns`) with the node as its sink.

use std::sync::Arc;

use crate::config::MdnsConfig;
use crate::conn::lock;
use crate::discovery::ifaces::InterfaceFilter;
use crate::discovery::mdns::{self, MdnsEnv};
use crate::error::Result;
use crate::shared::Shared;

/// Advertises this node over mDNS (when it listens on `port`) and browses; hints go to
/// the peer table like announcements.
pub(crate) fn start_mdns(shared: &Arc<Shared>, cfg: &MdnsConfig, port: u16) -> Result<()> {
    let weak = Arc::downgrade(shared);
    let env = MdnsEnv {
        own: shared.identity.public(),
        sink: Box::new(move |ev| {
            if let Some(s) = weak.upgrade() {
                s.apply_discovery(ev);
            }
        }),
        stop: shared.shutdown_rx(),
    };
    let filter = InterfaceFilter {
        allow: cfg.allow_interfaces.clone(),
        deny: cfg.deny_interfaces.clone(),
    };
    let service = mdns::start(env, filter, port)?;
    lock(&shared.discovery).push(Box::new(service));
    Ok(())
}
