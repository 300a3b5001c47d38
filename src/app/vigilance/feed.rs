//! Fetching the DPVigilance map: never following a redirect (the API key
//! goes to the configured address only), never reading more than 8 MiB.

use std::time::Duration;

use crate::config::vigilance::VigilanceConfig;

/// The largest answer read from the feed.
const MAX_BODY: usize = 8 << 20;

/// Fetches the map: the body, or why not (in French, no URL, no key).
pub(super) async fn fetch(cfg: &VigilanceConfig) -> Result<String, String> {
    let key = match &cfg.api_key_file {
        Some(p) => {
            let path = crate::config::daemon::secret_path(p);
            Some(
                crate::config::source::read_text(&path)
                    .map_err(|e| format!("clé API illisible ({}) : {e}", path.display()))?
                    .trim()
                    .to_string(),
            )
        }
        None => None,
    };
    // Never follow a redirect: the key goes to the configured address only.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(cfg.every.as_std().min(Duration::from_secs(10)))
        .user_agent(concat!("vigie/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("client HTTP : {}", e.without_url()))?;
    let mut req = client.get(&cfg.url);
    if let Some(k) = key {
        req = req.header("apikey", k);
    }
    let resp = req.send().await.map_err(|e| {
        if e.is_timeout() {
            "pas de réponse à temps".to_string()
        } else {
            format!("réseau : {}", e.without_url())
        }
    })?;
    let status = resp.status();
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        return Err(format!("HTTP {} : clé API refusée", status.as_u16()));
    }
    if status.is_redirection() {
        return Err(format!(
            "HTTP {} : redirection refusée (la clé API n'est envoyée qu'à l'adresse configurée)",
            status.as_u16()
        ));
    }
    if !status.is_success() {
        return Err(format!("HTTP {}", status.as_u16()));
    }
    // A map is some hundreds of KiB: a larger answer is not one.
    let mut body = Vec::new();
    let mut resp = resp;
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| format!("réponse interrompue : {}", e.without_url()))?
    {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(format!(
                "réponse trop grande (plus de {} Mio)",
                MAX_BODY >> 20
            ));
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| "réponse qui n'est pas du texte UTF-8".to_string())
}
