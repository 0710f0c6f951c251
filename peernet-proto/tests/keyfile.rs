//! Identity keyfile (spec 7): corrupt variants and key helpers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use peernet_proto::keyfile::{decode, encode, generate_private, public_from_private, KEYFILE_LEN};
use peernet_proto::ProtoError;

fn reason(bytes: &[u8]) -> String {
    match decode(bytes) {
        Err(ProtoError::KeyFile(r)) => r,
        other => panic!("expected KeyFile error, got {:?}", other.map(|(_, k)| k)),
    }
}

#[test]
fn corrupt_variants_are_rejected() {
    let private = generate_private().unwrap();
    let good = encode(&private);
    assert_eq!(good.len(), KEYFILE_LEN);
    decode(&good).unwrap();

    assert!(reason(&[]).contains("length"));
    assert!(reason(&good[..70]).contains("length"));
    let mut long = good.to_vec();
    long.push(0);
    assert!(reason(&long).contains("length"));

    let mut magic = good;
    magic[0] = b'X';
    assert!(reason(&magic).contains("magic"));

    let mut version = good;
    version[4] = 0x01;
    assert!(reason(&version).contains("version"));

    for at in [5, 38] {
        let mut len_byte = good;
        len_byte[at] = 0x21;
        assert!(reason(&len_byte).contains("length byte"));
    }

    let mut public = good;
    public[6] ^= 1;
    assert!(reason(&public).contains("does not match"));
    let mut private_flip = good;
    private_flip[50] ^= 0x01;
    assert!(reason(&private_flip).contains("does not match"));
    // Bits that X25519 clamps away (the 3 low bits of the first private byte, the 2 high
    // bits of the last) cannot be checked: the effective key is unchanged.
    let mut clamped_bit = good;
    clamped_bit[70] ^= 0x40;
    assert_eq!(decode(&clamped_bit).unwrap().1, decode(&good).unwrap().1);
}

#[test]
fn errors_never_contain_key_material() {
    let private = [0x5c; 32];
    let mut bad = encode(&private);
    bad[6] ^= 1;
    let msg = format!(
        "{} {:?}",
        decode(&bad).unwrap_err(),
        decode(&bad).unwrap_err()
    );
    assert!(!msg.contains("5c5c") && !msg.contains("92, 92"), "{msg}");
}

#[test]
fn public_from_private_clamps() {
    // X25519 ignores the clamped bits: these two privates give the same public.
    let mut a = [0x11; 32];
    let mut b = a;
    a[0] |= 0x07;
    b[0] &= !0x07;
    assert_eq!(public_from_private(&a), public_from_private(&b));
    // The keyfile stores the private key as given (unclamped).
    assert_eq!(&encode(&a)[39..], &a);
}
