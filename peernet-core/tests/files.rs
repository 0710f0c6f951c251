//! File transfer over a stream (issue 16): `send_file` / `expose_files` on loopback.
//! A whole file with its hash checked; a transfer cut at ~60% and resumed (only the
//! rest is sent); damaged or mismatching partial files; refusals (bad names before any
//! traffic, over-long headers, a size over the cap, an existing file).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::{pair, tempdir, T};
use peernet_core::{Error, Key, Node, ReceiveOptions, SendOptions, FILE_STREAM, MAX_FILE_NAME};
use sha2::{Digest, Sha256};

/// `len` bytes that differ from one position to the next (xorshift), so a misplaced
/// or repeated chunk shows in the hash.
fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn sha(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A directory with `name` holding `bytes`; returns (directory, file path).
fn source(tag: &str, name: &str, bytes: &[u8]) -> (PathBuf, PathBuf) {
    let d = tempdir(tag);
    std::fs::create_dir_all(&d).unwrap();
    let p = d.join(name);
    std::fs::write(&p, bytes).unwrap();
    (d, p)
}

fn inbox(tag: &str) -> PathBuf {
    let d = tempdir(tag);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_a_file_and_checks_its_hash() {
    let (a, b) = pair().await;
    let dir = inbox("in");
    let got = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = Arc::clone(&got);
    let opts = ReceiveOptions {
        on_received: Some(Arc::new(move |f| seen.lock().unwrap().push(f.clone()))),
        ..Default::default()
    };
    b.expose_files(&dir, opts).unwrap();
    let bytes = content(1_000_003, 1);
    let (_src, path) = source("src", "data.bin", &bytes);
    let report = a
        .send_file(&b.key(), &path, SendOptions::default())
        .await
        .unwrap();
    assert_eq!(report.name, "data.bin");
    assert_eq!(
        (report.size, report.resumed_from, report.sent),
        (1_000_003, 0, 1_000_003)
    );
    assert!(!report.restarted);
    assert_eq!(report.sha256, sha(&bytes));
    assert_eq!(
        sha(&std::fs::read(dir.join("data.bin")).unwrap()),
        sha(&bytes)
    );
    // No partial file or sidecar is left behind.
    assert_eq!(names_in(&dir), ["data.bin"]);
    let got = got.lock().unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].peer, got[0].size), (a.key(), 1_000_003));
    assert_eq!(got[0].path, dir.join("data.bin"));
}

/// The receiver drops the connection once ~60% of the file is on its disk (its own
/// progress hook asks for it); the transfer fails, only the partial file stays, and
/// sending again resumes: only the rest (about 40%) is sent, and the hash matches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_cut_at_60_percent_resumes_with_the_rest() {
    const SIZE: usize = 8 << 20;
    let (a, b) = pair().await;
    let dir = inbox("in");
    let (cut_tx, mut cut_rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
    let fired = Arc::new(AtomicBool::new(false));
    let once = Arc::clone(&fired);
    let opts = ReceiveOptions {
        progress: Some(Arc::new(move |_peer: &Key, _name: &str, done, total| {
            if done * 10 >= total * 6 && !once.swap(true, Ordering::SeqCst) {
                let _ = cut_tx.send(done);
            }
        })),
        ..Default::default()
    };
    b.expose_files(&dir, opts).unwrap();
    let bytes = content(SIZE, 2);
    let (_src, path) = source("src", "big.bin", &bytes);

    let bkey = b.key();
    let send = a.send_file(&bkey, &path, SendOptions::default());
    let cut = async {
        let at = tokio::time::timeout(T, cut_rx.recv())
            .await
            .expect("the receiver never reached 60%")
            .unwrap();
        b.disconnect(&a.key()).await.unwrap();
        at
    };
    let (first, cut_at) = tokio::join!(send, cut);
    let err = first.expect_err("the cut transfer succeeded");
    assert!(
        matches!(err, Error::Closed(_) | Error::StreamReset { .. }),
        "{err:?}"
    );
    // Nothing that could be taken for the file: only the partial file and its sidecar.
    assert_eq!(names_in(&dir), [".big.bin.part", ".big.bin.part.info"]);
    let kept = std::fs::metadata(dir.join(".big.bin.part")).unwrap().len();
    assert!(
        kept >= cut_at && kept < SIZE as u64,
        "kept {kept}, cut at {cut_at}"
    );

    a.connect(&b.key(), common::addr(&b), T).await.unwrap();
    b.wait_connected(&a.key(), T).await.unwrap();
    let report = a
        .send_file(&b.key(), &path, SendOptions::default())
        .await
        .unwrap();
    // The receiver's task may have written a chunk more after `kept` was measured,
    // before it saw the connection end.
    assert!(
        report.resumed_from >= kept && report.resumed_from < SIZE as u64,
        "{report:?}, kept {kept}"
    );
    assert_eq!(report.sent, SIZE as u64 - report.resumed_from);
    let share = report.sent as f64 / SIZE as f64;
    // 40%, less what the receiver read between its hook and the end of the connection
    // (at most its 256 KiB window plus a chunk: 4% of 8 MiB).
    eprintln!(
        "cut at {cut_at}, kept {kept}, resumed from {}: second run sent {} bytes, {share:.3} of the file",
        report.resumed_from, report.sent
    );
    assert!(
        (0.35..=0.40).contains(&share),
        "second run sent {share:.3} of the file"
    );
    assert!(!report.restarted);
    assert_eq!(
        sha(&std::fs::read(dir.join("big.bin")).unwrap()),
        sha(&bytes)
    );
    assert_eq!(names_in(&dir), ["big.bin"]);
}

