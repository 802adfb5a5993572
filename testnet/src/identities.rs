//! The identities of a testnet, made as operators make them with `sentrymesh
//! operator | card | trust` — through the same library calls — and kept in
//! the testnet's directory as files an operator would have:
//!
//! ```text
//!   operators/op<a>/operator.key        the operator's secret key (0600)
//!                   cards/<host>.card   the cards it issued
//!                   public.bundle       its sentries' cards, sealed to every other operator
//!                   own.bundle          all its cards (the producer's too), sealed to itself
//!                   vouches/op<b>.vouch its vouch for each other operator
//!                   known/              what it hands each of its hosts to start from
//!   hosts/<host>/wg.key                 the host's WireGuard key (0600)
//!                host.card              its card
//! ```
//!
//! Each operator opens the bundles it received and its own, and gives each
//! of its hosts the same known directory: its own hosts' cards, the other
//! operators' sentry cards, and every vouch. Its hosts' configs name that
//! one directory (`known_dir`) rather than each holding a copy: the
//! daemons only read it, and a copy per host would be 2,601 files each in
//! a 200-host testnet, half a million in all. The producer learns of foreign
//! sentries too: the mesh's role rules, not the files, must keep it from
//! peering with them.
//!
//! Trust runs round a ring: operator `a`'s hosts trust operator `a + 1`
//! directly with a vouch threshold of 1, and admit every other operator on
//! that one's vouch, so with three or more operators part of the mesh is
//! admitted through the web of trust rather than directly.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, anyhow};
use rand_core::OsRng;
use sentrymesh::cli::operator_key;
use sentrymesh_mesh::{
    HostCard, OperatorId, OperatorSecret, SealedBundle, SignedCard, SignedVouch, Vouch, bundle,
};
use sentrymesh_types::{InterfaceAddress, PrivateKey, PublicKey, UnixTime};

use crate::plan::{Plan, PlannedHost, operator_range};

/// How long the testnet's cards are valid.
const CARD_VALIDITY_SECS: u64 = 86_400;
/// How many operators' known directories are filled at once.
const FILLING_THREADS: usize = 4;

/// An operator of the testnet.
#[derive(Debug, Clone)]
pub struct TestnetOperator {
    /// Its number, from 1.
    pub number: usize,
    /// Its name in the testnet's output: `op<number>`.
    pub label: String,
    /// Its operator id.
    pub id: OperatorId,
    /// Its secret key file.
    pub key_file: PathBuf,
    /// The operator its hosts trust directly.
    pub trusts: Option<usize>,
    /// The operators its hosts admit on the vouch of the one they trust.
    pub admits_by_vouch: Vec<usize>,
}

/// The files of one host.
#[derive(Debug, Clone)]
pub(super) struct HostFiles {
    /// The host's directory; the config goes here too.
    pub(super) dir: PathBuf,
    /// Its operator's known directory, which its config names.
    pub(super) known_dir: PathBuf,
    /// Its WireGuard public key.
    pub(super) wg_public_key: PublicKey,
}

