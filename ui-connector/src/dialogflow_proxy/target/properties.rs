//! Property tests of the proxy's path checks, in the order the extractor applies them
//! (`target::parse`, then the route table): any path is refused, or accepted without anything the
//! module docs say is refused, and its upstream URL stays on the expected host with the path
//! unchanged; a path whose only fault is a malformed percent-escape says so; valid paths are
//! accepted and forwarded unchanged.

use axum::http::Method;
use proptest::prelude::*;
use proptest::sample::Index;

use super::*;
use crate::dialogflow_proxy::routes::{match_route, RouteMatch, ROUTES};

/// The reasons of [`PathError::Invalid`].
const REASONS: &[&str] = &[
    "the path must start with '/'",
    "empty path segment",
    "backslash in the path",
    "'@' in the path",
    "malformed percent-encoding in the path",
    "encoded slash or backslash in the path",
    "encoded '@' or '%' in the path",
    "encoded control character in the path",
    "control character in the path",
    "'.' or '..' path segment",
    "the location must be letters, digits and inner dashes",
];

/// What the module docs say an accepted segment never holds, restated: empty, `.` or `..` (also
/// percent-encoded), `\`, `@`, control characters or spaces, encoded `/`, `\`, `@`, `%` or control
/// characters, or a `%` not followed by two hex digits.
fn segment_is_safe(segment: &str) -> bool {
    let bytes = segment.as_bytes();
    let mut decoded = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let Some(hex) = bytes
                    .get(i + 1..i + 3)
                    .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                else {
                    return false;
                };
                let value = u8::from_str_radix(std::str::from_utf8(hex).unwrap(), 16).unwrap();
                if matches!(value, b'/' | b'\\' | b'@' | b'%' | 0..=0x1f | 0x7f) {
                    return false;
                }
                decoded.push(value);
                i += 3;
            }
            b'\\' | b'@' | 0..=0x20 | 0x7f => return false,
            b => {
                decoded.push(b);
                i += 1;
            }
        }
    }
    !decoded.is_empty() && decoded != b"." && decoded != b".."
}

/// The proxied shape, restated: `/<version>/projects/<p>/locations/<location>/<collection>...`
/// with a version `v<digit>[letters and digits]`; `None` if the segments are not in it.
fn documented_shape<'a>(segments: &[&'a str]) -> Option<(&'a str, &'a str)> {
    let version = segments.first()?;
    let version_ok = version.strip_prefix('v').is_some_and(|rest| {
        rest.starts_with(|c: char| c.is_ascii_digit())
            && rest.chars().all(|c| c.is_ascii_alphanumeric())
    });
    (segments.len() >= 6 && segments[1] == "projects" && segments[3] == "locations" && version_ok)
        .then(|| (*version, segments[4]))
}

/// A DNS label, as the module docs require of a location.
fn documented_location(location: &str) -> bool {
    (1..=63).contains(&location.len())
        && !location.starts_with('-')
        && !location.ends_with('-')
        && location
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// `min..=max` path characters the URL parser leaves as they are (RFC 3986 `pchar` less `%`).
fn pchars(min: usize, max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[A-Za-z0-9._~!$&'()*+,;=:-]{{{min},{max}}}")).unwrap()
}

/// Percent-escapes: of safe bytes, of every byte the checks refuse, and malformed ones.
fn escape() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<u8>().prop_map(|b| format!("%{b:02X}")),
        any::<u8>().prop_map(|b| format!("%{b:02x}")),
        prop::sample::select(vec![
            "%2F", "%2f", "%5C", "%40", "%25", "%2E", "%2e%2E", "%00", "%0A", "%7F", "%252F", "%",
            "%2", "%G1", "%+1", "%-1", "% 1", "%é",
        ])
        .prop_map(str::to_owned),
    ]
}

/// Text that makes a segment unsafe, with the reason it is refused for.
const FAULTS: &[(&str, &str)] = &[
    ("%", "malformed percent-encoding in the path"),
    ("%2", "malformed percent-encoding in the path"),
    ("%G1", "malformed percent-encoding in the path"),
    ("%+1", "malformed percent-encoding in the path"),
    ("%+f", "malformed percent-encoding in the path"),
    ("%-1", "malformed percent-encoding in the path"),
    ("%1+", "malformed percent-encoding in the path"),
    ("%é", "malformed percent-encoding in the path"),
    ("%2F", "encoded slash or backslash in the path"),
    ("%2f", "encoded slash or backslash in the path"),
    ("%5C", "encoded slash or backslash in the path"),
    ("%5c", "encoded slash or backslash in the path"),
    ("%40", "encoded '@' or '%' in the path"),
    ("%25", "encoded '@' or '%' in the path"),
    ("%00", "encoded control character in the path"),
    ("%0a", "encoded control character in the path"),
    ("%1F", "encoded control character in the path"),
    ("%7f", "encoded control character in the path"),
    ("\\", "backslash in the path"),
    ("@", "'@' in the path"),
    (" ", "control character in the path"),
    ("\t", "control character in the path"),
    ("\u{7f}", "control character in the path"),
];

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => pchars(1, 12),
        2 => prop::collection::vec(prop_oneof![pchars(1, 4), escape()], 1..4)
            .prop_map(|parts| parts.concat()),
        1 => prop::sample::select(vec![
            "", ".", "..", "...", "@", "a@b", "a\\b", "a b", "a\tb", "{x}", "a#b", "a?b", "x:complete",
            "é", "\u{0}",
        ])
        .prop_map(str::to_owned),
        1 => any::<String>().prop_map(|s| s.replace('/', "")),
    ]
}

