//! Mail servers as providers run them, on loopback: a submission server that
//! requires STARTTLS then AUTH, and an implicit-TLS server that requires a
//! client certificate (an MSSanté operator's), both real (Python's aiosmtpd,
//! tests/fixtures/smtp_tls.py) with a certificate authority of the test's own
//! (made with `openssl`, as a CPTS's relay or the IGC-Santé is: in no public
//! trust store). A message reaches each; a wrong authority, a missing or
//! expired client certificate and a wrong password each fail with a reason
//! a coordinator understands, through `vigie test-send` and through the
//! outbox (the delivery's state and reason).
//!
//! The certificates are made with the `openssl` command rather than the
//! `rcgen` crate: the same tool a sysadmin uses (the commands read like
//! INSTALL.md's), no new crate to fetch and build, and an expired
//! certificate is one option (`-days -1`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use vigie::config::Diagnostics;
use vigie::deliver::{Outbox, StepOutcome};
use vigie::schedule::clock::ManualClock;
use vigie::store::Store;
use vigie::store::outbox;

use crate::smtp::Received;
use crate::support::{Sandbox, repo, run_vigie};

/// A Python 3 with aiosmtpd: `python3`, else the system's. `None` (the
/// test is skipped, said on stderr) only outside CI: with `CI=true` a
/// missing aiosmtpd fails the test (.ci/run installs python3-aiosmtpd).
fn python() -> Option<&'static str> {
    for p in ["python3", "/usr/bin/python3"] {
        let ok = Command::new(p)
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(p);
        }
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "python3-aiosmtpd is missing (apt-get install python3-aiosmtpd), .ci/run installs it"
        );
    }
    eprintln!("skipped: no python3 with aiosmtpd (apt-get install python3-aiosmtpd)");
    None
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Certificates made for one test: an authority `ca`, another one
/// `other-ca` (a wrong `ca_file`), the server's `server` (localhost and
/// 127.0.0.1), a client certificate `client`, an expired one
/// `client-expired`.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new(dir: &Path) -> Pki {
        let dir = dir.join("pki");
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.as_path();
        for ca in ["ca", "other-ca"] {
            openssl(
                d,
                &[
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-nodes",
                    "-keyout",
                    &format!("{ca}.key"),
                    "-out",
                    &format!("{ca}.pem"),
                    "-subj",
                    &format!("/CN=Vigie test {ca}"),
                    "-days",
                    "2",
                ],
            );
        }
        std::fs::write(
            d.join("server.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        std::fs::write(d.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
        for (name, ext, days) in [
            ("server", "server.ext", "2"),
            ("client", "client.ext", "2"),
            ("client-expired", "client.ext", "-1"),
        ] {
            openssl(
                d,
                &[
                    "req",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-nodes",
                    "-keyout",
                    &format!("{name}.key"),
                    "-out",
                    &format!("{name}.csr"),
                    "-subj",
                    &format!("/CN=vigie-{name}"),
                ],
            );
            openssl(
                d,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &format!("{name}.csr"),
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-days",
                    days,
                    "-extfile",
                    ext,
                    "-out",
                    &format!("{name}.pem"),
                ],
            );
        }
        Pki { dir }
    }

    fn file(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

/// The Python server, stopped when dropped.
struct TlsServer {
    child: Child,
    port: u16,
    outdir: PathBuf,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TlsServer {
    fn start(python: &str, pki: &Pki, outdir: &Path, mode: &str, extra: &[&str]) -> TlsServer {
        use std::io::BufRead;
        std::fs::create_dir_all(outdir).unwrap();
        let mut child = Command::new(python)
            .arg(repo().join("tests/fixtures/smtp_tls.py"))
            .arg(mode)
            .arg(pki.file("server.pem"))
            .arg(pki.file("server.key"))
            .arg(outdir)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the SMTP test server");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("the SMTP test server did not start: {line:?}"));
        TlsServer {
            child,
            port,
            outdir: outdir.to_path_buf(),
        }
    }

    /// The messages received so far, in order.
    fn messages(&self) -> Vec<Received> {
        let mut files: Vec<(u32, PathBuf)> = std::fs::read_dir(&self.outdir)
            .unwrap()
            .filter_map(|e| {
                let p = e.ok()?.path();
                let n = p.file_stem()?.to_str()?.parse().ok()?;
                (p.extension()? == "eml").then_some((n, p))
            })
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|(_, p)| {
                let text = std::fs::read_to_string(p).unwrap();
                let (head, data) = text.split_once("\r\n\r\n").unwrap();
                let mut from = String::new();
                let mut to = Vec::new();
                for l in head.lines() {
                    if let Some(f) = l.strip_prefix("MAIL FROM:") {
                        from = f.trim_matches(['<', '>']).to_string();
                    } else if let Some(t) = l.strip_prefix("RCPT TO:") {
                        to.push(t.trim_matches(['<', '>']).to_string());
                    }
                }
                Received {
                    from,
                    to,
                    data: data.to_string(),
                }
            })
            .collect()
    }
}

/// The shipped configuration with `[email]` replaced by `email` (its keys)
/// and `extra` appended (e.g. an `[email.mssante]`).
fn sandbox(email: &str, extra: &str) -> Sandbox {
    let sb = Sandbox::shipped();
    sb.edit(
        "config/vigie.toml",
        "transport = \"file\"\nfrom = \"Vigie CPTS Thur Doller <vigie@example.org>\"\ndir = \"../var/outbox\"\n",
        email,
    );
    let text = sb.read("config/vigie.toml");
    sb.write("config/vigie.toml", &format!("{text}\n{extra}"));
    sb
}

fn test_send(sb: &Sandbox, channel: &str, to: &str) -> (i32, String) {
    crate::support::test_send(&sb.config(), channel, to)
}

/// STARTTLS + AUTH on the submission server, trusting `ca`, with `password`.
fn submission(server: &TlsServer, sb_dir: &Path, ca: &str, password: &str) -> String {
    let file = sb_dir.join(format!("smtp-password-{password}"));
    std::fs::write(&file, format!("{password}\n")).unwrap();
    format!(
        "transport = \"smtp\"\nfrom = \"Vigie CPTS Thur Doller <vigie@example.org>\"\n\
         url = \"smtp://127.0.0.1:{}\"\nca_file = \"{ca}\"\nusername = \"vigie\"\n\
         password_file = \"{}\"\n",
        server.port,
        file.display()
    )
}

/// `[email.mssante]` on the implicit-TLS server, trusting `ca`, with the
/// client certificate `cert` (none when empty).
fn mssante(server: &TlsServer, pki: &Pki, ca: &str, cert: &str) -> String {
    let mut s = format!(
        "[email.mssante]\ntransport = \"smtp\"\naddress = \"mssante\"\n\
         from = \"CPTS Thur Doller <cpts-thur-doller@cpts.mssante.fr>\"\n\
         url = \"smtps://127.0.0.1:{}\"\nca_file = \"{}\"\n",
        server.port,
        pki.file(ca)
    );
    if !cert.is_empty() {
        s.push_str(&format!(
            "client_cert_file = \"{}\"\nclient_key_file = \"{}\"\n",
            pki.file(&format!("{cert}.pem")),
            pki.file(&format!("{cert}.key"))
        ));
    }
    s
}

/// [`sandbox`] with `[email]` writing to files and [`mssante`] trusting
/// `ca.pem`, with the client certificate `cert`.
fn mssante_sandbox(server: &TlsServer, pki: &Pki, cert: &str) -> Sandbox {
    sandbox(
        "transport = \"file\"\nfrom = \"Vigie <vigie@example.org>\"\ndir = \"../var/outbox\"\n",
        &mssante(server, pki, "ca.pem", cert),
    )
}

/// `got` is one message, from `from` to Claire's MSSanté mailbox (`out`
/// said when not); its subject.
fn only_to_claire(got: &[Received], from: &str, out: &str) -> String {
    assert_eq!(got.len(), 1, "{out}");
    assert_eq!(
        got[0].to,
        vec!["claire.martin@medecin.mssante.fr".to_string()]
    );
    assert_eq!(got[0].from, from);
    got[0].subject()
}

#[test]
fn test_send_through_starttls_and_auth_reaches_the_server() {
    let Some(py) = python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(tmp.path());
    let server = TlsServer::start(
        py,
        &pki,
        &tmp.path().join("in"),
        "starttls-auth",
        &["vigie", "s3cret"],
    );
    let sb = sandbox(
        &submission(&server, tmp.path(), &pki.file("ca.pem"), "s3cret"),
        "",
    );
    let (code, out) = test_send(&sb, "email", "claire.martin@example.org");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Accepté par le serveur"), "{out}");
    let got = server.messages();
    assert_eq!(got.len(), 1, "{out}");
    assert_eq!(got[0].to, vec!["claire.martin@example.org".to_string()]);
    assert_eq!(got[0].from, "vigie@example.org");
    assert!(
        got[0].subject().starts_with("[TEST]"),
        "{}",
        got[0].subject()
    );
    assert!(
        got[0].text().starts_with("[TEST] Message d'essai"),
        "{}",
        got[0].text()
    );

    // A wrong password: AUTH refused, said with the server's code.
    let sb = sandbox(
        &submission(&server, tmp.path(), &pki.file("ca.pem"), "wrong"),
        "",
    );
    let (code, out) = test_send(&sb, "email", "claire.martin@example.org");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("identifiants refusés"), "{out}");
    assert!(out.contains("535"), "{out}");
    // An authority that did not issue the server's certificate.
    let sb = sandbox(
        &submission(&server, tmp.path(), &pki.file("other-ca.pem"), "s3cret"),
        "",
    );
    let (code, out) = test_send(&sb, "email", "claire.martin@example.org");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("autorité inconnue"), "{out}");
    assert!(out.contains("ca_file"), "{out}");
    assert_eq!(server.messages().len(), 1, "nothing else went out");
}