/// Writes a partial copy of `bytes` (`len` bytes of it) and its sidecar for the file
/// `name` of `size` bytes and hash `sha` (docs/protocol.md: the sidecar's format).
fn plant_partial(dir: &Path, name: &str, part: &[u8], size: usize, sha: &[u8; 32]) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(dir.join(format!(".{name}.part")), part).unwrap();
    let info = dir.join(format!(".{name}.part.info"));
    let text = format!(
        "peernet-file-part 1\nname {name}\nsize {size}\nsha256 {}\n",
        hex(sha)
    );
    std::fs::write(&info, text).unwrap();
    std::fs::set_permissions(&info, std::fs::Permissions::from_mode(0o644)).unwrap();
}

/// A partial copy whose sidecar names this file but whose bytes were tampered with:
/// the whole-file hash catches it, the receiver throws the copy away, and the sender
/// sends the whole file again (once); the file that lands is the right one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_partial_file_is_detected_and_not_kept() {
    const SIZE: usize = 300_000;
    let (a, b) = pair().await;
    let dir = inbox("in");
    b.expose_files(&dir, ReceiveOptions::default()).unwrap();
    let bytes = content(SIZE, 3);
    let mut half = bytes[..SIZE / 2].to_vec();
    half[1234] ^= 0x40;
    plant_partial(&dir, "t.bin", &half, SIZE, &sha(&bytes));
    let (_src, path) = source("src", "t.bin", &bytes);
    let report = a
        .send_file(&b.key(), &path, SendOptions::default())
        .await
        .unwrap();
    assert!(report.restarted, "{report:?}");
    assert_eq!(report.resumed_from, 0);
    assert_eq!(report.sent, (SIZE - SIZE / 2 + SIZE) as u64);
    assert_eq!(std::fs::read(dir.join("t.bin")).unwrap(), bytes);
    assert_eq!(names_in(&dir), ["t.bin"]);
}

