//! `[email]` of `vigie.toml` and its named channels `[email.NAME]`: the
//! `From:` mailbox, the directory field delivered to, and the transport
//! (`.eml` files or SMTP, with its TLS settings), with the checks of an SMTP
//! URL and of the PEM files it names.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::super::diag::Located;
use super::super::reader::{Ctx, Table};
use super::redact::redact_url;
use super::{resolve, secret_path};
use crate::model::{EmailAddress, parse_slug};

#[derive(Clone, Debug)]
pub struct EmailConfig {
    /// The channel's name in plans: `email` for `[email]`, NAME for
    /// `[email.NAME]`.
    pub name: String,
    /// The `From:` mailbox, e.g. `Vigie CPTS <vigie@example.org>`.
    pub from: String,
    /// The directory field this channel delivers to.
    pub address: AddressField,
    pub transport: EmailTransport,
}

/// The directory field an e-mail channel delivers to (`address = "…"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressField {
    /// `email`, the professional's ordinary address.
    Email,
    /// `mssante`, their MSSanté secure mailbox.
    Mssante,
}

impl AddressField {
    /// The field's name in the directory.
    pub fn key(self) -> &'static str {
        match self {
            AddressField::Email => "email",
            AddressField::Mssante => "mssante",
        }
    }
}

#[derive(Clone, Debug)]
pub enum EmailTransport {
    /// Writes one `.eml` file per message into `dir` (the embedded default).
    File {
        dir: PathBuf,
    },
    Smtp(SmtpConfig),
}

#[derive(Clone, Debug, Default)]
pub struct SmtpConfig {
    pub url: String,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    /// Concurrent SMTP connections.
    pub pool: u32,
    /// Messages per second at most.
    pub per_second: u32,
    pub allow_insecure: bool,
    /// PEM certificates trusted for this server, in addition to the
    /// system's (a private relay's authority, MSSanté's IGC-Santé chain).
    pub ca_file: Option<PathBuf>,
    /// PEM certificate presented to the server (TLS client
    /// authentication), with its key `client_key_file` (a secret file).
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
}

/// `[email]` (channel `email`) and its named channels `[email.NAME]`, each
/// with every key of its own (nothing is inherited from `[email]`).
pub(super) fn read_emails(
    ctx: &Ctx<'_>,
    t: Table<'_, '_>,
    base: &Path,
) -> Option<(EmailConfig, BTreeMap<String, EmailConfig>)> {
    let mut named = BTreeMap::new();
    for (name, sub) in t.sub_tables() {
        if let Err(e) = parse_slug(&name.value, "e-mail channel name") {
            ctx.error(&name.loc, e);
        }
        if name.value == "email" {
            ctx.error(
                &name.loc,
                "`[email.email]`: `email` is the channel of [email] itself; name this one otherwise (e.g. mssante)",
            );
        }
        if let Some(c) = read_email(ctx, sub, base, &name.value) {
            named.insert(name.value, c);
        }
    }
    let main = read_email(ctx, t, base, "email")?;
    Some((main, named))
}