fn version() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec!["v2", "v2beta1", "v3alpha1"]).prop_map(str::to_owned),
        1 => "v[0-9][a-z0-9]{0,6}",
        1 => segment(),
    ]
}

fn location() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec!["global", "us-central1", "europe-west2", "GLOBAL"])
            .prop_map(str::to_owned),
        2 => "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?",
        1 => "[a-z0-9]{64}",
        1 => segment(),
    ]
}

fn collection() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(ROUTES.iter().map(|r| r.collection).collect::<Vec<_>>())
            .prop_map(str::to_owned),
        1 => segment(),
    ]
}

/// A path of the proxied shape with every part drawn from valid and hostile values.
fn proxied_shape() -> impl Strategy<Value = String> {
    (
        version(),
        segment(),
        location(),
        collection(),
        prop::collection::vec(segment(), 0..4),
        prop::option::of(prop::sample::select(vec!["/", "//", "\\", "/..", "/%2F"])),
    )
        .prop_map(|(version, project, location, collection, tail, suffix)| {
            let mut path =
                format!("/{version}/projects/{project}/locations/{location}/{collection}");
            for segment in tail {
                path.push('/');
                path.push_str(&segment);
            }
            path.push_str(suffix.unwrap_or(""));
            path
        })
}

fn any_path() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proxied_shape(),
        1 => any::<String>(),
        1 => "(/[a-z0-9.%@\\\\]{0,6}){0,8}",
        1 => proxied_shape().prop_flat_map(proptest_inputs::mutation::near_text),
    ]
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        prop::sample::select(vec![
            Method::GET,
            Method::POST,
            Method::PATCH,
            Method::PUT,
            Method::DELETE,
            Method::HEAD,
            Method::OPTIONS,
        ]),
        "[A-Z]{1,8}".prop_map(|m| Method::from_bytes(m.as_bytes()).unwrap()),
    ]
}

