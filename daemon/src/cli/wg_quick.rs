//! `sentrymesh import wg-quick FILE.conf`: a wg-quick config as the native
//! config of `sentrymesh up`, so an operator with a WireGuard mesh moves
//! over in one step.
//!
//! ```text
//!  sm0.conf (wg-quick) ──► stdout: the native TOML (interface name sm0)
//!                      ──► sm0.key        (0600, the private key)
//!                      ──► sm0.peer0.psk  (0600, each preshared key)
//!                      ──► stderr: each setting not carried over, FILE:LINE
//! ```
//!
//! Every key of wg-quick and `wg setconf` is handled. What the native
//! config has is carried over: Address, ListenPort, PrivateKey, MTU,
//! FwMark; PublicKey, PresharedKey, AllowedIPs, Endpoint,
//! PersistentKeepalive. What it has not — DNS, a Table other than the main
//! one, the PreUp/PostUp/PreDown/PostDown commands, SaveConfig — is left
//! out with a warning naming the key and its line. What cannot be left out
//! without changing what the tunnel does or protects is an error: an
//! unknown key, a key that does not parse, an endpoint given by host name
//! (the native config takes addresses only). The result is checked by the
//! daemon's own config validation before any file is written.
//!
//! The keys go to files beside the wg-quick file, mode 0600, never to the
//! output: the TOML names the files. An existing file is never replaced.

use std::fmt::Write as _;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use clap::Subcommand;
use sentrymesh_tunnel::PresharedKey;
use sentrymesh_types::{InterfaceAddress, IpNet, PrivateKey, PublicKey};
use zeroize::Zeroizing;

use crate::cli::files::{self, Existing, PRIVATE_MODE};
use crate::config::{self, InterfaceName};

/// `sentrymesh import ...`.
#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Print the native config equivalent to a wg-quick config FILE.conf
    /// (the interface is named after the file, as wg-quick names it); the
    /// private key and each preshared key go to 0600 files beside it, never
    /// to the output. Settings the native config has no place for are
    /// named on standard error.
    WgQuick {
        /// The wg-quick config, e.g. /etc/wireguard/wg0.conf.
        file: PathBuf,
    },
}

/// Runs an import command: the native config to `out`, warnings to
/// `warnings`.
///
/// # Errors
///
/// When the file cannot be read, has a key that cannot be carried over
/// safely, makes a config the daemon would refuse, or a key file to write
/// exists already (nothing is written then).
pub fn run(command: ImportCommand, out: &mut impl Write, warnings: &mut impl Write) -> Result<()> {
    match command {
        ImportCommand::WgQuick { file } => {
            let text = Zeroizing::new(
                std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?,
            );
            let dir = std::fs::canonicalize(&file)
                .with_context(|| format!("finding {}", file.display()))?
                .parent()
                .map(Path::to_path_buf)
                .ok_or_else(|| anyhow!("{} has no directory", file.display()))?;
            let imported = import(&text, &file, &dir)?;
            imported.write_key_files()?;
            for warning in &imported.warnings {
                writeln!(warnings, "warning: {warning}")?;
            }
            out.write_all(imported.toml.as_bytes())?;
            Ok(())
        }
    }
}

/// A wg-quick config turned native: the TOML, the key files it names (not
/// written yet), and what was left out.
#[derive(Debug)]
struct Imported {
    toml: String,
    key_files: Vec<KeyFile>,
    warnings: Vec<String>,
}

/// A key to write to a file of its own.
struct KeyFile {
    path: PathBuf,
    /// The key in base64 and a newline.
    contents: Zeroizing<String>,
}

impl std::fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Imported {
    /// Writes every key file, mode 0600, refusing to replace any file; none
    /// is written when one of them exists.
    fn write_key_files(&self) -> Result<()> {
        for key_file in &self.key_files {
            if key_file.path.symlink_metadata().is_ok() {
                bail!(
                    "{} exists; it is not overwritten (move it away to import again)",
                    key_file.path.display()
                );
            }
        }
        for key_file in &self.key_files {
            files::write_atomically(
                &key_file.path,
                key_file.contents.as_bytes(),
                PRIVATE_MODE,
                Existing::Refuse,
            )
            .with_context(|| format!("writing {}", key_file.path.display()))?;
        }
        Ok(())
    }
}