fn read_email(ctx: &Ctx<'_>, t: Table<'_, '_>, base: &Path, name: &str) -> Option<EmailConfig> {
    let from = t.req_str("from").and_then(|f| {
        EmailAddress::parse_mailbox(&f.value)
            .map_err(|e| ctx.error(&f.loc, e))
            .ok()
            .map(|_| f.value.clone())
    });
    // `[email]` delivers to `email`; a named channel says which field.
    let address = if name == "email" {
        Some(AddressField::Email)
    } else {
        match t.str("address") {
            None => Some(AddressField::Email),
            Some(a) => match a.value.as_str() {
                "email" => Some(AddressField::Email),
                "mssante" => Some(AddressField::Mssante),
                other => {
                    ctx.error(
                        &a.loc,
                        format!(
                            "unknown directory field \"{other}\" for `address` (use \"email\" or \"mssante\")"
                        ),
                    );
                    None
                }
            },
        }
    };
    let transport = t.req_str("transport");
    let dir = t.str("dir");
    let url = t.str("url");
    let username = t.str("username");
    let password_file = t.str("password_file").map(|s| {
        super::secret_file(
            ctx,
            base,
            &s,
            &format!("e-mail channel `{name}` cannot log in to its server"),
        )
    });
    let pool = t.int("pool");
    let per_second = t.int("per_second");
    let allow_insecure = t.bool("allow_insecure").map(|b| b.value).unwrap_or(false);
    let ca_file = pem_file(ctx, &t, base, "ca_file", Pem::Certificates);
    let client_cert_file = pem_file(ctx, &t, base, "client_cert_file", Pem::Certificates);
    let client_key_file = pem_file(ctx, &t, base, "client_key_file", Pem::Key);
    match (
        t.value_loc("client_cert_file"),
        t.value_loc("client_key_file"),
    ) {
        (Some(loc), None) => ctx.error(
            &loc,
            "`client_cert_file` needs `client_key_file` (the certificate's private key, PEM)",
        ),
        (None, Some(loc)) => ctx.error(
            &loc,
            "`client_key_file` needs `client_cert_file` (the certificate it goes with, PEM)",
        ),
        _ => {}
    }
    let positive = |v: Option<Located<i64>>, key: &str, default: u32, max: i64| match v {
        None => Some(default),
        Some(n) if (1..=max).contains(&n.value) => Some(n.value as u32),
        Some(n) => {
            ctx.error(&n.loc, format!("`{key}` must be between 1 and {max}"));
            None
        }
    };
    let pool = positive(pool, "pool", 8, 10_000);
    let per_second = positive(per_second, "per_second", 50, 1_000_000);
    let transport = transport.and_then(|tr| match tr.value.as_str() {
        "file" => match &dir {
            Some(d) => Some(EmailTransport::File {
                dir: resolve(base, d),
            }),
            None => {
                ctx.error(
                    &tr.loc,
                    "transport \"file\" needs `dir` (where .eml files go)",
                );
                None
            }
        },
        "smtp" => {
            let url = match &url {
                Some(u) => check_smtp_url(&u.value, allow_insecure)
                    .and_then(|()| match &username {
                        Some(_) if cleartext_auth(&u.value) => Err(format!(
                            "AUTH would send the password in clear to \"{}\": remove tls=none (STARTTLS) or use smtps://",
                            redact_url(&u.value)
                        )),
                        _ => Ok(()),
                    })
                    .map_err(|e| ctx.error(&u.loc, e))
                    .ok()
                    .map(|_| u.value.clone()),
                None => {
                    ctx.error(
                        &tr.loc,
                        "transport \"smtp\" needs `url` (e.g. \"smtp://mail.example.org:587\")",
                    );
                    None
                }
            };
            Some(EmailTransport::Smtp(SmtpConfig {
                url: url?,
                username: username.as_ref().map(|u| u.value.clone()),
                password_file: password_file.clone(),
                pool: pool?,
                per_second: per_second?,
                allow_insecure,
                ca_file: ca_file?,
                client_cert_file: client_cert_file?,
                client_key_file: client_key_file?,
            }))
        }
        other => {
            ctx.error(
                &tr.loc,
                format!("unknown e-mail transport \"{other}\" (use \"smtp\" or \"file\")"),
            );
            None
        }
    });
    if let (Some(u), None) = (&username, &password_file) {
        ctx.error(
            &u.loc,
            "`username` needs `password_file` (the password is never written in this file)",
        );
    }
    t.finish();
    Some(EmailConfig {
        name: name.to_string(),
        from: from?,
        address: address?,
        transport: transport?,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Pem {
    Certificates,
    Key,
}

/// An optional PEM file of `[email]`: `Some(None)` when absent,
/// `Some(Some(path))` when it can be read and holds what it should (a key
/// is a secret file: also found in `$CREDENTIALS_DIRECTORY`), `None` after
/// an error at the key's value.
fn pem_file(
    ctx: &Ctx<'_>,
    t: &Table<'_, '_>,
    base: &Path,
    key: &str,
    kind: Pem,
) -> Option<Option<PathBuf>> {
    let Some(v) = t.str(key) else {
        return Some(None);
    };
    let path = resolve(base, &v.value);
    let read = if kind == Pem::Key {
        secret_path(&path)
    } else {
        path.clone()
    };
    let problem = match std::fs::read(&read) {
        Err(e) => Some(format!("cannot read {}: {e}", read.display())),
        Ok(bytes) => pem_problem(&bytes, kind).map(|why| format!("{}: {why}", read.display())),
    };
    match problem {
        Some(p) => {
            ctx.error(&v.loc, p);
            None
        }
        None => Some(Some(path)),
    }
}

/// What is wrong with a PEM file's contents, if anything.
fn pem_problem(bytes: &[u8], kind: Pem) -> Option<String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    match kind {
        Pem::Certificates => {
            let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(bytes).collect();
            match certs {
                Ok(c) if !c.is_empty() => None,
                Ok(_) => {
                    Some("no certificate in it (PEM: -----BEGIN CERTIFICATE-----)".to_string())
                }
                Err(e) => Some(format!("invalid PEM ({e})")),
            }
        }
        Pem::Key => match PrivateKeyDer::from_pem_slice(bytes) {
            Ok(_) => None,
            Err(rustls_pki_types::pem::Error::NoItemsFound) => Some(
                "no private key in it (PEM: -----BEGIN PRIVATE KEY-----, RSA or EC)".to_string(),
            ),
            Err(e) => Some(format!("invalid PEM private key ({e})")),
        },
    }
}

/// Whether AUTH on this SMTP URL could go without TLS to another machine:
/// `?tls=none` to a host other than loopback.
fn cleartext_auth(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let (hostport, query) = rest.split_once('?').unwrap_or((rest, ""));
    query.split('&').any(|p| p == "tls=none") && !is_loopback_host(hostport)
}

/// Whether `host[:port]` (or `[v6]:port`) names this machine.
pub fn is_loopback_host(hostport: &str) -> bool {
    let hostport = hostport.trim_end_matches('/');
    let host = match hostport.rsplit_once(':') {
        Some((h, p)) if !hostport.ends_with(']') && p.parse::<u16>().is_ok() => h,
        _ => hostport,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `smtp://host[:port]` (STARTTLS when offered, required unless the host is
/// a loopback address) or `smtps://host[:port]`; `?tls=none` only with
/// `allow_insecure = true`.
pub fn check_smtp_url(url: &str, allow_insecure: bool) -> Result<(), String> {
    let bad = |why: &str| format!("invalid SMTP url \"{}\": {why}", redact_url(url));
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| bad("write smtp://host:port or smtps://host:port"))?;
    if scheme != "smtp" && scheme != "smtps" {
        return Err(bad("the scheme must be smtp or smtps"));
    }
    let (hostport, query) = match rest.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (rest, None),
    };
    let hostport = hostport.trim_end_matches('/');
    if hostport.is_empty() || hostport.contains('@') {
        return Err(bad(
            "no host (credentials go in username and password_file)",
        ));
    }
    if let Some((_, port)) = hostport.rsplit_once(':')
        && !hostport.ends_with(']')
        && port.parse::<u16>().is_err()
    {
        return Err(bad("invalid port"));
    }
    if let Some(q) = query {
        for pair in q.split('&') {
            match pair {
                "tls=none" if allow_insecure => {}
                "tls=none" => {
                    return Err(bad(
                        "tls=none sends passwords and messages in clear: set allow_insecure = true if you mean it",
                    ));
                }
                "tls=required" | "tls=opportunistic" => {}
                other => return Err(bad(&format!("unknown option `{other}`"))),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{check_smtp_url, cleartext_auth};

    #[test]
    fn smtp_urls_refuse_cleartext_unless_allowed() {
        assert!(check_smtp_url("smtp://127.0.0.1:2525", false).is_ok());
        assert!(check_smtp_url("smtps://mail.example.org", false).is_ok());
        assert!(check_smtp_url("smtp://mail.example.org:25?tls=none", false).is_err());
        assert!(check_smtp_url("smtp://mail.example.org:25?tls=none", true).is_ok());
        assert!(check_smtp_url("http://mail.example.org", false).is_err());
        assert!(check_smtp_url("smtp://user:pw@mail.example.org", false).is_err());
        assert!(check_smtp_url("smtp://mail.example.org:smtp", false).is_err());
    }

    #[test]
    fn auth_in_clear_is_only_for_loopback() {
        assert!(cleartext_auth("smtp://mail.example.org:25?tls=none"));
        assert!(!cleartext_auth("smtp://127.0.0.1:25?tls=none"));
        assert!(!cleartext_auth("smtp://[::1]:25?tls=none"));
        assert!(!cleartext_auth("smtp://mail.example.org:587"));
        assert!(!cleartext_auth("smtps://mail.example.org"));
    }
}
