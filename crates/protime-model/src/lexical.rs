//! What a `serde_json::Value` forgets about the text it was read from, for the full walk:
//! keys given twice in one object (a `Value` keeps the last one), the spelling of numbers
//! that serde_json reads as 64-bit floats (a `Value` keeps the rounded float), and how
//! deeply arrays and objects nest.
//!
//! [`scan`] runs only on a text that `serde_json` has already read into a `Value` without
//! error, so the text is known to be one well-formed JSON value; the scanner still never
//! panics and stops quietly on anything unexpected.

use std::borrow::Cow;
use std::collections::HashSet;

/// The findings of one [`scan`].
#[derive(Debug, Default)]
pub(crate) struct Lexical<'a> {
    /// JSON Pointers of the members whose key appears more than once in its object, each
    /// pointer once, in the order of their second occurrence.
    pub(crate) duplicates: Vec<String>,
    /// Number literals that serde_json reads as floats (a fraction, an exponent, or `-0`),
    /// with their pointers.
    floats: Vec<(String, &'a str)>,
    /// The deepest nesting of arrays and objects; the body's own object counts as 1.
    pub(crate) max_depth: usize,
}

impl<'a> Lexical<'a> {
    /// The literal text of the float-valued number at `pointer`, if there is one.
    pub(crate) fn float_literal(&self, pointer: &str) -> Option<&'a str> {
        self.floats
            .iter()
            .find(|(p, _)| p == pointer)
            .map(|(_, literal)| *literal)
    }
}

/// Scans `text`, one JSON value that serde_json has already accepted; `prefix` is the
/// pointer of that value (`""` for a delivery body, `/data` for a clocking item).
pub(crate) fn scan<'a>(text: &'a str, prefix: &str) -> Lexical<'a> {
    let mut scanner = Scanner {
        text,
        bytes: text.as_bytes(),
        pos: 0,
        path: prefix.to_owned(),
        depth: 0,
        out: Lexical::default(),
    };
    // `None` only on text serde_json would not have accepted: keep what was found.
    let _ = scanner.value();
    scanner.out
}

/// The deepest nesting of arrays and objects in `text` (one JSON value serde_json has
/// accepted), without recording anything else.
pub(crate) fn max_depth(text: &str) -> usize {
    let mut depth = 0_usize;
    let mut deepest = 0_usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in text.as_bytes() {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    /// Pointer of the value being scanned.
    path: String,
    depth: usize,
    out: Lexical<'a>,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        self.whitespace();
        (self.peek()? == byte).then(|| self.pos += 1)
    }

    fn value(&mut self) -> Option<()> {
        self.whitespace();
        match self.peek()? {
            b'{' => self.object(),
            b'[' => self.array(),
            b'"' => self.string().map(|_| ()),
            b'-' | b'0'..=b'9' => {
                self.number();
                Some(())
            }
            _ => {
                // true, false, null
                while self.peek()?.is_ascii_alphabetic() {
                    self.pos += 1;
                }
                Some(())
            }
        }
    }

    /// A string starting at the opening quote; returns its text between the quotes, still
    /// escaped, and whether it holds an escape.
    fn string(&mut self) -> Option<(&'a str, bool)> {
        self.pos += 1;
        let start = self.pos;
        let mut escapes = false;
        loop {
            match self.peek()? {
                b'\\' => {
                    escapes = true;
                    // The escaped character (`u` of `\uXXXX` included) is never a quote.
                    self.pos += 2;
                }
                b'"' => {
                    let inner = self.text.get(start..self.pos)?;
                    self.pos += 1;
                    return Some((inner, escapes));
                }
                _ => self.pos += 1,
            }
        }
    }

    fn number(&mut self) {
        let start = self.pos;
        while matches!(
            self.peek(),
            Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
        ) {
            self.pos += 1;
        }
        let Some(literal) = self.text.get(start..self.pos) else {
            return;
        };
        if literal == "-0" || literal.contains(['.', 'e', 'E']) {
            self.out.floats.push((self.path.clone(), literal));
        }
    }

    fn enter(&mut self) {
        self.pos += 1;
        self.depth += 1;
        self.out.max_depth = self.out.max_depth.max(self.depth);
    }

    fn array(&mut self) -> Option<()> {
        self.enter();
        self.whitespace();
        if self.peek()? == b']' {
            self.pos += 1;
            self.depth -= 1;
            return Some(());
        }
        let parent = self.path.len();
        for index in 0_usize.. {
            self.path.push('/');
            self.path.push_str(&index.to_string());
            self.value()?;
            self.path.truncate(parent);
            self.whitespace();
            match self.peek()? {
                b',' => self.pos += 1,
                b']' => break,
                _ => return None,
            }
        }
        self.pos += 1;
        self.depth -= 1;
        Some(())
    }

    fn object(&mut self) -> Option<()> {
        self.enter();
        self.whitespace();
        if self.peek()? == b'}' {
            self.pos += 1;
            self.depth -= 1;
            return Some(());
        }
        let parent = self.path.len();
        let mut keys: HashSet<Cow<'a, str>> = HashSet::new();
        let mut reported: HashSet<Cow<'a, str>> = HashSet::new();
        loop {
            self.whitespace();
            if self.peek()? != b'"' {
                return None;
            }
            let key_start = self.pos;
            let (raw, escapes) = self.string()?;
            let key: Cow<'a, str> = if escapes {
                // Decode exactly as serde_json does, so `"i\u0064"` and `"id"` are one key.
                let quoted = self.text.get(key_start..self.pos)?;
                Cow::Owned(serde_json::from_str::<String>(quoted).ok()?)
            } else {
                Cow::Borrowed(raw)
            };
            push_token(&mut self.path, &key);
            if !keys.insert(key.clone()) && reported.insert(key) {
                self.out.duplicates.push(self.path.clone());
            }
            self.expect(b':')?;
            self.value()?;
            self.path.truncate(parent);
            self.whitespace();
            match self.peek()? {
                b',' => self.pos += 1,
                b'}' => break,
                _ => return None,
            }
        }
        self.pos += 1;
        self.depth -= 1;
        Some(())
    }
}

