//! Near-valid inputs: a valid input with a few bytes changed, the inputs closest to the boundary
//! between accepted and refused, where parsers slip.

use proptest::prelude::*;
use proptest::sample::Index;

/// Bytes that mean something to the formats we parse: JSON and base64 punctuation, separators,
/// whitespace, NUL, a lone UTF-8 continuation byte and the start of a multi-byte sequence.
const MEANINGFUL: &[u8] = b"{}[]\":,.\\/=+-_%@ \t\n\0\x7f\x80\xc3\xff";

#[derive(Debug, Clone)]
enum Edit {
    Insert(Index, u8),
    Replace(Index, u8),
    Remove(Index),
    Truncate(Index),
    Duplicate(Index, Index),
}

fn byte() -> impl Strategy<Value = u8> {
    prop_oneof![prop::sample::select(MEANINGFUL), any::<u8>()]
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<Index>(), byte()).prop_map(|(at, b)| Edit::Insert(at, b)),
        (any::<Index>(), byte()).prop_map(|(at, b)| Edit::Replace(at, b)),
        any::<Index>().prop_map(Edit::Remove),
        any::<Index>().prop_map(Edit::Truncate),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Edit::Duplicate(a, b)),
    ]
}

fn apply(bytes: &mut Vec<u8>, edit: &Edit) {
    let len = bytes.len();
    match edit {
        Edit::Insert(at, b) => bytes.insert(at.index(len + 1), *b),
        Edit::Replace(at, b) if len > 0 => bytes[at.index(len)] = *b,
        Edit::Remove(at) if len > 0 => drop(bytes.remove(at.index(len))),
        Edit::Truncate(at) => bytes.truncate(at.index(len + 1)),
        Edit::Duplicate(a, b) if len > 0 => {
            let (a, b) = (a.index(len), b.index(len));
            let copy = bytes[a.min(b)..=a.max(b)].to_vec();
            bytes.splice(a.max(b) + 1..a.max(b) + 1, copy);
        }
        _ => {}
    }
}

/// `original` with one to three edits (insert, replace, remove, truncate, duplicate a range).
pub fn near(original: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(edit(), 1..=3).prop_map(move |edits| {
        let mut bytes = original.clone();
        for edit in &edits {
            apply(&mut bytes, edit);
        }
        bytes
    })
}

/// Like [`near`], for text inputs: the edited bytes, read as UTF-8 with replacement characters
/// where an edit broke a sequence.
pub fn near_text(original: String) -> impl Strategy<Value = String> {
    near(original.into_bytes()).prop_map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}
