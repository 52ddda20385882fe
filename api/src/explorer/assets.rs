//! The explorer's stylesheet and scripts, embedded in the binary and written inline into the
//! pages (protocol §7.2: no outside resources), and the Content-Security-Policy that allows
//! exactly them.
//!
//! The policy names each inline block by its SHA-256, so a script that escaping somehow let
//! through would still not run, and the pages may load nothing from anywhere else: scripts talk
//! only to this node (`connect-src 'self'`).

use std::sync::LazyLock;

use ordo_chain::crypto::sha256;

/// The one stylesheet, written into every page's `<style>`.
pub const STYLE: &str = include_str!("../../templates/explorer.css");

/// The dashboard's live updates: the event stream, the live/stale indicator, the polling
/// fallback, the chart redraw.
pub const DASHBOARD_JS: &str = include_str!("../../templates/dashboard.js");

/// A pending transaction's page waits for the commit and reloads.
pub const TX_PENDING_JS: &str = include_str!("../../templates/tx_pending.js");

/// The `Content-Security-Policy` every explorer page is served with.
pub fn content_security_policy() -> &'static str {
    static POLICY: LazyLock<String> = LazyLock::new(|| {
        format!(
            "default-src 'none'; script-src {} {}; style-src {}; connect-src 'self'; img-src 'self'; \
             form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
            source_hash(DASHBOARD_JS),
            source_hash(TX_PENDING_JS),
            source_hash(STYLE),
        )
    });
    &POLICY
}

/// A CSP hash source: `'sha256-<base64 of the SHA-256 of the inline text>'`.
fn source_hash(inline: &str) -> String {
    format!("'sha256-{}'", base64(sha256(inline.as_bytes()).as_bytes()))
}

/// Standard base64 with padding (RFC 4648 §4), as CSP hash sources are written.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (plain, encoded) in
            [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE=")]
        {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain:?}");
        }
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn policy_names_every_inline_block_and_nothing_outside() {
        let policy = content_security_policy();
        // SHA-256 of "" is the well-known e3b0c442...; its base64 form:
        assert_eq!(source_hash(""), "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='");
        for inline in [STYLE, DASHBOARD_JS, TX_PENDING_JS] {
            assert!(policy.contains(&source_hash(inline)));
        }
        assert!(!policy.contains("http"), "{policy}");
        assert!(!policy.contains("unsafe"), "{policy}");
    }
}
