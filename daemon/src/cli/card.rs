//! `sentrymesh card issue | request | sign | show` (and the `seal | open`
//! subcommands, run by [`super::bundle`]): host cards signed by their
//! operator.
//!
//! A card needs two keys: the host's WireGuard private key makes its proof
//! of possession (the public key on the card is derived from it, so the two
//! always match), and the operator's key signs it. A card without that
//! proof is refused by every member: otherwise any admitted operator could
//! claim another's WireGuard key. `card issue` reads both key files at
//! once; where neither key should travel, `card request` makes the proof on
//! the host and `card sign` adds the signature on the operator's machine.

use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use clap::builder::{PossibleValuesParser, TypedValueParser as _};
use clap::{Args, Subcommand};
use rand_core::{CryptoRngCore, OsRng};
use sentrymesh_mesh::{
    CardRequest, ChainP2p, Endpoint, HostCard, InvalidCard, NodeosPeerKey, OperatorId,
    OperatorSecret, Role, SignCardError, SignedCard,
};
use sentrymesh_types::{InterfaceAddress, IpNet, PrivateKey, PublicKey, UnixTime};

use super::bundle::{self, OpenArgs, SealArgs};
use super::files::{self, PRIVATE_MODE};
use super::show::{CardView, LABEL_WIDTH};
use super::{clock, operator_key, refused};
use crate::config::keyfile;

/// The validity of a card unless `--valid-days` says otherwise.
pub const DEFAULT_VALID_DAYS: u64 = 365;
/// The longest validity `--valid-days` accepts: ten years.
pub const MAX_VALID_DAYS: u64 = 3650;
/// The most bytes read from a card file: the largest armoured card, with
/// room for whitespace.
pub const MAX_CARD_FILE_LEN: usize = 64 * 1024;
const SECONDS_PER_DAY: u64 = 86_400;

/// `sentrymesh card ...`.
#[derive(Debug, Subcommand)]
pub enum CardCommand {
    /// Issue a card for one of the operator's hosts, proved with the host's
    /// WireGuard key and signed with the operator's key, and print it.
    Issue(Box<IssueArgs>),
    /// On the host: ask its operator for a card, proved with the host's
    /// WireGuard key, and print the request for `card sign`.
    Request(Box<RequestArgs>),
    /// On the operator's machine: check a card request and sign it with the
    /// operator's key, and print the card.
    Sign(SignArgs),
    /// Check card files (format and operator signature) and print them
    /// readably.
    Show {
        /// The card files.
        #[arg(value_name = "CARD", required = true)]
        cards: Vec<PathBuf>,
    },
    /// Seal the operator's cards into one bundle that only the named
    /// operators can open, signed by the operator.
    Seal(SealArgs),
    /// Open a bundle addressed to the operator: check it and every card in
    /// it, and print the cards.
    Open(OpenArgs),
}

