//! Secret masking for step logs (DESIGN §4: secret values are masked, `********`, in every log).
//!
//! A [`Masker`] is built from the secret values of one step and rewrites each log line before it
//! is stored. The rules, chosen so that a secret never shows while an ordinary log stays readable:
//!
//! * **Patterns.** Every value is split into its lines (a multi-line value such as an SSH key can
//!   only ever appear one line at a time in a line-based log); each line, with surrounding
//!   whitespace trimmed, is a pattern. Empty and whitespace-only values or lines are ignored: they
//!   would match everywhere and hide nothing.
//! * **Anywhere.** A pattern of at least [`MIN_MASKED_CHARS`] characters is masked wherever it
//!   occurs: alone, inside a longer line, repeated. Occurrences of different patterns that overlap
//!   (`abc` and `abcdef`, or `abcd` and `cdef` in `abcdef`) are masked together as one span, so
//!   the longest secret wins and no fragment of either is left behind.
//! * **Whole lines only.** A shorter pattern (`1`, `yes`, a trailing `==` of a base64 key) is
//!   masked only when it is a whole line, ignoring surrounding whitespace: masking every `1` of a
//!   log would make it unreadable while hiding nothing a reader could not guess, but a step that
//!   echoes such a secret on its own still gets that line masked.
//!
//! * **Encoded forms.** A secret a step base64-encodes (`echo "$TOKEN" | base64`) or prints as a
//!   JSON string is masked too: each anywhere-pattern adds its base64 (standard and URL-safe
//!   alphabets, at each of the three alignments it can have inside a longer encoded text, without
//!   the edge characters that also encode neighbouring bytes) and its JSON-escaped form.
//!
//! Matching is on bytes so that [`Masker::safe_cut`] can choose where an unfinished line of raw
//! output may be split without cutting through a secret.

use std::borrow::Cow;
use std::ops::Range;

use aho_corasick::AhoCorasick;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};

/// What replaces a secret in a log line.
pub const MASK: &str = "********";

/// Characters a secret (or a line of a multi-line secret) needs to be masked inside longer lines;
/// shorter ones are masked only as whole lines. Four characters is where a value stops being a
/// common word fragment or number that would blank out ordinary output.
/// The store refuses shorter secret values for this reason, so the two are one threshold.
pub const MIN_MASKED_CHARS: usize = gantry_shared::secrets::MIN_VALUE_CHARS;

/// Masks the secret values of one step in log lines. Its `Debug` shows how many patterns it has,
/// never the patterns.
#[derive(Clone, Default)]
pub struct Masker {
    /// Patterns masked wherever they occur, longest first.
    anywhere: Vec<Vec<u8>>,
    /// One automaton over all of `anywhere` (none when it is empty): a line is scanned once,
    /// whatever the number of secrets.
    automaton: Option<AhoCorasick>,
    /// Short patterns masked only as whole (trimmed) lines.
    whole_line: Vec<String>,
}

impl std::fmt::Debug for Masker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Masker")
            .field("anywhere", &self.anywhere.len())
            .field("whole_line", &self.whole_line.len())
            .finish()
    }
}

impl Masker {
    /// A masker for `values` (every runner and build secret value of a step).
    pub fn new<S: AsRef<str>>(values: impl IntoIterator<Item = S>) -> Self {
        let mut masker = Masker::default();
        for value in values {
            let value = value.as_ref();
            for line in value.lines().map(str::trim) {
                if line.is_empty() {
                    continue;
                }
                if line.chars().count() >= MIN_MASKED_CHARS {
                    masker.anywhere.push(line.as_bytes().to_vec());
                    masker.anywhere.extend(encoded_forms(line.as_bytes()));
                } else {
                    masker.whole_line.push(line.to_owned());
                }
            }
            // A multi-line value encoded as a whole is one line of output.
            if value.lines().nth(1).is_some() && value.trim().chars().count() >= MIN_MASKED_CHARS {
                masker.anywhere.extend(encoded_forms(value.as_bytes()));
            }
        }
        masker.anywhere.retain(|p| p.len() >= MIN_MASKED_CHARS);
        masker
            .anywhere
            .sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        masker.anywhere.dedup();
        if !masker.anywhere.is_empty() {
            masker.automaton = Some(
                AhoCorasick::new(&masker.anywhere)
                    .expect("an automaton of a step's secrets fits the default limits"),
            );
        }
        masker.whole_line.sort();
        masker.whole_line.dedup();
        masker
    }

