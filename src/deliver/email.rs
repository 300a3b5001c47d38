//! The e-mail channel: SMTP through a pool of lettre connections
//! ([`super::smtp`]), or `.eml` files in a folder (the embedded default).
//!
//! Messages are plain text, or multipart/alternative text and HTML when
//! the template has HTML; they carry a
//! `Message-ID` derived from the delivery id and its creation instant (and
//! the installation id, so two installations never collide) and
//! `Auto-Submitted: auto-generated`
//! (RFC 3834: out-of-office robots do not answer them).
//!
//! Header text comes from files and forms (a name in the directory, a
//! subject rendered with an operator's note): it is put on one line
//! (control characters and line breaks become spaces, so nothing can add a
//! header) and cut with an ellipsis — subjects at 200 characters, names at
//! 128 — so that no header line exceeds RFC 5322's 998 octets even where
//! lettre cannot fold (one long word); lettre encodes (RFC 2047) and folds
//! the rest at 78.

use std::path::PathBuf;
use std::time::Duration;

use lettre::Address;
use lettre::Message;
use lettre::address::Envelope;
use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart, header};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Identity, Tls, TlsParameters};

use super::channel::{Channel, SendError, message_of};
use super::smtp::SmtpPool;
use crate::config::daemon::{EmailConfig, EmailTransport, SmtpConfig, secret_path};
use crate::store::outbox::DeliveryRow;

#[derive(Clone, Debug)]
struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }
    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted)
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-generated".to_string())
    }
}

enum Transport {
    File(PathBuf),
    Smtp(SmtpPool),
}

pub struct EmailChannel {
    /// `email`, or the NAME of `[email.NAME]`.
    name: String,
    from: Mailbox,
    /// The domain of `from`, for Message-IDs.
    domain: String,
    install_id: String,
    transport: Transport,
}

#[derive(Debug, thiserror::Error)]
pub enum EmailSetupError {
    #[error("invalid From address \"{0}\"")]
    From(String),
    #[error("cannot read the SMTP password file {path}: {source}")]
    Password {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid SMTP url \"{0}\"")]
    Url(String),
    #[error("SMTP setup: {0}")]
    Smtp(#[source] lettre::transport::smtp::Error),
    #[error("cannot read {path}: {source}")]
    TlsFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {why}")]
    Pem { path: PathBuf, why: String },
    #[error("cannot create the outbox folder {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl EmailChannel {
    pub fn new(cfg: &EmailConfig, install_id: &str) -> Result<EmailChannel, EmailSetupError> {
        let from: Mailbox = cfg
            .from
            .parse()
            .map_err(|_| EmailSetupError::From(cfg.from.clone()))?;
        let domain = from.email.domain().to_string();
        let transport = match &cfg.transport {
            EmailTransport::File { dir } => {
                use std::os::unix::fs::DirBuilderExt;
                // The messages carry names, addresses and response links:
                // for the daemon's user only, whatever the umask.
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(|source| EmailSetupError::Dir {
                        path: dir.clone(),
                        source,
                    })?;
                Transport::File(dir.clone())
            }
            EmailTransport::Smtp(s) => Transport::Smtp(smtp_transport(s)?),
        };
        Ok(EmailChannel {
            name: cfg.name.clone(),
            from,
            domain,
            install_id: install_id.to_string(),
            transport,
        })
    }

    /// `<vigie.INSTALL.ID.CREATED@domain>`: the same for every attempt of a
    /// delivery (a receiver drops a message sent twice after a crash), and
    /// never the same for two deliveries, even when a database restored
    /// from an older copy hands a delivery id out again: mail systems drop
    /// a message whose Message-ID they have already seen, and a new alert
    /// must not be dropped as a copy of a lost one. CREATED is the digits
    /// of the delivery's creation instant.
    pub fn message_id(&self, d: &DeliveryRow) -> String {
        let created: String = d.created_at.chars().filter(char::is_ascii_digit).collect();
        format!(
            "<vigie.{}.{}.{created}@{}>",
            self.install_id, d.id, self.domain
        )
    }

    fn build(&self, d: &DeliveryRow) -> Result<Message, SendError> {
        let address = d
            .address
            .as_deref()
            .ok_or_else(|| SendError::permanent("no e-mail address"))?;
        // Built from its parts, not parsed from `"name" <address>`: the
        // address alone is checked, lettre quotes or encodes the name.
        let address = address
            .parse::<Address>()
            .map_err(|e| SendError::permanent(format!("invalid address {address}: {e}")))?;
        // The envelope is given, not read back from the From and To
        // headers lettre has just written (two parses per message).
        let envelope = Envelope::new(Some(self.from.email.clone()), vec![address.clone()])
            .map_err(|e| SendError::permanent(format!("cannot build the envelope: {e}")))?;
        let to = Mailbox::new(
            Some(clean_name(&d.recipient_name)).filter(|n| !n.is_empty()),
            address,
        );
        let texts = message_of(d)?;
        let builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .envelope(envelope)
            .subject(header_text(&texts.subject, SUBJECT_MAX))
            .message_id(Some(self.message_id(d)))
            .header(AutoSubmitted);
        let text = SinglePart::builder()
            .header(header::ContentType::TEXT_PLAIN)
            .body(texts.body_text.clone());
        let built = match &texts.body_html {
            Some(html) => builder.multipart(
                MultiPart::alternative().singlepart(text).singlepart(
                    SinglePart::builder()
                        .header(header::ContentType::TEXT_HTML)
                        .body(html.clone()),
                ),
            ),
            None => builder.singlepart(text),
        };
        built.map_err(|e| SendError::permanent(format!("cannot build the message: {e}")))
    }
}

