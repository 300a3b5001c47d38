//! A tiny, safe subset of Markdown for the texts a plan writes
//! (`instructions`, action cards' `detail`): paragraphs (blank lines), line
//! breaks, bullet lists (`- ` or `* `) and bold (`**…**`). Everything else
//! is shown as written; all text is HTML-escaped first, so a plan can never
//! put markup, a script or a link of its own into a page.

use crate::engine::render::html_escape;

/// The text as HTML, escaped, with the subset above.
pub fn to_html(text: &str) -> String {
    let mut out = String::new();
    for block in text.replace("\r\n", "\n").split("\n\n") {
        let lines: Vec<&str> = block
            .lines()
            .map(str::trim_end)
            .filter(|l| !l.trim().is_empty())
            .collect();
        if lines.is_empty() {
            continue;
        }
        let mut para: Vec<String> = Vec::new();
        let mut items: Vec<String> = Vec::new();
        for line in lines {
            let t = line.trim_start();
            if let Some(item) = t.strip_prefix("- ").or_else(|| t.strip_prefix("* ")) {
                flush_para(&mut out, &mut para);
                items.push(inline(item.trim()));
            } else {
                flush_list(&mut out, &mut items);
                para.push(inline(t));
            }
        }
        flush_para(&mut out, &mut para);
        flush_list(&mut out, &mut items);
    }
    out
}

fn flush_para(out: &mut String, para: &mut Vec<String>) {
    if !para.is_empty() {
        out.push_str("<p>");
        out.push_str(&para.join("<br>"));
        out.push_str("</p>");
        para.clear();
    }
}

fn flush_list(out: &mut String, items: &mut Vec<String>) {
    if !items.is_empty() {
        out.push_str("<ul>");
        for i in items.iter() {
            out.push_str("<li>");
            out.push_str(i);
            out.push_str("</li>");
        }
        out.push_str("</ul>");
        items.clear();
    }
}

/// One line, escaped, `**bold**` made bold (an unpaired `**` stays).
fn inline(line: &str) -> String {
    let parts: Vec<&str> = line.split("**").collect();
    let mut out = String::new();
    // Pairs only: with an even count of `**`, the last one is unpaired.
    let paired = if parts.len() % 2 == 1 {
        parts.len()
    } else {
        parts.len() - 1
    };
    for (i, p) in parts.iter().enumerate() {
        if i >= paired {
            out.push_str("**");
            out.push_str(&html_escape(p));
        } else if i % 2 == 1 {
            out.push_str("<strong>");
            out.push_str(&html_escape(p));
            out.push_str("</strong>");
        } else {
            out.push_str(&html_escape(p));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::to_html;

    #[test]
    fn paragraphs_lists_bold_and_line_breaks() {
        assert_eq!(
            to_html("Repérez vos **patients fragiles**.\nAppelez-les.\n\n- boire\n- se rafraîchir"),
            "<p>Repérez vos <strong>patients fragiles</strong>.<br>Appelez-les.</p>\
             <ul><li>boire</li><li>se rafraîchir</li></ul>"
        );
        assert_eq!(to_html("a ** b"), "<p>a ** b</p>");
    }

    #[test]
    fn markup_is_escaped_never_passed_through() {
        let html = to_html("<script>alert(1)</script> **<b>x</b>** [lien](javascript:x)");
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<b>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(
            html.contains("<strong>&lt;b&gt;x&lt;/b&gt;</strong>"),
            "{html}"
        );
    }
}