    /// `line` with every secret replaced by [`MASK`].
    pub fn mask<'a>(&self, line: &'a str) -> Cow<'a, str> {
        let trimmed = line.trim();
        if !trimmed.is_empty() && self.whole_line.iter().any(|p| p == trimmed) {
            return Cow::Borrowed(MASK);
        }
        let spans = self.spans(line.as_bytes());
        if spans.is_empty() {
            return Cow::Borrowed(line);
        }
        let mut masked = String::with_capacity(line.len());
        let mut from = 0;
        for span in spans {
            // A match of a UTF-8 pattern in UTF-8 text starts and ends on character boundaries.
            masked.push_str(&line[from..span.start]);
            masked.push_str(MASK);
            from = span.end;
        }
        masked.push_str(&line[from..]);
        Cow::Owned(masked)
    }

    /// Where unfinished output `bytes` may be cut at or before `at` so that every secret lies
    /// wholly on one side: before `at` when a secret spans it, after that secret when it starts
    /// at 0. `None` while a secret starting before the cut might still be completed by bytes yet to
    /// come; the caller waits for more output (or the end of the line) then.
    pub fn safe_cut(&self, bytes: &[u8], at: usize) -> Option<usize> {
        let longest = self.anywhere.first().map_or(0, Vec::len);
        // An occurrence still being written starts in the last `longest - 1` bytes.
        let pending_from = bytes.len().saturating_sub(longest.saturating_sub(1));
        if at == 0 || at.max(longest) > pending_from {
            return None;
        }
        let mut cut = at;
        // Not inside a UTF-8 sequence: the piece becomes text on its own.
        while cut > 0 && cut < bytes.len() && (bytes[cut] & 0xC0) == 0x80 {
            cut -= 1;
        }
        if let Some(span) = self
            .spans(bytes)
            .into_iter()
            .find(|s| s.start < cut && cut < s.end)
        {
            cut = if span.start > 0 { span.start } else { span.end };
        }
        (cut > 0).then_some(cut)
    }

    /// The byte ranges of every occurrence of an anywhere-pattern, overlapping ones merged,
    /// in order.
    fn spans(&self, haystack: &[u8]) -> Vec<Range<usize>> {
        let Some(automaton) = &self.automaton else {
            return Vec::new();
        };
        let mut found: Vec<Range<usize>> = automaton
            .find_overlapping_iter(haystack)
            .map(|m| m.range())
            .collect();
        found.sort_by_key(|r| r.start);
        let mut merged: Vec<Range<usize>> = Vec::with_capacity(found.len());
        for range in found {
            match merged.last_mut() {
                Some(last) if range.start < last.end => last.end = last.end.max(range.end),
                _ => merged.push(range),
            }
        }
        merged
    }
}