/// The longest subject sent, in characters: far more than a mail client
/// shows, short enough that a subject made of one word still fits a header
/// line (200 characters of at most 4 octets).
const SUBJECT_MAX: usize = 200;
/// The longest recipient name put in `To`, in characters.
const NAME_MAX: usize = 128;

/// `s` as one line of header text: control characters (CR, LF, tab…) and
/// runs of white space become one space; longer than `max` characters, it
/// is cut and ends with `…`.
fn header_text(s: &str, max: usize) -> String {
    let line = s
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if line.chars().count() <= max {
        return line;
    }
    let mut cut: String = line.chars().take(max.saturating_sub(1)).collect();
    cut.truncate(cut.trim_end().len());
    cut.push('…');
    cut
}

/// A recipient's name for `To`: one line, at most [`NAME_MAX`] characters,
/// without the characters that could close a quoted name or open an
/// address.
fn clean_name(name: &str) -> String {
    header_text(name, NAME_MAX)
        .chars()
        .filter(|c| !matches!(c, '"' | '\\' | '<' | '>' | '\r' | '\n'))
        .collect()
}

fn smtp_transport(s: &SmtpConfig) -> Result<SmtpPool, EmailSetupError> {
    let bad = || EmailSetupError::Url(crate::config::daemon::redact_url(&s.url));
    let (scheme, rest) = s.url.split_once("://").ok_or_else(bad)?;
    let (hostport, query) = rest.split_once('?').unwrap_or((rest, ""));
    let hostport = hostport.trim_end_matches('/');
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if !hostport.ends_with(']') => (h, Some(p.parse::<u16>().map_err(|_| bad())?)),
        _ => (hostport, None),
    };
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let loopback = crate::config::daemon::is_loopback_host(hostport);
    let tls_none = query.split('&').any(|p| p == "tls=none");
    let params = || tls_parameters(&host, s);
    let tls = match scheme {
        "smtps" => Tls::Wrapper(params()?),
        _ if tls_none && s.allow_insecure => Tls::None,
        // STARTTLS when offered, required unless the server is on this machine.
        _ if loopback => Tls::Opportunistic(params()?),
        _ => Tls::Required(params()?),
    };
    let default_port = if scheme == "smtps" { 465 } else { 587 };
    let mut credentials = None;
    if let (Some(user), Some(pw)) = (&s.username, &s.password_file) {
        let path = secret_path(pw);
        let password = crate::config::source::read_text(&path).map_err(|source| {
            EmailSetupError::Password {
                path: path.clone(),
                source,
            }
        })?;
        credentials = Some(Credentials::new(
            user.clone(),
            password.trim_end_matches(['\r', '\n']).to_string(),
        ));
    }
    Ok(SmtpPool::new(
        host,
        port.unwrap_or(default_port),
        tls,
        credentials,
        Duration::from_secs(30),
        s.pool as usize,
    ))
}