/// `sentrymesh card issue`.
#[derive(Debug, Args)]
pub struct IssueArgs {
    /// The operator's secret key file.
    #[arg(long, value_name = "FILE")]
    operator: PathBuf,
    /// The host's WireGuard private key file (as `wg genkey` writes it,
    /// mode 0600): the card names its public key and carries a proof, made
    /// with it, that the host holds the key. Where the key should not leave
    /// the host, use `card request` there and `card sign` here instead.
    #[arg(long, value_name = "FILE")]
    wg_key: PathBuf,
    #[command(flatten)]
    fields: CardFields,
    /// Write the card to this file (mode 0600) instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// `sentrymesh card request`.
#[derive(Debug, Args)]
pub struct RequestArgs {
    /// The id of the operator the card is asked of (`sentrymesh operator
    /// show` prints it).
    #[arg(long, value_name = "OPERATOR_ID")]
    operator_id: OperatorId,
    /// The host's WireGuard private key file (as `wg genkey` writes it,
    /// mode 0600): the card names its public key and carries a proof, made
    /// with it, that the host holds the key.
    #[arg(long, value_name = "FILE")]
    wg_key: PathBuf,
    #[command(flatten)]
    fields: CardFields,
    /// Write the request to this file (mode 0600: it holds the endpoints)
    /// instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// `sentrymesh card sign`.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// The operator's secret key file.
    #[arg(long, value_name = "FILE")]
    operator: PathBuf,
    /// The card request file, as `card request` wrote it.
    #[arg(value_name = "REQUEST")]
    request: PathBuf,
    /// Write the card to this file (mode 0600) instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// What a card says besides its operator and key: the flags `card issue`
/// and `card request` share.
#[derive(Debug, Args)]
pub struct CardFields {
    /// The host's name: 1 to 63 lower-case letters, digits and hyphens.
    #[arg(long)]
    name: String,
    /// What the host does. Producer and bios hosts are hidden: they publish
    /// no endpoint and their cards are sealed only to their own operator.
    #[arg(
        long,
        value_name = "ROLE",
        value_parser = PossibleValuesParser::new(Role::ALL.map(Role::name))
            .try_map(|name| name.parse::<Role>())
    )]
    role: Role,
    /// An overlay address of the host, a /32 in its operator's range, e.g. 198.19.1.2/32
    /// (repeat for more).
    #[arg(long = "address", value_name = "CIDR", required = true)]
    addresses: Vec<InterfaceAddress>,
    /// Where the host is reached over UDP: `IP:PORT`, `[IPv6]:PORT` or
    /// `NAME:PORT` (repeat for more; none for hidden roles).
    #[arg(long = "endpoint", value_name = "HOST:PORT")]
    endpoints: Vec<Endpoint>,
    /// A network routed to the host besides its own addresses, with no host
    /// bits set (repeat for more).
    #[arg(long = "allowed-ip", value_name = "CIDR")]
    allowed_ips: Vec<IpNet>,
    /// How many days from now the card is valid (1 to 3650).
    #[arg(
        long,
        value_name = "N",
        default_value_t = DEFAULT_VALID_DAYS,
        value_parser = clap::value_parser!(u64).range(1..=MAX_VALID_DAYS)
    )]
    valid_days: u64,
    /// The card's serial: a card with a higher serial for the same host key
    /// replaces a lower one [default: the current Unix time].
    #[arg(long, value_name = "N")]
    serial: Option<u64>,
    /// The host's chain peer-to-peer address: a Tendermint node id and its
    /// p2p port (`cometbft show-node-id`), or for nodeos a name of the node
    /// (its producer account, say) and its p2p port.
    #[arg(long, value_name = "ID@PORT")]
    chain_p2p: Option<ChainP2p>,
    /// The public key the host's nodeos signs its p2p handshakes with
    /// (its `peer-private-key`'s), `EOS...` or `PUB_K1_...`: the nodes it
    /// connects to list it as `peer-key` (`sentrymesh export nodeos`).
    #[arg(long, value_name = "KEY", requires = "chain_p2p")]
    nodeos_peer_key: Option<NodeosPeerKey>,
}

/// Runs a `card` command, printing to `out`.
///
/// # Errors
///
/// A one-line reason: an unusable key file, an invalid card (naming the
/// flag at fault), a card file that does not verify, a bundle refused.
pub fn run(command: CardCommand, out: &mut impl Write) -> Result<()> {
    match command {
        CardCommand::Issue(args) => {
            let secret = operator_key::read(&args.operator)?;
            let host_key = read_host_key(&args.wg_key)?;
            let card = issue(&args, &secret, &host_key, clock::now()?, &mut OsRng)?;
            files::write_output(args.out.as_deref(), out, &card.to_text(), PRIVATE_MODE)
        }
        CardCommand::Request(args) => {
            let host_key = read_host_key(&args.wg_key)?;
            let request = request(&args, &host_key, clock::now()?, &mut OsRng)?;
            files::write_output(args.out.as_deref(), out, &request.to_text(), PRIVATE_MODE)
        }
        CardCommand::Sign(args) => {
            let secret = operator_key::read(&args.operator)?;
            let card = sign(&read_request(&args.request)?, &secret)?;
            files::write_output(args.out.as_deref(), out, &card.to_text(), PRIVATE_MODE)
        }
        CardCommand::Show { cards } => show(&cards, clock::now()?, out),
        CardCommand::Seal(args) => bundle::seal(&args, out),
        CardCommand::Open(args) => bundle::open(&args, out),
    }
}

