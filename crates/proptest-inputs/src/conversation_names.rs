//! Conversation names: valid ones in every documented spelling, and hostile ones made of the
//! characters that would break a Redis key, a path or a log line.

use proptest::prelude::*;
use proptest::sample::Index;

/// A valid name as written by Dialogflow or a desktop, and the location-free form it stands for.
#[derive(Debug, Clone)]
pub struct ValidName {
    pub raw: String,
    pub location_free: String,
}

/// Project, optional location and conversation id, in the documented alphabets and lengths:
/// 1-128 of letters, digits, `-_.:`; 1-63 of letters, digits, `-`; 1-256 of letters, digits,
/// `-_.~`.
pub fn valid_parts() -> impl Strategy<Value = (String, Option<String>, String)> {
    (
        "[A-Za-z0-9._:-]{1,128}",
        proptest::option::of("[A-Za-z0-9-]{1,63}"),
        "[A-Za-z0-9._~-]{1,256}",
    )
}

/// `projects/<p>/[locations/<l>/]conversations/<id>`.
pub fn spelled(project: &str, location: Option<&str>, id: &str) -> String {
    match location {
        Some(location) => format!("projects/{project}/locations/{location}/conversations/{id}"),
        None => format!("projects/{project}/conversations/{id}"),
    }
}

/// A valid name, with or without a location.
pub fn valid() -> impl Strategy<Value = ValidName> {
    valid_parts().prop_map(|(project, location, id)| ValidName {
        raw: spelled(&project, location.as_deref(), &id),
        location_free: spelled(&project, None, &id),
    })
}

/// Characters a hostile name would use: key separators and hash-tag braces, path tricks,
/// whitespace and control characters (ASCII and Unicode), look-alikes, and anything else.
pub fn hostile_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => prop::sample::select(vec![
            '{', '}', ':', '/', '\\', '%', '.', '~', '@', '*', '?', '#', ' ', '\t', '\n', '\r',
            '\0', '\u{7f}', '\u{85}', '\u{a0}', '\u{2028}', '\u{200b}', '\u{feff}', 'é', 'İ',
            '／',
        ]),
        1 => any::<char>(),
    ]
}

/// Project, optional location and id, short or of any valid length.
fn any_length_parts() -> impl Strategy<Value = (String, Option<String>, String)> {
    prop_oneof![
        3 => (
            "[A-Za-z0-9._:-]{1,4}",
            proptest::option::of("[A-Za-z0-9-]{1,4}"),
            "[A-Za-z0-9._~-]{1,4}",
        ),
        1 => valid_parts(),
    ]
}

/// Inserts, replaces or removes one character of `text`.
fn edit_chars(text: &str, at: Index, c: char, how: u8) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let count = chars.len();
    match how {
        0 => chars.insert(at.index(count + 1), c),
        1 if count > 0 => chars[at.index(count)] = c,
        _ if count > 0 => drop(chars.remove(at.index(count))),
        _ => {}
    }
    chars.into_iter().collect()
}

/// A valid name with one character of its project, location or id inserted, replaced or
/// removed, or one of its segments replaced, inserted or removed: the inputs closest to the
/// boundary of the shape.
pub fn near_valid() -> impl Strategy<Value = String> {
    let in_a_part = (
        any_length_parts(),
        any::<Index>(),
        any::<Index>(),
        hostile_char(),
        0..3u8,
    )
        .prop_map(|((project, location, id), part, at, c, how)| {
            let mut parts = [Some(project), location, Some(id)];
            let present: Vec<usize> = (0..3).filter(|&i| parts[i].is_some()).collect();
            let chosen = present[part.index(present.len())];
            let edited = edit_chars(parts[chosen].as_deref().unwrap_or_default(), at, c, how);
            parts[chosen] = Some(edited);
            let part = |i: usize| parts[i].as_deref();
            spelled(
                part(0).unwrap_or_default(),
                part(1),
                part(2).unwrap_or_default(),
            )
        });
    let segment = prop_oneof![
        prop::sample::select(vec![
            "",
            ".",
            "..",
            "projects",
            "Projects",
            "locations",
            "conversations",
            "%2F",
            "{x}",
            "a:b",
            "global",
        ])
        .prop_map(str::to_owned),
        "[ -~]{0,8}",
    ];
    let in_the_segments = (any_length_parts(), any::<Index>(), segment, 0..3u8).prop_map(
        |((project, location, id), at, segment, how)| {
            let name = spelled(&project, location.as_deref(), &id);
            let mut segments: Vec<String> = name.split('/').map(str::to_owned).collect();
            let count = segments.len();
            match how {
                0 => segments[at.index(count)] = segment,
                1 => segments.insert(at.index(count + 1), segment),
                _ => drop(segments.remove(at.index(count))),
            }
            segments.join("/")
        },
    );
    prop_oneof![3 => in_a_part, 1 => in_the_segments]
}

/// Any would-be name: arbitrary Unicode, printable ASCII (likelier to hit the separators),
/// lengths around the 512-byte limit, valid names and near-valid ones.
pub fn any_name() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => any::<String>(),
        1 => "[ -~]{0,40}",
        1 => "projects/[ -~]{0,20}/conversations/[ -~]{0,20}",
        1 => "projects/[a-z/]{0,20}/(locations/[a-z.-]{0,5}/)?conversations/[a-z:~.{}]{0,20}",
        1 => "[a-z/]{500,520}",
        1 => valid().prop_map(|name| name.raw),
        4 => near_valid(),
    ]
}