/// Appends one reference token to a JSON Pointer, escaped per RFC 6901.
pub(crate) fn push_token(pointer: &mut String, token: &str) {
    pointer.push('/');
    for c in token.chars() {
        match c {
            '~' => pointer.push_str("~0"),
            '/' => pointer.push_str("~1"),
            c => pointer.push(c),
        }
    }
}

/// An integer field's number, judged on its literal's exact decimal value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Literal {
    /// The literal's value has a non-zero fractional part (`1.5`, `1.0000000000000001`).
    Fraction,
    /// The literal's value is an integer; `value` saturates at ±10^21, beyond every range.
    Integer {
        /// The exact value.
        value: i128,
        /// Written with a fraction or an exponent (`510.0`, `5.1e2`), unlike `-0` or `510`.
        float_spelled: bool,
    },
}

/// Beyond every integer range of the rules (`i64` at most), so saturating there is exact
/// enough.
const SATURATED: i128 = 1_000_000_000_000_000_000_000;

/// Reads a JSON number literal exactly (`-?int(.frac)?([eE][+-]?exp)?`), without going
/// through a float; `None` if `literal` is not one.
pub(crate) fn read_literal(literal: &str) -> Option<Literal> {
    let float_spelled = literal.contains(['.', 'e', 'E']);
    let (negative, unsigned) = match literal.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, literal),
    };
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => (mantissa, read_exponent(exponent)?),
        None => (unsigned, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty()
        || !whole
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    // value = digits × 10^scale
    let digits: String = whole.chars().chain(fraction.chars()).collect();
    let mut scale = exponent.saturating_sub(i64::try_from(fraction.len()).ok()?);
    let digits = digits.trim_start_matches('0');
    let significant = digits.trim_end_matches('0');
    if significant.is_empty() {
        return Some(Literal::Integer {
            value: 0,
            float_spelled,
        });
    }
    scale = scale.saturating_add(i64::try_from(digits.len() - significant.len()).ok()?);
    if scale < 0 {
        return Some(Literal::Fraction);
    }
    let magnitude_digits = i64::try_from(significant.len()).ok()?.saturating_add(scale);
    let magnitude = if magnitude_digits > 21 {
        SATURATED
    } else {
        let base: i128 = significant.parse().ok()?;
        let power = 10_i128.checked_pow(u32::try_from(scale).ok()?)?;
        base.checked_mul(power)?.min(SATURATED)
    };
    Some(Literal::Integer {
        value: if negative { -magnitude } else { magnitude },
        float_spelled,
    })
}