/// The TLS settings for `host`: the system's authorities plus those of
/// `ca_file`, and the client certificate when configured.
fn tls_parameters(host: &str, s: &SmtpConfig) -> Result<TlsParameters, EmailSetupError> {
    let read = |path: &PathBuf| {
        std::fs::read(path).map_err(|source| EmailSetupError::TlsFile {
            path: path.clone(),
            source,
        })
    };
    let pem = |path: &PathBuf, why: String| EmailSetupError::Pem {
        path: path.clone(),
        why,
    };
    let mut b = TlsParameters::builder(host.to_string());
    if let Some(ca) = &s.ca_file {
        let cert = Certificate::from_pem(&read(ca)?).map_err(|e| pem(ca, e.to_string()))?;
        b = b.add_root_certificate(cert);
    }
    if let (Some(cert), Some(key)) = (&s.client_cert_file, &s.client_key_file) {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject;
        let key = secret_path(key);
        // lettre 0.11's rustls identity takes the certificate's bytes as
        // DER: the first certificate of the file, decoded here.
        let der = CertificateDer::pem_slice_iter(&read(cert)?)
            .next()
            .ok_or_else(|| pem(cert, "no certificate in it".into()))?
            .map_err(|e| pem(cert, e.to_string()))?;
        let identity =
            Identity::from_pem(der.as_ref(), &read(&key)?).map_err(|e| pem(&key, e.to_string()))?;
        b = b.identify_with(identity);
    }
    b.build().map_err(EmailSetupError::Smtp)
}

#[async_trait::async_trait]
impl Channel for EmailChannel {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, d: &DeliveryRow) -> Result<(), SendError> {
        let msg = self.build(d)?;
        match &self.transport {
            Transport::File(dir) => {
                let path = dir.join(format!("{}.eml", d.id));
                let tmp = dir.join(format!(".{}.eml.tmp", d.id));
                let bytes = msg.formatted();
                // Written (mode 0600) then renamed: a reader never sees
                // half a message.
                let write = async {
                    use tokio::io::AsyncWriteExt;
                    let mut f = tokio::fs::OpenOptions::new()
                        .write(true)
                        .create(true)
                        .truncate(true)
                        .mode(0o600)
                        .open(&tmp)
                        .await?;
                    f.write_all(&bytes).await?;
                    f.flush().await?;
                    drop(f);
                    tokio::fs::rename(&tmp, &path).await
                };
                write.await.map_err(|e| {
                    SendError::transient(format!("cannot write {}: {e}", path.display()))
                })
            }
            Transport::Smtp(pool) => pool
                .send(msg.envelope(), &msg.formatted())
                .await
                .map_err(send_error),
        }
    }

    fn chain(&self) -> usize {
        match self.transport {
            Transport::Smtp(_) => CHAIN,
            Transport::File(_) => 1,
        }
    }

    async fn send_chain(&self, ds: &[DeliveryRow], each: super::channel::Each<'_>) {
        let Transport::Smtp(pool) = &self.transport else {
            return super::channel::one_by_one(self, ds, each).await;
        };
        let mut built = Vec::with_capacity(ds.len());
        for d in ds {
            match self.build(d) {
                Ok(m) => {
                    let body = m.formatted();
                    built.push((m, body));
                }
                // Rare (an address the directory let through): no chain.
                Err(_) => return super::channel::one_by_one(self, ds, each).await,
            }
        }
        let msgs: Vec<(&lettre::address::Envelope, &[u8])> = built
            .iter()
            .map(|(m, b)| (m.envelope(), b.as_slice()))
            .collect();
        pool.send_chain(&msgs, &mut |i, r| each(i, r.map_err(send_error)))
            .await
    }
}

/// Messages sent on one SMTP connection one after the other when the
/// outbox has a backlog (see [`SmtpPool::send_chain`]).
const CHAIN: usize = 8;

