//! Big-endian byte encoding shared by the signing bytes of protocol §3–§6 and the store's binary
//! records: one writer and one reader, so every format is built from the same few primitives.

use crate::crypto::{Hash, PublicKey, Signature};
use crate::error::{ChainError, Result};

/// Appends big-endian fields to a byte vector.
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn with_capacity(n: usize) -> Self {
        Self { buf: Vec::with_capacity(n) }
    }
    /// A domain tag: ASCII bytes with no length prefix.
    pub fn tag(&mut self, tag: &str) -> &mut Self {
        self.buf.extend_from_slice(tag.as_bytes());
        self
    }
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn raw(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }
    /// `str(x)` of the SPEC: `u16 len || bytes`. The caller has checked the length limit.
    pub fn str16(&mut self, s: &str) -> &mut Self {
        let len = u16::try_from(s.len()).expect("str16 longer than u16: limits are checked before encoding");
        self.u16(len).raw(s.as_bytes())
    }
    /// `u32 len || bytes`.
    pub fn bytes32(&mut self, b: &[u8]) -> &mut Self {
        let len = u32::try_from(b.len()).expect("field longer than u32");
        self.u32(len).raw(b)
    }
    pub fn hash(&mut self, h: &Hash) -> &mut Self {
        self.raw(&h.0)
    }
    pub fn key(&mut self, k: &PublicKey) -> &mut Self {
        self.raw(&k.0)
    }
    pub fn sig(&mut self, s: &Signature) -> &mut Self {
        self.raw(&s.0)
    }
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads big-endian fields, failing with `ChainError::Decode` on truncated or surplus input.
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }
    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.data.len())
            .ok_or_else(|| ChainError::Decode(format!("truncated: wanted {n} bytes at offset {}", self.pos)))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    pub fn expect_tag(&mut self, tag: &str) -> Result<()> {
        if self.take(tag.len())? != tag.as_bytes() {
            return Err(ChainError::Decode(format!("expected tag {tag:?}")));
        }
        Ok(())
    }
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        Ok(self.take(N)?.try_into().expect("take returned N bytes"))
    }
    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    pub fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    pub fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    pub fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    pub fn hash(&mut self) -> Result<Hash> {
        self.array().map(Hash)
    }
    pub fn key(&mut self) -> Result<PublicKey> {
        self.array().map(PublicKey)
    }
    pub fn sig(&mut self) -> Result<Signature> {
        self.array().map(Signature)
    }
    pub fn str16(&mut self) -> Result<String> {
        let n = self.u16()? as usize;
        utf8(self.take(n)?)
    }
    pub fn bytes32(&mut self) -> Result<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    pub fn string32(&mut self) -> Result<String> {
        utf8(self.bytes32()?)
    }
    pub fn is_empty(&self) -> bool {
        self.pos == self.data.len()
    }
    pub fn finish(self) -> Result<()> {
        if !self.is_empty() {
            return Err(ChainError::Decode(format!("{} trailing bytes", self.data.len() - self.pos)));
        }
        Ok(())
    }
}

fn utf8(b: &[u8]) -> Result<String> {
    String::from_utf8(b.to_vec()).map_err(|e| ChainError::Decode(format!("invalid UTF-8: {e}")))
}
