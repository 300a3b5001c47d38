//! SMS channels (SPEC §14): each provider's documented HTTP API spoken to a
//! real HTTP server on loopback that checks the request as the provider
//! would (OVH's signature recomputed from what it received) and answers as
//! the provider does, errors included; answers by SMS through the inbound
//! route, counted as on the response page.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};
use sha1::{Digest, Sha1};

use crate::harness::{TestDaemon, count, eventually};

/// One request as the provider received it.
#[derive(Clone, Debug)]
struct Req {
    method: String,
    path: String,
    headers: HeaderMap,
    body: String,
}

impl Req {
    fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    fn form(&self) -> Vec<(String, String)> {
        serde_urlencoded::from_str(&self.body).unwrap()
    }
}

#[derive(Clone, Default)]
struct Shared {
    reqs: Arc<Mutex<Vec<Req>>>,
    /// The next answers (status, body); then the provider's success.
    answers: Arc<Mutex<VecDeque<(u16, String)>>>,
    success: Arc<Mutex<(u16, String)>>,
}

/// A provider's API on loopback.
struct Provider {
    addr: SocketAddr,
    shared: Shared,
}

impl Provider {
    async fn start(success: (u16, Value)) -> Provider {
        let shared = Shared::default();
        *shared.success.lock().unwrap() = (success.0, success.1.to_string());
        let app = Router::new().fallback(record).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Provider { addr, shared }
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn answer_with(&self, answers: &[(u16, Value)]) {
        self.shared
            .answers
            .lock()
            .unwrap()
            .extend(answers.iter().map(|(s, b)| (*s, b.to_string())));
    }

    fn reqs(&self) -> Vec<Req> {
        self.shared.reqs.lock().unwrap().clone()
    }
}

async fn record(
    State(s): State<Shared>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, [(&'static str, &'static str); 1], String) {
    s.reqs.lock().unwrap().push(Req {
        method: method.to_string(),
        path: uri.to_string(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let (status, body) = s
        .answers
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or_else(|| s.success.lock().unwrap().clone());
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        body,
    )
}

const INBOUND_SECRET: &str = "inbound-secret-for-tests";

/// A daemon whose scenario `cellule_crise` (tier 0: the two referents,
/// quorum 2) sends by SMS through `[sms.NAME]` written as `table`, with
/// the credential files `secrets`.
async fn daemon_with(name: &str, table: &str, secrets: &[(&str, &str)]) -> TestDaemon {
    daemon_with_setup(name, table, secrets, |_| {}).await
}

/// [`daemon_with`] for the providers whose table is an API key and a
/// sender (Brevo, SMSMode): `[sms.PROVIDER]` pointing at `p`, its key file
/// holding `key`, then the lines `more`.
async fn api_key_daemon(provider: &str, p: &Provider, key: &str, more: &str) -> TestDaemon {
    daemon_with(
        provider,
        &format!(
            "provider = \"{provider}\"\nurl = \"{}\"\napi_key_file = \"secrets/{provider}\"\nsender = \"CPTSTEST\"{more}",
            p.base()
        ),
        &[(provider, key)],
    )
    .await
}

/// [`daemon_with`], then `extra` changes the fixture files.
async fn daemon_with_setup(
    name: &str,
    table: &str,
    secrets: &[(&str, &str)],
    extra: impl FnOnce(&std::path::Path),
) -> TestDaemon {
    let (name, table) = (name.to_string(), table.to_string());
    let secrets: Vec<(String, String)> = secrets
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    TestDaemon::start_setup(true, move |dir| {
        let cfg = dir.join("config/vigie.toml");
        let mut text = std::fs::read_to_string(&cfg).unwrap();
        text.push_str(&format!(
            "\n[sms.{name}]\n{table}\ninbound_secret_file = \"secrets/sms-inbound\"\n"
        ));
        std::fs::write(&cfg, text).unwrap();
        std::fs::write(
            dir.join("config/secrets/sms-inbound"),
            format!("{INBOUND_SECRET}\n"),
        )
        .unwrap();
        for (file, value) in &secrets {
            std::fs::write(dir.join("config/secrets").join(file), format!("{value}\n")).unwrap();
        }
        let plan = dir.join("plans/plan.toml");
        let text = std::fs::read_to_string(&plan).unwrap();
        let from = "channels = [\"email\", \"sms\"]\nquorum = 2";
        assert!(text.contains(from));
        let text = text.replace(
            from,
            &format!("channels = [\"email\", \"{name}\"]\nquorum = 2"),
        );
        std::fs::write(&plan, text).unwrap();
        extra(dir);
    })
    .await
}

/// Declares `cellule_crise` and waits until its SMS deliveries are in
/// `state`; returns the event.
async fn declare_and_wait(td: &TestDaemon, channel: &str, state: &str, n: usize) -> Value {
    let ev = td.declare(json!({"scenario": "cellule_crise"})).await;
    let id = ev["id"].as_str().unwrap().to_string();
    eventually(10, &format!("{n} SMS deliveries {state}"), || {
        let id = id.clone();
        async move {
            let ev = td.event(&id).await;
            sms_deliveries(&ev, channel)
                .iter()
                .filter(|d| d["state"] == state)
                .count()
                == n
        }
    })
    .await;
    td.event(&id).await
}

/// [`declare_and_wait`] on a [`twilio_daemon`]: both referents texted;
/// returns the event's id.
async fn texted(td: &TestDaemon) -> String {
    let ev = declare_and_wait(td, "twilio", "sent", 2).await;
    ev["id"].as_str().unwrap().to_string()
}

fn sms_deliveries(ev: &Value, channel: &str) -> Vec<Value> {
    ev["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["channel"] == channel)
        .cloned()
        .collect()
}

#[tokio::test]
async fn ovh_sends_a_signed_job_and_records_the_message_id() {
    let ovh = Provider::start((
        200,
        json!({"ids": [318212345], "validReceivers": ["+33639980101"], "invalidReceivers": [], "totalCreditsRemoved": 1}),
    ))
    .await;
    let td = daemon_with(
        "ovh",
        &format!(
            "provider = \"ovh\"\nurl = \"{}/1.0\"\nservice = \"sms-ab12345-1\"\napplication_key = \"AK-test\"\n\
             application_secret_file = \"secrets/ovh-as\"\nconsumer_key_file = \"secrets/ovh-ck\"\nsender = \"CPTSTEST\"",
            ovh.base()
        ),
        &[("ovh-as", "AS-secret"), ("ovh-ck", "CK-consumer")],
    )
    .await;
    let ev = declare_and_wait(&td, "ovh", "sent", 2).await;

    let reqs = ovh.reqs();
    assert_eq!(reqs.len(), 2);
    for r in &reqs {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/1.0/sms/sms-ab12345-1/jobs");
        assert_eq!(r.header("x-ovh-application"), "AK-test");
        assert_eq!(r.header("x-ovh-consumer"), "CK-consumer");
        assert!(r.header("content-type").starts_with("application/json"));
        // The signature, recomputed as OVH does from what it received.
        let url = format!("http://{}{}", r.header("host"), r.path);
        let ts = r.header("x-ovh-timestamp");
        let signed = format!("AS-secret+CK-consumer+POST+{url}+{}+{ts}", r.body);
        let expected = format!("$1${}", hex::encode(Sha1::digest(signed.as_bytes())));
        assert_eq!(
            r.header("x-ovh-signature"),
            expected,
            "signature of {}",
            r.body
        );
        let b = r.json();
        // Answers by SMS are on: OVH sends from a number that can be answered.
        assert_eq!(b["senderForResponse"], true);
        assert_eq!(b["charset"], "UTF-8");
        let msg = b["message"].as_str().unwrap();
        assert!(
            msg.contains("Répondez 1 (disponible) ou 2 (indisponible)"),
            "{msg}"
        );
        assert!(msg.contains("http://vigie.test/r/"), "{msg}");
    }
    let mut to: Vec<String> = reqs
        .iter()
        .map(|r| r.json()["receivers"][0].as_str().unwrap().to_string())
        .collect();
    to.sort();
    assert_eq!(to, ["+33639980101", "+33639980102"]);
    for d in sms_deliveries(&ev, "ovh") {
        assert_eq!(d["provider_id"], "318212345", "{d}");
    }
    td.stop().await;
}

#[tokio::test]
async fn an_ovh_invalid_receiver_fails_the_delivery_for_good() {
    let ovh = Provider::start((
        200,
        json!({"ids": [], "validReceivers": [], "invalidReceivers": ["+33639980101"], "totalCreditsRemoved": 0}),
    ))
    .await;
    let td = daemon_with(
        "ovh",
        &format!(
            "provider = \"ovh\"\nurl = \"{}/1.0\"\nservice = \"sms-ab12345-1\"\napplication_key = \"AK\"\n\
             application_secret_file = \"secrets/ovh-as\"\nconsumer_key_file = \"secrets/ovh-ck\"\nsender = \"CPTSTEST\"",
            ovh.base()
        ),
        &[("ovh-as", "AS"), ("ovh-ck", "CK")],
    )
    .await;
    let ev = declare_and_wait(&td, "ovh", "failed", 2).await;
    for d in sms_deliveries(&ev, "ovh") {
        assert!(
            d["reason"].as_str().unwrap().contains("invalidReceivers"),
            "{d}"
        );
    }
    assert_eq!(ovh.reqs().len(), 2, "not retried");
    td.stop().await;
}

#[tokio::test]
async fn brevo_sends_with_its_api_key_and_records_the_message_id() {
    let brevo = Provider::start((
        201,
        json!({"reference": "ab1cde2fgh3i4jklmno", "messageId": 1511882900176220u64, "smsCount": 2, "usedCredits": 0.7, "remainingCredits": 82.85}),
    ))
    .await;
    let td = api_key_daemon("brevo", &brevo, "xkeysib-test", "").await;
    let ev = declare_and_wait(&td, "brevo", "sent", 2).await;
    let reqs = brevo.reqs();
    assert_eq!(reqs.len(), 2);
    for r in &reqs {
        assert_eq!(
            (r.method.as_str(), r.path.as_str()),
            ("POST", "/v3/transactionalSMS/send")
        );
        assert_eq!(r.header("api-key"), "xkeysib-test");
        let b = r.json();
        assert_eq!(b["sender"], "CPTSTEST");
        assert_eq!(b["type"], "transactional");
        assert!(
            b["recipient"].as_str().unwrap().starts_with("3363998010"),
            "{b}"
        );
        assert!(
            b["content"]
                .as_str()
                .unwrap()
                .contains("http://vigie.test/r/"),
            "{b}"
        );
    }
    for d in sms_deliveries(&ev, "brevo") {
        assert_eq!(d["provider_id"], "1511882900176220", "{d}");
    }
    td.stop().await;
}

#[tokio::test]
async fn a_provider_5xx_or_429_is_retried_until_it_accepts() {
    let brevo = Provider::start((201, json!({"messageId": 42, "reference": "r"}))).await;
    // Both first calls fail, one way each.
    brevo.answer_with(&[
        (
            503,
            json!({"code": "internal_error", "message": "Service unavailable"}),
        ),
        (
            429,
            json!({"code": "too_many_requests", "message": "slow down"}),
        ),
    ]);
    let td = api_key_daemon("brevo", &brevo, "k", "").await;
    let ev = declare_and_wait(&td, "brevo", "retrying", 2).await;
    let reasons: Vec<String> = sms_deliveries(&ev, "brevo")
        .iter()
        .map(|d| d["reason"].as_str().unwrap().to_string())
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("503") && r.contains("Service unavailable")),
        "{reasons:?}"
    );
    assert!(reasons.iter().any(|r| r.contains("429")), "{reasons:?}");
    // The retry comes due.
    let id = ev["id"].as_str().unwrap().to_string();
    td.advance(chrono::Duration::minutes(2));
    eventually(10, "both SMS sent on retry", || async {
        let ev = td.event(&id).await;
        sms_deliveries(&ev, "brevo")
            .iter()
            .all(|d| d["state"] == "sent")
    })
    .await;
    assert_eq!(brevo.reqs().len(), 4);
    td.stop().await;
}

#[tokio::test]
async fn smsmode_sends_with_its_api_key_and_records_the_message_id() {
    let smsmode = Provider::start((
        201,
        json!({"messageId": "f1c5ab0e-6a3d-4b8e-9d7c-000000000001", "acceptedAt": "2026-06-15T08:00:00Z", "status": {"value": "ENROUTE"}}),
    ))
    .await;
    let td = api_key_daemon("smsmode", &smsmode, "smsmode-key", "").await;
    let ev = declare_and_wait(&td, "smsmode", "sent", 2).await;
    for r in &smsmode.reqs() {
        assert_eq!(
            (r.method.as_str(), r.path.as_str()),
            ("POST", "/sms/v1/messages")
        );
        assert_eq!(r.header("x-api-key"), "smsmode-key");
        let b = r.json();
        assert_eq!(b["from"], "CPTSTEST");
        assert!(
            b["recipient"]["to"]
                .as_str()
                .unwrap()
                .starts_with("3363998010"),
            "{b}"
        );
        assert!(
            b["body"]["text"]
                .as_str()
                .unwrap()
                .contains("Répondez 1 (disponible)"),
            "{b}"
        );
    }
    for d in sms_deliveries(&ev, "smsmode") {
        assert_eq!(
            d["provider_id"], "f1c5ab0e-6a3d-4b8e-9d7c-000000000001",
            "{d}"
        );
    }
    td.stop().await;
}

#[tokio::test]
async fn twilio_sends_a_form_with_basic_auth_and_records_the_sid() {
    let twilio = Provider::start((
        201,
        json!({"sid": "SM0123456789abcdef0123456789abcdef", "status": "queued"}),
    ))
    .await;
    let td = daemon_with(
        "twilio",
        &format!(
            "provider = \"twilio\"\nurl = \"{}\"\naccount_sid = \"AC0001\"\nauth_token_file = \"secrets/twilio\"\nfrom = \"+33700000001\"",
            twilio.base()
        ),
        &[("twilio", "tok-twilio")],
    )
    .await;
    let ev = declare_and_wait(&td, "twilio", "sent", 2).await;
    use base64::Engine;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("AC0001:tok-twilio")
    );
    for r in &twilio.reqs() {
        assert_eq!(
            (r.method.as_str(), r.path.as_str()),
            ("POST", "/2010-04-01/Accounts/AC0001/Messages.json")
        );
        assert_eq!(r.header("authorization"), basic);
        assert!(
            r.header("content-type")
                .starts_with("application/x-www-form-urlencoded")
        );
        let f = r.form();
        let get = |k: &str| {
            f.iter()
                .find(|(a, _)| a == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        assert_eq!(get("From"), "+33700000001");
        assert!(get("To").starts_with("+3363998010"), "{f:?}");
        assert!(get("Body").contains("http://vigie.test/r/"), "{f:?}");
    }
    for d in sms_deliveries(&ev, "twilio") {
        assert_eq!(
            d["provider_id"], "SM0123456789abcdef0123456789abcdef",
            "{d}"
        );
    }
    td.stop().await;
}

#[tokio::test]
async fn a_provider_4xx_fails_the_delivery_at_once_with_the_providers_text() {
    let twilio = Provider::start((201, json!({"sid": "SM1"}))).await;
    let invalid = json!({"code": 21211, "message": "The 'To' number +33639980101 is not a valid phone number.", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400});
    twilio.answer_with(&[(400, invalid.clone()), (400, invalid)]);
    let td = daemon_with(
        "twilio",
        &format!(
            "provider = \"twilio\"\nurl = \"{}\"\naccount_sid = \"AC0001\"\nauth_token_file = \"secrets/twilio\"\nmessaging_service_sid = \"MG0001\"",
            twilio.base()
        ),
        &[("twilio", "tok")],
    )
    .await;
    let ev = declare_and_wait(&td, "twilio", "failed", 2).await;
    for d in sms_deliveries(&ev, "twilio") {
        let reason = d["reason"].as_str().unwrap();
        assert!(reason.contains("400"), "{reason}");
        assert!(
            reason.contains("is not a valid phone number") && reason.contains("21211"),
            "{reason}"
        );
        assert!(
            !reason.contains("tok"),
            "no credential in a reason: {reason}"
        );
    }
    let f = twilio.reqs()[0].form();
    assert!(
        f.iter()
            .any(|(k, v)| k == "MessagingServiceSid" && v == "MG0001"),
        "{f:?}"
    );
    assert_eq!(twilio.reqs().len(), 2, "not retried");
    td.stop().await;
}

#[tokio::test]
async fn a_long_sms_is_cut_to_its_segments_with_the_link_whole() {
    let smsmode = Provider::start((201, json!({"messageId": "m"}))).await;
    let td = api_key_daemon("smsmode", &smsmode, "k", "\nmax_segments = 2").await;
    let note = "Rendez-vous a la salle de crise de la mairie de Thann. ".repeat(20);
    let ev = td
        .declare(json!({"scenario": "cellule_crise", "note": note}))
        .await;
    let id = ev["id"].as_str().unwrap().to_string();
    eventually(10, "SMS sent", || async {
        let ev = td.event(&id).await;
        count(&ev, "sent") >= 2 && smsmode.reqs().len() == 2
    })
    .await;
    for r in smsmode.reqs() {
        let text = r.json()["body"]["text"].as_str().unwrap().to_string();
        // Two SMS at most, as the network counts (GSM 7-bit here: 306
        // septets), and as long as that allows: the note is cut.
        let c = vigie::deliver::sms::segments::count(&text);
        assert!(c.segments <= 2 && c.units > 280, "{c:?}: {text}");
        assert!(
            text.contains("de la...\n") || text.contains("...\nRépondez"),
            "{text}"
        );
        let link = text.lines().last().unwrap();
        assert!(
            link.starts_with("http://vigie.test/r/") && link.len() > 30,
            "{text}"
        );
        assert!(
            text.contains("Répondez 1 (disponible) ou 2 (indisponible)\nhttp://vigie.test/r/"),
            "{text}"
        );
        // The response link works: it is whole.
        let status = td
            .http
            .get(td.url(link.trim_start_matches("http://vigie.test")))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status.as_u16(), 200, "{link}");
    }
    td.stop().await;
}

async fn inbound(td: &TestDaemon, channel: &str, secret: Option<&str>, body: InBody) -> u16 {
    let path = match secret {
        Some(s) => format!("/api/v1/inbound/sms/{channel}?secret={s}"),
        None => format!("/api/v1/inbound/sms/{channel}"),
    };
    let req = td.http.post(td.url(&path));
    let req = match body {
        InBody::Json(v) => req.json(&v),
        InBody::Form(f) => req.form(&f),
    };
    req.send().await.unwrap().status().as_u16()
}

/// Texts `text` from `from` to the daemon's `twilio` channel, as Twilio
/// forwards an answer (JSON, with the inbound secret); it must be taken (200).
async fn answer(td: &TestDaemon, from: &str, text: &str) {
    let body = InBody::Json(json!({"from": from, "text": text}));
    assert_eq!(inbound(td, "twilio", Some(INBOUND_SECRET), body).await, 200);
}

enum InBody {
    Json(Value),
    Form(Vec<(&'static str, &'static str)>),
}

async fn twilio_daemon() -> (Provider, TestDaemon) {
    twilio_daemon_directory(|d| d).await
}

/// [`twilio_daemon`] with its directory's text changed by `edit`.
async fn twilio_daemon_directory(edit: impl FnOnce(String) -> String) -> (Provider, TestDaemon) {
    let twilio = Provider::start((201, json!({"sid": "SM1"}))).await;
    let td = daemon_with_setup(
        "twilio",
        &format!(
            "provider = \"twilio\"\nurl = \"{}\"\naccount_sid = \"AC0001\"\nauth_token_file = \"secrets/twilio\"\nfrom = \"+33700000001\"",
            twilio.base()
        ),
        &[("twilio", "tok")],
        |dir| {
            let path = dir.join("config/directory.toml");
            let text = std::fs::read_to_string(&path).unwrap();
            std::fs::write(&path, edit(text)).unwrap();
        },
    )
    .await;
    (twilio, td)
}

#[tokio::test]
async fn answers_by_sms_count_toward_the_quorum_and_stop_the_escalation() {
    let (_twilio, td) = twilio_daemon().await;
    let id = texted(&td).await;
    // Claire answers "1" as Twilio forwards it; Hélène "disponible" from a
    // French national form, as JSON.
    let s = inbound(
        &td,
        "twilio",
        Some(INBOUND_SECRET),
        InBody::Form(vec![
            ("From", "+33639980101"),
            ("To", "+33700000001"),
            ("Body", "1"),
            ("MessageSid", "SM9"),
        ]),
    )
    .await;
    assert_eq!(s, 200);
    let ev = td.event(&id).await;
    assert_eq!(ev["state"], "active", "one of two: {ev}");
    answer(&td, "06 39 98 01 02", "Disponible").await;
    let ev = td.event(&id).await;
    assert_eq!(ev["state"], "acknowledged", "{ev}");
    let responses = responses_of(&td, &id).await;
    assert!(
        responses.contains(&("ref1".into(), "disponible".into())),
        "{responses:?}"
    );
    assert!(
        responses.contains(&("ref2".into(), "disponible".into())),
        "{responses:?}"
    );
    // The tier's timeout passes: nobody else is asked (the chain would
    // restart otherwise: escalation_repeat = 1).
    let before = ev["deliveries"].as_array().unwrap().len();
    td.advance(chrono::Duration::minutes(11));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let ev = td.event(&id).await;
    assert_eq!(ev["deliveries"].as_array().unwrap().len(), before, "{ev}");
    assert_eq!(ev["state"], "acknowledged");
    td.stop().await;
}

#[tokio::test]
async fn an_answer_from_an_unknown_number_or_text_is_accepted_and_changes_nothing() {
    let (_twilio, td) = twilio_daemon().await;
    let id = texted(&td).await;
    answer(&td, "+33699999999", "1").await;
    answer(&td, "+33639980101", "je rappelle").await;
    answer(&td, "+33639980101", "7").await;
    let ev = td.event(&id).await;
    assert_eq!(ev["responses"].as_array().unwrap().len(), 0, "{ev}");
    assert_eq!(ev["state"], "active");
    td.stop().await;
}

#[tokio::test]
async fn the_inbound_url_without_its_secret_is_not_found() {
    let (_twilio, td) = twilio_daemon().await;
    let id = texted(&td).await;
    let body = || InBody::Json(json!({"from": "+33639980101", "text": "1"}));
    assert_eq!(inbound(&td, "twilio", Some("wrong"), body()).await, 404);
    assert_eq!(inbound(&td, "twilio", None, body()).await, 404);
    assert_eq!(
        inbound(&td, "nosuch", Some(INBOUND_SECRET), body()).await,
        404
    );
    let ev = td.event(&id).await;
    assert_eq!(ev["responses"].as_array().unwrap().len(), 0, "{ev}");
    td.stop().await;
}

/// A temporary copy of the `vigie check` corpus's minimal set.
fn minimal() -> crate::support::Sandbox {
    let dir = tempfile::tempdir().unwrap();
    crate::support::copy_dir(
        &crate::support::repo().join("tests/fixtures/minimal"),
        dir.path(),
    );
    crate::support::Sandbox { dir }
}

/// The `vigie check` corpus's minimal set, with an SMS channel `texto`
/// (max_segments 1) on the escalation that uses template `mobilisation`.
fn minimal_with_sms(template_extra: &str) -> crate::support::Sandbox {
    let sb = minimal();
    let cfg = sb.read("config/vigie.toml");
    sb.write(
        "config/vigie.toml",
        &format!("{cfg}\n[sms.texto]\nprovider = \"brevo\"\napi_key_file = \"brevo-key\"\nsender = \"CPTS\"\nmax_segments = 1\n"),
    );
    sb.write("config/brevo-key", "k\n");
    let plan = sb.read("plans/pgc-2026.toml");
    let plan = plan.replacen(
        "channels = [\"email\"]\ntemplate = \"mobilisation\"",
        "channels = [\"email\", \"texto\"]\ntemplate = \"mobilisation\"",
        1,
    );
    let plan = plan.replacen(
        "[template.mobilisation]\n",
        &format!("[template.mobilisation]\n{template_extra}"),
        1,
    );
    sb.write("plans/pgc-2026.toml", &plan);
    sb
}

fn check(sb: &crate::support::Sandbox) -> (i32, String) {
    let config = sb.config();
    let (code, out, err) = crate::support::run_vigie(&[
        "check",
        "-c",
        config.to_str().unwrap(),
        "--date",
        "2026-06-01",
    ]);
    assert!(!err.contains("panicked"), "{err}");
    (code, out)
}

#[test]
fn check_warns_where_a_template_makes_an_sms_longer_than_its_segments() {
    let sb = minimal_with_sms("");
    let (code, out) = check(&sb);
    assert_eq!(code, 0, "a warning, not an error: {out}");
    let line = out
        .lines()
        .find(|l| l.contains("template `mobilisation` (text) makes an SMS of 2 segments"))
        .unwrap_or_else(|| panic!("no SMS length warning:\n{out}"));
    let at = format!("{}/plans/pgc-2026.toml:22:1: warning:", sb.path().display());
    assert!(line.starts_with(&at), "{line}");
    assert!(
        line.contains("channel `texto`") && line.contains("max_segments = 1"),
        "{line}"
    );

    // A short `sms` part: no warning.
    let sb = minimal_with_sms("sms = \"{{ event.title }} niveau {{ event.level }}\"\n");
    let (code, out) = check(&sb);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("makes an SMS"), "{out}");
}

#[tokio::test]
async fn an_exercise_sms_says_so_on_its_first_line() {
    let smsmode = Provider::start((201, json!({"messageId": "m"}))).await;
    let td = api_key_daemon("smsmode", &smsmode, "k", "").await;
    td.declare(json!({"scenario": "cellule_crise", "exercise": true}))
        .await;
    eventually(10, "two SMS", || async { smsmode.reqs().len() == 2 }).await;
    for r in smsmode.reqs() {
        let text = r.json()["body"]["text"].as_str().unwrap().to_string();
        assert!(
            text.starts_with("EXERCICE : ceci est un exercice, aucune situation réelle.\n"),
            "{text}"
        );
    }
    td.stop().await;
}

#[test]
fn check_refuses_a_bad_sms_channel_naming_file_line_and_column() {
    let sb = minimal();
    let cfg = sb.read("config/vigie.toml");
    let first = cfg.lines().count() + 2; // the line of [sms.texto]
    sb.write(
        "config/vigie.toml",
        &format!(
            "{cfg}\n[sms.texto]\nprovider = \"orange\"\nsender = \"CPTS\"\n\n\
             [sms.tw]\nprovider = \"twilio\"\naccount_sid = \"AC1\"\nauth_token_file = \"tw\"\n\n\
             [sms.b]\nprovider = \"brevo\"\napi_key_file = \"k\"\nsender = \"bien trop long\"\nmax_segments = 0\n"
        ),
    );
    sb.write("config/tw", "t\n");
    sb.write("config/k", "k\n");
    let (code, out) = check(&sb);
    assert_eq!(code, 1, "{out}");
    let at = |line: usize, col: usize| {
        format!("{}/config/vigie.toml:{line}:{col}: ", sb.path().display())
    };
    for (line, col, message) in [
        (
            first + 1,
            12,
            "unknown SMS provider \"orange\" (providers: ovh, brevo, smsmode, twilio)",
        ),
        (
            first + 4,
            1,
            "provider \"twilio\" needs `from` (the sending number) or `messaging_service_sid`",
        ),
        (
            first + 12,
            10,
            "invalid SMS sender \"bien trop long\": up to 11 letters and digits (e.g. \"CPTSTHUR\") or a phone number",
        ),
        (first + 13, 16, "`max_segments` must be between 1 and 10"),
    ] {
        let want = format!("{}{message}", at(line, col));
        assert!(
            out.lines().any(|l| l == want),
            "expected\n  {want}\nin\n{out}"
        );
    }
    assert!(!out.contains("unknown key `sender`"), "{out}");
}

/// The responses recorded on event `id`, as (recipient, response).
async fn responses_of(td: &TestDaemon, id: &str) -> Vec<(String, String)> {
    td.event(id).await["responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["recipient_id"].as_str().unwrap().to_string(),
                r["response"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn an_answer_by_sms_goes_to_the_event_that_texted_them_real_before_exercise() {
    let (_twilio, td) = twilio_daemon().await;
    let real = texted(&td).await;
    // Newer: an exercise that texted them too, and a real event that only
    // e-mailed Claire.
    let exercise = td
        .declare(json!({"scenario": "cellule_crise", "exercise": true}))
        .await;
    let exercise = exercise["id"].as_str().unwrap().to_string();
    assert_ne!(exercise, real);
    eventually(10, "the exercise's SMS sent", || {
        let exercise = exercise.clone();
        let td = &td;
        async move {
            let ev = td.event(&exercise).await;
            sms_deliveries(&ev, "twilio")
                .iter()
                .filter(|d| d["state"] == "sent")
                .count()
                == 2
        }
    })
    .await;
    let mail = td
        .declare(json!({"scenario": "canicule", "level": "jaune"}))
        .await;
    let mail = mail["id"].as_str().unwrap().to_string();
    assert!(sms_deliveries(&td.event(&mail).await, "twilio").is_empty());

    answer(&td, "+33639980101", "1").await;
    assert_eq!(
        responses_of(&td, &real).await,
        vec![("ref1".to_string(), "disponible".to_string())]
    );
    assert!(responses_of(&td, &mail).await.is_empty());
    assert!(responses_of(&td, &exercise).await.is_empty());
    td.stop().await;
}

#[tokio::test]
async fn a_shared_number_answers_for_the_one_the_event_texted_or_for_nobody() {
    // Before Claire in the directory, a colleague with her number whom the
    // event did not text: the answer is Claire's.
    let (_twilio, td) = twilio_daemon_directory(|d| {
        format!(
            "[[professional]]\nid = \"aaa\"\nname = \"Anne Adam\"\nprofession = \"infirmier\"\n\
             commune = \"Thann\"\nphone = \"+33639980101\"\n\n{d}"
        )
    })
    .await;
    let id = texted(&td).await;
    answer(&td, "+33639980101", "1").await;
    assert_eq!(
        responses_of(&td, &id).await,
        vec![("ref1".to_string(), "disponible".to_string())]
    );
    td.stop().await;

    // The event texted both who share the number: nothing recorded.
    let (_twilio, td) =
        twilio_daemon_directory(|d| d.replace("+33639980102", "+33639980101")).await;
    let id = texted(&td).await;
    answer(&td, "+33639980101", "1").await;
    assert!(responses_of(&td, &id).await.is_empty());
    td.stop().await;
}

#[test]
fn check_warns_where_two_active_professionals_share_a_number() {
    let sb = minimal();
    let d = sb.read("config/directory.toml");
    let d = d.replace("+33639980003", "+33639980001");
    // Sophie Fritsch is not active: no warning for her.
    let d = d.replace(
        "email = \"sophie.fritsch@example.net\"\n",
        "email = \"sophie.fritsch@example.net\"\nphone = \"+33639980001\"\n",
    );
    sb.write("config/directory.toml", &d);
    let (code, out) = check(&sb);
    assert_eq!(code, 0, "a warning, not an error: {out}");
    let at = format!(
        "{}/config/directory.toml:29:9: warning: phone +33639980001 is also `cmartin`'s",
        sb.path().display()
    );
    let lines: Vec<&str> = out.lines().filter(|l| l.contains("is also `")).collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert!(lines[0].starts_with(&at), "{}", lines[0]);
}

#[test]
fn check_refuses_an_sms_secret_file_it_cannot_read() {
    let sb = minimal_with_sms("");
    std::fs::remove_file(sb.path().join("config/brevo-key")).unwrap();
    let cfg = sb.read("config/vigie.toml");
    let cfg = format!("{cfg}inbound_secret_file = \"secrets\"\n");
    sb.write("config/vigie.toml", &cfg);
    std::fs::create_dir_all(sb.path().join("config/secrets")).unwrap();
    let line_of = |needle: &str| 1 + cfg.lines().position(|l| l.starts_with(needle)).unwrap();
    let (code, out) = check(&sb);
    assert_eq!(code, 1, "{out}");
    for (line, col, file) in [
        (line_of("api_key_file"), 16, "brevo-key"),
        (line_of("inbound_secret_file"), 23, "secrets"),
    ] {
        let at = format!(
            "{}/config/vigie.toml:{line}:{col}: cannot read the secret file {}/config/{file}",
            sb.path().display(),
            sb.path().display()
        );
        assert!(
            out.lines()
                .any(|l| l.starts_with(&at) && l.ends_with("SMS channel `texto` cannot work")),
            "expected {at}… in\n{out}"
        );
    }
}

#[test]
fn check_refuses_a_channel_name_used_twice_across_email_sms_and_webhook() {
    let sb = minimal_with_sms("");
    let cfg = sb.read("config/vigie.toml");
    let cfg = format!(
        "{cfg}\n[email.mss]\ntransport = \"file\"\nfrom = \"CPTS <cpts@example.org>\"\ndir = \"../var/mss\"\n\n\
         [sms.mss]\nprovider = \"brevo\"\napi_key_file = \"brevo-key\"\nsender = \"CPTS\"\n\n\
         [webhook.texto]\nurl = \"http://127.0.0.1:9/x\"\nsecret_file = \"brevo-key\"\n"
    );
    sb.write("config/vigie.toml", &cfg);
    let line_of = |needle: &str| 1 + cfg.lines().position(|l| l == needle).unwrap();
    let file = format!("{}/config/vigie.toml", sb.path().display());
    let (code, out) = check(&sb);
    assert_eq!(code, 1, "{out}");
    for (second, col, first, first_col, name) in [
        ("[sms.mss]", 6, "[email.mss]", 8, "mss"),
        ("[webhook.texto]", 10, "[sms.texto]", 6, "texto"),
    ] {
        let want = format!(
            "{file}:{}:{col}: channel name `{name}` is already {first} (at {file}:{}:{first_col}): \
             a channel name is used once across [email.NAME], [webhook.NAME] and [sms.NAME]",
            line_of(second),
            line_of(first),
        );
        assert!(
            out.lines().any(|l| l == want),
            "expected\n  {want}\nin\n{out}"
        );
    }
    assert_eq!(out.matches("is already [").count(), 2, "{out}");
}

#[tokio::test]
async fn a_refused_key_or_no_credit_pauses_the_channel_and_nothing_is_lost() {
    let brevo = Provider::start((201, json!({"messageId": 1}))).await;
    // A revoked key, then no credit left: the account, not the messages.
    brevo.answer_with(&[
        (
            401,
            json!({"code": "unauthorized", "message": "Key not found"}),
        ),
        (
            402,
            json!({"code": "not_enough_credits", "message": "Not enough credits"}),
        ),
    ]);
    let td = api_key_daemon("brevo", &brevo, "k", "").await;
    let ev = td.declare(json!({"scenario": "cellule_crise"})).await;
    let id = ev["id"].as_str().unwrap().to_string();
    eventually(10, "the first refusal", || async {
        !brevo.reqs().is_empty()
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let ev = td.event(&id).await;
    assert!(
        sms_deliveries(&ev, "brevo")
            .iter()
            .all(|d| d["state"] != "failed"),
        "not failed for good: {ev}"
    );
    // The channel is probed until the account works again: both sent.
    for _ in 0..20 {
        td.advance(chrono::Duration::seconds(15));
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let ev = td.event(&id).await;
        if sms_deliveries(&ev, "brevo")
            .iter()
            .all(|d| d["state"] == "sent")
        {
            break;
        }
    }
    let ev = td.event(&id).await;
    assert!(
        sms_deliveries(&ev, "brevo")
            .iter()
            .all(|d| d["state"] == "sent"),
        "{ev}"
    );
    td.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_send_on_an_sms_channel_normalises_the_number_and_refuses_an_email() {
    let brevo = Provider::start((201, json!({"messageId": 7}))).await;
    let sb = minimal_with_sms("");
    let cfg = sb.read("config/vigie.toml");
    sb.write(
        "config/vigie.toml",
        &format!("{cfg}url = \"{}\"\n", brevo.base()),
    );
    let config = sb.config();
    let send = |to: &'static str| crate::support::test_send_blocking(config.clone(), "texto", to);
    let (code, out) = send("06 12 34 56 78").await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("+33612345678"), "{out}");
    let reqs = brevo.reqs();
    assert_eq!(reqs.len(), 1);
    assert_eq!(
        reqs[0].json()["recipient"],
        "33612345678",
        "{}",
        reqs[0].body
    );

    let (code, out) = send("claire.martin@example.org").await;
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("« claire.martin@example.org » n'est pas un numéro de téléphone : le canal « texto » envoie des SMS"),
        "{out}"
    );
    assert_eq!(brevo.reqs().len(), 1, "nothing sent");
}

#[tokio::test]
async fn a_natural_answer_by_sms_is_recorded_with_the_rest_as_its_comment() {
    let (_twilio, td) = twilio_daemon().await;
    let id = texted(&td).await;
    for (from, text) in [
        ("+33639980101", "1 je serai là dans 20 min"),
        ("+33639980102", "Disponible, j'arrive"),
    ] {
        answer(&td, from, text).await;
    }
    let ev = td.event(&id).await;
    let mut got: Vec<(String, String, String)> = ev["responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["recipient_id"].as_str().unwrap().to_string(),
                r["response"].as_str().unwrap().to_string(),
                r["comment"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (
                "ref1".into(),
                "disponible".into(),
                "je serai là dans 20 min".into()
            ),
            ("ref2".into(), "disponible".into(), "j'arrive".into()),
        ],
        "{ev}"
    );
    assert_eq!(ev["state"], "acknowledged");
    td.stop().await;
}

#[tokio::test]
async fn a_body_neither_form_nor_json_is_answered_200_and_changes_nothing() {
    let (_twilio, td) = twilio_daemon().await;
    let id = texted(&td).await;
    let url = td.url(&format!(
        "/api/v1/inbound/sms/twilio?secret={INBOUND_SECRET}"
    ));
    for (ctype, body) in [
        ("text/plain", "from=+33639980101 text=1"),
        ("application/json", "{\"from\": \"+33639980101\", "),
    ] {
        let r = td
            .http
            .post(&url)
            .header("content-type", ctype)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{ctype}");
    }
    assert!(responses_of(&td, &id).await.is_empty());
    td.stop().await;
}

#[test]
fn check_warns_when_answers_by_sms_would_go_to_a_named_sender() {
    let sb = minimal_with_sms("");
    let cfg = sb.read("config/vigie.toml");
    let cfg = format!("{cfg}inbound_secret_file = \"brevo-key\"\n");
    sb.write("config/vigie.toml", &cfg);
    let line = 1 + cfg.lines().position(|l| l == "sender = \"CPTS\"").unwrap();
    let (code, out) = check(&sb);
    assert_eq!(code, 0, "a warning: {out}");
    let want = format!(
        "{}/config/vigie.toml:{line}:10: warning: `sender` \"CPTS\" is a name: a phone cannot answer it, \
         so `inbound_secret_file` receives no answer by SMS on channel `texto` (write the channel's phone number)",
        sb.path().display()
    );
    assert!(
        out.lines().any(|l| l == want),
        "expected\n  {want}\nin\n{out}"
    );

    // A number: answers can come back.
    sb.write(
        "config/vigie.toml",
        &cfg.replace("sender = \"CPTS\"", "sender = \"+33700000001\""),
    );
    let (code, out) = check(&sb);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("is a name"), "{out}");
}

/// The inbound SMS address holds its secret in the URL: INSTALL.md's nginx
/// example keeps it out of the access log.
#[test]
fn the_nginx_example_does_not_log_the_inbound_sms_secret() {
    let guide = std::fs::read_to_string(crate::support::repo().join("docs/INSTALL.md")).unwrap();
    let block = guide
        .split("location /api/v1/inbound/ {")
        .nth(1)
        .expect("an inbound location in the nginx example")
        .split('}')
        .next()
        .unwrap();
    assert!(block.contains("access_log off;"), "{block}");
    assert!(
        block.contains("proxy_pass http://127.0.0.1:8640;"),
        "{block}"
    );
}

/// An SMS channel is built at start with the keys its files held then: a
/// reload that changes its block says a restart is needed instead of
/// keeping the old settings silently.
#[test]
fn a_reload_that_changes_an_sms_channel_says_to_restart() {
    let sb = crate::support::Sandbox::shipped_in_force();
    sb.listen_anywhere();
    sb.write("config/secrets/brevo", "key-1");
    let block = |port: u16| {
        format!(
            "\n[sms.brevo]\nprovider = \"brevo\"\nurl = \"http://127.0.0.1:{port}\"\napi_key_file = \"secrets/brevo\"\nsender = \"CPTSTHUR\"\n"
        )
    };
    let base = sb.read("config/vigie.toml");
    sb.write("config/vigie.toml", &format!("{base}{}", block(9)));
    let mut d = crate::support::DaemonProcess::start(&sb.config());
    sb.write("config/vigie.toml", &format!("{base}{}", block(10)));
    d.signal("HUP");
    let line = d
        .wait_log(
            "restart Vigie to apply it",
            std::time::Duration::from_secs(20),
        )
        .unwrap_or_else(|| panic!("no restart warning:\n{}", d.seen.join("\n")));
    assert!(line.contains("[sms.NAME]"), "{line}");
    d.signal("TERM");
    assert_eq!(d.wait_exit(std::time::Duration::from_secs(30)), Some(0));
}