/// Reads the host's WireGuard private key from the file at `path`, as the
/// daemon reads its interface key.
///
/// # Errors
///
/// When the file cannot be used; the message names it and never shows its
/// content.
fn read_host_key(path: &Path) -> Result<PrivateKey> {
    keyfile::read_private_key(path).context("--wg-key")
}

/// The card `args` describe for the host of `host_key`, valid from `now`
/// for `--valid-days`, proved with `host_key` and signed by `secret`.
///
/// # Errors
///
/// When the card is invalid; the message starts with the flag at fault.
fn issue(
    args: &IssueArgs,
    secret: &OperatorSecret,
    host_key: &PrivateKey,
    now: UnixTime,
    rng: &mut impl CryptoRngCore,
) -> Result<SignedCard> {
    let card = args
        .fields
        .card(secret.operator_id(), host_key.public_key(), now);
    card.issue(secret, host_key, rng)
        .map_err(|error| blamed(error, &card))
}

/// The card request `args` describe for the host of `host_key`, valid from
/// `now` for `--valid-days`, proved with `host_key`.
///
/// # Errors
///
/// When the card is invalid; the message starts with the flag at fault.
fn request(
    args: &RequestArgs,
    host_key: &PrivateKey,
    now: UnixTime,
    rng: &mut impl CryptoRngCore,
) -> Result<CardRequest> {
    let card = args
        .fields
        .card(args.operator_id, host_key.public_key(), now);
    card.request(host_key, rng)
        .map_err(|error| blamed(error, &card))
}

/// Reads and checks the card request in the file at `path`.
///
/// # Errors
///
/// When the file cannot be read, or does not hold a valid card request
/// whose proof verifies; the message names the file.
fn read_request(path: &Path) -> Result<CardRequest> {
    let what = files::describe(path, "card request file");
    let text = files::read_text(path, "card request file", MAX_CARD_FILE_LEN)?;
    CardRequest::from_text(&text).map_err(|error| refused(what, error))
}

/// `request` signed by `secret`.
///
/// # Errors
///
/// When the request names another operator.
fn sign(request: &CardRequest, secret: &OperatorSecret) -> Result<SignedCard> {
    request
        .sign(secret)
        .map_err(|error| refused("cannot sign the card request", error))
}

impl CardFields {
    /// The card these fields describe, of `operator`'s host with the key
    /// `key`, valid from `now` for `--valid-days`.
    fn card(&self, operator: OperatorId, key: PublicKey, now: UnixTime) -> HostCard {
        HostCard {
            operator,
            name: self.name.clone(),
            role: self.role,
            wg_public_key: key,
            addresses: self.addresses.clone(),
            endpoints: self.endpoints.clone(),
            allowed_ips: self.allowed_ips.clone(),
            not_before: now,
            not_after: now.saturating_add(self.valid_days.saturating_mul(SECONDS_PER_DAY)),
            serial: self.serial.unwrap_or(now.0),
            chain_p2p: self.chain_p2p.clone().map(|p2p| ChainP2p {
                nodeos_peer_key: self.nodeos_peer_key.clone(),
                ..p2p
            }),
        }
    }
}

/// Why `card` cannot be issued or requested, starting with the flag at
/// fault when there is one.
fn blamed(error: SignCardError, card: &HostCard) -> anyhow::Error {
    match error {
        SignCardError::Invalid(invalid) => match blame(&invalid, card) {
            Some(flag) => anyhow!("{flag}: {invalid}"),
            None => anyhow!("invalid card: {invalid}"),
        },
        // The card names the key's own operator and the host key's own
        // public key, so this cannot happen; say what happened rather than
        // panic.
        other => refused("cannot sign the card", other),
    }
}

