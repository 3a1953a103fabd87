//! A linear pre-scan of a JSON body, before any parsing: nesting deeper than [`MAX_DEPTH`] and
//! integers outside the 64-bit range are refused with a clear message. serde_json would otherwise
//! stop at its own recursion limit with a parser message, and silently turn a huge integer into an
//! imprecise float that a properties document would then keep.

use crate::error::ApiError;

/// The deepest nesting of arrays and objects accepted in a request body.
pub const MAX_DEPTH: usize = 64;

/// Checks nesting depth and integer ranges. Malformed JSON passes through: the parser reports it.
pub fn check(body: &[u8]) -> Result<(), ApiError> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut i = 0;
    while i < body.len() {
        let byte = body[i];
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(ApiError::bad_request(format!(
                        "the request body nests arrays and objects more than {MAX_DEPTH} levels deep"
                    )));
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b'-' | b'0'..=b'9' => {
                let end = number_end(body, i);
                check_integer(&body[i..end])?;
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

fn number_end(body: &[u8], start: usize) -> usize {
    let mut end = start;
    while end < body.len() && matches!(body[end], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') {
        end += 1;
    }
    end
}

fn check_integer(token: &[u8]) -> Result<(), ApiError> {
    if token.iter().any(|b| matches!(b, b'.' | b'e' | b'E')) {
        return Ok(());
    }
    let text = String::from_utf8_lossy(token);
    if text.parse::<i64>().is_ok() || text.parse::<u64>().is_ok() || text == "-" {
        return Ok(());
    }
    let shown: String = text.chars().take(40).collect();
    let ellipsis = if text.len() > 40 { "…" } else { "" };
    Err(ApiError::bad_request(format!(
        "the integer {shown}{ellipsis} in the request body is outside the 64-bit range; send it as a string"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_up_to_the_limit_is_accepted_and_beyond_it_refused() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(check(ok.as_bytes()).is_ok());
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(check(deep.as_bytes()).is_err());
    }

    #[test]
    fn brackets_and_digits_inside_strings_are_ignored() {
        let text = format!(r#"{{"a":"{}\"99999999999999999999999"}}"#, "[".repeat(200));
        assert!(check(text.as_bytes()).is_ok());
    }

    #[test]
    fn integers_beyond_64_bits_are_refused_and_floats_are_not() {
        assert!(check(br#"{"n":18446744073709551615,"m":-9223372036854775808}"#).is_ok());
        assert!(check(br#"{"n":18446744073709551616}"#).is_err());
        assert!(check(br#"[-9223372036854775809]"#).is_err());
        assert!(check(br#"[1.5e300, 123456789012345678901234.5]"#).is_ok());
    }
}
