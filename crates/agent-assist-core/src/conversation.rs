//! Conversation names.
//!
//! Dialogflow names a conversation `projects/p/locations/l/conversations/c`; desktops and the
//! existing Python services route by the same name with the location dropped,
//! `projects/p/conversations/c`. Every event, join and bus key uses that location-free form, so
//! a desktop that joins with either spelling gets the same stream.
//!
//! A name is accepted only in the shape Dialogflow gives it, with bounded segments of the
//! characters Dialogflow uses. That is what makes the Redis key layout safe: a name can never
//! contain `{`, `}`, `:` in its conversation id, whitespace or control characters, so no input
//! can name a key of another kind (see the bus's `keys` module).

use std::fmt;
use std::sync::Arc;

/// Longest conversation name accepted. Dialogflow's are far shorter; this only bounds memory and
/// Redis key sizes against hostile input.
pub const MAX_NAME_LEN: usize = 512;

/// A conversation name in its location-free form. Cheap to clone (shared string).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConversationName(Arc<str>);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvalidConversationName {
    #[error("conversation name is empty")]
    Empty,
    #[error("conversation name is longer than {MAX_NAME_LEN} characters")]
    TooLong,
    #[error("conversation name contains whitespace or control characters")]
    BadCharacter,
    #[error(
        "not a conversation name: expected projects/<project>/[locations/<location>/]conversations/<id>"
    )]
    BadShape,
    #[error("conversation name has an invalid {0} (letters, digits and {1} only)")]
    BadSegment(&'static str, &'static str),
}

/// What each segment may hold: project ids (`my-project`, `example.com:my-project`) and
/// numbers; location ids (`global`, `us-central1`); conversation ids (Dialogflow's own and the
/// ones integrations choose: letters, digits, `-`, `_`, `.`, `~`).
const PROJECT: (&str, usize, &[u8]) = ("project", 128, b"-_.:");
const LOCATION: (&str, usize, &[u8]) = ("location", 63, b"-");
const CONVERSATION: (&str, usize, &[u8]) = ("conversation id", 256, b"-_.~");

impl ConversationName {
    /// Parses `projects/<p>/conversations/<c>` or `projects/<p>/locations/<l>/conversations/<c>`,
    /// dropping the location.
    pub fn parse(name: &str) -> Result<Self, InvalidConversationName> {
        if name.is_empty() {
            return Err(InvalidConversationName::Empty);
        }
        if name.len() > MAX_NAME_LEN {
            return Err(InvalidConversationName::TooLong);
        }
        if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(InvalidConversationName::BadCharacter);
        }
        let segments: Vec<&str> = name.split('/').collect();
        let (project, location, id) = match segments.as_slice() {
            ["projects", project, "conversations", id] => (*project, None, *id),
            ["projects", project, "locations", location, "conversations", id] => {
                (*project, Some(*location), *id)
            }
            _ => return Err(InvalidConversationName::BadShape),
        };
        check_segment(project, PROJECT)?;
        if let Some(location) = location {
            check_segment(location, LOCATION)?;
        }
        check_segment(id, CONVERSATION)?;
        Ok(Self(match location {
            None => Arc::from(name),
            Some(_) => Arc::from(format!("projects/{project}/conversations/{id}")),
        }))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn check_segment(
    segment: &str,
    (what, max_len, punctuation): (&'static str, usize, &'static [u8]),
) -> Result<(), InvalidConversationName> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || punctuation.contains(&b);
    if segment.is_empty() || segment.len() > max_len || !segment.bytes().all(allowed) {
        let described = match what {
            "project" => "'-', '_', '.', ':'",
            "location" => "'-'",
            _ => "'-', '_', '.', '~'",
        };
        return Err(InvalidConversationName::BadSegment(what, described));
    }
    Ok(())
}

impl fmt::Display for ConversationName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ConversationName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

#[cfg(test)]
mod properties;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_the_location() {
        let name = ConversationName::parse("projects/p/locations/global/conversations/c1").unwrap();
        assert_eq!(name.as_str(), "projects/p/conversations/c1");
        let name =
            ConversationName::parse("projects/p/locations/us-central1/conversations/c1").unwrap();
        assert_eq!(name.as_str(), "projects/p/conversations/c1");
    }

    #[test]
    fn keeps_names_without_a_location() {
        for raw in [
            "projects/p/conversations/c1",
            "projects/example.com:my-project/conversations/AbC_d-e.1~2",
            "projects/123456789012/conversations/x",
        ] {
            assert_eq!(ConversationName::parse(raw).unwrap().as_str(), raw);
        }
    }

    #[test]
    fn rejects_bad_names() {
        use InvalidConversationName::*;
        assert_eq!(ConversationName::parse(""), Err(Empty));
        assert_eq!(ConversationName::parse("a b"), Err(BadCharacter));
        assert_eq!(
            ConversationName::parse(&"x".repeat(MAX_NAME_LEN + 1)),
            Err(TooLong)
        );
        for shape in [
            "c1",
            "projects/p/locations/l",
            "projects/p/conversations/c/messages/m",
            "projects//conversations/c",
            "projects/p/conversations/",
            "projects/p/locations/l/x/conversations/c",
        ] {
            assert!(
                matches!(
                    ConversationName::parse(shape),
                    Err(BadShape | BadSegment(..))
                ),
                "{shape}"
            );
        }
        for hostile in [
            "projects/p/conversations/c}:seq",
            "projects/p/conversations/{c}",
            "projects/p:x{/conversations/c",
            "projects/p/locations/a:b/conversations/c",
            "projects/p/conversations/c:seq",
        ] {
            assert!(
                matches!(ConversationName::parse(hostile), Err(BadSegment(..))),
                "{hostile}"
            );
        }
    }
}
