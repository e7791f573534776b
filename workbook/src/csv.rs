//! CSV lines by RFC 4180, without a CSV crate (the collector's dependency tree stays
//! free of one): a field with a comma, quote or line break is quoted, quotes doubled;
//! lines end in CRLF.

/// Appends one line of `fields` to `out`.
pub fn line<S: AsRef<str>>(out: &mut String, fields: impl IntoIterator<Item = S>) {
    for (i, f) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let text = f.as_ref();
        if text.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&text.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(text);
        }
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    #[test]
    fn fields_with_separators_are_quoted() {
        let mut out = String::new();
        super::line(&mut out, ["a", "b,c", "say \"hi\"", "x\ny"]);
        assert_eq!(out, "a,\"b,c\",\"say \"\"hi\"\"\",\"x\ny\"\r\n");
    }
}
