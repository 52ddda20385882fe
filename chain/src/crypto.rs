//! Hashes, keys and signatures: the fixed-size byte strings of protocol §1, their hex JSON form, and
//! strict ed25519 verification, singly and in batches.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use curve25519_dalek::constants::EIGHT_TORSION;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::error::ChainError;

/// Decodes exactly `N` bytes from lowercase or uppercase hex, naming the field on failure.
pub fn decode_hex<const N: usize>(field: &'static str, s: &str) -> Result<[u8; N], ChainError> {
    if s.len() != N * 2 {
        return Err(ChainError::BadHex {
            field,
            reason: format!("expected {} hex characters, got {}", N * 2, s.len()),
        });
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).map_err(|e| ChainError::BadHex { field, reason: e.to_string() })?;
    Ok(out)
}

/// Writes `bytes` as lowercase hex into `out` (exactly twice as long) and returns it as text.
/// The JSON of every block and API answer is mostly hashes, keys and signatures: this writes
/// them with a table and no allocation, where `hex::encode` builds a `String` one `char` at a
/// time (2-4% of a node serving blocks, by the issue-11 profile).
fn hex_into<'a>(bytes: &[u8], out: &'a mut [u8]) -> &'a str {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    assert_eq!(out.len(), bytes.len() * 2, "hex needs two characters per byte");
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0x0f)];
    }
    std::str::from_utf8(out).expect("hex digits are ASCII")
}

macro_rules! byte_newtype {
    ($(#[$meta:meta])* $name:ident, $len:expr, $field:expr) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            pub const LEN: usize = $len;

            /// Parses the lowercase-hex form used in JSON.
            pub fn from_hex(s: &str) -> Result<Self, ChainError> {
                decode_hex::<$len>($field, s).map(Self)
            }

            pub fn to_hex(&self) -> String {
                self.with_hex(str::to_owned)
            }

            /// Calls `f` with the lowercase hex form, built on the stack.
            pub fn with_hex<R>(&self, f: impl FnOnce(&str) -> R) -> R {
                let mut buf = [0u8; $len * 2];
                f(hex_into(&self.0, &mut buf))
            }

            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.with_hex(|h| f.write_str(h))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // Short enough for logs, long enough to tell values apart.
                self.with_hex(|h| write!(f, "{}({}..)", stringify!($name), &h[..12]))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    self.with_hex(|h| s.serialize_str(h))
                } else {
                    s.serialize_bytes(&self.0)
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                if d.is_human_readable() {
                    let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                    Self::from_hex(&s).map_err(D::Error::custom)
                } else {
                    let v = <Vec<u8>>::deserialize(d)?;
                    let arr: [u8; $len] = v
                        .try_into()
                        .map_err(|_| D::Error::custom(concat!("wrong length for ", $field)))?;
                    Ok(Self(arr))
                }
            }
        }
    };
}

byte_newtype!(
    /// A SHA-256 digest: tx ids, Merkle roots, batch digests, state and block hashes.
    Hash, 32, "hash"
);
byte_newtype!(
    /// An ed25519 public key in its 32-byte compressed form: a client or a validator.
    PublicKey, 32, "public key"
);
byte_newtype!(
    /// An ed25519 signature, 64 bytes (R || S).
    Signature, 64, "signature"
);

impl Hash {
    pub const ZERO: Hash = Hash([0u8; 32]);
}

impl PublicKey {
    pub const ZERO: PublicKey = PublicKey([0u8; 32]);
}

/// `H(x)`: SHA-256 of one byte string.
pub fn sha256(data: &[u8]) -> Hash {
    Hash(Sha256::digest(data).into())
}

/// SHA-256 over the concatenation of several parts, without building the concatenation.
pub fn sha256_parts(parts: &[&[u8]]) -> Hash {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    Hash(h.finalize().into())
}

/// A signing key with its public half, as held by a client or a validator.
#[derive(Clone)]
pub struct Keypair {
    signing: SigningKey,
}

impl Keypair {
    /// Draws a fresh key from the operating system's randomness.
    pub fn generate() -> Self {
        Self { signing: SigningKey::generate(&mut rand::rngs::OsRng) }
    }

