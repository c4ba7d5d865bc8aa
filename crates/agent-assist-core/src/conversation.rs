//! Conversation names.
//!
//! Dialogflow names a conversation `projects/p/locations/l/conversations/c`; desktops and the
//! existing Python services route by the same name with the location dropped,
//! `projects/p/conversations/c`. Every event, join and bus key uses that location-free form, so
//! a desktop that joins with either spelling gets the same stream.

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
}

impl ConversationName {
    /// Parses a name with or without a location. `projects/p/locations/l/conversations/c`
    /// becomes `projects/p/conversations/c`; any other non-empty name is kept as it is.
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
        let stripped = match segments.as_slice() {
            ["projects", project, "locations", _, "conversations", rest @ ..]
                if !rest.is_empty() =>
            {
                Some(format!(
                    "projects/{project}/conversations/{}",
                    rest.join("/")
                ))
            }
            _ => None,
        };
        Ok(Self(stripped.map_or_else(|| Arc::from(name), Arc::from)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
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
            "c1",
            "projects/p/locations/l",
        ] {
            assert_eq!(ConversationName::parse(raw).unwrap().as_str(), raw);
        }
    }

    #[test]
    fn rejects_bad_names() {
        assert_eq!(
            ConversationName::parse(""),
            Err(InvalidConversationName::Empty)
        );
        assert_eq!(
            ConversationName::parse("a b"),
            Err(InvalidConversationName::BadCharacter)
        );
        assert_eq!(
            ConversationName::parse(&"x".repeat(MAX_NAME_LEN + 1)),
            Err(InvalidConversationName::TooLong)
        );
    }
}
