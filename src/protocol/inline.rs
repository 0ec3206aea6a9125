//! Splitting of inline (text) command lines, byte-compatible with Redis's
//! `sdssplitargs`: arguments are separated by whitespace; `"double quotes"`
//! understand `\n \r \t \b \a \\ \"` and `\xHH`; `'single quotes'` understand
//! only `\'`; a closing quote must be followed by whitespace or the end of the
//! line. Unlike the C version a NUL byte is an ordinary character, so binary
//! keys survive.

/// The line has an unterminated quote or a quote glued to the next argument.
#[derive(Debug, PartialEq, Eq)]
pub struct UnbalancedQuotes;

/// Splits `line` into arguments, appending their bytes to `out` and their
/// `(start, end)` ranges in `out` to `args`.
pub fn split_inline(
    line: &[u8],
    out: &mut Vec<u8>,
    args: &mut Vec<(usize, usize)>,
) -> Result<(), UnbalancedQuotes> {
    let mut i = 0;
    loop {
        while i < line.len() && is_space(line[i]) {
            i += 1;
        }
        if i == line.len() {
            return Ok(());
        }
        let start = out.len();
        let mut in_double = false;
        let mut in_single = false;
        loop {
            if in_double {
                let Some(&c) = line.get(i) else {
                    return Err(UnbalancedQuotes);
                };
                if c == b'\\' && i + 3 < line.len() && line[i + 1] == b'x' {
                    if let (Some(h), Some(l)) = (hex(line[i + 2]), hex(line[i + 3])) {
                        out.push(h << 4 | l);
                        i += 4;
                        continue;
                    }
                }
                if c == b'\\' && i + 1 < line.len() {
                    out.push(match line[i + 1] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        other => other,
                    });
                    i += 2;
                    continue;
                }
                if c == b'"' {
                    closing_quote_ends_argument(line, i)?;
                    i += 1;
                    break;
                }
                out.push(c);
                i += 1;
            } else if in_single {
                let Some(&c) = line.get(i) else {
                    return Err(UnbalancedQuotes);
                };
                if c == b'\\' && line.get(i + 1) == Some(&b'\'') {
                    out.push(b'\'');
                    i += 2;
                    continue;
                }
                if c == b'\'' {
                    closing_quote_ends_argument(line, i)?;
                    i += 1;
                    break;
                }
                out.push(c);
                i += 1;
            } else {
                match line.get(i) {
                    None => break,
                    Some(&c) if is_space(c) => break,
                    Some(b'"') => in_double = true,
                    Some(b'\'') => in_single = true,
                    Some(&c) => out.push(c),
                }
                i += 1;
            }
        }
        args.push((start, out.len()));
    }
}

/// A closing quote at `line[i]` must be followed by whitespace or the end of the line.
fn closing_quote_ends_argument(line: &[u8], i: usize) -> Result<(), UnbalancedQuotes> {
    match line.get(i + 1) {
        Some(&next) if !is_space(next) => Err(UnbalancedQuotes),
        _ => Ok(()),
    }
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(line: &[u8]) -> Result<Vec<Vec<u8>>, UnbalancedQuotes> {
        let mut out = Vec::new();
        let mut args = Vec::new();
        split_inline(line, &mut out, &mut args)?;
        Ok(args.iter().map(|&(s, e)| out[s..e].to_vec()).collect())
    }

    #[test]
    fn splits_like_sdssplitargs() {
        assert_eq!(
            split(b"  SET  k   v ").unwrap(),
            vec![b"SET".to_vec(), b"k".to_vec(), b"v".to_vec()]
        );
        assert_eq!(
            split(br#"SET "a b" "x\n\x41\"""#).unwrap(),
            vec![b"SET".to_vec(), b"a b".to_vec(), b"x\nA\"".to_vec()]
        );
        assert_eq!(
            split(br"SET 'it\'s' '\n'").unwrap(),
            vec![b"SET".to_vec(), b"it's".to_vec(), b"\\n".to_vec()]
        );
        assert_eq!(
            split(b"a\"b c\" d").unwrap(),
            vec![b"ab c".to_vec(), b"d".to_vec()]
        );
        assert_eq!(split(b"k\0ey").unwrap(), vec![b"k\0ey".to_vec()]);
        assert_eq!(split(b"   ").unwrap(), Vec::<Vec<u8>>::new());
    }

    #[test]
    fn rejects_unbalanced_or_glued_quotes() {
        assert_eq!(split(b"SET \"abc"), Err(UnbalancedQuotes));
        assert_eq!(split(b"SET 'abc"), Err(UnbalancedQuotes));
        assert_eq!(split(b"SET \"a\"b"), Err(UnbalancedQuotes));
        assert_eq!(split(b"SET \"a\\"), Err(UnbalancedQuotes));
    }
}