/// The `[Interface]` of a wg-quick file.
#[derive(Default)]
struct Interface {
    private_key: Option<(Zeroizing<String>, PrivateKey)>,
    listen_port: Option<u16>,
    addresses: Vec<InterfaceAddress>,
    mtu: Option<u16>,
    fwmark: Option<u32>,
}

/// One `[Peer]` of a wg-quick file.
#[derive(Default)]
struct Peer {
    line: usize,
    public_key: Option<PublicKey>,
    preshared_key: Option<(Zeroizing<String>, PresharedKey)>,
    allowed_ips: Vec<IpNet>,
    endpoint: Option<SocketAddr>,
    persistent_keepalive: Option<u16>,
}

/// Where a line is.
enum Section {
    /// Before the first section header.
    None,
    Interface,
    Peer,
}

/// Imports the wg-quick config `text`, read from `file` in the directory
/// `dir` (absolute), where the key files go.
fn import(text: &str, file: &Path, dir: &Path) -> Result<Imported> {
    let name: InterfaceName = file
        .file_stem()
        .and_then(|stem| stem.to_str())
        .unwrap_or_default()
        .parse()
        .map_err(|error| {
            anyhow!(
                "{}: wg-quick names the interface after the file, and {error}; rename the \
                 file to IFNAME.conf",
                file.display()
            )
        })?;
    let shown = file.display();
    let mut interface = Interface::default();
    let mut peers: Vec<Peer> = Vec::new();
    let mut section = Section::None;
    let mut warnings = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let content = raw.split('#').next().unwrap_or_default().trim();
        if content.is_empty() {
            continue;
        }
        if content.starts_with('[') {
            section = if content.eq_ignore_ascii_case("[Interface]") {
                Section::Interface
            } else if content.eq_ignore_ascii_case("[Peer]") {
                peers.push(Peer {
                    line,
                    ..Peer::default()
                });
                Section::Peer
            } else {
                bail!(
                    "{shown}:{line}: {} is not a section of a wg-quick config",
                    shown_name(content.trim_start_matches('[').trim_end_matches(']'))
                        .map_or_else(|| "this".to_owned(), |name| format!("[{name}]"))
                );
            };
            continue;
        }
        let Some((key, value)) = content.split_once('=') else {
            bail!("{shown}:{line}: not KEY = VALUE");
        };
        let (key, value) = (key.trim(), value.trim());
        // A line without its `=`, say a key pasted alone, must not come
        // back in a message: an unknown key is named only when it looks
        // like a key's name.
        let key_shown = shown_name(key).unwrap_or("this line");
        let at = |message: &str| format!("{shown}:{line}: {key_shown}: {message}");
        match (&section, peers.last_mut()) {
            (Section::Interface, _) => {
                if let Some(warning) = interface_key(&mut interface, key, value, &at)? {
                    warnings.push(warning);
                }
            }
            (Section::Peer, Some(peer)) => peer_key(peer, key, value, &at)?,
            // A [Peer] header pushes a peer: no peer means no header yet.
            (Section::None | Section::Peer, _) => bail!(at("outside [Interface] and [Peer]")),
        }
    }
    build(&name, interface, peers, file, dir, warnings)
}

