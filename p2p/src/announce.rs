//! Signed peer announcements: how a validator tells the committee where it listens, so that a node
//! started with one bootstrap address learns all the others.
//!
//! Signing bytes: `"ordo/p2p/announce/v1" || str(chain_id) || u64 seq || u16 count || str(addr)*`.
//! Wire form: `validator(32) || u64 seq || u16 count || str(addr)* || signature(64)`.
//! `str(x)` is `u16 len || UTF-8 bytes` and integers are big-endian, as in SPEC's conventions.
//! `seq` is the sender's wall clock in milliseconds, forced strictly increasing, so a receiver keeps
//! the highest one seen per validator and ignores anything not newer (a replayed or stale record).

use ordo_chain::{Keypair, PublicKey, Signature};

use crate::error::P2pError;

/// The domain tag of announcement signatures.
pub const ANNOUNCE_TAG: &[u8] = b"ordo/p2p/announce/v1";
/// At most this many addresses in one announcement.
pub const ANNOUNCE_MAX_ADDRS: usize = 16;
/// At most this many bytes in one address string.
pub const ANNOUNCE_ADDR_MAX_BYTES: usize = 256;

/// A validator's signed statement of its listen addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    pub validator: PublicKey,
    pub seq: u64,
    pub addrs: Vec<String>,
    pub signature: Signature,
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_addrs(out: &mut Vec<u8>, addrs: &[String]) {
    out.extend_from_slice(&(addrs.len() as u16).to_be_bytes());
    for a in addrs {
        put_str(out, a);
    }
}

/// The bytes a validator signs to announce `addrs` under `seq` on `chain_id`.
pub fn signing_bytes(chain_id: &str, seq: u64, addrs: &[String]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + addrs.iter().map(|a| a.len() + 2).sum::<usize>());
    out.extend_from_slice(ANNOUNCE_TAG);
    put_str(&mut out, chain_id);
    out.extend_from_slice(&seq.to_be_bytes());
    put_addrs(&mut out, addrs);
    out
}

impl Announcement {
    /// Signs an announcement. Addresses beyond the limits are dropped here, so that what is sent
    /// always decodes on the other side.
    pub fn sign(key: &Keypair, chain_id: &str, seq: u64, addrs: &[String]) -> Self {
        let addrs: Vec<String> =
            addrs.iter().filter(|a| a.len() <= ANNOUNCE_ADDR_MAX_BYTES).take(ANNOUNCE_MAX_ADDRS).cloned().collect();
        let signature = key.sign(&signing_bytes(chain_id, seq, &addrs));
        Announcement { validator: key.public(), seq, addrs, signature }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 + 8 + 2 + 64 + self.addrs.iter().map(|a| a.len() + 2).sum::<usize>());
        out.extend_from_slice(self.validator.as_bytes());
        out.extend_from_slice(&self.seq.to_be_bytes());
        put_addrs(&mut out, &self.addrs);
        out.extend_from_slice(self.signature.as_bytes());
        out
    }

    /// Parses the wire form strictly: limits enforced, no trailing bytes. Does not verify.
    pub fn decode(bytes: &[u8]) -> Result<Self, P2pError> {
        let mut r = Reader { bytes, pos: 0 };
        let validator = PublicKey(r.array::<32>()?);
        let seq = u64::from_be_bytes(r.array::<8>()?);
        let count = u16::from_be_bytes(r.array::<2>()?) as usize;
        if count > ANNOUNCE_MAX_ADDRS {
            return Err(P2pError::BadAnnouncement("too many addresses"));
        }
        let mut addrs = Vec::with_capacity(count);
        for _ in 0..count {
            let len = u16::from_be_bytes(r.array::<2>()?) as usize;
            if len > ANNOUNCE_ADDR_MAX_BYTES {
                return Err(P2pError::BadAnnouncement("address too long"));
            }
            let raw = r.take(len)?;
            let s = std::str::from_utf8(raw).map_err(|_| P2pError::BadAnnouncement("address is not UTF-8"))?;
            addrs.push(s.to_string());
        }
        let signature = Signature(r.array::<64>()?);
        if r.pos != bytes.len() {
            return Err(P2pError::BadAnnouncement("trailing bytes"));
        }
        Ok(Announcement { validator, seq, addrs, signature })
    }

    /// Strict ed25519 verification (protocol §1) against the announced validator key; the caller
    /// checks that the key belongs to the committee.
    pub fn verify(&self, chain_id: &str) -> Result<(), P2pError> {
        self.validator
            .verify_strict(&signing_bytes(chain_id, self.seq, &self.addrs), &self.signature)
            .map_err(|_| P2pError::AnnouncementSignature(self.validator))
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], P2pError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or(P2pError::BadAnnouncement("truncated"))?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], P2pError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Keypair, Announcement) {
        let k = Keypair::from_seed([5; 32]);
        let a = Announcement::sign(
            &k,
            "ordo-test",
            42,
            &["/ip4/127.0.0.1/tcp/7000".into(), "/ip4/10.0.0.1/tcp/7000".into()],
        );
        (k, a)
    }

    #[test]
    fn roundtrip_and_verify() {
        let (k, a) = sample();
        let b = Announcement::decode(&a.encode()).unwrap();
        assert_eq!(a, b);
        assert_eq!(b.validator, k.public());
        b.verify("ordo-test").unwrap();
    }

    #[test]
    fn signing_bytes_layout() {
        let bytes = signing_bytes("ab", 1, &["x".into()]);
        let mut expected = b"ordo/p2p/announce/v1".to_vec();
        expected.extend_from_slice(&[0, 2, b'a', b'b']);
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
        expected.extend_from_slice(&[0, 1, 0, 1, b'x']);
        assert_eq!(bytes, expected);
    }

    #[test]
    fn wrong_chain_or_tampering_fails() {
        let (_, a) = sample();
        assert_eq!(a.verify("other-chain"), Err(P2pError::AnnouncementSignature(a.validator)));
        let mut t = a.clone();
        t.seq += 1;
        assert!(t.verify("ordo-test").is_err());
        let mut t = a.clone();
        t.addrs[0] = "/ip4/6.6.6.6/tcp/7000".into();
        assert!(t.verify("ordo-test").is_err());
        let mut t = a;
        t.validator = Keypair::from_seed([6; 32]).public();
        assert!(t.verify("ordo-test").is_err());
    }

    #[test]
    fn malformed_input_is_refused() {
        let (_, a) = sample();
        let bytes = a.encode();
        assert_eq!(Announcement::decode(&bytes[..bytes.len() - 1]), Err(P2pError::BadAnnouncement("truncated")));
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(Announcement::decode(&long), Err(P2pError::BadAnnouncement("trailing bytes")));
        let mut many = bytes[..40].to_vec();
        many.extend_from_slice(&(ANNOUNCE_MAX_ADDRS as u16 + 1).to_be_bytes());
        assert_eq!(Announcement::decode(&many), Err(P2pError::BadAnnouncement("too many addresses")));
        assert_eq!(Announcement::decode(&[]), Err(P2pError::BadAnnouncement("truncated")));
    }
}
