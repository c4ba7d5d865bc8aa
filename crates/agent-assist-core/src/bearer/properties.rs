//! Property tests of the bearer parser: any header value gives the token after a `Bearer` scheme
//! exactly as the module docs describe it (scheme matched ASCII-case-insensitively, separated by
//! whitespace, surrounding whitespace ignored), or `None`; and a token written after any spelling
//! of the scheme is read back unchanged.

use proptest::prelude::*;

use super::*;

/// What the docs say [`bearer_token`] answers, restated.
fn documented_bearer_token(header: &str) -> Option<&str> {
    let trimmed = header.trim();
    let scheme_len = "bearer".len();
    let scheme = trimmed.get(..scheme_len)?;
    let rest = &trimmed[scheme_len..];
    let separated = rest.chars().next().is_none_or(char::is_whitespace);
    (scheme.eq_ignore_ascii_case("bearer") && separated).then(|| rest.trim())
}

/// Whitespace as `str::trim` and `char::is_whitespace` see it, ASCII and Unicode.
fn whitespace(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            ' ', '\t', '\n', '\r', '\u{b}', '\u{c}', '\u{85}', '\u{a0}', '\u{2003}', '\u{3000}',
        ]),
        0..=max,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

/// `Bearer` in any ASCII case, and near misses: other schemes, Unicode look-alikes (`ſ`, the
/// Kelvin sign, dotted capitals) that Unicode case folding would confuse with ASCII letters.
fn scheme() -> impl Strategy<Value = String> {
    prop_oneof![
        "[bB][eE][aA][rR][eE][rR]",
        prop::sample::select(vec![
            "Basic",
            "Bearerx",
            "Bear",
            "Béarer",
            "BEARER\u{0}",
            "ſearer",
            "Bearer:",
            "\u{212a}"
        ])
        .prop_map(str::to_owned),
        any::<String>(),
    ]
}

fn header() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        (
            whitespace(2),
            scheme(),
            whitespace(2),
            any::<String>(),
            whitespace(2)
        )
            .prop_map(|(a, scheme, b, token, c)| format!("{a}{scheme}{b}{token}{c}")),
    ]
}

proptest! {
    #![proptest_config(proptest_inputs::config())]

    #[test]
    fn any_header_reads_as_documented(header in header()) {
        let read = bearer_token(&header);
        prop_assert_eq!(read, documented_bearer_token(&header));
        if let Some(token) = read {
            prop_assert_eq!(token, token.trim());
        }
        prop_assert_eq!(token(&header), read.unwrap_or(header.trim()));
    }

    #[test]
    fn a_token_after_any_spelling_of_bearer_reads_back(
        before in whitespace(3),
        scheme in "[bB][eE][aA][rR][eE][rR]",
        separator in whitespace(3).prop_filter("a separator", |s| !s.is_empty()),
        token in "[!-~]([!-~ ]{0,40}[!-~])?",
        after in whitespace(3),
    ) {
        let header = format!("{before}{scheme}{separator}{token}{after}");
        prop_assert_eq!(bearer_token(&header), Some(token.as_str()));
        prop_assert_eq!(super::token(&header), token.as_str());
        if documented_bearer_token(&token).is_none() {
            // Without the scheme, `token` takes the header as the token.
            let without_scheme = format!("{before}{token}{after}");
            prop_assert_eq!(super::token(&without_scheme), token.as_str());
        }
    }
}
