//! Property tests of [`ConversationName::parse`]: any string, valid or hostile, is either accepted
//! in exactly the documented shape (and then its location-free form comes out) or refused with the
//! variant that says why; valid names round-trip with and without a location.
//!
//! The shape is restated here independently of the parser ([`documented_form`]), from the module
//! docs and the README: `projects/<p>/[locations/<l>/]conversations/<id>`, at most
//! [`MAX_NAME_LEN`] bytes, `<p>` 1-128 of letters, digits, `-_.:`, `<l>` 1-63 of letters, digits,
//! `-`, `<id>` 1-256 of letters, digits, `-_.~`.

use proptest::prelude::*;
use proptest_inputs::conversation_names::{any_name, spelled, valid_parts};

use super::*;

/// The location-free form the docs promise for `input`, or `None` if `input` is not in the shape.
fn documented_form(input: &str) -> Option<String> {
    let made_of = |s: &str, max_len: usize, punctuation: &[u8]| {
        (1..=max_len).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || punctuation.contains(&b))
    };
    let project = |p: &str| made_of(p, 128, b"-_.:");
    let location = |l: &str| made_of(l, 63, b"-");
    let id = |c: &str| made_of(c, 256, b"-_.~");
    if input.len() > MAX_NAME_LEN {
        return None;
    }
    match input.split('/').collect::<Vec<_>>().as_slice() {
        ["projects", p, "conversations", c] if project(p) && id(c) => Some(input.to_owned()),
        ["projects", p, "locations", l, "conversations", c]
            if project(p) && location(l) && id(c) =>
        {
            Some(format!("projects/{p}/conversations/{c}"))
        }
        _ => None,
    }
}

proptest! {
    #![proptest_config(proptest_inputs::config())]

    #[test]
    fn any_string_is_accepted_exactly_in_the_documented_shape(input in any_name()) {
        use InvalidConversationName::*;
        let parsed = ConversationName::parse(&input);
        match (&parsed, documented_form(&input)) {
            (Ok(name), Some(expected)) => {
                prop_assert_eq!(name.as_str(), expected);
                prop_assert_eq!(ConversationName::parse(name.as_str()), Ok(name.clone()));
            }
            (Ok(name), None) => prop_assert!(false, "accepted {input:?} as {name:?}"),
            (Err(e), Some(_)) => prop_assert!(false, "refused {input:?}: {e}"),
            (Err(e), None) => {
                // The first check that fails names the refusal, in the documented order.
                let bad_character = input.chars().any(|c| c.is_whitespace() || c.is_control());
                let expected_kind = if input.is_empty() {
                    Some(Empty)
                } else if input.len() > MAX_NAME_LEN {
                    Some(TooLong)
                } else if bad_character {
                    Some(BadCharacter)
                } else {
                    None
                };
                match expected_kind {
                    Some(kind) => prop_assert_eq!(e, &kind),
                    None => prop_assert!(matches!(e, BadShape | BadSegment(..)), "{e:?}"),
                }
                prop_assert!(!e.to_string().is_empty());
            }
        }
    }

    #[test]
    fn valid_names_round_trip_with_and_without_a_location(
        (project, location, id) in valid_parts()
    ) {
        let location_free = spelled(&project, None, &id);
        let name = ConversationName::parse(&spelled(&project, location.as_deref(), &id)).unwrap();
        prop_assert_eq!(name.as_str(), &location_free);
        prop_assert_eq!(ConversationName::parse(&location_free), Ok(name.clone()));
        for location in ["global", "us-central1"] {
            let located = spelled(&project, Some(location), &id);
            prop_assert_eq!(ConversationName::parse(&located), Ok(name.clone()));
        }
    }
}