/// Takes one key of `[Interface]`; a key the native config has no place for
/// gives a warning.
fn interface_key(
    interface: &mut Interface,
    key: &str,
    value: &str,
    at: &impl Fn(&str) -> String,
) -> Result<Option<String>> {
    let warning = |message: &str| Ok(Some(at(&format!("not carried over: {message}"))));
    match key.to_ascii_lowercase().as_str() {
        "privatekey" => {
            let private: PrivateKey = value
                .parse()
                .map_err(|_| anyhow!(at("not a WireGuard key (44 characters of base64)")))?;
            interface.private_key = Some((Zeroizing::new(format!("{value}\n")), private));
        }
        "listenport" => {
            let port: u16 = value
                .parse()
                .map_err(|_| anyhow!(at("not a port (0 to 65535)")))?;
            interface.listen_port = Some(port).filter(|&port| port != 0);
        }
        "address" => {
            for address in list(value) {
                interface.addresses.push(
                    address
                        .parse()
                        .map_err(|error| anyhow!(at(&format!("{error}"))))?,
                );
            }
        }
        "mtu" => {
            interface.mtu = Some(
                value
                    .parse()
                    .map_err(|_| anyhow!(at("not an MTU (a number of bytes)")))?,
            );
        }
        "fwmark" => {
            interface.fwmark = parse_fwmark(value)
                .ok_or_else(|| anyhow!(at("not a mark (a number, 0x… or off)")))?
        }
        "dns" => {
            return warning(
                "the native config sets no resolver; configure DNS on the host (resolvconf or \
                 systemd-resolved)",
            );
        }
        "table" if value.eq_ignore_ascii_case("auto") || value.eq_ignore_ascii_case("main") => {}
        "table" => {
            return warning(
                "the native mode routes every allowed IP through the interface in the main \
                 table; route elsewhere with your own rules",
            );
        }
        "preup" | "postup" | "predown" | "postdown" => {
            return warning(
                "the command is not run; if it is still needed (firewall rules?), run it from \
                 the systemd unit (ExecStartPre=, ExecStartPost=, ExecStopPost=)",
            );
        }
        "saveconfig" if value.eq_ignore_ascii_case("false") => {}
        "saveconfig" => {
            return warning(
                "the daemon never writes its config back; keep changes in the native config \
                 and `sentrymesh reload`",
            );
        }
        _ => bail!(at("not a key of [Interface]")),
    }
    Ok(None)
}

/// Takes one key of a `[Peer]`.
fn peer_key(peer: &mut Peer, key: &str, value: &str, at: &impl Fn(&str) -> String) -> Result<()> {
    match key.to_ascii_lowercase().as_str() {
        "publickey" => {
            peer.public_key = Some(
                value
                    .parse()
                    .map_err(|_| anyhow!(at("not a WireGuard key (44 characters of base64)")))?,
            );
        }
        "presharedkey" => {
            let key: PresharedKey = value
                .parse()
                .map_err(|_| anyhow!(at("not a WireGuard key (44 characters of base64)")))?;
            peer.preshared_key = Some((Zeroizing::new(format!("{value}\n")), key));
        }
        "allowedips" => {
            for net in list(value) {
                let address: InterfaceAddress = net
                    .parse()
                    .map_err(|error| anyhow!(at(&format!("{error}"))))?;
                // As `wg` does: the network of the address.
                peer.allowed_ips.push(address.network());
            }
        }
        "endpoint" => {
            peer.endpoint = Some(value.parse().map_err(|_| {
                anyhow!(at(
                    "not IP:PORT or [IPv6]:PORT; the native config takes addresses, not host \
                     names: write the address the name resolves to"
                ))
            })?);
        }
        "persistentkeepalive" => {
            let seconds = if value.eq_ignore_ascii_case("off") {
                0
            } else {
                value
                    .parse()
                    .map_err(|_| anyhow!(at("not a number of seconds (or off)")))?
            };
            peer.persistent_keepalive = Some(seconds).filter(|&seconds| seconds != 0);
        }
        _ => bail!(at("not a key of [Peer]")),
    }
    Ok(())
}

/// `text` when it may be shown in a message: a name of letters and digits
/// (a key or section name), never a base64 key.
fn shown_name(text: &str) -> Option<&str> {
    (text.len() <= 24 && text.bytes().all(|byte| byte.is_ascii_alphanumeric())).then_some(text)
}

