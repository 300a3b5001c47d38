//! Secrets named by `vigie.toml`: where a secret file is found (systemd
//! credentials first), and how a URL that may carry a key (a webhook's
//! `?apikey=`, `https://user:pass@…`) is shown or scrubbed from a text.

use std::path::{Path, PathBuf};

/// Where a secret file is: `$CREDENTIALS_DIRECTORY/<file name>` when
/// systemd provides it, else the path as written (relative to the config).
pub fn secret_path(configured: &Path) -> PathBuf {
    if let (Some(dir), Some(name)) = (
        std::env::var_os("CREDENTIALS_DIRECTORY"),
        configured.file_name(),
    ) {
        let candidate = Path::new(&dir).join(name);
        if candidate.exists() {
            return candidate;
        }
    }
    configured.to_path_buf()
}

/// A URL as it may be shown in a log line, a delivery reason, an API answer
/// or a page: `scheme://host:port/path`, with the user info and every
/// query value replaced by `***` and the fragment dropped. Webhook
/// gateways take their keys there (`?apikey=`, `https://user:pass@…`); the
/// path is kept to tell endpoints apart. Never fails: what is not a URL
/// is shown as `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "***".to_string();
    };
    let rest = rest.split('#').next().unwrap_or("");
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let host = match authority.rsplit_once('@') {
        Some((_, host)) => format!("***@{host}"),
        None => authority.to_string(),
    };
    let (path, query) = match tail.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (tail, None),
    };
    let mut out = format!("{scheme}://{host}{path}");
    if let Some(q) = query {
        let pairs: Vec<String> = q
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) => format!("{k}=***"),
                None => "***".to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out
}

/// [`redact_url`] that hides the path too (`https://hc-ping.com/***`): for
/// a monitor's URL, whose key is usually the path itself (Healthchecks,
/// Uptime Kuma push monitors).
pub fn redact_url_and_path(url: &str) -> String {
    let shown = redact_url(url);
    let Some((scheme, rest)) = shown.split_once("://") else {
        return shown;
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (path, query) = match tail.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (tail, None),
    };
    let path = if path.len() > 1 { "/***" } else { path };
    match query {
        Some(q) => format!("{scheme}://{authority}{path}?{q}"),
        None => format!("{scheme}://{authority}{path}"),
    }
}

/// The parts of a URL that are secrets (the user info, its password, the
/// query and its values), longest first, to scrub them from a text that
/// may quote them in any form (an error message, a receiver's answer).
/// Values shorter than 4 characters are left: replacing every `1` or `fr`
/// would garble the text and they protect nothing.
pub fn url_secrets(url: &str) -> Vec<String> {
    let mut out = Vec::new();
    let Some((_, rest)) = url.split_once("://") else {
        return vec![url.to_string()];
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if let Some((userinfo, _)) = authority.rsplit_once('@') {
        out.push(userinfo.to_string());
        if let Some((_, password)) = userinfo.split_once(':') {
            out.push(password.to_string());
        }
    }
    if let Some((_, query)) = tail.split_once('?') {
        let query = query.split('#').next().unwrap_or("");
        out.push(query.to_string());
        for pair in query.split('&') {
            out.push(pair.split_once('=').map_or(pair, |(_, v)| v).to_string());
        }
    }
    out.retain(|s| s.chars().count() >= 4);
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out.dedup();
    out
}

/// `text` with `url` and each of its secrets replaced: what a channel may
/// record or log about a call to `url`.
pub fn scrub_url(text: &str, url: &str) -> String {
    let mut out = text.replace(url, &redact_url(url));
    for secret in url_secrets(url) {
        out = out.replace(&secret, "***");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{redact_url, redact_url_and_path, scrub_url};

    #[test]
    fn a_monitor_url_shows_neither_its_path_nor_its_query() {
        assert_eq!(
            redact_url_and_path("https://hc-ping.com/0b5c-uuid?k=1"),
            "https://hc-ping.com/***?k=***"
        );
        assert_eq!(
            redact_url_and_path("http://u:p@127.0.0.1:9/"),
            "http://***@127.0.0.1:9/"
        );
        assert_eq!(redact_url_and_path("pas une url"), "***");
    }

    #[test]
    fn user_info_and_query_values_are_hidden_and_the_endpoint_kept() {
        assert_eq!(
            redact_url("https://vigie:s3cret@sms.example.org:8443/send?apikey=K3Y&to=33#frag"),
            "https://***@sms.example.org:8443/send?apikey=***&to=***"
        );
        assert_eq!(
            redact_url("http://hooks.example.org/room?T0KEN"),
            "http://hooks.example.org/room?***"
        );
        assert_eq!(
            redact_url("https://chat.example.org/hooks/1"),
            "https://chat.example.org/hooks/1"
        );
        assert_eq!(redact_url("not a url with s3cret"), "***");
    }

    #[test]
    fn a_text_quoting_the_url_or_its_secrets_loses_them() {
        let url = "https://vigie:s3cret-pass@sms.example.org/send?apikey=K3Y-123456&to=fr";
        let text = format!("error for url ({url}): server says bad key K3Y-123456 for s3cret-pass");
        let out = scrub_url(&text, url);
        assert!(
            !out.contains("s3cret-pass") && !out.contains("K3Y-123456"),
            "{out}"
        );
        assert!(
            out.contains("https://***@sms.example.org/send?apikey=***&to=***"),
            "{out}"
        );
    }
}
