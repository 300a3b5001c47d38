//! What a failed SMTP send means, said in French for a coordinator: the
//! name not found (DNS), the connection refused (TCP), the TLS handshake,
//! the server's certificate (unknown authority, expired, another name),
//! our client certificate refused, AUTH refused, the server's refusal with
//! its code and text. Used by the delivery reasons of the outbox and by
//! `vigie test-send`.
//!
//! TLS failures are read from the text of the error and its sources
//! (rustls's own words: `UnknownIssuer`, `certificate expired`,
//! `received fatal alert: CertificateRequired`…), since lettre wraps them
//! in boxed errors of its own.

use std::error::Error as StdError;

use super::SmtpFailure;

/// An error and its sources, each once, joined by `: ` (lettre's errors
/// already show their source: a text already contained is not repeated).
pub fn chain_text(e: &(dyn StdError + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let t = s.to_string();
        if !out.contains(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
        source = s.source();
    }
    out
}

/// Whether an error reading the greeting of an implicit-TLS session is the
/// TLS peer's doing (with TLS 1.3 a refused client certificate is said
/// after the handshake: its alert, or a connection closed without one)
/// rather than an SMTP matter.
pub(super) fn is_tls_alert(e: &lettre::transport::smtp::Error) -> bool {
    let text = chain_text(e);
    e.is_tls() || text.contains("alert") || text.contains("close_notify")
}

/// The failure in one French sentence (without the technical detail).
pub fn explain(f: &SmtpFailure) -> String {
    match f {
        SmtpFailure::Dns(host, _) => {
            format!("nom de serveur introuvable (DNS) : « {host} » (vérifiez `url`)")
        }
        SmtpFailure::Connect(target, e) => match e.kind() {
            std::io::ErrorKind::ConnectionRefused => format!(
                "connexion TCP refusée par {target} : serveur arrêté ou mauvais port ?"
            ),
            std::io::ErrorKind::TimedOut => format!(
                "connexion TCP impossible à {target} : pas de réponse (pare-feu ?)"
            ),
            _ => format!("connexion TCP impossible à {target}"),
        },
        SmtpFailure::Tls(e) => explain_tls(e),
        SmtpFailure::Auth(e) => match e.status() {
            Some(code) => format!(
                "identifiants refusés par le serveur (AUTH, code {code}{}) : vérifiez `username` et `password_file`",
                response_text(e)
            ),
            None if chain_text(e).contains("No compatible authentication mechanism") => {
                "le serveur ne propose aucune méthode d'authentification connue (AUTH PLAIN ou LOGIN)"
                    .to_string()
            }
            None => "échec de l'authentification (AUTH)".to_string(),
        },
        SmtpFailure::Smtp(e) if e.is_permanent() => format!(
            "refusé par le serveur (code {}{})",
            e.status().map(|c| c.to_string()).unwrap_or_default(),
            response_text(e)
        ),
        SmtpFailure::Smtp(e) if e.is_transient() => format!(
            "refusé pour le moment par le serveur (code {}{})",
            e.status().map(|c| c.to_string()).unwrap_or_default(),
            response_text(e)
        ),
        SmtpFailure::Smtp(_) | SmtpFailure::Io(_) => {
            "connexion interrompue par le serveur".to_string()
        }
        SmtpFailure::Timeout(d) => format!("pas de réponse du serveur en {} s", d.as_secs()),
        SmtpFailure::Refused(why) => format!("message que ce serveur ne peut pas prendre ({why})"),
    }
}

/// ` : TEXT` of the server's answer, when it said something.
fn response_text(e: &lettre::transport::smtp::Error) -> String {
    match e.source().map(|s| s.to_string()) {
        Some(t) if !t.trim().is_empty() => format!(" : {}", t.trim()),
        _ => String::new(),
    }
}

fn explain_tls(e: &lettre::transport::smtp::Error) -> String {
    let text = chain_text(e);
    let has = |s: &str| text.contains(s);
    if has("UnknownIssuer") || (has("UnknownCA") && !has("alert")) {
        "certificat du serveur émis par une autorité inconnue : ajoutez le certificat de cette autorité dans `ca_file`".into()
    } else if has("certificate expired") || has("invalid peer certificate: Expired") {
        "certificat du serveur expiré".into()
    } else if has("not valid yet") || has("NotValidYet") {
        "certificat du serveur pas encore valide (horloge de cette machine ?)".into()
    } else if has("not valid for name") || has("NotValidForName") {
        "le certificat du serveur n'est pas au nom du serveur de `url` (nom différent)".into()
    } else if has("alert: CertificateRequired") {
        "le serveur exige un certificat client : renseignez `client_cert_file` et `client_key_file`"
            .into()
    } else if has("alert: CertificateExpired") {
        "le serveur refuse notre certificat client : il est expiré".into()
    } else if has("alert: UnknownCA") {
        "le serveur refuse notre certificat client : autorité inconnue de lui".into()
    } else if has("alert: CertificateRevoked") {
        "le serveur refuse notre certificat client : il est révoqué".into()
    } else if has("alert: BadCertificate")
        || has("alert: CertificateUnknown")
        || has("alert: UnsupportedCertificate")
        || has("alert: AccessDenied")
    {
        "le serveur refuse notre certificat client".into()
    } else if has("alert: HandshakeFailure") {
        "échec de la négociation TLS (le serveur refuse notre certificat client, ou aucun chiffrement commun)".into()
    } else if has("close_notify") {
        "le serveur a coupé la connexion juste après la négociation TLS : refuse-t-il notre certificat client (absent, expiré, d'une autre autorité) ?".into()
    } else if e.is_permanent() || e.is_transient() {
        format!(
            "le serveur refuse STARTTLS (code {}{}) : utilisez le port qui le propose (587) ou smtps://",
            e.status().map(|c| c.to_string()).unwrap_or_default(),
            response_text(e)
        )
    } else if has("invalid peer certificate") {
        "certificat du serveur refusé".into()
    } else {
        "échec de la négociation TLS".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_refused_names_the_server() {
        let e = SmtpFailure::Connect(
            "127.0.0.1:1".into(),
            std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        );
        assert!(
            explain(&e).contains("refusée par 127.0.0.1:1"),
            "{}",
            explain(&e)
        );
    }
}