/// A partial file whose sidecar names another file (another hash, another size) is
/// not resumed: everything is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_file_of_another_file_is_not_resumed() {
    const SIZE: usize = 200_000;
    let (a, b) = pair().await;
    let dir = inbox("in");
    b.expose_files(&dir, ReceiveOptions::default()).unwrap();
    let bytes = content(SIZE, 4);
    let (_src, path) = source("src", "m.bin", &bytes);
    plant_partial(&dir, "m.bin", &bytes[..1000], SIZE, &[9; 32]);
    let r = a
        .send_file(&b.key(), &path, SendOptions::default())
        .await
        .unwrap();
    assert_eq!(
        (r.resumed_from, r.sent, r.restarted),
        (0, SIZE as u64, false)
    );
    plant_partial(&dir, "n.bin", &bytes[..1000], SIZE + 1, &sha(&bytes));
    let r = a
        .send_file(
            &b.key(),
            &path,
            SendOptions {
                name: Some("n.bin".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((r.resumed_from, r.sent), (0, SIZE as u64));
    assert_eq!(std::fs::read(dir.join("n.bin")).unwrap(), bytes);
    assert_eq!(names_in(&dir), ["m.bin", "n.bin"]);
}

/// Bad names fail before any traffic: to a key that is not even trusted (any network
/// step would fail with `UntrustedPeer`), the error is the name's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_names_are_refused_before_any_traffic() {
    let a = common::node("a").await;
    let stranger = Key::from_bytes([7; 32]);
    let (_src, path) = source("src", "ok.bin", b"x");
    let long = "x".repeat(MAX_FILE_NAME + 1);
    for bad in [
        "", ".", "..", "../x", "a/b", "a\\b", ".hidden", "a\nb", &long,
    ] {
        let err = a
            .send_file(
                &stranger,
                &path,
                SendOptions {
                    name: Some(bad.to_owned()),
                    ..Default::default()
                },
            )
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{bad:?}: {err:?}");
    }
    let (d, hidden) = source("src", ".secret", b"x");
    let err = a
        .send_file(&stranger, &hidden, SendOptions::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("starts with '.'"), "{err}");
    // A path that is not a file: refused before any traffic too.
    let err = a
        .send_file(&stranger, d.as_path(), SendOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
}

/// Writes a raw header on a fresh stream and returns the receiver's first reply
/// (status byte, value, message).
async fn raw_reply(a: &Node, b: &Node, header: &[u8]) -> (u8, u64, String) {
    let mut s = a.open_stream(&b.key(), FILE_STREAM).await.unwrap();
    s.write_all(header).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    // Longer than the receiver's 5 s wait for a busy name.
    let deadline = tokio::time::Instant::now() + 2 * T;
    loop {
        let n = tokio::time::timeout_at(deadline, s.read(&mut buf))
            .await
            .expect("no reply")
            .unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        if got.len() >= 11 && got.len() >= 11 + usize::from(u16::from_be_bytes([got[9], got[10]])) {
            break;
        }
    }
    assert!(got.len() >= 11, "short reply {got:?}");
    let value = u64::from_be_bytes(got[1..9].try_into().unwrap());
    (
        got[0],
        value,
        String::from_utf8_lossy(&got[11..]).into_owned(),
    )
}

fn header(name: &[u8], name_len: u16, size: u64, sha: &[u8; 32]) -> Vec<u8> {
    let mut h = b"PNF1".to_vec();
    h.extend_from_slice(&name_len.to_be_bytes());
    h.extend_from_slice(name);
    h.extend_from_slice(&size.to_be_bytes());
    h.extend_from_slice(sha);
    h
}

/// A hostile sender's headers: an over-long name is refused from its length alone,
/// a path is refused, a size over the cap is refused, and a file whose data does not
/// match its hash leaves nothing at all in the directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_headers_are_refused_and_a_bad_hash_keeps_nothing() {
    let (a, b) = pair().await;
    let dir = inbox("in");
    b.expose_files(
        &dir,
        ReceiveOptions {
            max_size: 1000,
            ..Default::default()
        },
    )
    .unwrap();
    // A 5000-byte name announced: refused before it is read (only 6 bytes sent).
    let (st, _, msg) = raw_reply(&a, &b, &header(b"", 5000, 1, &[0; 32])[..6]).await;
    assert_eq!(st, 17, "{msg}");
    assert!(msg.contains("5000"), "{msg}");
    let (st, _, msg) = raw_reply(&a, &b, &header(b"../evil", 7, 1, &[0; 32])).await;
    assert_eq!(st, 17, "{msg}");
    let (st, limit, msg) = raw_reply(&a, &b, &header(b"big", 3, 1001, &[0; 32])).await;
    assert_eq!((st, limit), (18, 1000), "{msg}");
    assert!(msg.contains("limit of 1000 bytes"), "{msg}");
    assert!(names_in(&dir).is_empty(), "{:?}", names_in(&dir));

    // Announced hash of other bytes: a bad-hash answer and an empty directory.
    let mut s = a.open_stream(&b.key(), FILE_STREAM).await.unwrap();
    s.write_all(&header(b"liar", 4, 5, &sha(b"hello")))
        .await
        .unwrap();
    let mut ready = [0u8; 11];
    read_full(&mut s, &mut ready).await;
    assert_eq!((ready[0], &ready[1..9]), (0, &[0u8; 8][..]));
    s.write_all(b"jello").await.unwrap();
    s.finish().unwrap();
    let mut last = [0u8; 11];
    read_full(&mut s, &mut last).await;
    assert_eq!(last[0], 2, "not a bad-hash answer");
    assert!(names_in(&dir).is_empty(), "{:?}", names_in(&dir));

    // More data than announced: the stream is reset (code 256 + 22) while the data
    // flows, with the reason; the file is not put in place.
    let mut s = a.open_stream(&b.key(), FILE_STREAM).await.unwrap();
    s.write_all(&header(b"extra", 5, 3, &sha(b"abc")))
        .await
        .unwrap();
    read_full(&mut s, &mut ready).await;
    assert_eq!(ready[0], 0);
    s.write_all(b"abcd").await.unwrap();
    s.finish().unwrap();
    let mut buf = [0u8; 16];
    match tokio::time::timeout(T, s.read(&mut buf))
        .await
        .expect("no reset")
    {
        Err(Error::StreamReset { code: 278, reason }) => {
            assert!(reason.contains("more than the 3 bytes"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert!(!dir.join("extra").exists());

    // Through the API: the size cap names both sizes.
    let (_src, path) = source("src", "big.bin", &content(2000, 5));
    let err = a
        .send_file(&b.key(), &path, SendOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::HandlerFailed(_)), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("2000 bytes") && text.contains("1000 bytes"),
        "{text}"
    );
}

async fn read_full(s: &mut peernet_core::Stream, buf: &mut [u8]) {
    let mut got = 0;
    while got < buf.len() {
        let n = tokio::time::timeout(T, s.read(&mut buf[got..]))
            .await
            .expect("no answer")
            .unwrap();
        assert!(n > 0, "the stream ended after {got} bytes");
        got += n;
    }
}

/// An existing file is not replaced unless the receiver allows it; no receiver at all
/// is `NoSuchHandler`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_files_stay_unless_overwrite_and_no_receiver_is_named() {
    let (a, b) = pair().await;
    let (_src, path) = source("src", "same.txt", b"new content");
    let err = a
        .send_file(&b.key(), &path, SendOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::NoSuchHandler(n) if n == FILE_STREAM),
        "{err:?}"
    );
    let dir = inbox("in");
    std::fs::write(dir.join("same.txt"), b"old").unwrap();
    b.expose_files(&dir, ReceiveOptions::default()).unwrap();
    let err = a
        .send_file(&b.key(), &path, SendOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AlreadyExists(_)), "{err:?}");
    assert_eq!(std::fs::read(dir.join("same.txt")).unwrap(), b"old");
    assert_eq!(names_in(&dir), ["same.txt"]);
    b.revoke_files().unwrap();
    b.expose_files(
        &dir,
        ReceiveOptions {
            overwrite: true,
            ..Default::default()
        },
    )
    .unwrap();
    a.send_file(&b.key(), &path, SendOptions::default())
        .await
        .unwrap();
    assert_eq!(std::fs::read(dir.join("same.txt")).unwrap(), b"new content");
}

/// Two transfers of one name never write one partial file: the second waits for the
/// first to end (here it never does) and is then refused as busy; once the first is
/// gone, the same header is taken and resumes from what the first wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_transfer_per_name_at_a_time() {
    let (a, b) = pair().await;
    let dir = inbox("in");
    let (wrote_tx, mut wrote_rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
    b.expose_files(
        &dir,
        ReceiveOptions {
            progress: Some(Arc::new(move |_: &Key, _: &str, done, _| {
                let _ = wrote_tx.send(done);
            })),
            ..Default::default()
        },
    )
    .unwrap();
    let h = header(b"one", 3, 10, &sha(b"0123456789"));
    let mut first = a.open_stream(&b.key(), FILE_STREAM).await.unwrap();
    first.write_all(&h).await.unwrap();
    let mut ready = [0u8; 11];
    read_full(&mut first, &mut ready).await;
    assert_eq!(ready[0], 0);
    first.write_all(b"0123").await.unwrap();
    // The receiver reports 0 (ready) and then 4 (the bytes are on disk).
    let until_four = async { while wrote_rx.recv().await != Some(4) {} };
    tokio::time::timeout(T, until_four)
        .await
        .expect("4 bytes never written");

    let started = tokio::time::Instant::now();
    let (st, _, msg) = raw_reply(&a, &b, &h).await;
    assert_eq!(st, 20, "{msg}");
    assert!(msg.contains("another transfer"), "{msg}");
    // It waited for the first to end (5 s) before refusing.
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );

    drop(first); // reset: the first transfer ends, its 4 bytes kept
    let (st, offset, msg) = raw_reply(&a, &b, &h).await;
    assert_eq!((st, offset), (0, 4), "{msg}");
}
