//! The command line against the real daemon (shipped configuration, e-mails
//! written as files).

use std::time::{Duration, Instant};

use crate::support::{DaemonProcess, Sandbox, run_vigie};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The shipped configuration in a sandbox, listening on a free port, and
/// the real daemon running on it.
fn shipped_daemon() -> (Sandbox, DaemonProcess) {
    let sb = Sandbox::shipped_in_force();
    let port = free_port();
    sb.edit(
        "config/vigie.toml",
        "listen = \"127.0.0.1:8640\"",
        &format!("listen = \"127.0.0.1:{port}\""),
    );
    let d = DaemonProcess::start(&sb.config());
    (sb, d)
}

#[test]
fn a_coordinator_declares_follows_and_resolves_an_exercise_from_the_command_line() {
    let (sb, _d) = shipped_daemon();
    let c = sb.config();
    let c = c.to_str().unwrap();

    let (code, out, err) = run_vigie(&[
        "declare",
        "canicule",
        "--level",
        "orange",
        "--exercise",
        "--note",
        "Exercice annuel",
        "-c",
        c,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("événement 1 déclenché : Vague de chaleur, niveau orange, EXERCICE (")
            && out.contains(" envois en file)"),
        "{out}"
    );

    let (code, out, _) = run_vigie(&[
        "declare",
        "canicule",
        "--level",
        "rouge",
        "--exercise",
        "-c",
        c,
    ]);
    assert_eq!(code, 0);
    assert!(
        out.contains("événement 1 (Vague de chaleur, niveau rouge, EXERCICE) déjà ouvert")
            && out.contains("niveau passé à rouge"),
        "{out}"
    );
    // Lowering it by declaring again is refused without --downgrade.
    let (code, _, err) = run_vigie(&[
        "declare",
        "canicule",
        "--level",
        "orange",
        "--exercise",
        "-c",
        c,
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("would lower it"), "{err}");
    let (code, out, err) = run_vigie(&[
        "declare",
        "canicule",
        "--level",
        "orange",
        "--exercise",
        "--downgrade",
        "-c",
        c,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("niveau passé à orange"), "{out}");

    let (code, out, _) = run_vigie(&["events", "-c", c]);
    assert_eq!(code, 0);
    assert!(
        out.contains("canicule") && out.contains("[EXERCICE] Vague de chaleur"),
        "{out}"
    );

    // The e-mails are written as files in var/outbox.
    let outbox = sb.path().join("var/outbox");
    let deadline = Instant::now() + Duration::from_secs(20);
    let expected = {
        let (_, out, _) = run_vigie(&["show", "1", "--json", "-c", c]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["state"] != "skipped")
            .count()
    };
    assert!(expected > 40, "{expected}");
    while std::fs::read_dir(&outbox).map(|d| d.count()).unwrap_or(0) < expected
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(std::fs::read_dir(&outbox).unwrap().count(), expected);

    let (code, out, _) = run_vigie(&["show", "1", "-c", c]);
    assert_eq!(code, 0);
    assert!(
        out.contains("  état            En cours\n")
            && out.contains("  palier 1 (tour 1) → referents : quorum 1, délai 1 h, "),
        "{out}"
    );
    // Times as a coordinator reads them: in the daemon's zone (Paris), not
    // UTC.
    let declared = out
        .lines()
        .find_map(|l| l.strip_prefix("  déclenché le    "))
        .expect("a declared line");
    let now = chrono::Utc::now().with_timezone(&chrono_tz::Europe::Paris);
    assert!(
        declared.starts_with(&now.format("%Y-%m-%d %H:").to_string())
            || declared.starts_with(
                &(now - chrono::Duration::minutes(5))
                    .format("%Y-%m-%d %H:")
                    .to_string()
            ),
        "{declared}"
    );
    assert!(
        declared.ends_with(" CET") || declared.ends_with(" CEST"),
        "{declared}"
    );
    let (_, out, _) = run_vigie(&["events", "-c", c]);
    assert!(
        !out.contains("+00:00") && !out.contains("T0") && out.contains(" CE"),
        "{out}"
    );

    let (code, out, _) = run_vigie(&["resolve", "1", "--note", "Fin de l'exercice", "-c", c]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("événement 1 levé ("), "{out}");

    let (code, out, _) = run_vigie(&["status", "-c", c]);
    assert_eq!(code, 0);
    assert!(
        out.contains("plan en vigueur : pgc 2026.1") && out.contains("événements en cours : 0"),
        "{out}"
    );

    // A real alert while an exercise runs: a real event, and a warning.
    let (code, out, _) = run_vigie(&["declare", "cellule_crise", "--exercise", "-c", c]);
    assert_eq!(code, 0, "{out}");
    let (code, out, _) = run_vigie(&["declare", "cellule_crise", "-c", c]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("événement 3 déclenché"), "{out}");
    assert!(!out.lines().next().unwrap().contains("EXERCICE"), "{out}");
    assert!(
        out.contains(
            "ATTENTION : un EXERCICE de ce scénario est en cours (l'événement 2) : cette \
             déclaration est RÉELLE, tenue à part"
        ),
        "{out}"
    );

    // Errors: an unknown scenario is refused by the daemon (exit 1).
    let (code, _, err) = run_vigie(&["declare", "inondation", "-c", c]);
    assert_eq!(code, 1);
    assert!(
        err.contains("no plan in force today has a scenario `inondation`"),
        "{err}"
    );
    // A misspelt one names the scenario meant, then every known one.
    let (code, _, err) = run_vigie(&["declare", "canicul", "-c", c]);
    assert_eq!(code, 1);
    assert!(
        err.contains(
            "no plan in force today has a scenario `canicul`: did you mean `canicule`? \
             (scenarios: canicule, epidemie,"
        ),
        "{err}"
    );
}

#[test]
fn commands_say_clearly_when_the_daemon_is_not_running() {
    let sb = Sandbox::shipped_in_force();
    let port = free_port();
    sb.edit(
        "config/vigie.toml",
        "listen = \"127.0.0.1:8640\"",
        &format!("listen = \"127.0.0.1:{port}\""),
    );
    let c = sb.config();
    let (code, _, err) = run_with_token(&["events", "-c", c.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("le démon ne répond pas à"), "{err}");
}

fn run_with_token(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(crate::support::vigie_bin())
        .args(args)
        .env("VIGIE_TOKEN", "some-token")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn plan_preview_shows_each_step_with_its_first_message_and_sends_nothing() {
    let sb = Sandbox::shipped_in_force();
    let c = sb.config();
    let (code, out, _) = run_vigie(&[
        "plan",
        "preview",
        "canicule",
        "--level",
        "orange",
        "--date",
        "2026-07-01",
        "-c",
        c.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("== Diffusion → tous =="), "{out}");
    assert!(out.contains("canaux : email ; 39 destinataires"), "{out}");
    assert!(out.contains("== Palier 1 → referents"), "{out}");
    assert!(out.contains("Objet : "), "{out}");
    // After the last tier comes no "next tier": the chain starts again
    // (escalation_repeat = 1), then the owners are alerted.
    let tiers: Vec<&str> = out.lines().filter(|l| l.starts_with("== Palier")).collect();
    assert_eq!(
        tiers.last().copied(),
        Some(
            "== Palier 2 → bureau (quorum 1 ; faute de quorum après 2 h : de nouveau le palier 1 \
             pour qui n'a pas répondu (une fois), puis alerte des responsables du plan) =="
        ),
        "{out}"
    );
    assert!(
        !sb.path().join("var").exists(),
        "nothing written, nothing sent"
    );
    let (code, out, _) = run_vigie(&[
        "plan",
        "preview",
        "canicule",
        "--level",
        "violet",
        "-c",
        c.to_str().unwrap(),
        "--date",
        "2026-07-01",
    ]);
    assert_eq!(code, 1);
    assert!(out.contains("unknown level `violet`"), "{out}");
    let (code, out, _) = run_vigie(&[
        "plan",
        "preview",
        "canicul",
        "-c",
        c.to_str().unwrap(),
        "--date",
        "2026-07-01",
    ]);
    assert_eq!(code, 1);
    assert!(
        out.starts_with(
            "aucun plan en vigueur le 2026-07-01 n'a de scénario `canicul` : vouliez-vous dire \
             `canicule` ? (scénarios : canicule, epidemie,"
        ),
        "{out}"
    );
}

#[test]
fn a_refused_reload_says_why_at_each_place() {
    let (sb, _d) = shipped_daemon();
    let c = sb.config();
    let c = c.to_str().unwrap();
    let (code, out, err) = run_vigie(&["reload", "-c", c]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("configuration rechargée"), "{out}");

    // A coordinator breaks the plan: the reload is refused and says where.
    sb.edit("plans/pgc-2026.toml", "quorum = 1", "quorum = \"un\"");
    let (code, out, err) = run_vigie(&["reload", "-c", c]);
    assert_eq!(code, 1, "{out}{err}");
    let mut lines = err.lines();
    assert_eq!(
        lines.next(),
        Some(
            "vigie: rechargement refusé (HTTP 422), la configuration en service est gardée \
             (1 erreur) :"
        ),
        "{err}"
    );
    let first = lines.next().unwrap_or_default();
    assert!(
        first.starts_with("  /")
            && first.ends_with(
                "/plans/pgc-2026.toml:68:10: `quorum` in [[scenario.escalation]] #1 must be an \
                 integer, like `quorum = 2`; found the string \"un\""
            ),
        "{err}"
    );
}

#[test]
fn commands_on_the_server_keep_working_once_named_tokens_exist() {
    let (sb, _d) = shipped_daemon();
    let c = sb.config();
    let c = c.to_str().unwrap();
    // The sysadmin names a token for a script, as the reference says, and
    // reloads: root's commands on the server go on with the local token.
    let (code, out, _) = run_vigie(&["token", "new", "supervision"]);
    assert_eq!(code, 0, "{out}");
    let line = out
        .lines()
        .find(|l| l.contains("sha256"))
        .unwrap_or_else(|| panic!("no line to paste in {out}"))
        .trim()
        .to_string();
    let config = std::fs::read_to_string(sb.config()).unwrap();
    std::fs::write(
        sb.config(),
        format!("{config}\n[auth]\ntokens = [{line}]\n"),
    )
    .unwrap();
    let (code, out, err) = run_vigie(&["reload", "-c", c]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = run_vigie(&["status", "-c", c]);
    assert_eq!(code, 0, "{out}{err}");

    // Turned off, the local token is refused: the command says so.
    let config = std::fs::read_to_string(sb.config()).unwrap();
    std::fs::write(
        sb.config(),
        config.replace(
            &format!("\n[auth]\ntokens = [{line}]"),
            &format!("\n[auth]\nlocal_token = false\ntokens = [{line}]"),
        ),
    )
    .unwrap();
    let (code, out, err) = run_vigie(&["reload", "-c", c]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = run_vigie(&["status", "-c", c]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("le démon refuse le jeton : donnez --token-file FICHIER ou $VIGIE_TOKEN")
            && err.contains("(HTTP 401)"),
        "{err}"
    );
}

#[test]
fn a_second_daemon_on_the_same_data_directory_refuses_to_start() {
    // Two daemons on one database would each send every alert: a second
    // `vigie run` (here on another port, same data_dir) stops at once.
    let (sb, _d) = shipped_daemon();
    let text = std::fs::read_to_string(sb.config()).unwrap();
    let port = free_port();
    let other = sb.path().join("config/second.toml");
    let listen = text
        .lines()
        .find(|l| l.starts_with("listen = "))
        .unwrap()
        .to_string();
    std::fs::write(
        &other,
        text.replace(&listen, &format!("listen = \"127.0.0.1:{port}\"")),
    )
    .unwrap();
    let (code, out, err) =
        crate::support::run_vigie_briefly(&["run", "-c", other.to_str().unwrap()]);
    assert!(code != 0 && code != 124, "{code} {out}{err}");
    assert!(
        err.contains("another vigie is using the data directory") && err.contains("stop it first"),
        "{err}"
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing serves on the second port"
    );
}

/// `vigie test-send` on an e-mail channel with something that is not an
/// address says so in French and sends nothing (it tried, then printed
/// lettre's English error and "Échec définitif").
#[test]
fn test_send_refuses_what_is_not_an_e_mail_address() {
    let sb = Sandbox::shipped_in_force();
    let config = sb.config();
    let (code, out, err) = run_vigie(&[
        "test-send",
        "email",
        "pas-une-adresse",
        "-c",
        config.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        out.contains("« pas-une-adresse » n'est pas une adresse e-mail valable : le canal « email » envoie des e-mails."),
        "{out}"
    );
    assert!(out.contains("Rien n'a été envoyé."), "{out}");
    assert!(
        !sb.path().join("var/outbox").exists()
            || std::fs::read_dir(sb.path().join("var/outbox"))
                .unwrap()
                .next()
                .is_none()
    );
}
