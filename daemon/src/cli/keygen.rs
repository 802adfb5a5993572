//! `sentrymesh genkey | pubkey | genpsk`: the key commands of `wg`, with the
//! same text formats (one base64 key and a newline).

use std::io::{BufRead, Write};

use anyhow::{Context, Result};
use rand_core::OsRng;
use sentrymesh_tunnel::PresharedKey;
use sentrymesh_types::PrivateKey;
use zeroize::Zeroizing;

/// Writes a new private key, as `wg genkey` does.
///
/// # Errors
///
/// When `out` cannot be written.
pub fn genkey(out: &mut impl Write) -> Result<()> {
    let key = PrivateKey::generate(&mut OsRng);
    writeln!(out, "{}", *key.to_base64()).context("writing the private key")
}

/// Writes a new preshared key, as `wg genpsk` does.
///
/// # Errors
///
/// When `out` cannot be written.
pub fn genpsk(out: &mut impl Write) -> Result<()> {
    let key = PresharedKey::generate(&mut OsRng);
    writeln!(out, "{}", *key.to_base64()).context("writing the preshared key")
}

/// Reads a private key from `input` and writes its public key, as
/// `wg pubkey` does.
///
/// # Errors
///
/// When the input is not one base64-encoded 32-byte key (the error does not
/// repeat the input), or `out` cannot be written.
pub fn pubkey(input: &mut impl BufRead, out: &mut impl Write) -> Result<()> {
    let mut line = Zeroizing::new(String::new());
    input
        .read_line(&mut line)
        .context("reading a private key from standard input")?;
    let key: PrivateKey = line
        .trim()
        .parse()
        .context("standard input is not a WireGuard private key")?;
    writeln!(out, "{}", key.public_key()).context("writing the public key")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pubkey_of_the_wg_manual_example() {
        // The example key of wg(8); `wg pubkey` prints this public key for it.
        let mut input = &b"yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=\n"[..];
        let mut out = Vec::new();
        pubkey(&mut input, &mut out).unwrap();
        assert_eq!(out, b"HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=\n");
    }

    #[test]
    fn generated_keys_are_base64_lines_that_parse_back() {
        let mut out = Vec::new();
        genkey(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.len(), 45);
        text.trim().parse::<PrivateKey>().unwrap();

        let mut out = Vec::new();
        genpsk(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        text.trim().parse::<PresharedKey>().unwrap();
    }

    #[test]
    fn a_bad_key_is_refused_without_echoing_it() {
        let mut input = &b"not-a-key-but-maybe-a-secret\n"[..];
        let error = pubkey(&mut input, &mut Vec::new()).unwrap_err();
        let message = format!("{error:#}");
        assert!(message.contains("not a WireGuard private key"), "{message}");
        assert!(!message.contains("maybe-a-secret"), "{message}");
    }
}