    /// Rebuilds a key from its 32-byte seed (the `secret_key` of a key file).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self { signing: SigningKey::from_bytes(&seed) }
    }

    pub fn seed(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.signing.verifying_key().to_bytes())
    }

    pub fn sign(&self, msg: &[u8]) -> Signature {
        Signature(self.signing.sign(msg).to_bytes())
    }
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret half.
        write!(f, "Keypair({})", self.public())
    }
}

/// Why a signature did not verify; kept coarse because the caller names the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SigError {
    #[error("public key is not a valid curve point")]
    BadKey,
    #[error("public key has small order")]
    WeakKey,
    #[error("signature does not verify")]
    Invalid,
}

/// Signatures this process has checked so far, in batches and singly: how a node measures that
/// it verifies each transaction once (`ordo bench` reports the committee's checks per committed
/// transaction). One relaxed atomic add per batch or single check.
static CHECKED_IN_BATCHES: AtomicU64 = AtomicU64::new(0);
static CHECKED_SINGLY: AtomicU64 = AtomicU64::new(0);

/// How many signatures this process has checked: `(in batches, singly)`. A batch that fails is
/// counted in both, since each of its items is then checked again alone.
pub fn signatures_checked() -> (u64, u64) {
    (CHECKED_IN_BATCHES.load(Ordering::Relaxed), CHECKED_SINGLY.load(Ordering::Relaxed))
}

/// Senders' keys already decompressed and checked. Decompressing a point is a field
/// exponentiation, about a quarter of a batch verification's cost per signature, and a busy
/// consortium has far fewer senders than transactions. Only keys that passed every check are
/// kept, so a bad key is refused each time and cannot take a place; the bound
/// ([`crate::limits::VERIFYING_KEY_CACHE_MAX`]) keeps a flood of fresh keys from growing it.
fn verifying_keys() -> &'static quick_cache::sync::Cache<[u8; 32], VerifyingKey> {
    static CACHE: OnceLock<quick_cache::sync::Cache<[u8; 32], VerifyingKey>> = OnceLock::new();
    CACHE.get_or_init(|| quick_cache::sync::Cache::new(crate::limits::VERIFYING_KEY_CACHE_MAX))
}

impl PublicKey {
    /// Decompresses the key and rejects small-order ("weak") keys, as `verify_strict` does.
    /// Keys seen recently come from a bounded cache, decompressed once.
    pub fn to_verifying_key(&self) -> Result<VerifyingKey, SigError> {
        if let Some(vk) = verifying_keys().get(&self.0) {
            return Ok(vk);
        }
        let vk = Self::decompress(&self.0)?;
        verifying_keys().insert(self.0, vk);
        Ok(vk)
    }

    fn decompress(bytes: &[u8; 32]) -> Result<VerifyingKey, SigError> {
        let vk = VerifyingKey::from_bytes(bytes).map_err(|_| SigError::BadKey)?;
        if vk.is_weak() {
            return Err(SigError::WeakKey);
        }
        Ok(vk)
    }

    /// Strict verification (protocol §1): rejects small-order keys, small-order R and non-canonical S.
    pub fn verify_strict(&self, msg: &[u8], sig: &Signature) -> Result<(), SigError> {
        CHECKED_SINGLY.fetch_add(1, Ordering::Relaxed);
        let vk = self.to_verifying_key()?;
        let sig = ed25519_dalek::Signature::from_bytes(&sig.0);
        vk.verify_strict(msg, &sig).map_err(|_| SigError::Invalid)
    }
}

/// The encodings of the eight small-order points, canonical and not, with either sign bit.
/// `verify_strict` rejects a signature whose R is one of them; the batch path checks this list
/// first so that batch and single verification accept exactly the same signatures.
fn small_order_encodings() -> &'static Vec<[u8; 32]> {
    static LIST: OnceLock<Vec<[u8; 32]>> = OnceLock::new();
    LIST.get_or_init(|| {
        let mut list = Vec::new();
        let mut push = |e: [u8; 32]| {
            for sign in [0u8, 0x80] {
                let mut v = e;
                v[31] = (v[31] & 0x7f) | sign;
                if !list.contains(&v) {
                    list.push(v);
                }
            }
        };
        for p in EIGHT_TORSION.iter() {
            push(p.compress().to_bytes());
        }
        // Non-canonical encodings y + p fit in 255 bits for y <= 18; of those y values, only 0 and
        // 1 are y-coordinates of small-order points (the others are ordinary points or not on
        // the curve), so these two complete the list.
        let p_minus: [u8; 32] = {
            // p = 2^255 - 19, little-endian.
            let mut b = [0xffu8; 32];
            b[0] = 0xed;
            b[31] = 0x7f;
            b
        };
        let mut p_plus_one = p_minus;
        p_plus_one[0] = 0xee;
        push(p_minus);
        push(p_plus_one);
        list
    })
}

