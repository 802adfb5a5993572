//! Statements: vouches and revocations, `SignedVouch::decode` and
//! `SignedRevocation::decode` on bytes that are raw input or a genuine
//! statement mutated (`sentrymesh_fuzz::shape`), and their armoured text
//! form (`armour::decode`, `from_text`).
//!
//! Input: a form byte (bit 0: text, else binary; bit 1: a revocation, else
//! a vouch), then the input of `shape` (binary) or the text.
//!
//! What must hold: only the genuine statement is accepted, and it keeps its
//! bytes; armour decodes what it encodes; the text form is accepted exactly
//! when the bytes it armours are.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sentrymesh_fuzz::mesh::{revocation, vouch};
use sentrymesh_fuzz::shape;
use sentrymesh_mesh::armour::{self, ArmourKind};
use sentrymesh_mesh::{SignedRevocation, SignedVouch};

fn genuine() -> &'static [Vec<u8>; 2] {
    static STATEMENTS: OnceLock<[Vec<u8>; 2]> = OnceLock::new();
    STATEMENTS.get_or_init(|| [vouch(), revocation()])
}

/// Decodes `bytes` as the statement `kind`, returning its encoding.
fn decode(is_revocation: bool, bytes: &[u8]) -> Option<Vec<u8>> {
    if is_revocation {
        SignedRevocation::decode(bytes)
            .ok()
            .map(|r| r.as_bytes().to_vec())
    } else {
        SignedVouch::decode(bytes)
            .ok()
            .map(|v| v.as_bytes().to_vec())
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&form, input)) = data.split_first() else {
        return;
    };
    let is_revocation = form & 2 != 0;
    let genuine = &genuine()[usize::from(is_revocation)];
    let kind = if is_revocation {
        ArmourKind::Revocation
    } else {
        ArmourKind::Vouch
    };
    let accepted = if form & 1 == 0 {
        let bytes = shape(input, &[genuine]);
        let accepted = decode(is_revocation, &bytes);
        if let Some(encoded) = &accepted {
            assert_eq!(encoded, &bytes, "a statement does not keep its bytes");
        }
        accepted
    } else {
        let Ok(text) = std::str::from_utf8(input) else {
            return;
        };
        let armoured = armour::decode(kind, text);
        let from_text = if is_revocation {
            SignedRevocation::from_text(text)
                .ok()
                .map(|r| r.as_bytes().to_vec())
        } else {
            SignedVouch::from_text(text)
                .ok()
                .map(|v| v.as_bytes().to_vec())
        };
        match &armoured {
            Ok(bytes) => {
                let again = armour::decode(kind, &armour::encode(kind, bytes));
                assert_eq!(
                    again.as_ref(),
                    Ok(bytes),
                    "armour does not read its own text"
                );
                assert_eq!(from_text, decode(is_revocation, bytes));
            }
            Err(_) => assert!(from_text.is_none(), "text accepted that does not unarmour"),
        }
        from_text
    };
    if let Some(encoded) = accepted {
        assert_eq!(
            &encoded, genuine,
            "accepted a statement that is not genuine"
        );
    }
});