#[test]
fn test_send_through_an_mssante_channel_presents_the_client_certificate() {
    let Some(py) = python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(tmp.path());
    let ca = pki.file("ca.pem");
    let server = TlsServer::start(py, &pki, &tmp.path().join("in"), "implicit-client", &[&ca]);
    let sb = mssante_sandbox(&server, &pki, "client");
    let (code, out) = test_send(&sb, "mssante", "claire.martin@medecin.mssante.fr");
    assert_eq!(code, 0, "{out}");
    let subject = only_to_claire(&server.messages(), "cpts-thur-doller@cpts.mssante.fr", &out);
    assert!(subject.starts_with("[TEST]"), "{subject}");

    for (cert, said) in [
        ("", "exige un certificat client"),
        ("client-expired", "certificat client : il est expiré"),
    ] {
        let sb = mssante_sandbox(&server, &pki, cert);
        let (code, out) = test_send(&sb, "mssante", "claire.martin@medecin.mssante.fr");
        assert_eq!(code, 1, "{cert}: {out}");
        assert!(out.contains(said), "{cert}: {out}");
        assert!(out.contains("réessaierait"), "{cert}: {out}");
    }
    assert_eq!(server.messages().len(), 1, "nothing else went out");

    // An unknown channel names those there are.
    let (code, out) = test_send(&sb, "msante", "x@example.org");
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("email, mssante"), "{out}");
}

