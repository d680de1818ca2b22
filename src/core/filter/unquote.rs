//! Go's string unquoting as containerd's filters use it, producing bytes.

/// containerd's `unquote` (Go's `strconv.Unquote` with `/` and `|` as further double
/// quotes), on a token the scanner has checked: delimited, no raw newline.
///
/// The result is bytes because `\xHH` and octal escapes produce raw bytes; `\u` and `\U`
/// of a surrogate produce U+FFFD, as Go's `utf8.EncodeRune` does.
pub(super) fn unquote(token: &str) -> std::result::Result<Vec<u8>, String> {
    let syntax = || "quote syntax error".to_owned();
    let mut chars = token.chars();
    let quote = chars.next().ok_or_else(syntax)?;
    if chars.next_back() != Some(quote) {
        return Err(syntax());
    }
    let mut out = Vec::with_capacity(token.len());
    let mut buf = [0u8; 4];
    while let Some(c) = chars.next() {
        if c == quote {
            return Err(syntax());
        }
        if c != '\\' {
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let e = chars.next().ok_or_else(syntax)?;
        match e {
            'a' => out.push(0x07),
            'b' => out.push(0x08),
            'f' => out.push(0x0c),
            'n' => out.push(b'\n'),
            'r' => out.push(b'\r'),
            't' => out.push(b'\t'),
            'v' => out.push(0x0b),
            '\\' => out.push(b'\\'),
            'x' | 'u' | 'U' => {
                let n = match e {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let mut v: u32 = 0;
                for _ in 0..n {
                    let d = chars
                        .next()
                        .and_then(|d| d.to_digit(16))
                        .ok_or_else(syntax)?;
                    v = v << 4 | d;
                }
                if e == 'x' {
                    // Two hex digits: a raw byte, possibly not UTF-8.
                    out.push(u8::try_from(v).map_err(|_| syntax())?);
                } else if v > 0x10_FFFF {
                    return Err(format!("escape \\U{v:08X} is beyond U+10FFFF"));
                } else {
                    let r = char::from_u32(v).unwrap_or(char::REPLACEMENT_CHARACTER);
                    out.extend_from_slice(r.encode_utf8(&mut buf).as_bytes());
                }
            }
            '0'..='7' => {
                let mut v = e as u32 - '0' as u32;
                for _ in 0..2 {
                    let d = chars
                        .next()
                        .and_then(|d| d.to_digit(8))
                        .ok_or_else(syntax)?;
                    v = v << 3 | d;
                }
                let byte =
                    u8::try_from(v).map_err(|_| format!("octal escape \\{v:o} is above \\377"))?;
                out.push(byte);
            }
            '\'' | '"' | '|' | '/' if e == quote => out.push(e as u8),
            _ => return Err(syntax()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::unquote;

    /// Each quote character is an escape only inside its own quotes (the scanner refuses
    /// the others first; this holds without it).
    #[test]
    fn a_quote_escapes_only_inside_its_own_quotes() {
        for (quote, other) in [('"', '\''), ('\'', '"'), ('/', '|'), ('|', '/')] {
            let own = format!("{quote}a\\{quote}b{quote}");
            assert_eq!(
                unquote(&own).unwrap(),
                format!("a{quote}b").into_bytes(),
                "{own}"
            );
            let foreign = format!("{quote}a\\{other}b{quote}");
            assert_eq!(
                unquote(&foreign),
                Err("quote syntax error".to_owned()),
                "{foreign}"
            );
        }
    }
}