fn endpoints() -> [(Endpoint, &'static str); 2] {
    let fixed = Endpoint::parse(Some("http://127.0.0.1:9000/prefix/")).unwrap();
    [(Endpoint::Google, ""), (fixed, "/prefix")]
}

/// The host Google's endpoints use for `location`, or the fixed endpoint's.
fn expected_host(endpoint: &Endpoint, location: &str) -> String {
    match endpoint {
        Endpoint::Fixed { host, .. } => host.clone(),
        Endpoint::Google if location.eq_ignore_ascii_case("global") => {
            "dialogflow.googleapis.com".to_owned()
        }
        Endpoint::Google => format!(
            "{}-dialogflow.googleapis.com",
            location.to_ascii_lowercase()
        ),
    }
}

proptest! {
    #![proptest_config(proptest_inputs::config())]

    #[test]
    fn any_path_is_refused_or_safe_and_stays_on_its_host(
        path in any_path(),
        method in method(),
        // What `Uri::query` can hold: no `#` (a fragment never reaches the server).
        query in prop::option::of("[a-z0-9=&%/@?]{0,12}"),
    ) {
        let segments: Vec<&str> = path.strip_prefix('/').unwrap_or("").split('/').collect();
        let all_safe = path.starts_with('/') && segments.iter().all(|s| segment_is_safe(s));
        match parse(&path) {
            Ok(accepted) => {
                prop_assert!(all_safe, "accepted an unsafe path {path:?}");
                let shape = documented_shape(&segments);
                prop_assert!(shape.is_some_and(|(_, location)| documented_location(location)));
                prop_assert_eq!(accepted.raw, path.as_str());
                prop_assert_eq!(
                    (accepted.version, accepted.project, accepted.location, accepted.collection),
                    (segments[0], segments[2], segments[4], segments[5])
                );
                prop_assert_eq!(accepted.has_tail, segments.len() > 6);
                let route = ROUTES
                    .iter()
                    .find(|r| r.collection == accepted.collection && r.tail == accepted.has_tail);
                match (match_route(&method, accepted.collection, accepted.has_tail), route) {
                    (RouteMatch::Allowed, Some(route)) => prop_assert!(route.methods.contains(&method)),
                    (RouteMatch::WrongMethod(allowed), Some(route)) => {
                        prop_assert!(!allowed.contains(&method));
                        prop_assert_eq!(allowed, route.methods);
                    }
                    (RouteMatch::Unknown, None) => {}
                    (answer, route) => prop_assert!(false, "{answer:?} for {route:?}"),
                }
                for (endpoint, prefix) in endpoints() {
                    match endpoint.url(accepted.raw, accepted.location, query.as_deref()) {
                        Ok(url) => {
                            let host = expected_host(&endpoint, accepted.location);
                            prop_assert_eq!(url.host_str(), Some(host.as_str()));
                            prop_assert_eq!(url.path(), format!("{prefix}{path}"));
                            prop_assert_eq!(url.username(), "");
                            prop_assert_eq!(url.password(), None);
                            prop_assert_eq!(url.fragment(), None);
                            let expected_scheme = if prefix.is_empty() { "https" } else { "http" };
                            prop_assert_eq!(url.scheme(), expected_scheme);
                        }
                        Err(PathError::Invalid(reason)) => prop_assert!(reason.contains("URL")),
                        Err(PathError::Unknown) => prop_assert!(false, "url() said Unknown"),
                    }
                }
            }
            Err(PathError::Invalid(reason)) => {
                prop_assert!(REASONS.contains(&reason), "{reason:?}");
                if reason.starts_with("the location") {
                    prop_assert!(all_safe);
                    let shape = documented_shape(&segments);
                    prop_assert!(shape.is_some_and(|(_, location)| !documented_location(location)));
                } else {
                    prop_assert!(!all_safe, "refused a safe path {path:?}: {reason}");
                }
            }
            Err(PathError::Unknown) => {
                prop_assert!(all_safe, "{path:?} is unsafe, not unknown");
                prop_assert!(documented_shape(&segments).is_none(), "{path:?} has the shape");
            }
        }
    }

    #[test]
    fn one_fault_in_a_valid_path_is_named(
        at in any::<Index>(),
        (fault, reason) in prop::sample::select(FAULTS.to_vec()),
    ) {
        let mut path = "/v2/projects/p1/locations/global/conversations/c1/x:y".to_owned();
        // At the end of a segment, so it is the only fault and no hex digit follows an escape.
        let mut ends: Vec<usize> = path.match_indices('/').skip(1).map(|(i, _)| i).collect();
        ends.push(path.len());
        path.insert_str(ends[at.index(ends.len())], fault);
        prop_assert_eq!(parse(&path), Err(PathError::Invalid(reason)));
    }

    #[test]
    fn a_faulty_segment_is_named(
        at in any::<Index>(),
        (segment, reason) in prop::sample::select(vec![
            ("", "empty path segment"),
            (".", "'.' or '..' path segment"),
            ("..", "'.' or '..' path segment"),
            ("%2e", "'.' or '..' path segment"),
            (".%2E", "'.' or '..' path segment"),
        ]),
    ) {
        let path = "/v2/projects/p1/locations/global/conversations/c1/x:y";
        let mut segments: Vec<&str> = path.split('/').collect();
        let chosen = 1 + at.index(segments.len() - 1);
        segments[chosen] = segment;
        let faulty = segments.join("/");
        prop_assert_eq!(parse(&faulty), Err(PathError::Invalid(reason)));
    }

    #[test]
    fn valid_paths_are_accepted_and_forwarded_unchanged(
        version in "v[0-9][a-z0-9]{0,6}",
        project in pchars(1, 20).prop_filter("not a dot segment", |p| p != "." && p != ".."),
        location in "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?",
        collection in prop::sample::select(ROUTES.iter().map(|r| r.collection).collect::<Vec<_>>()),
        tail in prop::collection::vec(
            prop::collection::vec(prop_oneof!["[A-Za-z0-9_~:-]{1,8}", Just("%20".to_owned()), Just("%3A".to_owned())], 1..3)
                .prop_map(|parts| parts.concat()),
            0..3,
        ),
    ) {
        let mut path = format!("/{version}/projects/{project}/locations/{location}/{collection}");
        for segment in &tail {
            path.push('/');
            path.push_str(segment);
        }
        let accepted = parse(&path).unwrap();
        prop_assert_eq!(accepted.project, project.as_str());
        prop_assert_eq!(accepted.location, location.as_str());
        prop_assert_eq!(accepted.has_tail, !tail.is_empty());
        for (endpoint, prefix) in endpoints() {
            let url = endpoint.url(accepted.raw, accepted.location, Some("a=1")).unwrap();
            let host = expected_host(&endpoint, &location);
            prop_assert_eq!(url.host_str(), Some(host.as_str()));
            prop_assert_eq!(url.path(), format!("{prefix}{path}"));
            prop_assert_eq!(url.query(), Some("a=1"));
        }
    }
}
