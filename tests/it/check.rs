//! `vigie check` on the shipped files and on a corpus of broken ones: every
//! problem named with its file, line and column; never a panic.
//!
//! The corpus starts from `tests/fixtures/minimal/`, a small set that passes
//! with no warning at all. Each case copies it to a temporary directory,
//! breaks one thing, runs the real binary and looks for the exact line
//! `path:line:col: message` in its output. Expected lines are written
//! relative to the copy (`plans/pgc-2026.toml:29:26: …`): paths are printed
//! as the loader resolved them, `config/../plans` folded to `plans`. Inside a
//! message, `{dir}` stands for the copy's path.

use crate::support::{Sandbox, copy_dir, repo, run_vigie};

/// The day every case is judged on: the minimal plan is in force, its
/// review is not due yet.
const DATE: &str = "2026-06-01";

const PLAN: &str = "plans/pgc-2026.toml";
const DIRECTORY: &str = "config/directory.toml";
const ROSTER: &str = "config/rosters/garde.toml";
const REMINDERS: &str = "config/reminders.toml";
const DAEMON: &str = "config/vigie.toml";

/// A temporary copy of `tests/fixtures/minimal`.
fn minimal() -> Sandbox {
    let dir = tempfile::tempdir().expect("temp dir");
    copy_dir(&repo().join("tests/fixtures/minimal"), dir.path());
    Sandbox { dir }
}

/// `vigie check -c <copy>/config/vigie.toml --date DATE`: exit code and
/// standard output. A panic is a failure whatever the exit code.
fn check_on(sb: &Sandbox, date: &str) -> (i32, String) {
    let config = sb.config();
    let (code, out, err) = run_vigie(&["check", "-c", config.to_str().unwrap(), "--date", date]);
    assert!(
        !err.contains("panicked"),
        "vigie check panicked:\n{err}\n{out}"
    );
    (code, out)
}

/// An expected line, relative to the copy, made absolute.
fn expand(sb: &Sandbox, line: &str) -> String {
    let dir = sb.path().display().to_string();
    format!("{dir}/{}", line.replace("{dir}", &dir))
}

/// The output has exactly this line.
fn assert_lists(sb: &Sandbox, out: &str, expected: &str) {
    let want = expand(sb, expected);
    assert!(
        out.lines().any(|l| l == want),
        "expected the line\n  {want}\nin the output of vigie check:\n{out}"
    );
}

/// The output has no line containing `needle`.
fn assert_never_says(out: &str, needle: &str) {
    assert!(
        !out.contains(needle),
        "vigie check should not say {needle:?}:\n{out}"
    );
}

/// `vigie check` refuses the copy (exit 1) and lists every expected line.
fn assert_refused(sb: &Sandbox, expected: &[&str]) -> String {
    let (code, out) = check_on(sb, DATE);
    assert_eq!(code, 1, "vigie check should refuse:\n{out}");
    for e in expected {
        assert_lists(sb, &out, e);
    }
    assert!(out.contains("the configuration is refused"), "{out}");
    out
}

/// `vigie check` accepts the copy (exit 0) and lists every expected line.
fn assert_accepted(sb: &Sandbox, date: &str, expected: &[&str]) -> String {
    let (code, out) = check_on(sb, date);
    assert_eq!(code, 0, "vigie check should accept:\n{out}");
    for e in expected {
        assert_lists(sb, &out, e);
    }
    assert!(out.lines().any(|l| l.starts_with("OK: ")), "{out}");
    out
}

/// One case of the corpus: in FILE, replace the first occurrence of FROM by
/// TO; `vigie check` must refuse the set and print every EXPECTED line.
macro_rules! refused {
    ($name:ident: $file:expr, $from:expr => $to:expr, $($expected:expr),+ $(,)?) => {
        #[test]
        fn $name() {
            let sb = minimal();
            sb.edit($file, $from, $to);
            assert_refused(&sb, &[$($expected),+]);
        }
    };
}

// ---------------------------------------------------------------------------
// The shipped configuration and the minimal fixture set
// ---------------------------------------------------------------------------