/// Makes the operators, keys, cards, bundles, vouches and known
/// directories of `plan` under `root`, valid from `now`.
///
/// # Errors
///
/// When a file cannot be written, or the mesh crate refuses a card, a
/// bundle or a vouch (which would be a bug of the plan).
pub(super) fn issue(
    plan: &Plan,
    root: &Path,
    now: UnixTime,
) -> Result<(Vec<TestnetOperator>, Vec<HostFiles>)> {
    let operators_dir = root.join("operators");
    let secrets: Vec<OperatorSecret> = (0..plan.operators())
        .map(|_| OperatorSecret::generate(&mut OsRng))
        .collect();
    let ids: Vec<OperatorId> = secrets.iter().map(OperatorSecret::operator_id).collect();
    let mut operators = Vec::new();
    for (i, secret) in secrets.iter().enumerate() {
        let number = i + 1;
        let dir = operators_dir.join(format!("op{number}"));
        for sub in ["cards", "vouches"] {
            make_dir(&dir.join(sub))?;
        }
        let key_file = dir.join("operator.key");
        operator_key::create(&key_file, secret)?;
        operators.push(TestnetOperator {
            number,
            label: format!("op{number}"),
            id: ids[i],
            key_file,
            trusts: plan.trusted_by(number),
            admits_by_vouch: plan.admitted_by_vouch(number),
        });
    }

    // Each host's WireGuard key and card.
    let mut hosts = Vec::new();
    let mut cards: Vec<SignedCard> = Vec::new();
    for host in plan.hosts() {
        let dir = root.join("hosts").join(&host.name);
        make_dir(&dir)?;
        let key = PrivateKey::generate(&mut OsRng);
        write_file(&dir.join("wg.key"), format!("{}\n", *key.to_base64()))?;
        let wg_public_key = key.public_key();
        let card = host_card(host, ids[host.operator - 1], wg_public_key, now)
            .issue(&secrets[host.operator - 1], &key, &mut OsRng)
            .map_err(|error| anyhow!("signing the card of {}: {error}", host.name))?;
        write_file(&dir.join("host.card"), card.to_text())?;
        let operator_dir = operators_dir.join(format!("op{}", host.operator));
        write_file(
            &operator_dir
                .join("cards")
                .join(format!("{}.card", host.name)),
            card.to_text(),
        )?;
        cards.push(card);
        hosts.push(HostFiles {
            dir,
            known_dir: operator_dir.join("known"),
            wg_public_key,
        });
    }

    // Bundles: sentries to every other operator, everything to oneself.
    for (i, secret) in secrets.iter().enumerate() {
        let own: Vec<SignedCard> = plan
            .hosts()
            .iter()
            .zip(&cards)
            .filter(|(host, _)| host.operator == i + 1)
            .map(|(_, card)| card.clone())
            .collect();
        let sentries: Vec<SignedCard> = own
            .iter()
            .filter(|card| !card.card().role.is_hidden())
            .cloned()
            .collect();
        let others: Vec<OperatorId> = ids.iter().copied().filter(|id| *id != ids[i]).collect();
        let dir = operators_dir.join(format!("op{}", i + 1));
        if !others.is_empty() {
            let sealed = bundle::seal(secret, &others, &sentries, now, &mut OsRng)
                .map_err(|error| anyhow!("sealing the public bundle of op{}: {error}", i + 1))?;
            write_file(&dir.join("public.bundle"), sealed.to_text())?;
        }
        let sealed = bundle::seal(secret, &[ids[i]], &own, now, &mut OsRng)
            .map_err(|error| anyhow!("sealing the own bundle of op{}: {error}", i + 1))?;
        write_file(&dir.join("own.bundle"), sealed.to_text())?;
    }

    // Vouches: every operator for every other one, with its range.
    let mut vouches: Vec<(String, SignedVouch)> = Vec::new();
    for (i, secret) in secrets.iter().enumerate() {
        for (j, subject) in ids.iter().enumerate() {
            if i == j {
                continue;
            }
            let vouch = Vouch {
                voucher: ids[i],
                subject: *subject,
                overlay: operator_range(j + 1)
                    .parse()
                    .map_err(|error| anyhow!("op{}'s overlay range: {error}", j + 1))?,
                issued_at: now,
            }
            .sign(secret)
            .map_err(|error| anyhow!("signing op{}'s vouch: {error}", i + 1))?;
            let dir = operators_dir.join(format!("op{}", i + 1)).join("vouches");
            write_file(&dir.join(format!("op{}.vouch", j + 1)), vouch.to_text())?;
            vouches.push((format!("op{}-for-op{}.vouch", i + 1, j + 1), vouch));
        }
    }

    // Each operator opens what it received and fills its known directory,
    // the operators side by side.
    let fill = |i: usize, secret: &OperatorSecret| -> Result<()> {
        let mut known: Vec<SignedCard> = Vec::new();
        for j in 0..secrets.len() {
            let file = if i == j {
                "own.bundle"
            } else {
                "public.bundle"
            };
            let path = operators_dir.join(format!("op{}", j + 1)).join(file);
            known.extend(open_bundle(secret, &path, now)?);
        }
        let known_dir = operators_dir.join(format!("op{}", i + 1)).join("known");
        make_dir(&known_dir)?;
        for card in &known {
            let name = format!("{}.card", card.card().name);
            write_file(&known_dir.join(name), card.to_text())?;
        }
        for (name, vouch) in &vouches {
            write_file(&known_dir.join(name), vouch.to_text())?;
        }
        Ok(())
    };
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..FILLING_THREADS)
            .map(|_| {
                scope.spawn(|| -> Result<()> {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(secret) = secrets.get(i) else {
                            return Ok(());
                        };
                        fill(i, secret)?;
                    }
                })
            })
            .collect();
        workers.into_iter().try_for_each(|worker| {
            worker
                .join()
                .map_err(|_| anyhow!("a thread filling the known directories panicked"))?
        })
    })?;
    Ok((operators, hosts))
}

/// The card of `host`: its overlay address as a host address, its
/// endpoint unless it is hidden.
fn host_card(host: &PlannedHost, operator: OperatorId, key: PublicKey, now: UnixTime) -> HostCard {
    // A host address: OVERLAY_PREFIX is 32.
    let address = InterfaceAddress::host(host.overlay.into());
    let endpoints = host
        .endpoint()
        .map(|(ip, port)| sentrymesh_mesh::Endpoint {
            host: sentrymesh_mesh::EndpointHost::Ip(ip.into()),
            port,
        })
        .into_iter()
        .collect();
    HostCard {
        operator,
        name: host.name.clone(),
        role: host.role,
        wg_public_key: key,
        addresses: vec![address],
        endpoints,
        allowed_ips: vec![],
        not_before: now,
        not_after: now + CARD_VALIDITY_SECS,
        serial: now.0,
        chain_p2p: None,
    }
}

/// Opens the bundle file at `path` as the operator of `secret`, as `card
/// open` does.
fn open_bundle(secret: &OperatorSecret, path: &Path, now: UnixTime) -> Result<Vec<SignedCard>> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let opened = SealedBundle::from_text(&text)
        .and_then(|sealed| sealed.open(secret, now))
        .map_err(|error| anyhow!("{} refused: {error}", path.display()))?;
    Ok(opened.cards)
}

/// Makes directory `path` (and its parents), mode 0700.
pub(super) fn make_dir(path: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .with_context(|| format!("making directory {}", path.display()))
}

/// Writes a new file `path` of mode 0600.
pub(super) fn write_file(path: &Path, contents: impl AsRef<[u8]>) -> Result<()> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut file| file.write_all(contents.as_ref()))
        .with_context(|| format!("writing {}", path.display()))
}