/// The flag (with its value where the crate's message lacks it) that
/// breaks the rule `error` reports.
fn blame(error: &InvalidCard, card: &HostCard) -> Option<String> {
    let flag_of_list = |what: &str| match what {
        "addresses" => Some("--address"),
        "endpoints" => Some("--endpoint"),
        "allowed IPs" => Some("--allowed-ip"),
        _ => None,
    };
    let blamed = match error {
        InvalidCard::Name(_) => "--name".to_owned(),
        InvalidCard::NoAddress { .. } => "--address".to_owned(),
        InvalidCard::TooMany { what, .. } | InvalidCard::Duplicate { what, .. } => {
            flag_of_list(what)?.to_owned()
        }
        InvalidCard::HiddenEndpoint { .. } => {
            let mut flags = String::new();
            for endpoint in &card.endpoints {
                let _ = write!(flags, "--endpoint {endpoint} ");
            }
            flags.trim_end().to_owned()
        }
        InvalidCard::Endpoint { .. } => "--endpoint".to_owned(),
        InvalidCard::EmptyValidity { .. } => "--valid-days".to_owned(),
        InvalidCard::ZeroKey { .. }
        | InvalidCard::LowOrderKey { .. }
        | InvalidCard::NonCanonicalKey { .. } => "--wg-key".to_owned(),
        InvalidCard::ChainP2p { .. } => "--chain-p2p".to_owned(),
        _ => return None,
    };
    Some(blamed)
}

/// Prints each card file, checked, and whether it is valid at `now`.
fn show(paths: &[PathBuf], now: UnixTime, out: &mut impl Write) -> Result<()> {
    let mut text = String::new();
    for (i, path) in paths.iter().enumerate() {
        let card = read_card(path)?;
        if i > 0 {
            text.push('\n');
        }
        let status = match card.check_valid_at(now) {
            Ok(()) => "valid now".to_owned(),
            Err(error) => error.to_string(),
        };
        let _ = writeln!(
            text,
            "{}{:<LABEL_WIDTH$}{status}",
            CardView::new(card.card()),
            "status"
        );
    }
    out.write_all(text.as_bytes())
        .context("cannot write to standard output")
}

