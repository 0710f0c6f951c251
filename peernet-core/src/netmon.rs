//! The network monitor: notices when the set of local addresses changes (an interface
//! went up or down, DHCP gave a new address) so the node can re-announce, close
//! connections bound to vanished addresses and redial. A trait with a polling default
//! over `getifaddrs` (spec: the original polled every 5 s). Opt-in
//! (`NodeConfig::network_monitor`).

use std::collections::BTreeSet;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use peernet_proto::envelope::GoodbyeReason;
use tokio::sync::watch;

use crate::conn::{lock, CloseCause};
use crate::events::EventKind;
use crate::shared::Shared;

/// A source of the host's current addresses.
pub(crate) trait NetworkMonitor: Send + 'static {
    /// Every address of every interface that is up.
    fn local_addrs(&mut self) -> io::Result<BTreeSet<IpAddr>>;
}

/// The default monitor: `getifaddrs`.
pub(crate) struct Getifaddrs;

impl NetworkMonitor for Getifaddrs {
    fn local_addrs(&mut self) -> io::Result<BTreeSet<IpAddr>> {
        crate::sys::local_addrs()
    }
}

/// Addresses gained and lost between two polls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NetworkChange {
    /// New addresses.
    pub gained: Vec<IpAddr>,
    /// Vanished addresses.
    pub lost: Vec<IpAddr>,
}

impl std::fmt::Display for NetworkChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |v: &[IpAddr]| {
            v.iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        };
        write!(
            f,
            "gained: {}; lost: {}",
            list(&self.gained),
            list(&self.lost)
        )
    }
}

/// The change from `old` to `new`, if any.
pub(crate) fn diff(old: &BTreeSet<IpAddr>, new: &BTreeSet<IpAddr>) -> Option<NetworkChange> {
    let gained: Vec<IpAddr> = new.difference(old).copied().collect();
    let lost: Vec<IpAddr> = old.difference(new).copied().collect();
    (!gained.is_empty() || !lost.is_empty()).then_some(NetworkChange { gained, lost })
}

/// Polls `monitor` every `interval` and calls `on_change` with each change, until `stop`.
pub(crate) fn spawn<M: NetworkMonitor>(
    mut monitor: M,
    interval: Duration,
    on_change: Box<dyn Fn(NetworkChange) + Send>,
    mut stop: watch::Receiver<bool>,
) {
    tokio::spawn(async move {
        let mut last = monitor.local_addrs().unwrap_or_default();
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                _ = tick.tick() => {}
            }
            match monitor.local_addrs() {
                Ok(now) => {
                    if let Some(change) = diff(&last, &now) {
                        last = now;
                        on_change(change);
                    }
                }
                Err(e) => tracing::debug!(error = %e, "network monitor poll failed"),
            }
        }
    });
}

impl Shared {
    /// Reacts to a change of local addresses: reports it, re-announces, closes the
    /// connections whose local address vanished, and redials.
    pub(crate) fn network_changed(self: &Arc<Self>, change: NetworkChange) {
        tracing::info!(%change, "network changed");
        self.emit(EventKind::NetworkChanged, None, None, change.to_string());
        for d in lock(&self.discovery).iter() {
            d.network_changed();
        }
        let stale: Vec<_> = lock(&self.peers)
            .all_conns()
            .into_iter()
            .filter(|c| change.lost.contains(&c.info.local.ip().to_canonical()))
            .collect();
        for c in stale {
            c.close(
                GoodbyeReason::Closing,
                CloseCause::Local("local address vanished".into()),
            );
        }
        self.redial_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_reports_gained_and_lost() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let c: IpAddr = "::1".parse().unwrap();
        let old = BTreeSet::from([a, c]);
        let new = BTreeSet::from([b, c]);
        assert_eq!(
            diff(&old, &new),
            Some(NetworkChange {
                gained: vec![b],
                lost: vec![a]
            })
        );
        assert_eq!(diff(&new, &new), None);
        assert_eq!(
            diff(&old, &new).unwrap().to_string(),
            "gained: 10.0.0.2; lost: 10.0.0.1"
        );
    }

    struct Scripted(Vec<BTreeSet<IpAddr>>);
    impl NetworkMonitor for Scripted {
        fn local_addrs(&mut self) -> io::Result<BTreeSet<IpAddr>> {
            if self.0.len() > 1 {
                Ok(self.0.remove(0))
            } else {
                Ok(self.0[0].clone())
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn poller_reports_each_change_once() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let mon = Scripted(vec![
            BTreeSet::from([a]),
            BTreeSet::from([a]),
            BTreeSet::from([b]),
        ]);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let (stop_tx, stop) = watch::channel(false);
        spawn(
            mon,
            Duration::from_secs(5),
            Box::new(move |c| {
                let _ = tx.send(c);
            }),
            stop,
        );
        let c = tokio::time::timeout(Duration::from_secs(60), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(c.gained, vec![b]);
        assert_eq!(c.lost, vec![a]);
        // Nothing more changes.
        assert!(tokio::time::timeout(Duration::from_secs(60), rx.recv())
            .await
            .is_err());
        stop_tx.send_replace(true);
    }
}
