//! `vigie test-send CHANNEL ADDRESS`: one message marked `[TEST]` through a
//! channel of the daemon's configuration (to an SMS channel, a phone number,
//! normalised as answers by SMS are: `06 12 34 56 78` → `+33612345678`), built by the daemon's own code
//! ([`crate::deliver::channels`]), to check a mail server, an MSSanté
//! mailbox or a gateway before an alert needs it. Says in French what
//! failed (the outbox's own explanation: DNS, TCP, TLS, certificate, AUTH,
//! the server's refusal with its code, the HTTP status) and whether the
//! daemon would retry it; exit 0 only when the server accepted the message.

use std::io::Write;
use std::path::Path;

use crate::config;
use crate::deliver::channels;
use crate::store::outbox::{DeliveryRow, Message};

/// Exit codes: 0 accepted, 1 failed, 2 unusable configuration or unknown
/// channel.
pub fn test_send(path: &Path, channel: &str, address: &str, out: &mut dyn Write) -> i32 {
    let mut diags = config::Diagnostics::default();
    let Some(cfg) = config::daemon::load(path, &mut diags) else {
        for d in diags.errors() {
            let _ = writeln!(out, "{d}");
        }
        let _ = writeln!(
            out,
            "Configuration inutilisable ({}) : rien n'a été envoyé.",
            path.display()
        );
        return 2;
    };
    let built = match channels::build_one(&cfg, channel, "test-send") {
        Ok(Some(b)) => b,
        Ok(None) => {
            let _ = writeln!(
                out,
                "Canal « {channel} » inconnu. Canaux de {} : {}.",
                path.display(),
                channels::names(&cfg).join(", ")
            );
            return 2;
        }
        Err(e) => {
            let _ = writeln!(
                out,
                "Canal « {channel} » impossible à préparer : {e}\nRien n'a été envoyé."
            );
            return 2;
        }
    };
    // An SMS channel's number as the inbound route reads one: E.164, or
    // the French national form (`06 12 34 56 78`).
    let is_sms = cfg.sms.contains_key(channel);
    let normalised;
    let address = if is_sms {
        match crate::model::Phone::normalise(address).filter(|_| !address.contains('@')) {
            Some(n) => {
                normalised = n;
                normalised.as_str()
            }
            None => {
                let _ = writeln!(
                    out,
                    "« {address} » n'est pas un numéro de téléphone : le canal « {channel} » envoie des SMS. \
                     Donnez un numéro, par exemple « 06 12 34 56 78 » ou « +33612345678 ».\nRien n'a été envoyé."
                );
                return 2;
            }
        }
    } else if cfg.email_channel(channel).is_some() {
        if crate::model::EmailAddress::parse(address).is_err() {
            let _ = writeln!(
                out,
                "« {address} » n'est pas une adresse e-mail valable : le canal « {channel} » envoie des e-mails. \
                 Donnez une adresse, par exemple « vous@exemple.fr ».\nRien n'a été envoyé."
            );
            return 2;
        }
        address
    } else {
        address
    };
    let now = chrono::Utc::now();
    let subject = format!("[TEST] Vigie — essai du canal « {channel} »");
    let text = format!(
        "[TEST] Message d'essai de Vigie ({}), envoyé par le canal « {channel} » avec `vigie test-send`.\n\
         Aucune alerte n'est en cours : ce message vérifie seulement que le canal fonctionne.\n\
         Il n'appelle aucune réponse.\n",
        cfg.name
    );
    // An SMS channel sends the text itself (cut to its segments); the
    // others the JSON a webhook receives (e-mail ignores it).
    let text = if is_sms {
        format!(
            "[TEST] Vigie ({}) : essai du canal « {channel} ». Aucune alerte en cours, ne répondez pas.",
            cfg.name
        )
    } else {
        text
    };
    let payload = (!is_sms).then(|| {
        serde_json::json!({
            "cpts": cfg.name,
            "test": true,
            "subject": subject,
            "text": text,
            "recipient": {"id": null, "name": "", "phone": address},
        })
        .to_string()
    });
    let delivery = DeliveryRow {
        id: now.timestamp_millis(),
        event_id: None,
        step_id: None,
        recipient_id: None,
        recipient_name: String::new(),
        channel: channel.to_string(),
        address: Some(address.to_string()),
        priority: 0,
        state: "sending".into(),
        message: Some(Message {
            subject,
            body_text: text,
            body_html: None,
            payload,
        }),
        reason: None,
        attempts: 0,
        created_at: crate::store::ts(now),
        next_attempt_at: crate::store::ts(now),
        sent_at: None,
        provider_id: None,
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(out, "Impossible de démarrer : {e}");
            return 2;
        }
    };
    let (ch, _, _) = built;
    let _ = writeln!(
        out,
        "Envoi d'un message de test à {address} par le canal « {channel} »…"
    );
    match rt.block_on(ch.send(&delivery)) {
        Ok(()) => {
            let _ = writeln!(
                out,
                "Accepté par le serveur : le canal « {channel} » fonctionne (vérifiez la réception à {address})."
            );
            0
        }
        Err(e) => {
            let _ = writeln!(out, "Échec : {}", e.message);
            let nature = if !e.retryable {
                "Échec définitif : le daemon n'essaierait pas à nouveau ce message."
            } else if e.unreachable {
                "Le daemon mettrait ce canal en pause et réessaierait (jusqu'à 24 h) : corrigez la configuration ou le serveur, les messages en attente partiront alors."
            } else {
                "Échec temporaire : le daemon réessaierait ce message (jusqu'à 24 h)."
            };
            let _ = writeln!(out, "{nature}");
            1
        }
    }
}