#[test]
fn the_shipped_configuration_passes_check() {
    let sb = Sandbox::shipped();
    let config = sb.config();
    let (code, out, _) = run_vigie(&[
        "check",
        "-c",
        config.to_str().unwrap(),
        "--date",
        "2026-06-01",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("OK: 41 professionals"), "{out}");
    assert!(out.contains("in force: pgc 2026.1"), "{out}");
}

#[test]
fn the_minimal_set_passes_check_without_any_warning() {
    let sb = minimal();
    let out = assert_accepted(&sb, DATE, &[]);
    assert_eq!(
        out.trim(),
        "OK: 5 professionals (4 active), 4 groups, 1 plan file (in force: pgc 2026.1), \
         1 roster, 1 reminder; 0 warnings",
        "{out}"
    );
}

#[test]
fn plan_list_on_the_minimal_set_shows_the_version_in_force() {
    let sb = minimal();
    let config = sb.config();
    let (code, out, err) = run_vigie(&[
        "plan",
        "list",
        "-c",
        config.to_str().unwrap(),
        "--date",
        DATE,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let row = out
        .lines()
        .find(|l| l.starts_with("pgc "))
        .unwrap_or_else(|| panic!("no row for plan pgc:\n{out}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        &cells[..7],
        [
            "pgc",
            "2026.1",
            "2026-01-01",
            "2026-12-31",
            "2025-12-10",
            "2026-11-30",
            "en"
        ],
        "{out}"
    );
    assert!(row.contains("en vigueur"), "{out}");
    assert!(row.ends_with("pgc-2026.toml"), "{out}");
}

// ---------------------------------------------------------------------------
// TOML syntax, unknown keys, missing keys
// ---------------------------------------------------------------------------

refused!(a_toml_syntax_error_is_refused_with_its_line_and_column:
    PLAN, r#"title = "Vague de chaleur""# => r#"title = "Vague de chaleur"#,
    r#"plans/pgc-2026.toml:29:26: TOML syntax error: invalid basic string, expected `"`"#);

refused!(a_toml_syntax_error_in_the_daemon_configuration_is_refused:
    DAEMON, "[http]" => "[http",
    "config/vigie.toml:15:6: TOML syntax error: unclosed table, expected `]`");

refused!(an_unknown_key_in_plan_is_refused_at_the_key:
    PLAN, "approved = 2025-12-10" => "approuve = 2025-12-10",
    "plans/pgc-2026.toml:9:1: unknown key `approuve` in [plan]: did you mean `approved`?");

refused!(an_unknown_key_in_a_scenario_is_refused_at_the_key:
    PLAN, "notify_on_resolve = true" => "notify_on_resolv = true",
    "plans/pgc-2026.toml:34:1: unknown key `notify_on_resolv` in [[scenario]] #1: did you mean `notify_on_resolve`?");

refused!(an_unknown_key_in_an_escalation_tier_is_refused_with_the_tier_number:
    PLAN, "quorum = 2" => "quorom = 2",
    "plans/pgc-2026.toml:51:1: unknown key `quorom` in [[scenario.escalation]] #2: did you mean `quorum`?");

refused!(an_unknown_key_in_daemon_is_refused_at_the_key:
    DAEMON, r#"holidays = "france""# => r#"holiday = "france""#,
    "config/vigie.toml:7:1: unknown key `holiday` in [daemon]: did you mean `holidays`?");

refused!(an_unknown_key_in_a_professional_is_refused_with_the_entry_number:
    DIRECTORY, r#"phone = "+33639980003""# => r#"telephone = "+33639980003""#,
    "config/directory.toml:29:1: unknown key `telephone` in [[professional]] #3: did you mean `phone`?");

refused!(an_unknown_key_in_an_inline_selector_is_refused:
    PLAN, r#"owners = { groups = ["bureau"] }"# => r#"owners = { group = ["bureau"] }"#,
    "plans/pgc-2026.toml:11:12: unknown key `group` in `owners` of [plan]: did you mean `groups`?");

refused!(a_plan_without_id_is_refused_at_its_header:
    PLAN, r#"id = "pgc""# => "# (no id)",
    "plans/pgc-2026.toml:3:1: missing required key `id` in [plan]");

refused!(a_scenario_without_title_is_refused_at_its_header:
    PLAN, r#"title = "Vague de chaleur""# => "# (no title)",
    "plans/pgc-2026.toml:27:1: missing required key `title` in [[scenario]] #1");

refused!(an_escalation_tier_without_timeout_is_refused_at_its_header:
    PLAN, r#"timeout = "30m""# => "# (no timeout)",
    "plans/pgc-2026.toml:48:1: missing required key `timeout` in [[scenario.escalation]] #2 \
     (how long to wait for the quorum)");

refused!(a_professional_without_name_is_refused_at_the_entry:
    DIRECTORY, r#"name = "Lucie Weber""# => "# (no name)",
    "config/directory.toml:23:1: missing required key `name` in [[professional]] #3");

refused!(a_key_of_the_wrong_type_is_refused_at_the_value:
    PLAN, "quorum = 2" => r#"quorum = "deux""#,
    "plans/pgc-2026.toml:51:10: `quorum` in [[scenario.escalation]] #2 must be an integer, \
     like `quorum = 2`; found the string \"deux\"");

refused!(a_number_in_quotes_is_refused_with_the_line_to_write:
    PLAN, "quorum = 2" => r#"quorum = "2""#,
    "plans/pgc-2026.toml:51:10: `quorum` in [[scenario.escalation]] #2 must be an integer, \
     like `quorum = 2`; found the string \"2\": write it without quotes, `quorum = 2`");

refused!(a_word_without_quotes_is_refused_with_how_to_write_values:
    PLAN, "quorum = 2" => "quorum = trois",
    "plans/pgc-2026.toml:51:10: TOML syntax error: `trois` is not a TOML value: write text in \
     quotes (`quorum = \"trois\"`), a number in digits (`quorum = 2`), yes or no as `true` or `false`");

// ---------------------------------------------------------------------------
// Names that must exist: audiences, groups, templates, channels, rosters, levels
// ---------------------------------------------------------------------------

refused!(an_unknown_audience_is_refused_with_its_line_and_column:
    PLAN, r#"audience = ["premier_recours"]"# => r#"audience = ["premier_recour"]"#,
    "plans/pgc-2026.toml:38:13: unknown audience `premier_recour`: did you mean `premier_recours`? (plan audiences and \
     directory groups: medecin_de_garde, referents, bureau, medecins, officines, premier_recours)");

refused!(an_unknown_group_in_a_plan_selector_is_refused:
    PLAN, r#"owners = { groups = ["bureau"] }"# => r#"owners = { groups = ["burea"] }"#,
    "plans/pgc-2026.toml:11:22: unknown group `burea`: did you mean `bureau`? \
     (directory groups: bureau, medecins, officines, premier_recours)");

refused!(an_unknown_group_inside_a_directory_group_is_refused:
    DIRECTORY, r#"groups = ["medecins", "officines"]"# => r#"groups = ["medecins", "officine"]"#,
    "config/directory.toml:57:23: unknown group `officine`: did you mean `officines`? \
     (directory groups: bureau, medecins, officines, premier_recours)");

refused!(an_unknown_group_in_a_reminder_audience_is_refused:
    REMINDERS, r#"audience = ["bureau"]"# => r#"audience = ["burau"]"#,
    "config/reminders.toml:7:13: unknown group `burau`: did you mean `bureau`? \
     (directory groups: bureau, medecins, officines, premier_recours)");

refused!(an_unknown_template_is_refused_with_the_known_ones:
    PLAN, r#"template = "mobilisation""# => r#"template = "mobilisatoin""#,
    "plans/pgc-2026.toml:44:12: unknown template `mobilisatoin` \
     (templates of this plan: mobilisation)");

refused!(an_unknown_template_in_a_reminder_is_refused:
    REMINDERS, r#"template = "rappel_annuaire""# => r#"template = "rappel""#,
    "config/reminders.toml:9:12: unknown template `rappel` \
     (templates of this file: rappel_annuaire)");

refused!(an_unknown_channel_is_refused_and_says_how_to_declare_one:
    PLAN, r#"channels = ["email"]"# => r#"channels = ["email", "sms"]"#,
    "plans/pgc-2026.toml:39:22: unknown channel `sms` (channels: email; a webhook channel \
     is a [webhook.NAME] of the daemon configuration)");

refused!(an_unknown_roster_in_on_call_is_refused:
    PLAN, r#"on_call = "garde""# => r#"on_call = "gard""#,
    "plans/pgc-2026.toml:17:11: unknown roster `gard`: did you mean `garde`? (rosters: garde)");

refused!(an_unknown_level_in_a_broadcast_is_refused_with_the_scenario_levels:
    PLAN, r#"levels = ["orange", "rouge"]"# => r#"levels = ["orange", "violet"]"#,
    "plans/pgc-2026.toml:37:21: unknown level `violet` \
     (levels of scenario `canicule`: jaune, orange, rouge)");

refused!(a_misspelt_level_in_a_broadcast_gets_the_level_meant:
    PLAN, r#"levels = ["orange", "rouge"]"# => r#"levels = ["orange", "roug"]"#,
    "plans/pgc-2026.toml:37:21: unknown level `roug`: did you mean `rouge`? \
     (levels of scenario `canicule`: jaune, orange, rouge)");

refused!(an_ack_naming_no_response_is_refused:
    PLAN, r#"ack = ["disponible"]"# => r#"ack = ["dispo"]"#,
    "plans/pgc-2026.toml:32:8: `ack` names `dispo`, which is not one of the responses \
     (disponible, indisponible)");

refused!(an_audience_that_selects_nobody_is_refused:
    PLAN, r#"roles = ["referent_crise"]"# => "# (empty)",
    "plans/pgc-2026.toml:13:1: [audience.referents] selects nobody: give at least one of \
     professions, communes, roles, tags, ids, groups, on_call, or all = true");

refused!(an_empty_inline_selector_is_refused:
    PLAN, r#"owners = { groups = ["bureau"] }"# => "owners = {}",
    "plans/pgc-2026.toml:11:10: `owners` of [plan] selects nobody: give at least one of \
     professions, communes, roles, tags, ids, groups, on_call, or all = true");

refused!(an_empty_audience_list_is_refused:
    PLAN, r#"audience = ["premier_recours"]"# => "audience = []",
    "plans/pgc-2026.toml:36:1: `audience` of [[scenario.broadcast]] #1 is empty");

// ---------------------------------------------------------------------------
// Values: durations, cron, dates, e-mail, phone, RPPS, time zone
// ---------------------------------------------------------------------------

refused!(an_invalid_duration_is_refused_with_an_example:
    PLAN, r#"timeout = "15m""# => r#"timeout = "quinze minutes""#,
    r#"plans/pgc-2026.toml:46:11: invalid duration "quinze minutes": expected number at 0 (write e.g. "15m", "2h", "1h 30m")"#);

refused!(an_invalid_cron_in_a_reminder_is_refused_on_one_line:
    REMINDERS, r#"schedule = "0 9 1 * *""# => r#"schedule = "0 9 1 * vendredy""#,
    r#"config/reminders.toml:6:12: invalid cron schedule "0 9 1 * vendredy": 'vendredy' is not a valid day of the week"#);

refused!(an_hour_written_the_french_way_says_how_to_write_it:
    REMINDERS, r#"schedule = "0 9 1 * *""# => r#"schedule = "0 9h * * lundi""#,
    r#"config/reminders.toml:6:12: invalid cron schedule "0 9h * * lundi": "9h" is not a cron field; write the minute and the hour as numbers, each in its own field: "30 9 * * lun" is 9h30 on Mondays (minute hour day month weekday)"#);

#[test]
fn french_day_names_are_accepted_in_a_schedule() {
    let sb = minimal();
    sb.edit(
        REMINDERS,
        r#"schedule = "0 9 1 * *""#,
        r#"schedule = "30 9 * * lun-ven""#,
    );
    assert_accepted(&sb, DATE, &[]);
}

refused!(an_out_of_range_hour_in_a_roster_check_is_refused_in_crontab_terms:
    ROSTER, r#"schedule = "0 9 * * mon""# => r#"schedule = "0 25 * * mon""#,
    r#"config/rosters/garde.toml:8:22: invalid cron schedule "0 25 * * mon": hour 25 is out of range 0-23"#);

refused!(a_date_that_does_not_exist_is_refused:
    PLAN, "valid_from = 2026-01-01" => "valid_from = 2026-02-30",
    "plans/pgc-2026.toml:7:14: TOML syntax error: invalid date, expected day between 01 and 28");

refused!(a_date_written_as_a_string_is_refused_and_shows_how_to_write_it:
    PLAN, "valid_from = 2026-01-01" => r#"valid_from = "2026-01-01""#,
    "plans/pgc-2026.toml:7:14: `valid_from` must be a TOML date without quotes, like 2026-01-01");

refused!(a_date_written_in_words_is_refused_without_a_misleading_example:
    PLAN, "valid_from = 2026-01-01" => r#"valid_from = "1er janvier 2026""#,
    r#"plans/pgc-2026.toml:7:14: `valid_from` in [plan] must be a TOML date written YYYY-MM-DD without quotes, found the string "1er janvier 2026""#);

refused!(a_date_time_where_a_date_is_expected_is_refused:
    PLAN, "valid_from = 2026-01-01" => "valid_from = 2026-01-01T08:00:00",
    "plans/pgc-2026.toml:7:14: `valid_from` in [plan] must be a date (YYYY-MM-DD), \
     like `valid_from = 2026-12-01`; found the date-time 2026-01-01T08:00:00: keep only the \
     date, `valid_from = 2026-01-01`");

refused!(an_assignment_on_the_31st_of_june_is_refused:
    ROSTER, "date = 2026-06-01" => "date = 2026-06-31",
    "config/rosters/garde.toml:26:8: TOML syntax error: invalid date, expected day between 01 and 30");

refused!(a_validity_that_ends_before_it_starts_is_refused:
    PLAN, "valid_until = 2026-12-31" => "valid_until = 2025-12-31",
    "plans/pgc-2026.toml:8:15: valid_until 2025-12-31 is before valid_from 2026-01-01");

refused!(an_invalid_e_mail_is_refused_with_the_reason:
    DIRECTORY, r#"email = "claire.martin@example.org""# => r#"email = "claire.martin@example""#,
    r#"config/directory.toml:9:9: invalid e-mail address "claire.martin@example": the domain has no '.'"#);

refused!(an_e_mail_with_a_space_is_refused:
    DIRECTORY, r#"email = "lucie.weber@example.org""# => r#"email = "lucie weber@example.org""#,
    r#"config/directory.toml:28:9: invalid e-mail address "lucie weber@example.org": it contains a space"#);

refused!(an_invalid_sender_address_is_refused:
    DAEMON, "<vigie@example.org>" => "<vigie@example>",
    r#"config/vigie.toml:20:8: invalid e-mail address "vigie@example": the domain has no '.'"#);

refused!(a_phone_number_not_in_e164_is_refused:
    DIRECTORY, r#"phone = "+33639980001""# => r#"phone = "06 39 98 00 01""#,
    r#"config/directory.toml:10:9: invalid phone number "06 39 98 00 01": write it in E.164 form, e.g. +33612345678"#);

refused!(a_french_phone_number_with_its_leading_zero_is_refused:
    DIRECTORY, r#"phone = "+33639980001""# => r#"phone = "+330639980001""#,
    r#"config/directory.toml:10:9: invalid phone number "+330639980001": a French number is +33 then 9 digits without the leading 0 (e.g. +33612345678)"#);

refused!(an_rpps_of_ten_digits_is_refused:
    DIRECTORY, r#"rpps = "10005173140""# => r#"rpps = "1000517314""#,
    r#"config/directory.toml:7:8: invalid RPPS "1000517314": it must be 11 digits"#);

refused!(an_unknown_time_zone_is_refused:
    DAEMON, r#"timezone = "Europe/Paris""# => r#"timezone = "Europe/Pariss""#,
    r#"config/vigie.toml:6:12: unknown time zone "Europe/Pariss" (an IANA name such as "Europe/Paris")"#);

#[test]
fn an_rpps_failing_the_luhn_check_is_only_a_warning() {
    let sb = minimal();
    sb.edit(
        DIRECTORY,
        r#"rpps = "10005173140""#,
        r#"rpps = "10005173141""#,
    );
    let out = assert_accepted(
        &sb,
        DATE,
        &[
            r#"config/directory.toml:7:8: warning: RPPS "10005173141" fails the Luhn check: is it mistyped?"#,
        ],
    );
    assert!(out.contains("; 1 warning"), "{out}");
}

// ---------------------------------------------------------------------------
// Templates
// ---------------------------------------------------------------------------

refused!(a_template_that_does_not_compile_points_at_the_line_inside_the_template:
    PLAN, "{{ event.note }}" => "{{ event.note }",
    "plans/pgc-2026.toml:23:15: template `mobilisation` (text) does not compile: \
     unexpected `}`, expected end of variable block");

refused!(a_template_with_an_unclosed_block_is_refused:
    PLAN, "{{ event.note }}" => "{% if event.note %}",
    "plans/pgc-2026.toml:24:56: template `mobilisation` (text) does not compile: \
     unexpected end of input, expected end of block");

refused!(an_unknown_variable_in_a_multi_line_template_points_at_its_line_and_column:
    PLAN, "active son plan : {{ event.title }}" => "active son plan : {{ event.titre }}",
    "plans/pgc-2026.toml:22:52: template `mobilisation` (text) uses unknown variable \
     `event.titre` (known: cpts, plan.id, plan.version, plan.title, event.id, event.title, \
     event.scenario, event.level, event.note, event.exercise, event.declared_at, \
     recipient.name, recipient.profession, recipient.commune, response_url, instructions)");

refused!(an_unknown_variable_in_a_subject_points_at_its_column:
    PLAN, "] {{ event.title }}\"" => "] {{ event.titre }}\"",
    "plans/pgc-2026.toml:20:43: template `mobilisation` (subject) uses unknown variable \
     `event.titre` (known: cpts, plan.id, plan.version, plan.title, event.id, event.title, \
     event.scenario, event.level, event.note, event.exercise, event.declared_at, \
     recipient.name, recipient.profession, recipient.commune, response_url, instructions)");

refused!(a_template_written_with_escapes_points_at_the_start_of_its_string:
    PLAN, r#"subject = "[{{ event.level | upper }}] {{ event.title }}""#
        => r#"subject = "[{{ event.level | upper }}]\n\n\n\n\n\n\n\n{{ event.titre }}""#,
    "plans/pgc-2026.toml:20:11: template `mobilisation` (subject) uses unknown variable \
     `event.titre` (known: cpts, plan.id, plan.version, plan.title, event.id, event.title, \
     event.scenario, event.level, event.note, event.exercise, event.declared_at, \
     recipient.name, recipient.profession, recipient.commune, response_url, instructions)");

refused!(an_unknown_filter_is_refused_when_the_template_is_rendered_at_load:
    PLAN, "{{ response_url }}" => "{{ response_url | lien }}",
    "plans/pgc-2026.toml:24:58: template `mobilisation` (text) fails to render: \
     filter lien is unknown");

refused!(a_reminder_template_using_an_event_variable_is_refused:
    REMINDERS, "{{ cpts }}" => "{{ event.title }}",
    "config/reminders.toml:18:4: template `rappel_annuaire` (text) uses unknown variable \
     `event.title` (known: cpts, recipient.name, recipient.profession, recipient.commune, \
     reminder.id, reminder.title, date)");

// ---------------------------------------------------------------------------
// Plan versions side by side
// ---------------------------------------------------------------------------

#[test]
fn two_plan_files_with_the_same_id_and_version_are_refused() {
    let sb = minimal();
    sb.write("plans/pgc-2026-copie.toml", &sb.read(PLAN));
    assert_refused(
        &sb,
        &[
            "plans/pgc-2026.toml:5:11: plan `pgc` version 2026.1 is also defined in \
           {dir}/plans/pgc-2026-copie.toml",
        ],
    );
}

#[test]
fn versions_that_compare_equal_with_overlapping_validity_are_refused() {
    let sb = minimal();
    let other = sb
        .read(PLAN)
        .replacen(r#"version = "2026.1""#, r#"version = "2026.01""#, 1)
        .replacen("valid_from = 2026-01-01", "valid_from = 2026-07-01", 1)
        .replacen("valid_until = 2026-12-31", "valid_until = 2027-06-30", 1)
        .replacen("review_by = 2026-11-30", "review_by = 2027-05-31", 1);
    sb.write("plans/pgc-2026-bis.toml", &other);
    assert_refused(
        &sb,
        &[
            "plans/pgc-2026.toml:5:11: plan `pgc`: versions 2026.1 and 2026.01 \
           ({dir}/plans/pgc-2026-bis.toml) are the same version and their validity overlaps: \
           which one is in force is ambiguous",
        ],
    );
}

#[test]
fn versions_that_compare_equal_but_never_overlap_are_accepted() {
    let sb = minimal();
    let other = sb
        .read(PLAN)
        .replacen(r#"version = "2026.1""#, r#"version = "2026.01""#, 1)
        .replacen("valid_from = 2026-01-01", "valid_from = 2027-01-01", 1)
        .replacen("valid_until = 2026-12-31", "valid_until = 2027-12-31", 1)
        .replacen("review_by = 2026-11-30", "review_by = 2027-11-30", 1);
    sb.write("plans/pgc-2027.toml", &other);
    let out = assert_accepted(&sb, DATE, &[]);
    assert!(out.contains("2 plan files (in force: pgc 2026.1)"), "{out}");
}

#[test]
fn a_scenario_id_used_by_two_plans_in_force_is_refused() {
    let sb = minimal();
    let other = sb
        .read(PLAN)
        .replacen(r#"id = "pgc""#, r#"id = "alerte""#, 1)
        .replacen(r#"id = "cellule""#, r#"id = "cellule_alerte""#, 1);
    sb.write("plans/alerte.toml", &other);
    let out = assert_refused(
        &sb,
        &[
            "plans/pgc-2026.toml:28:6: scenario `canicule` is also in plan `alerte` \
           ({dir}/plans/alerte.toml), in force on the same days: declaring it would be ambiguous",
        ],
    );
    assert_never_says(&out, "scenario `cellule`");
}

refused!(a_scenario_id_twice_in_one_plan_is_refused:
    PLAN, r#"id = "cellule""# => r#"id = "canicule""#,
    "plans/pgc-2026.toml:55:6: duplicate scenario id `canicule` \
     (first at {dir}/plans/pgc-2026.toml:28:6)");

// ---------------------------------------------------------------------------
// Directory and rosters
// ---------------------------------------------------------------------------

refused!(a_duplicate_professional_id_is_refused_with_the_first_place:
    DIRECTORY, r#"id = "tehrhart""# => r#"id = "cmartin""#,
    "config/directory.toml:14:1: duplicate professional id `cmartin` \
     (first at {dir}/config/directory.toml:3:1)");

refused!(a_group_that_includes_itself_is_refused:
    DIRECTORY, r#"professions = ["pharmacien"]"# => r#"groups = ["premier_recours"]"#,
    "config/directory.toml:54:11: group `premier_recours` includes itself through \
     premier_recours → officines → premier_recours",
    "config/directory.toml:57:23: group `officines` includes itself through \
     officines → premier_recours → officines");

refused!(an_assignment_to_an_unknown_shift_is_refused_and_nothing_else:
    ROSTER, r#"shift = "soir""# => r#"shift = "nuit""#,
    "config/rosters/garde.toml:27:9: unknown shift `nuit` (shifts of this roster: dimanche, soir)");

refused!(an_assignment_on_a_day_the_shift_does_not_occur_is_refused:
    ROSTER, "date = 2026-06-01" => "date = 2026-06-06",
    "config/rosters/garde.toml:26:8: shift `soir` does not occur on 2026-06-06 (a Saturday)");

refused!(a_holiday_shift_assigned_on_an_ordinary_monday_is_refused:
    ROSTER, "date = 2026-06-07" => "date = 2026-06-08",
    "config/rosters/garde.toml:31:8: shift `dimanche` does not occur on 2026-06-08 \
     (a Monday, not a public holiday)");

#[test]
fn a_holiday_shift_on_whit_monday_is_accepted() {
    let sb = minimal();
    sb.edit(ROSTER, "date = 2026-06-07", "date = 2026-05-25");
    assert_accepted(&sb, DATE, &[]);
}

#[test]
fn a_broken_roster_does_not_also_make_its_on_call_references_unknown() {
    let sb = minimal();
    sb.edit(ROSTER, r#"shift = "soir""#, r#"shift = "nuit""#);
    let out = assert_refused(&sb, &[]);
    assert_never_says(&out, "unknown roster");
    assert!(out.contains("1 error found"), "{out}");
}

#[test]
fn a_broken_plan_does_not_also_claim_that_no_plan_is_in_force() {
    let sb = minimal();
    sb.edit(
        PLAN,
        r#"title = "Vague de chaleur""#,
        r#"title = "Vague de chaleur"#,
    );
    let out = assert_refused(&sb, &[]);
    assert_never_says(&out, "no plan is in force");
    assert!(out.contains("1 error found, 0 warnings"), "{out}");
}

// ---------------------------------------------------------------------------
// Everything at once, and warnings
// ---------------------------------------------------------------------------

#[test]
fn several_problems_in_several_files_are_all_listed() {
    let sb = minimal();
    // In the plan, a cross-file problem beside a problem of the file itself.
    sb.edit(
        PLAN,
        r#"audience = ["premier_recours"]"#,
        r#"audience = ["premier_recour"]"#,
    );
    sb.edit(PLAN, r#"timeout = "15m""#, r#"timeout = "15""#);
    sb.edit(
        DIRECTORY,
        r#"phone = "+33639980003""#,
        r#"phone = "0639980003""#,
    );
    sb.edit(
        ROSTER,
        r#"remind_before = "24h""#,
        r#"remind_before = "18""#,
    );
    sb.edit(
        REMINDERS,
        r#"schedule = "0 9 1 * *""#,
        r#"schedule = "0 9 1 *""#,
    );
    let out = assert_refused(
        &sb,
        &[
            r#"config/directory.toml:29:9: invalid phone number "0639980003": write it in E.164 form, e.g. +33612345678"#,
            r#"config/reminders.toml:6:12: invalid cron schedule "0 9 1 *": 4 fields, expected 5 (minute hour day month weekday) or 6 (seconds first)"#,
            r#"config/rosters/garde.toml:7:17: invalid duration "18": time unit needed, for example 18sec or 18ms (write e.g. "15m", "2h", "1h 30m")"#,
            "plans/pgc-2026.toml:38:13: unknown audience `premier_recour`: did you mean `premier_recours`? (plan audiences and \
             directory groups: medecin_de_garde, referents, bureau, medecins, officines, premier_recours)",
            r#"plans/pgc-2026.toml:46:11: invalid duration "15": time unit needed, for example 15sec or 15ms (write e.g. "15m", "2h", "1h 30m")"#,
        ],
    );
    assert!(
        out.contains("5 errors found, 0 warnings"),
        "every problem is counted, and nothing else:\n{out}"
    );
    // Sorted by file, then line.
    let lines: Vec<&str> = out.lines().filter(|l| l.contains(".toml:")).collect();
    let mut sorted = lines.clone();
    sorted.sort_by_key(|l| {
        let mut parts = l.splitn(3, ':');
        let file = parts.next().unwrap().to_string();
        let line: usize = parts.next().unwrap().parse().unwrap();
        (file, line)
    });
    assert_eq!(lines, sorted, "{out}");
}

#[test]
fn a_reminders_file_that_does_not_parse_does_not_hide_the_problems_of_the_plans() {
    let sb = minimal();
    sb.edit(REMINDERS, "[[reminder]]", "[[reminder]");
    sb.edit(PLAN, r#"on_call = "garde""#, r#"on_call = "gard""#);
    let out = assert_refused(
        &sb,
        &[
            "config/reminders.toml:3:12: TOML syntax error: unclosed array table, expected `]`",
            "plans/pgc-2026.toml:17:11: unknown roster `gard`: did you mean `garde`? (rosters: garde)",
        ],
    );
    assert!(out.contains("2 errors found, 0 warnings"), "{out}");
}

#[test]
fn no_plan_in_force_is_a_warning_only() {
    let sb = minimal();
    let out = assert_accepted(
        &sb,
        "2030-01-01",
        &["plans:1:1: warning: no plan is in force today (2030-01-01): nothing can be declared"],
    );
    assert!(out.contains("(in force: none)"), "{out}");
}

#[test]
fn a_review_due_within_thirty_days_is_a_warning_at_review_by() {
    let sb = minimal();
    assert_accepted(
        &sb,
        "2026-11-15",
        &[
            "plans/pgc-2026.toml:10:13: warning: plan `pgc` 2026.1: the yearly review is due by \
           2026-11-30 (in 15 days); no newer version is written yet",
        ],
    );
}

#[test]
fn an_overdue_review_is_a_warning_too() {
    let sb = minimal();
    assert_accepted(
        &sb,
        "2026-12-10",
        &[
            "plans/pgc-2026.toml:10:13: warning: plan `pgc` 2026.1: the yearly review was due on \
           2026-11-30 (10 days ago); no newer version is written yet",
        ],
    );
}

#[test]
fn one_day_is_said_in_the_singular() {
    let sb = minimal();
    assert_accepted(
        &sb,
        "2026-12-01",
        &[
            "plans/pgc-2026.toml:10:13: warning: plan `pgc` 2026.1: the yearly review was due on \
           2026-11-30 (1 day ago); no newer version is written yet",
        ],
    );
    assert_accepted(
        &sb,
        "2026-11-29",
        &[
            "plans/pgc-2026.toml:10:13: warning: plan `pgc` 2026.1: the yearly review is due by \
           2026-11-30 (in 1 day); no newer version is written yet",
        ],
    );
}

#[test]
fn an_audience_that_matches_nobody_is_a_warning_at_its_step() {
    let sb = minimal();
    sb.edit(
        PLAN,
        r#"audience = ["premier_recours"]"#,
        r#"audience = ["sages_femmes"]"#,
    );
    sb.edit(
        PLAN,
        "[audience.medecin_de_garde]",
        "[audience.sages_femmes]\nprofessions = [\"sage_femme\"]\n\n[audience.medecin_de_garde]",
    );
    assert_accepted(
        &sb,
        DATE,
        &[
            "plans/pgc-2026.toml:39:1: warning: this broadcast reaches nobody: audience \
           sages_femmes matches no active professional",
        ],
    );
}

#[test]
fn an_audience_of_inactive_professionals_only_matches_nobody() {
    let sb = minimal();
    sb.edit(
        REMINDERS,
        r#"audience = ["bureau"]"#,
        r#"audience = { ids = ["sfritsch"] }"#,
    );
    assert_accepted(
        &sb,
        DATE,
        &["config/reminders.toml:7:12: warning: reminder `annuaire` reaches nobody"],
    );
}

#[test]
fn professionals_without_e_mail_are_a_warning_naming_them() {
    let sb = minimal();
    sb.edit(
        DIRECTORY,
        r#"email = "thomas.ehrhart@example.org""#,
        "# (no e-mail)",
    );
    let out = assert_accepted(
        &sb,
        DATE,
        &[
            "plans/pgc-2026.toml:36:1: warning: 1 of 3 professionals this broadcast reaches on \
             `email` have no e-mail address, they will be skipped: tehrhart",
            "plans/pgc-2026.toml:41:1: warning: 1 of 2 professionals this escalation tier \
             reaches on `email` have no e-mail address, they will be skipped: tehrhart",
        ],
    );
    assert!(out.contains("; 2 warnings"), "{out}");
}

// ---------------------------------------------------------------------------
// The CSV form of the directory
// ---------------------------------------------------------------------------

/// The minimal set with its directory in CSV. A CSV directory has no
/// groups, so the group names the other files use become plan audiences or
/// inline selectors.
fn minimal_with_csv() -> Sandbox {
    let sb = minimal();
    sb.write(
        "config/directory.csv",
        &std::fs::read_to_string(repo().join("tests/fixtures/csv/directory.csv")).unwrap(),
    );
    std::fs::remove_file(sb.path().join(DIRECTORY)).unwrap();
    sb.edit(
        DAEMON,
        r#"directory = "directory.toml""#,
        r#"directory = "directory.csv""#,
    );
    sb.edit(
        PLAN,
        r#"owners = { groups = ["bureau"] }"#,
        r#"owners = { roles = ["bureau"] }"#,
    );
    sb.edit(
        PLAN,
        "[audience.referents]",
        "[audience.bureau]\nroles = [\"bureau\"]\n\n\
         [audience.premier_recours]\nprofessions = [\"medecin\", \"pharmacien\"]\n\n\
         [audience.referents]",
    );
    sb.edit(
        ROSTER,
        r#"notify = ["bureau"]"#,
        r#"notify = { roles = ["bureau"] }"#,
    );
    sb.edit(
        REMINDERS,
        r#"audience = ["bureau"]"#,
        r#"audience = { roles = ["bureau"] }"#,
    );
    sb
}

#[test]
fn the_csv_form_of_the_minimal_directory_passes_check() {
    let sb = minimal_with_csv();
    let out = assert_accepted(&sb, DATE, &[]);
    assert!(
        out.contains("OK: 5 professionals (4 active), 0 groups") && out.contains("; 0 warnings"),
        "{out}"
    );
}

/// The CSV directory as a French spreadsheet saves it: cells separated
/// by `;`, lists with `,` inside a cell, a byte-order mark, CRLF.
fn as_french_spreadsheet(sb: &Sandbox) {
    let csv = std::fs::read_to_string(sb.path().join("config/directory.csv")).unwrap();
    let french: String = csv
        .lines()
        .map(|l| l.replace(';', "|").replace(',', ";").replace('|', ","))
        .collect::<Vec<_>>()
        .join("\r\n");
    sb.write("config/directory.csv", &format!("\u{feff}{french}\r\n"));
}

#[test]
fn a_csv_directory_from_a_french_spreadsheet_is_read_the_same() {
    let sb = minimal_with_csv();
    as_french_spreadsheet(&sb);
    let text = std::fs::read_to_string(sb.path().join("config/directory.csv")).unwrap();
    assert!(text.contains(";bureau,referent_crise;"), "{text}");
    let out = assert_accepted(&sb, DATE, &[]);
    assert!(
        out.contains("OK: 5 professionals (4 active), 0 groups") && out.contains("; 0 warnings"),
        "{out}"
    );
    // A mistake in it is found at its row and column, the first row too.
    sb.edit(
        "config/directory.csv",
        "lucie.weber@example.org",
        "lucie.weber@example",
    );
    sb.edit(
        "config/directory.csv",
        ";medecin;10005173140;",
        ";medecn;10005173140;",
    );
    let out = assert_refused(
        &sb,
        &[
            r#"config/directory.csv:4:38: invalid e-mail address "lucie.weber@example": the domain has no '.'"#,
        ],
    );
    assert!(
        out.contains(
            "config/directory.csv:2:23: unknown profession `medecn`: did you mean `medecin`? ("
        ),
        "{out}"
    );
}

#[test]
fn a_bad_e_mail_in_the_csv_directory_points_at_its_row_and_column() {
    let sb = minimal_with_csv();
    sb.edit(
        "config/directory.csv",
        "lucie.weber@example.org",
        "lucie.weber@example",
    );
    assert_refused(
        &sb,
        &[
            r#"config/directory.csv:4:38: invalid e-mail address "lucie.weber@example": the domain has no '.'"#,
        ],
    );
}

#[test]
fn a_bad_phone_in_a_quoted_csv_cell_points_at_its_row_and_column() {
    let sb = minimal_with_csv();
    sb.edit(
        "config/directory.csv",
        "Marc Koenig,infirmier,,Saint-Amarin,marc.koenig@example.net,,",
        "\"Koenig, Marc\",infirmier,,Saint-Amarin,marc.koenig@example.net,06 12,",
    );
    assert_refused(
        &sb,
        &[
            r#"config/directory.csv:5:72: invalid phone number "06 12": write it in E.164 form, e.g. +33612345678"#,
        ],
    );
}

#[test]
fn an_unknown_csv_column_is_refused() {
    let sb = minimal_with_csv();
    sb.edit("config/directory.csv", ",phone,", ",telephone,");
    assert_refused(
        &sb,
        &["config/directory.csv:1:1: unknown column `telephone` in the CSV header"],
    );
}

// ---------------------------------------------------------------------------
// Professions: one known list, plus the CPTS's own (SPEC §3)
// ---------------------------------------------------------------------------

refused!(a_misspelt_profession_in_the_directory_is_refused_with_the_one_meant:
    DIRECTORY, r#"profession = "pharmacien""# => r#"profession = "pharmacienne""#,
    "config/directory.toml:26:14: unknown profession `pharmacienne`: did you mean `pharmacien`? \
     (professions: medecin, pharmacien, chirurgien_dentiste, sage_femme, infirmier, \
     masseur_kinesitherapeute, pedicure_podologue, orthophoniste, orthoptiste, ergotherapeute, \
     psychomotricien, dieteticien, audioprothesiste, opticien_lunetier, manipulateur_radio, \
     technicien_laboratoire, preparateur_pharmacie, psychologue, assistant_social, aide_soignant, \
     auxiliaire_puericulture, ambulancier; a CPTS adds its own with \
     `[directory] extra_professions = [\"pharmacienne\"]` in vigie.toml or a TOML directory)");

#[test]
fn a_misspelt_profession_in_a_selector_is_refused_at_the_name() {
    let sb = minimal();
    sb.edit(
        PLAN,
        "[audience.referents]\nroles = [\"referent_crise\"]",
        "[audience.referents]\nroles = [\"referent_crise\"]\n\n[audience.sages_femmes]\nprofessions = [\"medecin\", \"sage-femme\"]",
    );
    let out = assert_refused(&sb, &[]);
    assert!(
        out.contains(
            "plans/pgc-2026.toml:17:27: unknown profession `sage-femme`: did you mean `sage_femme`?"
        ),
        "{out}"
    );
    // In the directory, a profession that is not even an identifier.
    let sb = minimal();
    sb.edit(
        DIRECTORY,
        r#"profession = "pharmacien""#,
        r#"profession = "sage-femme""#,
    );
    let out = assert_refused(&sb, &[]);
    assert!(
        out.contains(
            "config/directory.toml:26:14: unknown profession `sage-femme`: did you mean `sage_femme`?"
        ),
        "{out}"
    );
    // The group of the directory too, and only once.
    let sb = minimal();
    sb.edit(
        DIRECTORY,
        r#"professions = ["pharmacien"]"#,
        r#"professions = ["Pharmacien"]"#,
    );
    let out = assert_refused(&sb, &[]);
    assert_eq!(
        out.matches("unknown profession `Pharmacien`: did you mean `pharmacien`?")
            .count(),
        1,
        "{out}"
    );
}

#[test]
fn a_profession_the_cpts_adds_is_accepted_in_the_directory_and_the_selectors() {
    let sb = minimal();
    sb.edit(
        DIRECTORY,
        r#"profession = "pharmacien""#,
        r#"profession = "coordinatrice""#,
    );
    let out = assert_refused(&sb, &[]);
    assert!(
        out.contains("unknown profession `coordinatrice` (professions: medecin,"),
        "no guess when nothing is close:\n{out}"
    );
    sb.edit(
        DIRECTORY,
        "[[professional]]",
        "[directory]\nextra_professions = [\"coordinatrice\"]\n\n[[professional]]",
    );
    sb.edit(
        PLAN,
        "[audience.referents]\nroles = [\"referent_crise\"]",
        "[audience.referents]\nroles = [\"referent_crise\"]\n\n[audience.coordination]\nprofessions = [\"coordinatrice\"]",
    );
    assert_accepted(&sb, DATE, &[]);
}

#[test]
fn a_csv_directory_takes_its_extra_professions_from_vigie_toml() {
    // A CSV has no `[directory]` table: vigie.toml says it.
    let sb = minimal_with_csv();
    let csv = std::fs::read_to_string(sb.path().join("config/directory.csv")).unwrap();
    sb.write(
        "config/directory.csv",
        &csv.replacen(",pharmacien,", ",coordinatrice,", 1),
    );
    let out = assert_refused(&sb, &[]);
    assert!(
        out.contains("unknown profession `coordinatrice`")
            && out.contains("in vigie.toml or a TOML directory)"),
        "{out}"
    );
    let text = sb.read(DAEMON);
    sb.write(
        DAEMON,
        &format!("{text}\n[directory]\nextra_professions = [\"coordinatrice\"]\n"),
    );
    assert_accepted(&sb, DATE, &[]);
}

// ------------------------------------------------------------------------------------------------
// Seasons, night reminders, the mountain example
// ------------------------------------------------------------------------------------------------

#[test]
fn a_shift_reminder_that_would_go_out_at_night_is_a_warning_with_the_hour_and_a_value() {
    let sb = minimal();
    // The evening shift starts at 20:00: 18 h before is 02:00.
    sb.edit(
        ROSTER,
        r#"remind_before = "24h""#,
        r#"remind_before = "18h""#,
    );
    assert_accepted(
        &sb,
        DATE,
        &[
            r#"config/rosters/garde.toml:7:17: warning: remind_before = "18h" sends reminders at night (between 22:00 and 07:00): shift `soir` (starts 20:00) at 02:00: try remind_before = "13h""#,
        ],
    );
    // The suggested value sends every shift's reminder in the day.
    sb.edit(
        ROSTER,
        r#"remind_before = "18h""#,
        r#"remind_before = "13h""#,
    );
    let out = assert_accepted(&sb, DATE, &[]);
    assert_never_says(&out, "at night");
}

#[test]
fn the_night_of_the_shift_reminder_warning_is_the_quiet_hours_when_set() {
    let sb = minimal();
    // 23 h before 20:00 is 21:00: the day by default, the night with
    // quiet_hours = "21:00-07:00".
    sb.edit(
        ROSTER,
        r#"remind_before = "24h""#,
        r#"remind_before = "23h""#,
    );
    let out = assert_accepted(&sb, DATE, &[]);
    assert_never_says(&out, "at night");
    sb.edit(
        "config/vigie.toml",
        "timezone = \"Europe/Paris\"",
        "timezone = \"Europe/Paris\"\nquiet_hours = \"21:00-07:00\"",
    );
    assert_accepted(
        &sb,
        DATE,
        &[
            r#"config/rosters/garde.toml:7:17: warning: remind_before = "23h" sends reminders at night (between 21:00 and 07:00, the quiet_hours): shift `soir` (starts 20:00) at 21:00: try remind_before = "24h""#,
        ],
    );
}

#[test]
fn availability_columns_of_a_csv_directory_are_read_and_bad_values_named_at_their_cell() {
    let sb = minimal_with_csv();
    let csv = sb.read("config/directory.csv");
    let widen = |first: &str| -> String {
        csv.lines()
            .enumerate()
            .map(|(i, l)| match i {
                0 => format!("{l},available_from,available_until,season\n"),
                1 => format!("{l},{first}\n"),
                _ => format!("{l},,,\n"),
            })
            .collect()
    };
    sb.write(
        "config/directory.csv",
        &widen("2026-12-01,2027-04-30,12-15..04-15"),
    );
    assert_accepted(&sb, DATE, &[]);

    sb.write(
        "config/directory.csv",
        &widen("2026-13-01,2027-04-30,1215..0415"),
    );
    let col = csv.lines().nth(1).unwrap().len() + 2;
    let season_col = col + "2026-13-01,2027-04-30,".len();
    let out = assert_refused(
        &sb,
        &[
            &format!(
                r#"config/directory.csv:2:{col}: `available_from` must be a date written YYYY-MM-DD, found "2026-13-01""#
            ),
            &format!(
                r#"config/directory.csv:2:{season_col}: invalid season "1215..0415": write MM-DD..MM-DD, e.g. "12-01..04-30" (1 December to 30 April, every year)"#
            ),
        ],
    );
    assert!(out.contains("2 errors found"), "{out}");

    sb.write("config/directory.csv", &widen("2027-04-30,2026-12-01,"));
    let until_col = col + "2027-04-30,".len();
    assert_refused(
        &sb,
        &[&format!(
            "config/directory.csv:2:{until_col}: `available_until` (2026-12-01) is before `available_from` (2027-04-30): nothing would be left"
        )],
    );
}

#[test]
fn a_bad_season_of_a_professional_is_refused_at_its_place() {
    let sb = minimal();
    sb.edit(
        DIRECTORY,
        r#"phone = "+33639980003""#,
        "phone = \"+33639980003\"\nseason = \"12-32..04-15\"",
    );
    let text = sb.read(DIRECTORY);
    let line = text
        .lines()
        .position(|l| l.starts_with("season = "))
        .unwrap()
        + 1;
    assert_refused(
        &sb,
        &[&format!(
            r#"config/directory.toml:{line}:10: invalid season "12-32..04-15": 12-32 is not a day of the year (MM-DD)"#
        )],
    );
}

#[test]
fn the_mountain_example_and_the_shipped_configuration_pass_check() {
    // The mountain example, as shipped, in the winter it is written for.
    let montagne = repo().join("examples/montagne/vigie.toml");
    let (code, out, err) = run_vigie(&[
        "check",
        "-c",
        montagne.to_str().unwrap(),
        "--date",
        "2026-12-01",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("OK: 17 professionals (16 active), 8 groups, 1 plan file (in force: pgc 2026.1), 1 roster,"),
        "{out}"
    );
    assert_never_says(&out, "at night");

    let sb = Sandbox::shipped();
    let config = sb.config();
    let (code, out, err) = run_vigie(&[
        "check",
        "-c",
        config.to_str().unwrap(),
        "--date",
        "2026-06-01",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert_never_says(&out, "at night");
}

// ------------------------------------------------------------------------------------------------
// Crisis conduct (SPEC §12): instructions, public advice, action cards, exercise period
// ------------------------------------------------------------------------------------------------

/// The minimal plan with an action card after the canicule's last tier
/// (its header on line 54).
fn with_action(card: &str) -> Sandbox {
    let sb = minimal();
    sb.edit(
        PLAN,
        "quorum = 2\ntimeout = \"30m\"\n",
        &format!("quorum = 2\ntimeout = \"30m\"\n\n[[scenario.action]]\n{card}"),
    );
    sb
}

refused!(instructions_for_a_level_the_scenario_lacks_are_refused_with_the_level_meant:
    PLAN, "notify_on_resolve = true" =>
        "notify_on_resolve = true\ninstructions = { orange = \"Repérez vos patients fragiles.\", roug = \"Restez joignable.\" }",
    "plans/pgc-2026.toml:35:61: unknown level `roug`: did you mean `rouge`? \
     (levels of scenario `canicule`: jaune, orange, rouge)");

refused!(public_advice_for_an_unknown_level_is_refused:
    PLAN, "notify_on_resolve = true" =>
        "notify_on_resolve = true\npublic_advice = { violet = \"Buvez de l'eau.\" }",
    "plans/pgc-2026.toml:35:19: unknown level `violet` \
     (levels of scenario `canicule`: jaune, orange, rouge)");

#[test]
fn an_action_card_for_an_unknown_level_is_refused_with_the_level_meant() {
    let sb = with_action("levels = [\"orang\"]\ntitle = \"Convoquer la cellule de crise\"\n");
    assert_refused(
        &sb,
        &[
            "plans/pgc-2026.toml:55:11: unknown level `orang`: did you mean `orange`? \
           (levels of scenario `canicule`: jaune, orange, rouge)",
        ],
    );
}

#[test]
fn an_action_card_without_a_title_is_refused() {
    let sb = with_action("who = \"coordination\"\ndue = \"30m\"\n");
    assert_refused(
        &sb,
        &["plans/pgc-2026.toml:54:1: missing required key `title` in [[scenario.action]] #1"],
    );
}

#[test]
fn an_action_card_with_a_bad_due_delay_is_refused_at_the_value() {
    let sb = with_action("title = \"Point de situation\"\ndue = \"deux heures\"\n");
    assert_refused(
        &sb,
        &[
            r#"plans/pgc-2026.toml:56:7: invalid duration "deux heures": expected number at 0 (write e.g. "15m", "2h", "1h 30m")"#,
        ],
    );
}

#[test]
fn a_misspelt_key_of_an_action_card_gets_the_key_meant() {
    let sb = with_action("title = \"Point de situation\"\ndetial = \"Par téléphone.\"\n");
    assert_refused(
        &sb,
        &[
            "plans/pgc-2026.toml:56:1: unknown key `detial` in [[scenario.action]] #1: did you mean `detail`?",
        ],
    );
}

refused!(a_bad_exercise_period_is_refused_at_the_value:
    PLAN, "owners = { groups = [\"bureau\"] }" =>
        "owners = { groups = [\"bureau\"] }\nexercise_every = \"tous les ans\"",
    r#"plans/pgc-2026.toml:12:18: invalid exercise period "tous les ans" (write months as "12mo", or a duration such as "180d")"#);

#[test]
fn instructions_advice_action_cards_and_exercise_period_are_accepted_without_warning() {
    let sb = with_action(
        "levels = [\"orange\", \"rouge\"]\ntitle = \"Convoquer la cellule de crise\"\n\
         who = \"coordination\"\ndue = \"30m\"\ndetail = \"Visio permanente.\"\n\n\
         [[scenario.action]]\ntitle = \"Point de situation\"\n\n\
         [scenario.instructions]\norange = \"Repérez vos patients **fragiles**.\"\n\n\
         [scenario.public_advice]\norange = \"Buvez régulièrement de l'eau.\"\n",
    );
    sb.edit(
        PLAN,
        "owners = { groups = [\"bureau\"] }",
        "owners = { groups = [\"bureau\"] }\nexercise_every = \"12mo\"",
    );
    let out = assert_accepted(&sb, DATE, &[]);
    assert!(out.contains("; 0 warnings"), "{out}");
}

// A secret file `vigie run` would need and cannot read is an error of
// `vigie check`, not a warning followed by a daemon that refuses to start
// (the SMTP password) or a channel that cannot sign (a webhook's secret).
refused!(an_smtp_password_file_that_cannot_be_read_is_refused:
    DAEMON, "transport = \"file\"\n" => "transport = \"smtp\"\nurl = \"smtp://127.0.0.1:2525\"\nusername = \"vigie\"\npassword_file = \"secrets/smtp-password\"\n",
    "config/vigie.toml:22:17: cannot read the secret file {dir}/config/secrets/smtp-password (nor in $CREDENTIALS_DIRECTORY): No such file or directory (os error 2): e-mail channel `email` cannot log in to its server");

refused!(a_webhook_secret_file_that_cannot_be_read_is_refused:
    DAEMON, "[email]\n" => "[webhook.salle]\nurl = \"http://127.0.0.1:9/hook\"\nsecret_file = \"secrets/salle\"\n\n[email]\n",
    "config/vigie.toml:20:15: cannot read the secret file {dir}/config/secrets/salle (nor in $CREDENTIALS_DIRECTORY): No such file or directory (os error 2): webhook `salle` cannot sign its calls");