/// True when R (the first half of the signature) encodes a point of small order.
pub fn has_small_order_r(sig: &Signature) -> bool {
    let r: &[u8] = &sig.0[..32];
    small_order_encodings().iter().any(|e| e[..] == *r)
}

/// One item of a batch verification.
pub struct SigCheck<'a> {
    pub key: &'a PublicKey,
    pub msg: &'a [u8],
    pub sig: &'a Signature,
}

/// Verifies many signatures at once with ed25519-dalek's batch equation (about twice the speed of
/// single checks). On failure it falls back to strict single checks so that the caller learns
/// which items are bad. Returns one result per item, in order.
///
/// Batch verification accepts exactly what `verify_strict` accepts: weak keys and small-order R are
/// rejected before the batch equation, and dalek's batch path rejects non-canonical S itself.
pub fn verify_batch(items: &[SigCheck<'_>]) -> Vec<Result<(), SigError>> {
    if items.is_empty() {
        return Vec::new();
    }
    CHECKED_IN_BATCHES.fetch_add(items.len() as u64, Ordering::Relaxed);
    let mut keys = Vec::with_capacity(items.len());
    let mut sigs = Vec::with_capacity(items.len());
    let mut msgs = Vec::with_capacity(items.len());
    let mut precheck_failed = false;
    for item in items {
        match item.key.to_verifying_key() {
            Ok(vk) if !has_small_order_r(item.sig) => {
                keys.push(vk);
                sigs.push(ed25519_dalek::Signature::from_bytes(&item.sig.0));
                msgs.push(item.msg);
            }
            _ => {
                precheck_failed = true;
                break;
            }
        }
    }
    if !precheck_failed && ed25519_dalek::verify_batch(&msgs, &sigs, &keys).is_ok() {
        return vec![Ok(()); items.len()];
    }
    items.iter().map(|i| i.key.verify_strict(i.msg, i.sig)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_are_counted_in_batches_and_singly() {
        let key = Keypair::from_seed([9; 32]);
        let msgs: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 10]).collect();
        let sigs: Vec<Signature> = msgs.iter().map(|m| key.sign(m)).collect();
        let public = key.public();
        let items: Vec<SigCheck<'_>> =
            msgs.iter().zip(&sigs).map(|(m, s)| SigCheck { key: &public, msg: m, sig: s }).collect();
        // Other tests run in parallel in this process: the counters only ever grow, by at least
        // what this test did.
        let (batch0, _) = signatures_checked();
        assert!(verify_batch(&items).iter().all(Result::is_ok));
        let (batch1, single1) = signatures_checked();
        assert!(batch1 >= batch0 + 5);
        assert!(public.verify_strict(&msgs[0], &sigs[0]).is_ok());
        assert!(signatures_checked().1 > single1);
        // A failing batch is checked again item by item.
        let bad = key.sign(b"something else");
        let mut items = items;
        items[2].sig = &bad;
        let (_, single2) = signatures_checked();
        assert!(verify_batch(&items)[2].is_err());
        assert!(signatures_checked().1 >= single2 + 5);
    }

    #[test]
    fn hex_roundtrip_and_errors() {
        let h = sha256(b"abc");
        assert_eq!(h.to_hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(Hash::from_hex(&h.to_hex()).unwrap(), h);
        assert!(matches!(Hash::from_hex("abcd"), Err(ChainError::BadHex { .. })));
        assert!(matches!(Hash::from_hex(&"zz".repeat(32)), Err(ChainError::BadHex { .. })));
    }

    #[test]
    fn every_hex_form_agrees_with_the_hex_crate() {
        // Every byte value, in every position of a signature.
        let mut sig = [0u8; 64];
        for start in 0..=255u8 {
            for (i, b) in sig.iter_mut().enumerate() {
                *b = start.wrapping_add(i as u8);
            }
            let s = Signature(sig);
            let want = hex::encode(sig);
            assert_eq!(s.to_hex(), want);
            assert_eq!(s.to_string(), want);
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{want}\""));
            assert_eq!(format!("{s:?}"), format!("Signature({}..)", &want[..12]));
            assert_eq!(Signature::from_hex(&want.to_uppercase()).unwrap(), s);
        }
    }

    #[test]
    fn batch_matches_single_and_names_the_bad_item() {
        let keys: Vec<Keypair> = (0..10u8).map(|i| Keypair::from_seed([i; 32])).collect();
        let msgs: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 20]).collect();
        let mut sigs: Vec<Signature> = keys.iter().zip(&msgs).map(|(k, m)| k.sign(m)).collect();
        let pks: Vec<PublicKey> = keys.iter().map(|k| k.public()).collect();
        let check = |sigs: &[Signature]| {
            let items: Vec<SigCheck> =
                (0..10).map(|i| SigCheck { key: &pks[i], msg: &msgs[i], sig: &sigs[i] }).collect();
            verify_batch(&items)
        };
        assert!(check(&sigs).iter().all(|r| r.is_ok()));
        sigs[3].0[5] ^= 1;
        let res = check(&sigs);
        assert_eq!(res.iter().filter(|r| r.is_err()).count(), 1);
        assert_eq!(res[3], Err(SigError::Invalid));
    }

    #[test]
    fn small_order_key_is_rejected() {
        // The identity point (y = 1) is a small-order key.
        let mut id = [0u8; 32];
        id[0] = 1;
        let pk = PublicKey(id);
        let sig = Signature([0u8; 64]);
        assert_eq!(pk.verify_strict(b"x", &sig), Err(SigError::WeakKey));
        let items = [SigCheck { key: &pk, msg: b"x", sig: &sig }];
        assert_eq!(verify_batch(&items), vec![Err(SigError::WeakKey)]);
    }

    #[test]
    fn the_key_cache_never_changes_an_answer() {
        let k = Keypair::from_seed([42; 32]);
        let msg = b"cached";
        let sig = k.sign(msg);
        // First use decompresses, later ones come from the cache: the same answers either way.
        for _ in 0..3 {
            assert_eq!(k.public().verify_strict(msg, &sig), Ok(()));
            assert_eq!(k.public().verify_strict(b"other", &sig), Err(SigError::Invalid));
            assert_eq!(k.public().to_verifying_key().unwrap().to_bytes(), k.public().0);
        }
        // Bad keys are refused each time and never cached.
        let mut id = [0u8; 32];
        id[0] = 1;
        // y = 2: (y² - 1) / (d·y² + 1) is not a square mod p, so no point has it.
        let mut two = [0u8; 32];
        two[0] = 2;
        let not_a_point = PublicKey(two);
        for _ in 0..3 {
            assert_eq!(PublicKey(id).to_verifying_key().err(), Some(SigError::WeakKey));
            assert_eq!(not_a_point.to_verifying_key().err(), Some(SigError::BadKey));
        }
        assert!(verifying_keys().get(&id).is_none());
        assert!(verifying_keys().get(&two).is_none());
        // Many senders: each one's answers are right whether its key was cached or not.
        let keys: Vec<Keypair> = (0..200u64).map(|i| Keypair::from_seed(sha256(&i.to_be_bytes()).0)).collect();
        for _ in 0..2 {
            for (i, k) in keys.iter().enumerate() {
                assert_eq!(k.public().verify_strict(msg, &k.sign(msg)), Ok(()));
                let other = &keys[(i + 1) % keys.len()];
                assert_eq!(k.public().verify_strict(msg, &other.sign(msg)), Err(SigError::Invalid));
            }
        }
        assert!(verifying_keys().len() <= crate::limits::VERIFYING_KEY_CACHE_MAX);
    }

    #[test]
    fn small_order_r_is_listed() {
        let mut sig = Signature([0u8; 64]);
        sig.0[0] = 1; // R = identity
        assert!(has_small_order_r(&sig));
        let k = Keypair::from_seed([7; 32]);
        assert!(!has_small_order_r(&k.sign(b"m")));
    }
}