/// The forms `secret` takes when a step encodes it: base64 (standard and URL-safe) at each of
/// the three byte alignments it can have inside longer encoded text — only the characters that
/// encode the secret's bytes alone, since the edge ones also carry its neighbours' bits — and the
/// JSON string escape, when it differs from the raw text.
fn encoded_forms(secret: &[u8]) -> Vec<Vec<u8>> {
    let mut forms = Vec::with_capacity(7);
    for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
        for offset in 0..3usize {
            let mut shifted = vec![0u8; offset];
            shifted.extend_from_slice(secret);
            let encoded = engine.encode(&shifted);
            let start = (8 * offset).div_ceil(6);
            let end = (8 * (offset + secret.len()) / 6).min(encoded.len());
            if start < end {
                forms.push(encoded.as_bytes()[start..end].to_vec());
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(secret) {
        let quoted = serde_json::to_string(text).expect("a string serialises");
        let escaped = &quoted[1..quoted.len() - 1];
        if escaped != text {
            forms.push(escaped.as_bytes().to_vec());
        }
    }
    forms
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(values: &[&str], line: &str) -> String {
        Masker::new(values).mask(line).into_owned()
    }

    #[test]
    fn a_secret_is_masked_alone_inside_a_line_and_repeated() {
        let secrets = ["s3cr3t-value"];
        assert_eq!(masked(&secrets, "s3cr3t-value"), MASK);
        assert_eq!(
            masked(&secrets, "token=s3cr3t-value; sent"),
            "token=********; sent"
        );
        assert_eq!(
            masked(&secrets, "s3cr3t-values3cr3t-value, s3cr3t-value"),
            "****************, ********"
        );
        assert_eq!(masked(&secrets, "s3cr3t-valu"), "s3cr3t-valu");
    }

    #[test]
    fn several_secrets_on_one_line_are_all_masked() {
        let secrets = ["alpha-key", "beta-key"];
        assert_eq!(
            masked(&secrets, "a=alpha-key b=beta-key"),
            "a=******** b=********"
        );
    }

    #[test]
    fn overlapping_and_prefix_sharing_secrets_leave_no_fragment() {
        let secrets = ["abcd", "abcdefgh", "ghijkl"];
        assert_eq!(masked(&secrets, "x abcdefgh y"), "x ******** y");
        assert_eq!(masked(&secrets, "x abcdefghijkl y"), "x ******** y");
        assert_eq!(masked(&secrets, "abcd abcdefg"), "******** ********efg");
        // Overlapping occurrences of one secret.
        assert_eq!(masked(&["aaaa"], "aaaaaa"), MASK);
    }

    #[test]
    fn unicode_secrets_and_lines_are_masked_on_character_boundaries() {
        let secrets = ["pässwörd", "日本語の秘密"];
        assert_eq!(masked(&secrets, "→pässwörd←"), "→********←");
        assert_eq!(masked(&secrets, "鍵:日本語の秘密。"), "鍵:********。");
        assert_eq!(masked(&secrets, "pässwör"), "pässwör");
    }

    #[test]
    fn each_line_of_a_multi_line_value_is_masked() {
        let key = "-----BEGIN KEY-----\r\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n  b3BlbnNzaC1rZXktdjEAAAAA\n==\n-----END KEY-----\n";
        let masker = Masker::new([key]);
        assert_eq!(masker.mask("MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"), MASK);
        assert_eq!(
            masker.mask("    b3BlbnNzaC1rZXktdjEAAAAA"),
            format!("    {MASK}")
        );
        assert_eq!(masker.mask("-----END KEY-----"), MASK);
        // Its short line is masked as a whole line only.
        assert_eq!(masker.mask("=="), MASK);
        assert_eq!(masker.mask("a == b"), "a == b");
    }

    #[test]
    fn short_values_are_masked_only_as_whole_lines() {
        let secrets = ["1", "yes"];
        assert_eq!(masked(&secrets, "1"), MASK);
        assert_eq!(masked(&secrets, "  yes "), MASK);
        assert_eq!(masked(&secrets, "step 1 of 10: yes"), "step 1 of 10: yes");
    }

    #[test]
    fn empty_and_blank_values_are_ignored() {
        let masker = Masker::new(["", "   ", "\n\n"]);
        assert!(matches!(masker.mask(""), Cow::Borrowed("")));
        assert!(matches!(masker.mask("   "), Cow::Borrowed("   ")));
        assert!(matches!(masker.mask("text"), Cow::Borrowed("text")));
        assert_eq!(Masker::new(["", "abcd"]).mask("xabcdx"), "x********x");
    }

    #[test]
    fn base64_forms_are_masked_at_every_alignment() {
        use base64::engine::general_purpose::{STANDARD, URL_SAFE};
        let secret = "GSK_QM4TZR9WXB2LPV7NHC";
        let masker = Masker::new([secret]);
        for prefix in ["", "a", "ab", "abc"] {
            for engine in [&STANDARD, &URL_SAFE] {
                let encoded = engine.encode(format!("{prefix}{secret}\n"));
                let line = masker.mask(&encoded).into_owned();
                assert!(line.contains(MASK), "{prefix:?}: {encoded} -> {line}");
                // What is left encodes at most the neighbouring bytes and one partial byte.
                assert!(line.len() <= MASK.len() + 12, "{encoded} -> {line}");
            }
        }
    }

    #[test]
    fn json_escaped_and_multi_line_encoded_values_are_masked() {
        let secret = "pa\"ss\\word";
        assert_eq!(
            masked(&[secret], r#"{"password":"pa\"ss\\word"}"#),
            format!(r#"{{"password":"{MASK}"}}"#)
        );
        let key = "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END KEY-----\n";
        let json = serde_json::to_string(key).unwrap();
        assert_eq!(masked(&[key], &json), format!("\"{MASK}\""));
    }

    #[test]
    fn a_cut_never_falls_inside_a_secret() {
        let masker = Masker::new(["SECRET"]);
        let bytes = b"0123SECRET0123456789";
        // Spanning the cut: the cut moves before it.
        assert_eq!(masker.safe_cut(bytes, 6), Some(4));
        assert_eq!(masker.safe_cut(bytes, 4), Some(4));
        assert_eq!(masker.safe_cut(bytes, 12), Some(12));
        // Starting at 0: the cut moves after it.
        assert_eq!(masker.safe_cut(b"SECRET0123456789", 3), Some(6));
        // A secret may still be completed by output yet to come.
        assert_eq!(masker.safe_cut(b"0123456SECRE", 8), None);
        // Its encoded forms are longer (8 characters of base64): the cut waits for them too.
        assert_eq!(masker.safe_cut(b"0123456789SEC", 8), None);
        assert_eq!(masker.safe_cut(b"0123456789abcdeSEC", 8), Some(8));
    }

    #[test]
    fn a_cut_never_falls_inside_a_character() {
        let bytes = "aé".repeat(8);
        let cut = Masker::default()
            .safe_cut(bytes.as_bytes(), 2)
            .expect("a cut");
        assert_eq!(cut, 1);
        assert!(bytes.is_char_boundary(cut));
    }
}