/// The items of a comma-separated list.
fn list(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

/// A firewall mark as `wg` reads it: decimal, `0x` hexadecimal, or `off`
/// (none); `Some(None)` for none.
fn parse_fwmark(value: &str) -> Option<Option<u32>> {
    let mark = if value.eq_ignore_ascii_case("off") {
        0
    } else if let Some(hex) = value
        .strip_prefix("0x")
        .or_else(|| value.strip_prefix("0X"))
    {
        u32::from_str_radix(hex, 16).ok()?
    } else {
        value.parse().ok()?
    };
    Some(Some(mark).filter(|&mark| mark != 0))
}

/// Writes the native config and checks it with the daemon's own validation.
fn build(
    name: &InterfaceName,
    interface: Interface,
    peers: Vec<Peer>,
    file: &Path,
    dir: &Path,
    warnings: Vec<String>,
) -> Result<Imported> {
    let shown = file.display();
    let Some((private_text, private_key)) = interface.private_key else {
        bail!("{shown}: [Interface] has no PrivateKey");
    };
    let quoted = |text: &str| toml::Value::String(text.to_owned()).to_string();
    let list = |items: Vec<String>| {
        let quoted: Vec<String> = items.iter().map(|item| quoted(item)).collect();
        format!("[{}]", quoted.join(", "))
    };
    let private_path = dir.join(format!("{name}.key"));
    let mut key_files = vec![KeyFile {
        path: private_path.clone(),
        contents: private_text,
    }];
    let mut toml = String::new();
    // Writing to a String does not fail.
    let _ = writeln!(
        toml,
        "# Imported from {} by `sentrymesh import wg-quick`.\n[interface]\nname = {}\n\
         private_key_file = {}",
        file.display(),
        quoted(name.as_str()),
        quoted(&private_path.to_string_lossy())
    );
    if let Some(port) = interface.listen_port {
        let _ = writeln!(toml, "listen_port = {port}");
    }
    let addresses = interface
        .addresses
        .iter()
        .map(ToString::to_string)
        .collect();
    let _ = writeln!(toml, "addresses = {}", list(addresses));
    if let Some(mtu) = interface.mtu {
        let _ = writeln!(toml, "mtu = {mtu}");
    }
    if let Some(mark) = interface.fwmark {
        let _ = writeln!(toml, "fwmark = {mark:#x}");
    }
    let mut preshared: Vec<Option<PresharedKey>> = Vec::new();
    for (index, peer) in peers.into_iter().enumerate() {
        let Some(public_key) = peer.public_key else {
            bail!("{shown}:{}: [Peer] has no PublicKey", peer.line);
        };
        let _ = writeln!(
            toml,
            "\n[[peer]]\npublic_key = {}",
            quoted(&public_key.to_string())
        );
        if let Some(endpoint) = peer.endpoint {
            let _ = writeln!(toml, "endpoint = {}", quoted(&endpoint.to_string()));
        }
        let allowed = peer.allowed_ips.iter().map(ToString::to_string).collect();
        let _ = writeln!(toml, "allowed_ips = {}", list(allowed));
        match peer.preshared_key {
            Some((text, key)) => {
                let path = dir.join(format!("{name}.peer{index}.psk"));
                let _ = writeln!(
                    toml,
                    "preshared_key_file = {}",
                    quoted(&path.to_string_lossy())
                );
                key_files.push(KeyFile {
                    path,
                    contents: text,
                });
                preshared.push(Some(key));
            }
            None => preshared.push(None),
        }
        if let Some(seconds) = peer.persistent_keepalive {
            let _ = writeln!(toml, "persistent_keepalive = {seconds}");
        }
    }
    // The daemon's own checks, with the keys from memory: what it would
    // refuse is refused here, before a key file is written.
    let native = dir.join(format!("{name}.toml"));
    let mut preshared = preshared.into_iter().flatten();
    config::parse(&toml, &native)
        .and_then(|parsed| {
            parsed.resolve_keys(
                |_| Ok(private_key.clone()),
                |_| Ok(preshared.next().unwrap_or_default()),
            )
        })
        .map_err(|error| {
            anyhow!(
                "{shown}: the native config it makes would be refused:\n{error}\n(in the \
                 output, which would be:\n{toml})"
            )
        })?;
    Ok(Imported {
        toml,
        key_files,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    const PRIVATE: &str = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
    const PEER: &str = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
    const PSK: &str = "FpCyhws9cxwWoV4xELtfJvjJN+zQVRPISllRWgeopVE=";

    /// A wg-quick config with every key; line numbers matter.
    fn full() -> String {
        format!(
            "[Interface]\n\
             PrivateKey = {PRIVATE}\n\
             Address = 198.18.5.1/24, 2001:2::1/64\n\
             ListenPort = 51820\n\
             DNS = 198.18.5.53\n\
             MTU = 1400\n\
             Table = off\n\
             PreUp = true\n\
             PostUp = iptables -A FORWARD -i %i -j ACCEPT\n\
             PreDown = true\n\
             PostDown = true\n\
             SaveConfig = true\n\
             FwMark = 0x51\n\
             \n\
             [Peer] # the sentry\n\
             PublicKey = {PEER}\n\
             PresharedKey = {PSK}\n\
             AllowedIPs = 198.18.5.2/32, 198.18.6.9/24\n\
             AllowedIPs = 2001:2::2/128\n\
             Endpoint = [2001:2::99]:51820\n\
             PersistentKeepalive = 25\n"
        )
    }

    fn import_text(text: &str) -> Result<Imported> {
        import(text, Path::new("wg7.conf"), Path::new("/etc/wireguard"))
    }

    fn error_of(text: &str) -> String {
        format!("{:#}", import_text(text).unwrap_err())
    }

    #[test]
    fn every_key_is_carried_over_or_named_with_its_line() {
        let imported = import_text(&full()).unwrap();
        let expected = format!(
            "# Imported from wg7.conf by `sentrymesh import wg-quick`.\n\
             [interface]\nname = \"wg7\"\nprivate_key_file = \"/etc/wireguard/wg7.key\"\n\
             listen_port = 51820\naddresses = [\"198.18.5.1/24\", \"2001:2::1/64\"]\n\
             mtu = 1400\nfwmark = 0x51\n\n\
             [[peer]]\npublic_key = \"{PEER}\"\nendpoint = \"[2001:2::99]:51820\"\n\
             allowed_ips = [\"198.18.5.2/32\", \"198.18.6.0/24\", \"2001:2::2/128\"]\n\
             preshared_key_file = \"/etc/wireguard/wg7.peer0.psk\"\n\
             persistent_keepalive = 25\n"
        );
        assert_eq!(imported.toml, expected);
        assert!(!imported.toml.contains(PRIVATE) && !imported.toml.contains(PSK));
        let warned: Vec<&str> = imported
            .warnings
            .iter()
            .map(|warning| warning.split(": not carried over").next().unwrap())
            .collect();
        assert_eq!(
            warned,
            [
                "wg7.conf:5: DNS",
                "wg7.conf:7: Table",
                "wg7.conf:8: PreUp",
                "wg7.conf:9: PostUp",
                "wg7.conf:10: PreDown",
                "wg7.conf:11: PostDown",
                "wg7.conf:12: SaveConfig",
            ]
        );
        let paths: Vec<&Path> = imported
            .key_files
            .iter()
            .map(|key_file| key_file.path.as_path())
            .collect();
        assert_eq!(
            paths,
            [
                Path::new("/etc/wireguard/wg7.key"),
                Path::new("/etc/wireguard/wg7.peer0.psk")
            ]
        );
        assert_eq!(*imported.key_files[1].contents, format!("{PSK}\n"));
        assert!(!format!("{imported:?}").contains(PRIVATE));
    }

    #[test]
    fn settings_like_the_defaults_give_no_warning() {
        let text = full()
            .replace("DNS = 198.18.5.53\n", "")
            .replace("Table = off", "Table = auto")
            .replace("SaveConfig = true", "SaveConfig = false");
        let kept: String = text
            .lines()
            .filter(|line| !line.contains("Up =") && !line.contains("Down ="))
            .map(|line| format!("{line}\n"))
            .collect();
        assert_eq!(import_text(&kept).unwrap().warnings, Vec::<String>::new());
    }

    #[test]
    fn what_cannot_be_carried_over_is_an_error_at_its_line() {
        for (from, to, expected) in [
            (
                "MTU = 1400",
                "Mtu = 1400\nColour = red",
                "wg7.conf:7: Colour: not a key of [Interface]",
            ),
            (
                "Endpoint = [2001:2::99]:51820",
                "Endpoint = sentry.example:51820",
                "wg7.conf:20: Endpoint: not IP:PORT",
            ),
            (
                PSK,
                "not-a-key",
                "wg7.conf:17: PresharedKey: not a WireGuard key",
            ),
            (
                "PublicKey = ",
                "# PublicKey = ",
                "wg7.conf:15: [Peer] has no PublicKey",
            ),
            (
                "[Peer] # the sentry",
                "[Peers]",
                "wg7.conf:15: [Peers] is not a section",
            ),
            (
                "ListenPort = 51820",
                "ListenPort = 70000",
                "wg7.conf:4: ListenPort: not a port",
            ),
        ] {
            let text = full();
            assert!(text.contains(from), "{from}");
            let error = error_of(&text.replacen(from, to, 1));
            assert!(
                error.starts_with(expected),
                "{error}\ndoes not start with\n{expected}"
            );
            assert!(!error.contains(PRIVATE) && !error.contains(PSK), "{error}");
        }
        // A key pasted without its `=`: the line is refused, the key not shown.
        let error = error_of(&full().replace(
            &format!("PrivateKey = {PRIVATE}"),
            &format!("PrivateKey {PRIVATE}"),
        ));
        assert!(
            error.starts_with("wg7.conf:2: this line: not a key of [Interface]"),
            "{error}"
        );
        // The daemon's own checks: a peer's allowed IPs overlapping another's.
        let second = format!(
            "\n[Peer]\nPublicKey = {}\nAllowedIPs = 198.18.5.2/32\n",
            PrivateKey::from_bytes([3; 32]).public_key()
        );
        let error = error_of(&format!("{}{second}", full()));
        assert!(
            error.contains("would be refused") && error.contains("wg7.toml:"),
            "{error}"
        );
        assert!(!error.contains(PRIVATE) && !error.contains(PSK), "{error}");
        // wg-quick's interface name is the file's.
        let error = format!(
            "{:#}",
            import(
                &full(),
                Path::new("much-too-long-a-name.conf"),
                Path::new("/tmp")
            )
            .unwrap_err()
        );
        assert!(error.contains("rename the file"), "{error}");
    }

    #[test]
    fn key_files_are_private_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let imported = import(&full(), Path::new("wg7.conf"), dir.path()).unwrap();
        imported.write_key_files().unwrap();
        for name in ["wg7.key", "wg7.peer0.psk"] {
            let metadata = fs::metadata(dir.path().join(name)).unwrap();
            assert_eq!(metadata.permissions().mode() & 0o077, 0, "{name}");
        }
        assert_eq!(
            fs::read_to_string(dir.path().join("wg7.key")).unwrap(),
            format!("{PRIVATE}\n")
        );
        // Again: refused, and nothing written (the psk that is gone stays gone).
        fs::remove_file(dir.path().join("wg7.peer0.psk")).unwrap();
        let error = format!("{:#}", imported.write_key_files().unwrap_err());
        assert!(error.contains("wg7.key exists"), "{error}");
        assert!(!dir.path().join("wg7.peer0.psk").exists());
    }
}