/// One delivery through the outbox on the channel `channel` of `sb`'s
/// configuration, sent once: its state and reason.
async fn through_the_outbox(sb: &Sandbox, channel: &str, to: &str) -> (String, String) {
    let mut diags = Diagnostics::default();
    let cfg = vigie::config::daemon::load(&sb.config(), &mut diags)
        .unwrap_or_else(|| panic!("{diags:?}"));
    let built = vigie::deliver::channels::build_one(&cfg, channel, "test")
        .unwrap()
        .expect("the channel");
    let store = Store::open(&sb.path().join("vigie.db")).unwrap();
    let t0 = Utc::now();
    let clock = Arc::new(ManualClock::new(t0));
    let outbox = Outbox::new(store.clone(), vec![built], clock, Arc::default());
    let id = crate::support::claire_delivery(&store, "cmartin", channel, to, t0).await;
    assert_eq!(outbox.step().await.unwrap().claimed, 1);
    assert!(
        outbox.settled(Duration::from_secs(30)).await,
        "the send finished"
    );
    let _: StepOutcome = outbox.step().await.unwrap();
    let d = store
        .call(move |c| outbox::get(c, id))
        .await
        .unwrap()
        .expect("the delivery");
    (d.state, d.reason.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_records_why_a_tls_server_refused() {
    let Some(py) = python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(tmp.path());
    let ca = pki.file("ca.pem");
    let submit = TlsServer::start(
        py,
        &pki,
        &tmp.path().join("submit"),
        "starttls-auth",
        &["vigie", "s3cret"],
    );
    let mss = TlsServer::start(py, &pki, &tmp.path().join("mss"), "implicit-client", &[&ca]);
    let to = "claire.martin@medecin.mssante.fr";
    let good = sandbox(
        &submission(&submit, tmp.path(), &ca, "s3cret"),
        &mssante(&mss, &pki, "ca.pem", "client"),
    );
    assert_eq!(
        through_the_outbox(&good, "email", "claire.martin@example.org").await,
        ("sent".to_string(), String::new())
    );
    assert_eq!(
        through_the_outbox(&good, "mssante", to).await,
        ("sent".to_string(), String::new())
    );
    let started = Instant::now();
    // A configuration error is retried (the message itself is fine: once
    // the configuration is fixed, it goes out), with the reason in French.
    let cases = [
        (
            sandbox(&submission(&submit, tmp.path(), &ca, "wrong"), ""),
            "email",
            "identifiants refusés",
        ),
        (
            sandbox(
                &submission(&submit, tmp.path(), &pki.file("other-ca.pem"), "s3cret"),
                "",
            ),
            "email",
            "autorité inconnue",
        ),
        (
            sandbox(
                &submission(&submit, tmp.path(), &ca, "s3cret"),
                &mssante(&mss, &pki, "ca.pem", ""),
            ),
            "mssante",
            "exige un certificat client",
        ),
        (
            sandbox(
                &submission(&submit, tmp.path(), &ca, "s3cret"),
                &mssante(&mss, &pki, "ca.pem", "client-expired"),
            ),
            "mssante",
            "il est expiré",
        ),
    ];
    for (sb, channel, said) in &cases {
        let (state, reason) = through_the_outbox(sb, channel, to).await;
        assert_eq!(state, "retrying", "{channel}: {reason}");
        assert!(reason.starts_with("SMTP : "), "{reason}");
        assert!(reason.contains(said), "{channel}: {reason}");
    }
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_eq!(submit.messages().len(), 1);
    assert_eq!(mss.messages().len(), 1);
    let got = &mss.messages()[0];
    assert_eq!(got.subject(), "Canicule : niveau orange");
}

/// A step on `["email", "mssante"]` with `[email.mssante] address =
/// "mssante"`: the MSSanté channel sends to the directory's `mssante`
/// mailboxes through its own server and sender; a person without one is
/// skipped on that channel, with the reason, and still gets the e-mail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mssante_channel_delivers_to_the_directorys_mssante_mailboxes() {
    use crate::harness::{TestDaemon, count, eventually};
    use crate::smtp::SmtpServer;
    let mss = SmtpServer::start().await;
    let mss_addr = mss.addr;
    let d = TestDaemon::start_setup(true, move |dir| {
        let edit = |rel: &str, from: &str, to: &str| {
            let p = dir.join(rel);
            let text = std::fs::read_to_string(&p).unwrap();
            assert!(text.contains(from), "{rel}: {from}");
            std::fs::write(p, text.replacen(from, to, 1)).unwrap();
        };
        let config = dir.join("config/vigie.toml");
        let text = std::fs::read_to_string(&config).unwrap();
        std::fs::write(
            &config,
            format!(
                "{text}\n[email.mssante]\ntransport = \"smtp\"\naddress = \"mssante\"\n\
                 from = \"CPTS de test <cpts-test@cpts.mssante.fr>\"\nurl = \"smtp://{mss_addr}\"\n"
            ),
        )
        .unwrap();
        edit(
            "plans/plan.toml",
            "audience = [\"referents\"]\nchannels = [\"email\"]",
            "audience = [\"referents\"]\nchannels = [\"email\", \"mssante\"]",
        );
        edit(
            "config/directory.toml",
            "email = \"claire.martin@example.org\"\n",
            "email = \"claire.martin@example.org\"\nmssante = \"claire.martin@medecin.mssante.fr\"\n",
        );
    })
    .await;
    let ev = d
        .declare(serde_json::json!({"scenario": "canicule", "level": "jaune"}))
        .await;
    let id = ev["id"].as_str().unwrap().to_string();
    eventually(10, "the MSSanté message", || async {
        !mss.messages().is_empty() && count(&d.event(&id).await, "sent") == 3
    })
    .await;
    let subject = only_to_claire(&mss.messages(), "cpts-test@cpts.mssante.fr", "");
    assert!(subject.contains("Vague de chaleur"), "{subject}");
    // The ordinary e-mails went through [email], the MSSanté one not.
    assert_eq!(d.smtp.to("claire.martin@example.org").len(), 1);
    assert_eq!(d.smtp.to("helene.fuchs@example.org").len(), 1);
    assert!(d.smtp.to("claire.martin@medecin.mssante.fr").is_empty());
    let ev = d.event(&id).await;
    let skipped: Vec<&serde_json::Value> = ev["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["state"] == "skipped")
        .collect();
    assert_eq!(skipped.len(), 1, "{ev}");
    assert_eq!(skipped[0]["channel"], "mssante");
    assert_eq!(skipped[0]["recipient_name"], "Hélène Fuchs");
    assert!(
        skipped[0]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("pas de messagerie MSSanté"),
        "{ev}"
    );
    d.stop().await;
}

/// `vigie check` points at the key: a PEM file missing or not PEM, a
/// certificate without its key, AUTH that would go in clear, a directory
/// field no channel can deliver to.
#[test]
fn vigie_check_names_the_key_of_each_tls_mistake() {
    let sb = sandbox(
        "transport = \"smtp\"\nfrom = \"Vigie <vigie@example.org>\"\n\
         url = \"smtp://mail.example.org:25?tls=none\"\nallow_insecure = true\n\
         username = \"vigie\"\npassword_file = \"secrets/smtp-password\"\n\
         ca_file = \"tls/missing.pem\"\nclient_cert_file = \"tls/not-pem.pem\"\n",
        "[email.mssante]\ntransport = \"file\"\ndir = \"../var/mss\"\n\
         from = \"CPTS <cpts@cpts.mssante.fr>\"\naddress = \"telephone\"\n\
         client_key_file = \"tls/not-pem.pem\"\n",
    );
    sb.write("config/tls/not-pem.pem", "this is not PEM\n");
    let config = sb.config();
    let (code, out, err) = run_vigie(&["check", "-q", "-c", config.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}{err}");
    let line_of = |needle: &str| {
        let line = out
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in:\n{out}"));
        let at = line.strip_prefix(config.to_str().unwrap()).unwrap_or("");
        assert!(
            at.starts_with(':') && at[1..].starts_with(|c: char| c.is_ascii_digit()),
            "{line}"
        );
        line.to_string()
    };
    line_of("tls/missing.pem");
    line_of("no certificate in it");
    line_of("no private key in it");
    line_of("`client_cert_file` needs `client_key_file`");
    line_of("`client_key_file` needs `client_cert_file`");
    line_of("AUTH would send the password in clear");
    line_of("unknown directory field \"telephone\"");
}

/// `vigie test-send` on a webhook channel goes through the daemon's own
/// webhook code (signed call, `[TEST]` text), says the HTTP status a
/// refusal came with; on `email` with nobody listening, says the
/// connection was refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_send_through_a_webhook_says_the_http_status() {
    let hook = crate::webhook::Receiver::start("cle-du-test").await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let sb = sandbox(
        &format!(
            "transport = \"smtp\"\nfrom = \"Vigie <vigie@example.org>\"\n\
             url = \"smtp://127.0.0.1:{closed_port}\"\n"
        ),
        &format!(
            "[webhook.sms]\nurl = \"{}\"\nsecret_file = \"secrets/sms-hmac\"\n",
            hook.url()
        ),
    );
    sb.write("config/secrets/sms-hmac", "cle-du-test");
    let send = |channel: &'static str, to: &'static str| {
        crate::support::test_send_blocking(sb.config(), channel, to)
    };
    hook.answer_with(&[422]);
    let (code, out) = send("sms", "+33612345678").await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("HTTP 422"), "{out}");
    assert!(out.contains("Échec définitif"), "{out}");
    let (code, out) = send("sms", "+33612345678").await;
    assert_eq!(code, 0, "{out}");
    let calls = hook.accepted();
    assert_eq!(calls.len(), 1);
    assert!(calls[0].signature_ok);
    assert_eq!(calls[0].body["test"], true);
    assert_eq!(calls[0].body["recipient"]["phone"], "+33612345678");
    assert!(
        calls[0].body["subject"]
            .as_str()
            .unwrap()
            .starts_with("[TEST]"),
        "{:?}",
        calls[0].body
    );

    let (code, out) = send("email", "claire.martin@example.org").await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("connexion TCP refusée"), "{out}");
}