/// Reads and checks the armoured card in the file at `path`.
///
/// # Errors
///
/// When the file cannot be read, or does not hold a card signed by the
/// operator it names; the message names the file.
pub fn read_card(path: &Path) -> Result<SignedCard> {
    let what = files::describe(path, "card file");
    let text = files::read_text(path, "card file", MAX_CARD_FILE_LEN)?;
    SignedCard::from_text(&text).map_err(|error| refused(what, error))
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;

    const NOW: UnixTime = UnixTime(1_777_593_600);
    /// `wg genkey` output, and the `wg pubkey` of it.
    const WG_PRIVATE: &str = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
    const WG_KEY: &str = "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=";

    fn secret() -> OperatorSecret {
        OperatorSecret::generate(&mut ChaCha20Rng::seed_from_u64(3))
    }

    fn host_key() -> PrivateKey {
        WG_PRIVATE.parse().unwrap()
    }

    fn issue(args: &IssueArgs, secret: &OperatorSecret, now: UnixTime) -> Result<SignedCard> {
        super::issue(
            args,
            secret,
            &host_key(),
            now,
            &mut ChaCha20Rng::seed_from_u64(4),
        )
    }

    fn args(role: Role) -> IssueArgs {
        IssueArgs {
            operator: PathBuf::from("unused"),
            wg_key: PathBuf::from("unused"),
            fields: CardFields {
                name: "sentry-1".into(),
                role,
                addresses: vec!["198.18.1.1/24".parse().unwrap()],
                endpoints: vec!["198.18.0.1:51820".parse().unwrap()],
                allowed_ips: vec![],
                valid_days: DEFAULT_VALID_DAYS,
                serial: None,
                chain_p2p: None,
                nodeos_peer_key: None,
            },
            out: None,
        }
    }

    fn issue_error(args: &IssueArgs) -> String {
        format!("{:#}", issue(args, &secret(), NOW).unwrap_err())
    }

    #[test]
    fn issues_a_card_valid_from_now_with_the_time_as_serial() {
        let secret = secret();
        let mut args = args(Role::Sentry);
        args.fields.chain_p2p = Some("f3a1c0de@26656".parse().unwrap());
        let signed = issue(&args, &secret, NOW).unwrap();
        let card = signed.card();
        assert_eq!(card.operator, secret.operator_id());
        assert_eq!(card.name, "sentry-1");
        assert_eq!(card.role, Role::Sentry);
        assert_eq!(card.wg_public_key.to_string(), WG_KEY);
        assert_eq!(card.not_before, NOW);
        assert_eq!(card.not_after, NOW + 365 * 86_400);
        assert_eq!(card.serial, NOW.0);
        assert_eq!(card.chain_p2p, args.fields.chain_p2p);
        assert_eq!(SignedCard::from_text(&signed.to_text()).unwrap(), signed);

        args.fields.nodeos_peer_key = Some(
            "PUB_K1_6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5BoDq63"
                .parse()
                .unwrap(),
        );
        let card = issue(&args, &secret, NOW).unwrap().into_card();
        let p2p = card.chain_p2p.unwrap();
        assert_eq!(p2p.to_string(), "f3a1c0de@26656");
        assert_eq!(p2p.nodeos_peer_key, args.fields.nodeos_peer_key);

        args.fields.serial = Some(7);
        args.fields.valid_days = 1;
        let card = issue(&args, &secret, NOW).unwrap().into_card();
        assert_eq!((card.serial, card.not_after), (7, NOW + 86_400));
    }

    #[test]
    fn a_hidden_role_with_an_endpoint_is_blamed_on_the_endpoint() {
        let message = issue_error(&args(Role::Producer));
        assert!(
            message.starts_with("--endpoint 198.18.0.1:51820: host `sentry-1` is a producer"),
            "{message}"
        );
        let mut args = args(Role::Bios);
        args.fields.endpoints.clear();
        issue(&args, &secret(), NOW).unwrap();
    }

    #[test]
    fn each_invalid_card_names_its_flag() {
        let mut bad = args(Role::Sentry);
        bad.fields.name = "Sentry_1".into();
        assert!(
            issue_error(&bad).starts_with("--name: "),
            "{}",
            issue_error(&bad)
        );

        let mut bad = args(Role::Sentry);
        bad.fields.addresses.push(bad.fields.addresses[0]);
        assert!(issue_error(&bad).starts_with("--address: "));

        let mut bad = args(Role::Sentry);
        bad.fields.endpoints.push(bad.fields.endpoints[0].clone());
        assert!(issue_error(&bad).starts_with("--endpoint: "));
    }

    #[test]
    fn a_request_made_on_the_host_is_signed_on_the_operators_machine() {
        let secret = secret();
        let issued = args(Role::Sentry);
        let request_args = RequestArgs {
            operator_id: secret.operator_id(),
            wg_key: PathBuf::from("unused"),
            fields: issued.fields,
            out: None,
        };
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let request = request(&request_args, &host_key(), NOW, &mut rng).unwrap();
        let signed = sign(&request, &secret).unwrap();
        assert_eq!(signed, issue(&args(Role::Sentry), &secret, NOW).unwrap());
        let message = format!(
            "{:#}",
            sign(&request, &OperatorSecret::from_seed([9; 32])).unwrap_err()
        );
        assert!(
            message.starts_with(
                "cannot sign the card request: the card for host `sentry-1` names operator"
            ),
            "{message}"
        );
    }

    #[test]
    fn show_prints_cards_and_their_status() {
        let dir = tempfile::tempdir().unwrap();
        let signed = issue(&args(Role::Sentry), &secret(), NOW).unwrap();
        let path = dir.path().join("sentry-1.card");
        std::fs::write(&path, signed.to_text()).unwrap();

        let mut out = Vec::new();
        show(&[path.clone(), path.clone()], NOW, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.matches("host          sentry-1\n").count(), 2);
        assert!(text.contains("status        valid now\n"), "{text}");

        let mut out = Vec::new();
        show(std::slice::from_ref(&path), NOW + 400 * 86_400, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("status        the card for host `sentry-1` expired at"),
            "{text}"
        );

        let mut altered = signed.to_text().into_bytes();
        altered[40] = if altered[40] == b'A' { b'B' } else { b'A' };
        std::fs::write(&path, altered).unwrap();
        let message = format!(
            "{:#}",
            show(std::slice::from_ref(&path), NOW, &mut Vec::new()).unwrap_err()
        );
        assert!(
            message.starts_with(&format!("card file '{}': ", path.display())),
            "{message}"
        );
    }
}
