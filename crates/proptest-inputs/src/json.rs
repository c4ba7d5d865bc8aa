//! JSON inputs: any value (with the field names a parser looks for, so wrong types and nulls
//! reach the fields that matter), and texts nested far deeper than any parser should follow.

use proptest::prelude::*;
use serde_json::{Map, Number, Value};

/// Numbers at the edges: both signs, the ends of `i64` and `u64`, floats (integral, fractional,
/// huge, tiny, negative zero) and exact-JavaScript limits.
pub fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop::sample::select(vec![
            0u64,
            1,
            (1 << 53) - 1,
            1 << 53,
            (1 << 53) + 1,
            u32::MAX as u64,
            u64::MAX,
        ])
        .prop_map(Value::from),
        prop::sample::select(vec![
            0.0,
            -0.0,
            1.0,
            42.0,
            0.5,
            -1.0,
            1e300,
            -1e300,
            1e-300,
            9007199254740993.0
        ])
        .prop_map(|f| Value::Number(Number::from_f64(f).expect("finite"))),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
    ]
}

/// Strings: any Unicode, printable ASCII, the empty string, and long ones.
pub fn string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => any::<String>(),
        2 => "[ -~]{0,24}",
        1 => Just(String::new()),
        // Built by repetition: generating thousands of characters one by one is slow.
        1 => ("[a-z0-9]{1,8}", 200..700usize).prop_map(|(part, times)| part.repeat(times)),
    ]
}

/// Any JSON value, up to 4 levels deep, whose object keys are mostly drawn from `keys` (the
/// field names the parser under test reads), so those fields get every type and null.
pub fn value_using_keys(keys: &[&'static str]) -> impl Strategy<Value = Value> {
    let keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
    let key = if keys.is_empty() {
        string().boxed()
    } else {
        prop_oneof![3 => prop::sample::select(keys), 1 => string()].boxed()
    };
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..6)
                .prop_map(|fields| Value::Object(fields.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Any JSON value (keys arbitrary too).
pub fn value() -> impl Strategy<Value = Value> {
    value_using_keys(&[])
}

/// A JSON text of arrays or objects nested `depth` deep, up to 100,000 (serde_json refuses
/// beyond 128; a recursive parser without a limit would overflow the stack), sometimes left
/// unclosed.
pub fn deeply_nested_text() -> impl Strategy<Value = String> {
    (1usize..=100_000, any::<bool>(), any::<bool>()).prop_map(|(depth, objects, closed)| {
        let (open, close) = if objects {
            (r#"{"a":"#, "}")
        } else {
            ("[", "]")
        };
        let mut text = open.repeat(depth);
        text.push('1');
        if closed {
            text.push_str(&close.repeat(depth));
        }
        text
    })
}
