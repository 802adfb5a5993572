//! `sentrymesh trust vouch | revoke`: the signed statements of the web of
//! trust, printed for the operator to publish.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Result, anyhow};
use clap::{ArgGroup, Args, Subcommand};
use sentrymesh_mesh::{
    OperatorId, OperatorSecret, Revocation, RevocationTarget, SignStatementError, Vouch,
};
use sentrymesh_types::{IpNet, PublicKey, UnixTime};

use super::files::{self, PUBLIC_MODE};
use super::{clock, operator_key, refused};

/// `sentrymesh trust ...`.
#[derive(Debug, Subcommand)]
pub enum TrustCommand {
    /// Sign a vouch: this operator trusts another one, and allocates it an
    /// overlay range. Hosts that trust this operator admit the other once
    /// enough vouches name the same range, and refuse its cards that claim
    /// anything outside it.
    Vouch(VouchArgs),
    /// Sign a revocation: retire one of this operator's host keys for
    /// good, or withdraw this operator's vouches for another operator.
    Revoke(RevokeArgs),
}

/// `sentrymesh trust vouch`.
#[derive(Debug, Args)]
pub struct VouchArgs {
    /// The voucher's secret key file.
    #[arg(long, value_name = "FILE")]
    operator: PathBuf,
    /// The operator vouched for, by operator id.
    #[arg(long = "for", value_name = "OPERATOR_ID")]
    subject: OperatorId,
    /// The overlay range allocated to it (a network, e.g. 198.19.7.0/24):
    /// the only addresses its cards may route. Agree on it with the other
    /// vouchers: a host admits the operator only when enough of them name
    /// the same range.
    #[arg(long, value_name = "ADDRESS/PREFIX")]
    overlay: IpNet,
    /// Write the vouch to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// `sentrymesh trust revoke`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("target").required(true).args(["host", "vouch"])))]
pub struct RevokeArgs {
    /// The issuer's secret key file.
    #[arg(long, value_name = "FILE")]
    operator: PathBuf,
    /// Retire this host of the operator, by its WireGuard public key.
    #[arg(long, value_name = "WG_PUBKEY")]
    host: Option<PublicKey>,
    /// Withdraw the operator's vouches for this operator.
    #[arg(long, value_name = "OPERATOR_ID")]
    vouch: Option<OperatorId>,
    /// Write the revocation to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// Runs a `trust` command, printing the statement to `out` or `--out`.
///
/// # Errors
///
/// When the key file is unusable, the statement cannot be signed (a vouch
/// for oneself), or the output cannot be written.
pub fn run(command: TrustCommand, out: &mut impl Write) -> Result<()> {
    match command {
        TrustCommand::Vouch(args) => {
            let secret = operator_key::read(&args.operator)?;
            let text = vouch(&secret, args.subject, args.overlay, clock::now()?)?;
            files::write_output(args.out.as_deref(), out, &text, PUBLIC_MODE)
        }
        TrustCommand::Revoke(args) => {
            let secret = operator_key::read(&args.operator)?;
            let target = match (args.host, args.vouch) {
                (Some(key), _) => RevocationTarget::Host(key),
                (None, Some(operator)) => RevocationTarget::Vouch(operator),
                // clap's required group guarantees one of the two.
                (None, None) => return Err(anyhow!("give --host or --vouch")),
            };
            let text = revoke(&secret, target, clock::now()?)?;
            files::write_output(args.out.as_deref(), out, &text, PUBLIC_MODE)
        }
    }
}

/// The armoured vouch of `secret`'s operator for `subject` with the range
/// `overlay`, issued `now`.
fn vouch(
    secret: &OperatorSecret,
    subject: OperatorId,
    overlay: IpNet,
    now: UnixTime,
) -> Result<String> {
    let vouch = Vouch {
        voucher: secret.operator_id(),
        subject,
        overlay,
        issued_at: now,
    };
    match vouch.sign(secret) {
        Ok(signed) => Ok(signed.to_text()),
        Err(error @ SignStatementError::SelfVouch { .. }) => Err(anyhow!("--for: {error}")),
        Err(error) => Err(refused("cannot sign the vouch", error)),
    }
}

/// The armoured revocation of `target` by `secret`'s operator, issued `now`.
fn revoke(secret: &OperatorSecret, target: RevocationTarget, now: UnixTime) -> Result<String> {
    let revocation = Revocation {
        issuer: secret.operator_id(),
        target,
        issued_at: now,
    };
    let signed = revocation
        .sign(secret)
        .map_err(|error| refused("cannot sign the revocation", error))?;
    Ok(signed.to_text())
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;
    use sentrymesh_mesh::{SignedRevocation, SignedVouch};

    use super::*;

    const NOW: UnixTime = UnixTime(1_777_593_600);

    #[test]
    fn statements_decode_to_what_was_asked() {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let alice = OperatorSecret::generate(&mut rng);
        let bob = OperatorSecret::generate(&mut rng).operator_id();

        let range: IpNet = "198.19.7.0/24".parse().unwrap();
        let text = vouch(&alice, bob, range, NOW).unwrap();
        let signed = SignedVouch::from_text(&text).unwrap();
        assert_eq!(
            *signed.vouch(),
            Vouch {
                voucher: alice.operator_id(),
                subject: bob,
                overlay: range,
                issued_at: NOW
            }
        );
        // A range with host bits is no IpNet: `--overlay` refuses it as it
        // parses, naming the network.
        let message = "198.19.7.1/24".parse::<IpNet>().unwrap_err().to_string();
        assert!(
            message.contains("write its network, 198.19.7.0/24"),
            "{message}"
        );

        let key: PublicKey = "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw="
            .parse()
            .unwrap();
        for target in [RevocationTarget::Host(key), RevocationTarget::Vouch(bob)] {
            let text = revoke(&alice, target, NOW).unwrap();
            let signed = SignedRevocation::from_text(&text).unwrap();
            assert_eq!(signed.revocation().target, target);
            assert_eq!(signed.revocation().issuer, alice.operator_id());
        }
    }

    #[test]
    fn a_vouch_for_oneself_is_blamed_on_for() {
        let alice = OperatorSecret::generate(&mut ChaCha20Rng::seed_from_u64(4));
        let range = "198.19.7.0/24".parse().unwrap();
        let message = vouch(&alice, alice.operator_id(), range, NOW)
            .unwrap_err()
            .to_string();
        assert!(message.starts_with("--for: "), "{message}");
        assert!(message.contains("cannot vouch for itself"), "{message}");
    }
}
