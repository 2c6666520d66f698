//! The report as one self-contained HTML page: inline CSS, figures embedded as `data:` URIs,
//! no scripts, no network — it opens from disk in any browser.

use std::fmt::Write as _;

use super::{Block, Document, Status};

const CSS: &str = r#"
:root { --ink:#1d2327; --muted:#5f6b73; --line:#dde3e8; --pass:#0a7d45; --fail:#b3261e; --warn:#9a6700;
        --bg-pass:#e6f4ec; --bg-fail:#fbe9e7; --bg-warn:#fff4d6; --code:#f3f5f7; }
* { box-sizing: border-box; }
body { margin: 0; background: #fafbfc; color: var(--ink);
       font: 16px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
main { max-width: 1020px; margin: 0 auto; padding: 28px 32px 60px; background: #fff;
       border-left: 1px solid var(--line); border-right: 1px solid var(--line); min-height: 100vh; }
h1 { font-size: 30px; margin: 0 0 4px; }
.subtitle { color: var(--muted); margin: 0 0 20px; }
h2 { font-size: 22px; margin: 40px 0 12px; padding-bottom: 6px; border-bottom: 2px solid var(--line);
     display: flex; align-items: center; gap: 12px; }
h2 .num { color: var(--muted); font-weight: 500; }
.badge { font-size: 12px; font-weight: 700; letter-spacing: .06em; padding: 3px 9px; border-radius: 10px; }
.badge.pass { color: var(--pass); background: var(--bg-pass); }
.badge.fail { color: var(--fail); background: var(--bg-fail); }
.badge.caution { color: var(--warn); background: var(--bg-warn); }
.verdict { padding: 14px 18px; border-radius: 8px; font-size: 18px; font-weight: 600; margin: 8px 0 16px; }
.verdict.pass { background: var(--bg-pass); color: var(--pass); border: 1px solid #b7dfc8; }
.verdict.fail { background: var(--bg-fail); color: var(--fail); border: 1px solid #f1c0ba; }
nav.toc { font-size: 15px; color: var(--muted); }
nav.toc ol { margin: 4px 0 0; padding-left: 22px; }
nav.toc a { color: inherit; }
code { font: 14px/1.4 ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; background: var(--code);
       padding: 1px 4px; border-radius: 4px; }
pre { font: 13.5px/1.45 ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; background: var(--code);
      padding: 12px 14px; border-radius: 6px; overflow-x: auto; }
table { border-collapse: collapse; margin: 10px 0 18px; font-size: 14.5px; }
caption { caption-side: top; text-align: left; color: var(--muted); padding-bottom: 6px; font-size: 14px; }
th, td { padding: 5px 12px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { text-align: left; background: #f4f6f8; font-weight: 600; border-bottom: 2px solid var(--line); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tbody tr:nth-child(even) td { background: #fafbfc; }
.table-wrap { overflow-x: auto; }
ul.checks { list-style: none; padding: 0; margin: 8px 0 16px; }
ul.checks li { padding: 7px 12px; margin: 4px 0; border-radius: 6px; display: flex; gap: 12px; align-items: baseline; }
ul.checks li.pass { background: var(--bg-pass); }
ul.checks li.fail { background: var(--bg-fail); }
ul.checks .mark { font-weight: 700; min-width: 44px; }
ul.checks li.pass .mark { color: var(--pass); }
ul.checks li.fail .mark { color: var(--fail); }
ul.checks .detail { color: var(--muted); font-size: 14.5px; }
figure { margin: 18px 0 26px; }
figure img { width: 100%; max-width: 900px; height: auto; border: 1px solid var(--line); border-radius: 6px; display: block; }
figcaption { color: var(--muted); font-size: 14.5px; margin-top: 6px; }
figcaption a { color: inherit; }
footer { margin-top: 48px; color: var(--muted); font-size: 13.5px; }
"#;

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Escapes text and turns `backtick spans` into `<code>`.
fn inline(s: &str) -> String {
    let mut out = String::new();
    for (i, part) in s.split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<code>{}</code>", escape(part));
        } else {
            out.push_str(&escape(part));
        }
    }
    out
}

/// Standard base64 (RFC 4648, with padding) for `data:` URIs.
pub fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(A[((n >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn status_class(s: Status) -> &'static str {
    match s {
        Status::Pass => "pass",
        Status::Fail => "fail",
        Status::Caution => "caution",
    }
}

/// Renders the page; `svgs` holds each figure's SVG text by figure name.
pub fn render(doc: &Document, svgs: &[(String, String)]) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n",
        escape(&doc.title)
    );
    let _ = writeln!(h, "<h1>{}</h1>", escape(&doc.title));
    if !doc.subtitle.is_empty() {
        let _ = writeln!(h, "<p class=\"subtitle\">{}</p>", inline(&doc.subtitle));
    }
    if let Some((ok, text)) = &doc.verdict {
        let class = if *ok { "pass" } else { "fail" };
        let _ = writeln!(h, "<div class=\"verdict {class}\">{}</div>", inline(text));
    }
    h.push_str("<nav class=\"toc\"><strong>Contents</strong><ol>\n");
    for (i, s) in doc.sections.iter().enumerate() {
        let _ = writeln!(h, "<li><a href=\"#s{}\">{}</a></li>", i + 1, escape(&s.title));
    }
    h.push_str("</ol></nav>\n");
    for (i, s) in doc.sections.iter().enumerate() {
        let _ = write!(
            h,
            "<section id=\"s{}\">\n<h2><span class=\"num\">{}.</span> {}",
            i + 1,
            i + 1,
            escape(&s.title)
        );
        if let Some(st) = s.status {
            let _ = write!(h, " <span class=\"badge {}\">{}</span>", status_class(st), st.label());
        }
        h.push_str("</h2>\n");
        for b in &s.blocks {
            block(&mut h, b, svgs);
        }
        h.push_str("</section>\n");
    }
    h.push_str(
        "<footer>Generated by <code>backprop tour</code>. Every number here is also in \
         <a href=\"report.json\">report.json</a>; the figures are beside this file as PNG and SVG.</footer>\n",
    );
    h.push_str("</main>\n</body>\n</html>\n");
    h
}

fn block(h: &mut String, b: &Block, svgs: &[(String, String)]) {
    match b {
        Block::Text(t) => {
            let _ = writeln!(h, "<p>{}</p>", inline(t));
        }
        Block::Bullets(items) => {
            h.push_str("<ul>\n");
            for it in items {
                let _ = writeln!(h, "<li>{}</li>", inline(it));
            }
            h.push_str("</ul>\n");
        }
        Block::Checks(checks) => {
            h.push_str("<ul class=\"checks\">\n");
            for c in checks {
                let (class, mark) = if c.passed { ("pass", "PASS") } else { ("fail", "FAIL") };
                let _ = writeln!(
                    h,
                    "<li class=\"{class}\"><span class=\"mark\">{mark}</span><span>{}</span>\
                     <span class=\"detail\">{}</span></li>",
                    inline(&c.name),
                    inline(&c.detail)
                );
            }
            h.push_str("</ul>\n");
        }
        Block::Table(t) => {
            h.push_str("<div class=\"table-wrap\"><table>\n");
            if let Some(c) = &t.caption {
                let _ = writeln!(h, "<caption>{}</caption>", inline(c));
            }
            let class =
                |j: usize| if t.numeric.get(j).copied().unwrap_or(false) { " class=\"num\"" } else { "" };
            h.push_str("<thead><tr>");
            for (j, c) in t.header.iter().enumerate() {
                let _ = write!(h, "<th{}>{}</th>", class(j), inline(c));
            }
            h.push_str("</tr></thead>\n<tbody>\n");
            for r in &t.rows {
                h.push_str("<tr>");
                for (j, c) in r.iter().enumerate() {
                    let _ = write!(h, "<td{}>{}</td>", class(j), inline(c));
                }
                h.push_str("</tr>\n");
            }
            h.push_str("</tbody></table></div>\n");
        }
        Block::Figure(f) => {
            let src = svgs
                .iter()
                .find(|(n, _)| n == &f.name)
                .map(|(_, svg)| format!("data:image/svg+xml;base64,{}", base64(svg.as_bytes())))
                .unwrap_or_else(|| format!("{}.svg", f.name));
            let _ = writeln!(
                h,
                "<figure><img src=\"{src}\" alt=\"{}\">\n<figcaption>{} \
                 (<a href=\"{n}.png\">PNG</a>, <a href=\"{n}.svg\">SVG</a>)</figcaption></figure>",
                escape(&f.chart.title),
                inline(&f.caption),
                n = escape(&f.name)
            );
        }
        Block::Pre(t) => {
            let _ = writeln!(h, "<pre>{}</pre>", escape(t));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), enc);
        }
    }

    #[test]
    fn inline_code_and_escaping() {
        assert_eq!(inline("a `x<y` & b"), "a <code>x&lt;y</code> &amp; b");
    }
}
