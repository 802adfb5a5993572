//! `sentrymesh status [--json] [IFNAME]`: asks the daemon serving an
//! interface for its status (`get_status=1` on the UAPI socket; see
//! `docs/status.md`) and prints it: as tables with column headers for
//! people, or as the JSON document with `--json`.
//!
//! ```text
//! interface sm0: mesh member a-sentry (sentry) of operator alice, port 51820
//! ready: 2 of 2 required peers live
//!
//! HOST        OPERATOR  ROLE      TRUST    ENDPOINT          HANDSHAKE  RECEIVED  SENT    SESSION
//! a-producer  alice     producer  local    hidden            12s ago    1.2 KiB   3.4 KiB live
//! ```

use std::fmt::Write as _;
use std::io::Write;

use anyhow::Result;

use crate::control::client;
use crate::control::status::{OperatorRef, Status, Trust};

/// How many characters of an operator id without an alias are shown in a
/// table (the JSON has them whole).
const SHORT_ID: usize = 12;

/// Prints the status of `interface` (or the only interface running) to
/// `out`, as JSON when `json`.
///
/// # Errors
///
/// When no daemon answers, or it is not a sentrymesh daemon.
pub fn run(interface: Option<&str>, json: bool, out: &mut impl Write) -> Result<()> {
    let name = client::choose_interface(interface)?;
    let status = client::status(&client::socket_path(&name))?;
    if json {
        serde_json::to_writer_pretty(&mut *out, &status)?;
        writeln!(out)?;
    } else {
        out.write_all(render(&status).as_bytes())?;
    }
    Ok(())
}

/// The status as text for people.
pub fn render(status: &Status) -> String {
    let mut text = String::new();
    match &status.mesh {
        Some(mesh) => {
            let _ = writeln!(
                text,
                "interface {}: mesh member {} ({}) of operator {}, port {}",
                status.interface,
                mesh.host,
                mesh.role,
                operator(&mesh.operator),
                status.listen_port
            );
            if let Some(error) = &mesh.own_card_error {
                let _ = writeln!(text, "{error}");
            }
        }
        None => {
            let _ = writeln!(
                text,
                "interface {} ({}), port {}",
                status.interface, status.mode, status.listen_port
            );
        }
    }
    if let Some(readiness) = &status.readiness {
        let _ = writeln!(
            text,
            "ready: {} ({} of {} required peers live)",
            if readiness.ready { "yes" } else { "no" },
            readiness.live,
            readiness.required
        );
    }
    text.push('\n');
    let mut peers = Table::new(match status.mesh {
        Some(_) => &[
            "HOST",
            "OPERATOR",
            "ROLE",
            "TRUST",
            "ENDPOINT",
            "HANDSHAKE",
            "RECEIVED",
            "SENT",
            "SESSION",
        ][..],
        None => &[
            "PUBLIC KEY",
            "ENDPOINT",
            "HANDSHAKE",
            "RECEIVED",
            "SENT",
            "SESSION",
        ][..],
    });
    for peer in &status.peers {
        let mut row = Vec::new();
        match (&status.mesh, &peer.mesh) {
            (Some(_), Some(mesh)) => row.extend([
                mesh.host.clone(),
                operator(&mesh.operator),
                mesh.role.clone(),
                trust(&mesh.trust),
            ]),
            // A peer a mesh member's interface has that the mesh did not
            // give it (just removed): its key in place of its host.
            (Some(_), None) => {
                row.extend([peer.public_key.clone(), "-".into(), "-".into(), "-".into()])
            }
            (None, _) => row.push(peer.public_key.clone()),
        }
        row.extend([
            peer.endpoint.clone().unwrap_or_else(|| "none".into()),
            peer.latest_handshake_secs_ago
                .map_or_else(|| "never".into(), |secs| format!("{secs}s ago")),
            bytes(peer.rx_bytes),
            bytes(peer.tx_bytes),
            peer.session.clone(),
        ]);
        peers.row(row);
    }
    text.push_str(&peers.render("no peers"));
    let Some(mesh) = &status.mesh else {
        return text;
    };
    text.push_str("\nadmitted operators\n");
    let mut admitted = Table::new(&["OPERATOR", "ID", "TRUST", "RANGE"]);
    for entry in &mesh.admitted_operators {
        admitted.row(vec![
            operator(&entry.operator),
            entry.operator.id.clone(),
            trust(&entry.trust),
            entry.range.clone(),
        ]);
    }
    text.push_str(&admitted.render("none"));
    text.push_str("\nknown hosts without a live session\n");
    let mut not_connected = Table::new(&["HOST", "OPERATOR", "ROLE", "WHY"]);
    for entry in &mesh.not_connected {
        not_connected.row(vec![
            entry.host.clone(),
            operator(&entry.operator),
            entry.role.clone(),
            entry.reason.message.clone(),
        ]);
    }
    text.push_str(&not_connected.render("none"));
    text.push_str("\nrefused lately\n");
    let mut refused = Table::new(&["OBJECT", "WHY"]);
    for entry in &mesh.refused {
        refused.row(vec![entry.object.clone(), entry.reason.clone()]);
    }
    text.push_str(&refused.render("none"));
    text
}

/// An operator for people: its alias, or the start of its id.
fn operator(operator: &OperatorRef) -> String {
    match &operator.alias {
        Some(alias) => alias.clone(),
        None => operator.id.chars().take(SHORT_ID).collect(),
    }
}

/// A trust path for people.
fn trust(trust: &Trust) -> String {
    if trust.vouched_by.is_empty() {
        return trust.path.clone();
    }
    let by: Vec<String> = trust.vouched_by.iter().map(operator).collect();
    format!("{} by {}", trust.path, by.join(","))
}

/// A byte count for people.
fn bytes(count: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if count < 1024 {
        return format!("{count} B");
    }
    let mut value = count as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Columns aligned under their headers.
struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(headers: &[&str]) -> Self {
        Self {
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    fn row(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    /// The table, or `if_empty` on a line of its own when it has no rows.
    fn render(&self, if_empty: &str) -> String {
        if self.rows.is_empty() {
            return format!("{if_empty}\n");
        }
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut text = String::new();
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            let last = row.len().saturating_sub(1);
            for (i, (cell, width)) in row.iter().zip(&widths).enumerate() {
                if i == last {
                    text.push_str(cell);
                } else {
                    let _ = write!(text, "{cell:<width$}  ");
                }
            }
            text.push('\n');
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_shown_in_binary_units() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(5 * 1024 * 1024 * 1024), "5.0 GiB");
    }

    #[test]
    fn tables_have_headers_and_aligned_columns() {
        let mut table = Table::new(&["HOST", "WHY"]);
        table.row(vec!["a-sentry-1".into(), "no answer".into()]);
        table.row(vec!["b".into(), "revoked".into()]);
        assert_eq!(
            table.render("none"),
            "HOST        WHY\na-sentry-1  no answer\nb           revoked\n"
        );
        assert_eq!(Table::new(&["HOST"]).render("none"), "none\n");
    }
}
