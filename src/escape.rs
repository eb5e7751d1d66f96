//! Text from a payload, made safe for where it goes. An alarm's description, a state reason
//! or an AWS reply is the sender's text: in a terminal its control characters and escape
//! sequences would rewrite what the operator sees (`cases show`, the text log), and in a
//! Slack message `<!here>` pings a channel and `<https://evil|click here>` disguises a link.
//!
//! - [`printable`]: for terminals and plain text (SNS e-mail and SMS): control characters
//!   (but line feeds and tabs), C1 controls and bidirectional overrides removed.
//! - [`slack`]: for Slack-compatible webhooks (mrkdwn): printable, then `&`, `<` and `>` as
//!   Slack asks (`&amp;`, `&lt;`, `&gt;`), so nothing is a mention, a command or a link but
//!   what the service writes as one.
//! - [`html`]: for HTML text and attribute values: printable, then `&`, `<`, `>`, `"` and
//!   `'` as entities, so an alarm name holding `<script>` is shown, not run.
//! - [`LogWriter`]: the text log's writer: one line per event, whatever the fields hold.

use std::borrow::Cow;
use std::io::Write;

/// Characters that must not reach a terminal or a plain-text message as they are.
fn unsafe_char(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// The text without control characters (line feeds and tabs kept), C1 controls or
/// bidirectional overrides.
pub fn printable(s: &str) -> Cow<'_, str> {
    if s.chars().any(unsafe_char) {
        Cow::Owned(s.chars().filter(|c| !unsafe_char(*c)).collect())
    } else {
        Cow::Borrowed(s)
    }
}

/// Text for HTML (element text or a quoted attribute value): printable, with `&`, `<`,
/// `>`, `"` and `'` as entities.
pub fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in printable(s).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Text for a Slack-compatible message (mrkdwn): printable, with `&`, `<` and `>` escaped.
pub fn slack(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in printable(s).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Standard error for the text log: each event is written as one line, with anything
/// unsafe for a terminal removed and line breaks inside it shown as `⏎`. (The JSON log
/// escapes by itself.)
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let (body, end) = match text.strip_suffix('\n') {
            Some(body) => (body, "\n"),
            None => (&*text, ""),
        };
        let line = printable(body).replace('\n', "⏎");
        std::io::stderr().write_all(format!("{line}{end}").as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// A CSV field: quoted where it must be, and a field a spreadsheet would run as a formula
/// (`=`, `+`, `-`, `@`) written as text.
pub fn csv_field(s: &str) -> String {
    let s = match s.starts_with(['=', '+', '-', '@']) {
        true => format!("'{s}"),
        false => s.to_owned(),
    };
    match s.contains([',', '"', '\n', '\r']) {
        true => format!("\"{}\"", s.replace('"', "\"\"")),
        false => s,
    }
}

/// Text for one line of Markdown (a table cell, a list item): printable, on one line, with
/// every character Markdown or the HTML it allows could read as markup backslash-escaped or
/// an entity, so an alarm's name can neither format, link, nor break the table.
pub fn markdown(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in printable(s).chars() {
        match c {
            '\n' | '\r' | '\t' => out.push(' '),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '(' | ')' | '#' | '|' | '!' | '~' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_shows_markup_as_text_on_one_line() {
        assert_eq!(
            markdown("db | [click](https://evil.example) <img src=x>\n# *big* `x`"),
            "db \\| \\[click\\]\\(https://evil.example\\) &lt;img src=x&gt; \\# \\*big\\* \\`x\\`"
        );
    }

    #[test]
    fn html_shows_markup_as_text() {
        assert_eq!(
            html("<script>alert('x')</script> & \"<img src=x onerror=alert(1)>\"\u{1b}[2J"),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;&lt;img src=x \
             onerror=alert(1)&gt;&quot;[2J"
        );
    }

    #[test]
    fn terminals_get_no_escape_sequences() {
        let attack = "disk full\u{1b}[2J\u{1b}[31mFAKE\u{7}\r\u{9b}1m\u{202e}txt.exe\nnext\tline";
        let clean = printable(attack);
        assert_eq!(clean, "disk full[2J[31mFAKE1mtxt.exe\nnext\tline");
        assert!(matches!(printable("plain text"), Cow::Borrowed(_)));
    }

    #[test]
    fn slack_gets_no_mentions_or_disguised_links() {
        assert_eq!(
            slack("<!here> db down & <https://evil.example|click here>"),
            "&lt;!here&gt; db down &amp; &lt;https://evil.example|click here&gt;"
        );
        assert_eq!(slack("a\u{1b}[31mb"), "a[31mb");
    }
}
