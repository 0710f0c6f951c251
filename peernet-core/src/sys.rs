//! The one module of peernet-core that calls the C library directly: `getifaddrs` and
//! `if_nametoindex`, for the network monitor (this host's addresses) and UDP discovery
//! (the directed broadcast address of every IPv4 interface that is up, the interface
//! indexes of IPv6 multicast); `flock`, `geteuid` and
//! `getrandom` for the data directory (its lock, ownership checks, temp file names).
//! Every `unsafe` block says why it is sound. (`unsafe_code` is allowed for this module
//! alone, in `lib.rs`.)

use std::collections::BTreeSet;
use std::ffi::CStr;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One address of one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IfAddr {
    /// Interface name.
    pub name: String,
    /// The address.
    pub addr: IpAddr,
    /// IPv4 directed broadcast address, on broadcast-capable interfaces.
    pub broadcast: Option<Ipv4Addr>,
    /// The interface is up.
    pub up: bool,
    /// The interface is a loopback.
    pub loopback: bool,
    /// The interface is point-to-point (a tunnel: no broadcast domain).
    pub point_to_point: bool,
    /// The interface supports multicast.
    pub multicast: bool,
    /// The interface index (0 if unknown): the scope id of its IPv6 link-local
    /// addresses and the interface of a multicast membership.
    pub index: u32,
}

/// Reads a `sockaddr` as an IP address (IPv4 and IPv6 only).
///
/// # Safety
/// `sa` is null or points to a valid `sockaddr` whose family says how long it is.
unsafe fn ip_of(sa: *const libc::sockaddr) -> Option<IpAddr> {
    if sa.is_null() {
        return None;
    }
    // SAFETY: `sa` is non-null and valid per the caller's contract.
    let family = i32::from(unsafe { (*sa).sa_family });
    match family {
        libc::AF_INET => {
            // SAFETY: the family is AF_INET, so the storage is a `sockaddr_in`;
            // read_unaligned because getifaddrs does not promise alignment.
            let sin = unsafe { std::ptr::read_unaligned(sa.cast::<libc::sockaddr_in>()) };
            Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                sin.sin_addr.s_addr,
            ))))
        }
        libc::AF_INET6 => {
            // SAFETY: the family is AF_INET6, so the storage is a `sockaddr_in6`.
            let sin6 = unsafe { std::ptr::read_unaligned(sa.cast::<libc::sockaddr_in6>()) };
            Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
        }
        _ => None,
    }
}

/// Every IP address of every interface.
pub(crate) fn interfaces() -> io::Result<Vec<IfAddr>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: `head` is a valid out-pointer; on success the list is freed below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out = Vec::new();
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a non-null node of the list getifaddrs returned, which stays
        // valid until freeifaddrs below.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        // SAFETY: ifa_addr is null or a valid sockaddr of the list.
        let Some(addr) = (unsafe { ip_of(ifa.ifa_addr) }) else {
            continue;
        };
        let flags = ifa.ifa_flags;
        let up = flags & (libc::IFF_UP as libc::c_uint) != 0;
        let loopback = flags & (libc::IFF_LOOPBACK as libc::c_uint) != 0;
        let point_to_point = flags & (libc::IFF_POINTOPOINT as libc::c_uint) != 0;
        let multicast = flags & (libc::IFF_MULTICAST as libc::c_uint) != 0;
        let broadcast = if flags & (libc::IFF_BROADCAST as libc::c_uint) != 0 {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            let b = ifa.ifa_ifu;
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            let b = ifa.ifa_dstaddr;
            // SAFETY: with IFF_BROADCAST this field is null or the broadcast sockaddr.
            match unsafe { ip_of(b) } {
                Some(IpAddr::V4(v4)) if !v4.is_unspecified() => Some(v4),
                _ => None,
            }
        } else {
            None
        };
        let index = if ifa.ifa_name.is_null() {
            0
        } else {
            // SAFETY: ifa_name is a NUL-terminated string owned by the list.
            unsafe { libc::if_nametoindex(ifa.ifa_name) }
        };
        let name = if ifa.ifa_name.is_null() {
            String::new()
        } else {
            // SAFETY: ifa_name is a NUL-terminated string owned by the list.
            unsafe { CStr::from_ptr(ifa.ifa_name) }
                .to_string_lossy()
                .into_owned()
        };
        out.push(IfAddr {
            name,
            addr,
            broadcast,
            up,
            loopback,
            point_to_point,
            multicast,
            index,
        });
    }
    // SAFETY: `head` came from a successful getifaddrs and is freed exactly once; no
    // reference into the list outlives this point (everything was copied).
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

/// The addresses of every interface that is up.
pub(crate) fn local_addrs() -> io::Result<BTreeSet<IpAddr>> {
    Ok(interfaces()?
        .into_iter()
        .filter(|i| i.up)
        .map(|i| i.addr)
        .collect())
}

/// The index of the interface named `name` (`None`: no such interface, or a name the
/// C library cannot take).
pub(crate) fn if_index(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
}

/// Takes an exclusive `flock` on `file` without waiting: `Ok(false)` when another open
/// file description holds it (another process, or another open in this one). Released
/// when the file is closed.
pub(crate) fn try_lock_exclusive(file: &std::fs::File) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    loop {
        // SAFETY: the descriptor is open for as long as `file` is borrowed; flock takes
        // no pointers.
        let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if r == 0 {
            return Ok(true);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EWOULDBLOCK) => return Ok(false),
            _ => return Err(e),
        }
    }
}

/// The effective user id of this process.
pub(crate) fn euid() -> u32 {
    // SAFETY: geteuid has no arguments and cannot fail.
    unsafe { libc::geteuid() }
}

/// 8 random bytes from the kernel (for unpredictable temp file names).
pub(crate) fn random_u64() -> io::Result<u64> {
    let mut buf = [0u8; 8];
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: `rest` is a valid writable buffer of `rest.len()` bytes for the call.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(e);
        }
        filled += n as usize;
    }
    Ok(u64::from_ne_bytes(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_listed() {
        let all = interfaces().unwrap();
        assert!(all.iter().any(|i| i.loopback && i.addr.is_loopback()));
        assert!(local_addrs()
            .unwrap()
            .contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)));
    }

    #[test]
    fn interface_indexes_are_found_by_name() {
        let lo = interfaces()
            .unwrap()
            .into_iter()
            .find(|i| i.loopback)
            .unwrap();
        assert_eq!(if_index(&lo.name), Some(lo.index));
        assert_eq!(if_index("no-such-if0"), None);
        assert_eq!(if_index("nul\0byte"), None);
    }

    #[test]
    fn flock_excludes_a_second_open_and_random_differs() {
        let dir = crate::fsutil::tests::tempdir();
        let p = dir.join("lock");
        let a = std::fs::File::create(&p).unwrap();
        let b = std::fs::File::open(&p).unwrap();
        assert!(try_lock_exclusive(&a).unwrap());
        assert!(!try_lock_exclusive(&b).unwrap());
        drop(a);
        assert!(try_lock_exclusive(&b).unwrap());
        assert_ne!(random_u64().unwrap(), random_u64().unwrap());
    }
}