/// A failed send as the outbox records it: the French explanation, then
/// the technical detail. A refusal of the message (5xx to MAIL, RCPT or
/// DATA, a message this server cannot take) fails at once; a failure to
/// set the session up (DNS, TCP, TLS, certificate, AUTH) concerns the
/// server or our configuration, not the message: retried, the channel
/// paused and probed, so that the messages go out once it is fixed.
fn send_error(e: super::smtp::SmtpFailure) -> SendError {
    let text = format!(
        "SMTP : {} — {}",
        super::smtp::diagnose::explain(&e),
        super::smtp::diagnose::chain_text(&e)
    );
    if e.is_permanent() {
        SendError::permanent(text)
    } else if e.is_setup() {
        SendError::unreachable(text)
    } else {
        SendError::transient(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::daemon::EmailConfig;
    use crate::store::outbox::Message as Texts;

    fn delivery(name: &str, address: &str) -> DeliveryRow {
        DeliveryRow {
            id: 1,
            event_id: None,
            step_id: None,
            recipient_id: None,
            recipient_name: name.into(),
            channel: "email".into(),
            address: Some(address.into()),
            priority: 0,
            state: "sending".into(),
            message: Some(Texts {
                subject: "Canicule".into(),
                body_text: "Buvez.".into(),
                body_html: None,
                payload: None,
            }),
            reason: None,
            attempts: 0,
            created_at: "2026-06-15T08:00:00.000Z".into(),
            next_attempt_at: "2026-06-15T08:00:00.000Z".into(),
            sent_at: None,
            provider_id: None,
        }
    }

    /// A channel writing `.eml` files into `dir` (only `build` is used).
    fn file_channel(dir: &std::path::Path) -> EmailChannel {
        EmailChannel::new(
            &EmailConfig {
                name: "email".into(),
                address: crate::config::daemon::AddressField::Email,
                from: "Vigie <vigie@example.org>".into(),
                transport: EmailTransport::File {
                    dir: dir.to_path_buf(),
                },
            },
            "test",
        )
        .unwrap()
    }

    /// The `To:` header as sent, read back as mailboxes.
    fn to_of(name: &str, address: &str) -> (String, Vec<Mailbox>) {
        let dir = tempfile::tempdir().unwrap();
        let channel = file_channel(dir.path());
        let m = channel.build(&delivery(name, address)).unwrap();
        let text = String::from_utf8(m.formatted()).unwrap();
        let to = text
            .lines()
            .find(|l| l.starts_with("To: "))
            .unwrap()
            .trim_start_matches("To: ")
            .to_string();
        let parsed = m.headers().get::<header::To>().unwrap();
        (
            to,
            lettre::message::Mailboxes::from(parsed)
                .into_iter()
                .collect(),
        )
    }

    #[test]
    fn the_recipient_is_one_mailbox_whatever_the_name() {
        let (to, boxes) = to_of("Dupont, Jean", "jean.dupont@example.org");
        assert!(to.ends_with(" <jean.dupont@example.org>"), "{to}");
        assert_eq!(boxes.len(), 1);
        assert_eq!(boxes[0].name.as_deref(), Some("Dupont, Jean"));
        // A name that tries to close its quotes and add an address.
        let (to, boxes) = to_of("Eve\" <eve@evil.example>, \"x", "claire@example.org");
        assert_eq!(boxes.len(), 1, "{to}");
        assert_eq!(boxes[0].email.to_string(), "claire@example.org");
        assert!(
            !to.contains('<') || to.ends_with("<claire@example.org>"),
            "{to}"
        );
        // Accents are encoded (RFC 2047), the address kept as is.
        let (to, boxes) = to_of("Hélène Fuchs", "helene@example.org");
        assert!(to.starts_with("=?utf-8?"), "{to}");
        assert_eq!(boxes[0].name.as_deref(), Some("Hélène Fuchs"));
        // No name: the address alone.
        let (to, _) = to_of("", "bureau@example.org");
        assert_eq!(to, "bureau@example.org");
    }

    #[test]
    fn a_text_only_message_is_a_single_text_part() {
        let dir = tempfile::tempdir().unwrap();
        let channel = file_channel(dir.path());
        let text = String::from_utf8(
            channel
                .build(&delivery("Claire", "claire@example.org"))
                .unwrap()
                .formatted(),
        )
        .unwrap();
        assert!(
            text.contains("Content-Type: text/plain; charset=utf-8"),
            "{text}"
        );
        assert!(!text.contains("multipart/"), "{text}");
        let mut html = delivery("Claire", "claire@example.org");
        html.message.as_mut().unwrap().body_html = Some("<p>Buvez.</p>".into());
        let text = String::from_utf8(channel.build(&html).unwrap().formatted()).unwrap();
        assert!(text.contains("multipart/alternative"), "{text}");
    }

    #[test]
    fn header_text_is_one_line_and_cut_with_an_ellipsis() {
        assert_eq!(
            header_text("Canicule\r\nBcc: x@example.net\tfin", 200),
            "Canicule Bcc: x@example.net fin"
        );
        assert_eq!(header_text("  Claire   Martin ", 200), "Claire Martin");
        let long = header_text(&"é".repeat(500), 200);
        assert_eq!(long.chars().count(), 200);
        assert!(long.ends_with('…'));
        assert_eq!(header_text("abc def", 5), "abc…");
    }
}