/// The exponent of a number literal, saturated far beyond anything that matters.
fn read_exponent(text: &str) -> Option<i64> {
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, text.get(1..)?),
        b'+' => (false, text.get(1..)?),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let magnitude = digits
        .parse::<i64>()
        .unwrap_or(i64::MAX / 2)
        .min(i64::MAX / 2);
    Some(if negative { -magnitude } else { magnitude })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn integer(value: i128, float_spelled: bool) -> Option<Literal> {
        Some(Literal::Integer {
            value,
            float_spelled,
        })
    }

    #[test]
    fn literals_are_read_exactly() {
        assert_eq!(read_literal("510"), integer(510, false));
        assert_eq!(read_literal("-0"), integer(0, false));
        assert_eq!(read_literal("-0.0"), integer(0, true));
        assert_eq!(read_literal("510.0"), integer(510, true));
        assert_eq!(read_literal("5.1e2"), integer(510, true));
        assert_eq!(read_literal("5.1E+2"), integer(510, true));
        assert_eq!(read_literal("51000e-2"), integer(510, true));
        assert_eq!(read_literal("0.0e999999999999999999999"), integer(0, true));
        assert_eq!(read_literal("510.5"), Some(Literal::Fraction));
        assert_eq!(read_literal("1.0000000000000001"), Some(Literal::Fraction));
        assert_eq!(read_literal("5.1e0"), Some(Literal::Fraction));
        assert_eq!(read_literal("1e-400"), Some(Literal::Fraction));
        assert_eq!(
            read_literal("9007199254740993.0"),
            integer(9_007_199_254_740_993, true)
        );
        assert_eq!(
            read_literal("-9223372036854775808.000"),
            integer(-9_223_372_036_854_775_808, true)
        );
        assert_eq!(read_literal("1e300"), integer(SATURATED, true));
        assert_eq!(read_literal("-1e21"), integer(-SATURATED, true));
        assert_eq!(
            read_literal("1e20"),
            integer(100_000_000_000_000_000_000, true)
        );
        assert_eq!(
            read_literal("1e99999999999999999999999"),
            integer(SATURATED, true)
        );
        assert_eq!(read_literal("x"), None);
        assert_eq!(read_literal("1e"), None);
        assert_eq!(read_literal(".5"), None);
    }

    #[test]
    fn the_scan_finds_duplicates_floats_and_depth() {
        let text = r#"{"a":1,"b":{"c":[1.0,-0,2,{"x":1,"x":2,"\u0078":3}]},"a/~":5,"a":2, "d": "\"a\":1"}"#;
        let found = scan(text, "");
        assert_eq!(found.duplicates, vec!["/b/c/3/x", "/a"]);
        assert_eq!(found.float_literal("/b/c/0"), Some("1.0"));
        assert_eq!(found.float_literal("/b/c/1"), Some("-0"));
        assert_eq!(found.float_literal("/b/c/2"), None);
        assert_eq!(found.max_depth, 4);
        assert_eq!(max_depth(text), 4);
        let nested = scan(r#"{"p":{"a~/b":{"e":1e5}}}"#, "/data");
        assert_eq!(nested.float_literal("/data/p/a~0~1b/e"), Some("1e5"));
    }

    #[test]
    fn an_exponent_is_an_optional_sign_and_digits() {
        assert_eq!(read_exponent("12"), Some(12));
        assert_eq!(read_exponent("-3"), Some(-3));
        assert_eq!(read_exponent("+3"), Some(3));
        assert_eq!(read_exponent(""), None);
        assert_eq!(read_exponent("-"), None);
        assert_eq!(read_exponent("1x"), None);
    }

    /// What the scan finds after the first element of an array counts as much as what it
    /// finds in the first.
    #[test]
    fn the_scan_reads_every_element_of_an_array() {
        let found = scan(r#"[1, {"x":1,"x":2}, [0, 2.0], 3e0]"#, "");
        assert_eq!(found.duplicates, vec!["/1/x"]);
        assert_eq!(found.float_literal("/2/1"), Some("2.0"));
        assert_eq!(found.float_literal("/3"), Some("3e0"));
        assert_eq!(found.max_depth, 2);
    }

    /// `max_depth` only guards the fast path (an overcount sends a body to the full walk,
    /// which gives the same verdict), so the verdict tests cannot see it miscount: these do.
    #[test]
    fn max_depth_counts_brackets_outside_strings_only() {
        // Brackets inside strings, after an escaped quote too, are text.
        assert_eq!(max_depth(r#"{"a":"[[{{","b":"\"[{"}"#), 1);
        // Closing brackets bring the depth back: many siblings, empty or not, stay shallow.
        for sibling in ["[]", "[1]", "{}", r#"{"a":1}"#] {
            let siblings = format!("[{}]", vec![sibling; 200].join(","));
            assert_eq!(max_depth(&siblings), 2, "{sibling}");
            assert_eq!(scan(&siblings, "").max_depth, 2, "{sibling}");
        }
        assert_eq!(max_depth(r#"{"a":{"b":[1]},"c":{}}"#), 3);
        assert_eq!(max_depth("5"), 0);
    }
}
