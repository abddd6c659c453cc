//! `mysql_native_password`: scrambles, verification, and the secret that lets the proxy log in
//! to backends as the client without knowing the cleartext password.
//!
//! The account table stores `SHA1(SHA1(password))` (stage 2). A client's scramble is
//! `SHA1(password) XOR SHA1(seed ‖ stage2)`, so with the stored stage 2 the proxy recovers
//! `SHA1(password)` (stage 1), checks it, and can answer any backend's seed with it.

use rand::RngExt;
use sha1::{Digest, Sha1};

pub const NATIVE_PLUGIN: &str = "mysql_native_password";
pub const CACHING_SHA2_PLUGIN: &str = "caching_sha2_password";
pub const SCRAMBLE_LEN: usize = 20;

/// What the proxy keeps to log in to backends as the client.
#[derive(Clone, PartialEq, Eq)]
pub enum BackendSecret {
    /// The account has no password.
    Empty,
    /// `SHA1(password)`.
    Stage1([u8; 20]),
}

impl std::fmt::Debug for BackendSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BackendSecret::Empty => "BackendSecret::Empty",
            BackendSecret::Stage1(_) => "BackendSecret::Stage1(..)",
        })
    }
}

impl BackendSecret {
    /// The secret of a cleartext password (used for the proxy's own service and monitor users).
    pub fn from_password(password: &str) -> Self {
        if password.is_empty() {
            BackendSecret::Empty
        } else {
            BackendSecret::Stage1(sha1(&[password.as_bytes()]))
        }
    }

    /// The native scramble answering `seed`.
    pub fn scramble(&self, seed: &[u8]) -> Vec<u8> {
        match self {
            BackendSecret::Empty => Vec::new(),
            BackendSecret::Stage1(stage1) => {
                let stage2 = sha1(&[stage1]);
                let mask = sha1(&[seed, &stage2]);
                xor(stage1, &mask).to_vec()
            }
        }
    }
}

fn sha1(parts: &[&[u8]]) -> [u8; 20] {
    let mut h = Sha1::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn xor(a: &[u8; 20], b: &[u8; 20]) -> [u8; 20] {
    let mut out = [0u8; 20];
    for i in 0..20 {
        out[i] = a[i] ^ b[i];
    }
    out
}

/// `SHA1(SHA1(password))`, what the account table stores; `None` for an empty password.
pub fn stage2_of(password: &str) -> Option<[u8; 20]> {
    match BackendSecret::from_password(password) {
        BackendSecret::Empty => None,
        BackendSecret::Stage1(stage1) => Some(sha1(&[&stage1])),
    }
}

/// Parses a stored native hash (`*` followed by 40 hex digits) into stage 2.
pub fn parse_native_hash(s: &str) -> Option<[u8; 20]> {
    let hex = s.strip_prefix('*')?;
    // from_str_radix alone would take a sign ("+A") as a digit pair.
    if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 20];
    for (i, chunk) in hex.as_bytes().chunks(2).enumerate() {
        let s = std::str::from_utf8(chunk).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

/// Checks a client's native `response` to `seed` against the stored `stage2` (`None` for an
/// account without password). On success returns the secret for backend logins.
pub fn verify_native(
    response: &[u8],
    seed: &[u8],
    stage2: Option<&[u8; 20]>,
) -> Option<BackendSecret> {
    match stage2 {
        None => response.is_empty().then_some(BackendSecret::Empty),
        Some(stage2) => {
            let response: &[u8; 20] = response.try_into().ok()?;
            let mask = sha1(&[seed, stage2]);
            let stage1 = xor(response, &mask);
            (sha1(&[&stage1]) == *stage2).then_some(BackendSecret::Stage1(stage1))
        }
    }
}

/// A fresh 20-byte seed of printable characters, as servers send.
pub fn new_seed() -> [u8; SCRAMBLE_LEN] {
    let mut rng = rand::rng();
    let mut seed = [0u8; SCRAMBLE_LEN];
    for b in &mut seed {
        *b = rng.random_range(0x21u8..0x7F);
    }
    seed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_hash() {
        // PASSWORD('app') in MariaDB.
        let stage2 = parse_native_hash("*5BCB3E6AC345B435C7C2E6B7949A04CE6F6563D3").unwrap();
        let BackendSecret::Stage1(stage1) = BackendSecret::from_password("app") else {
            panic!()
        };
        assert_eq!(sha1(&[&stage1]), stage2);
    }

    #[test]
    fn verify_recovers_stage1() {
        let secret = BackendSecret::from_password("s3cret");
        let BackendSecret::Stage1(stage1) = &secret else {
            panic!()
        };
        let stage2 = sha1(&[stage1]);
        let seed = new_seed();
        let response = secret.scramble(&seed);
        assert_eq!(
            verify_native(&response, &seed, Some(&stage2)),
            Some(secret.clone())
        );
        let wrong = BackendSecret::from_password("nope").scramble(&seed);
        assert_eq!(verify_native(&wrong, &seed, Some(&stage2)), None);
        assert_eq!(verify_native(&[], &seed, Some(&stage2)), None);
        assert_eq!(verify_native(&[], &seed, None), Some(BackendSecret::Empty));
        assert_eq!(verify_native(&response, &seed, None), None);
    }

    #[test]
    fn bad_hashes() {
        assert!(parse_native_hash("").is_none());
        assert!(parse_native_hash("*12").is_none());
        assert!(parse_native_hash("*ZZCB3E6AC345B435C7C2E6B7949A04CE6F6563D3").is_none());
        assert!(parse_native_hash("*+BCB3E6AC345B435C7C2E6B7949A04CE6F6563D3").is_none());
    }
}
