//! Property tests of the connector's tokens: any string (garbage, forged headers and claims,
//! valid tokens with a few bytes changed) is refused with the reason that applies, never accepted
//! unless it is a token this connector signed for its project and it has not expired; issued
//! tokens verify back to the user they carry, whatever JSON it is.

use base64::Engine;
use proptest::prelude::*;
use proptest_inputs::json;
use serde_json::{json, Value};

use super::*;

const SECRET: &[u8] = b"property-test-secret";
const PROJECT: &str = "p";

fn keys() -> JwtKeys {
    JwtKeys::new(SECRET, PROJECT.into(), Duration::from_secs(3600))
}

/// A token with any header and claims, signed with `secret` by HS256 whatever the header says.
fn forge(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let signed = format!(
        "{}.{}",
        b64.encode(header.to_string()),
        b64.encode(claims.to_string())
    );
    let signature = jsonwebtoken::crypto::sign(
        signed.as_bytes(),
        &EncodingKey::from_secret(secret),
        Algorithm::HS256,
    )
    .unwrap();
    format!("{signed}.{signature}")
}

/// `value` as read back from its JSON text: serde_json (without its `float_roundtrip` feature)
/// may read a float one unit in the last place off, here as everywhere the token is read.
fn read_back(value: &Value) -> Value {
    serde_json::from_str(&value.to_string()).unwrap()
}

fn alg() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => Just(json!("HS256")),
        3 => prop::sample::select(vec![
            "none", "None", "HS384", "HS512", "RS256", "ES256", "hs256", "HS256 ", "",
        ])
        .prop_map(Value::from),
        1 => json::value(),
    ]
}

/// `exp`: in the future, in the past (clear of the one-second boundary), and every other type.
fn exp() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        3 => (60..1_000_000u64).prop_map(|ahead| Some(json!(now_secs() + ahead))),
        2 => (60..1_000_000u64).prop_map(|ago| Some(json!(now_secs() - ago))),
        1 => Just(None),
        1 => json::value().prop_map(Some),
    ]
}

fn project() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        3 => Just(Some(json!(PROJECT))),
        1 => Just(None),
        1 => json::string().prop_map(|p| Some(Value::String(p))),
        1 => json::value().prop_map(Some),
    ]
}

#[derive(Debug, Clone)]
struct Forged {
    alg: Value,
    exp: Option<Value>,
    project: Option<Value>,
    user: Option<Value>,
    right_secret: bool,
    token: String,
}

fn forged() -> impl Strategy<Value = Forged> {
    (
        alg(),
        exp(),
        project(),
        prop::option::of(json::value()),
        any::<bool>(),
    )
        .prop_map(|(alg, exp, project, user, right_secret)| {
            let mut claims = serde_json::Map::new();
            let fields = [
                ("exp", &exp),
                ("gcp_agent_assist_project", &project),
                ("gcp_agent_assist_user", &user),
            ];
            for (name, value) in fields {
                if let Some(value) = value {
                    claims.insert(name.to_owned(), value.clone());
                }
            }
            let secret: &[u8] = if right_secret {
                SECRET
            } else {
                b"another secret"
            };
            let token = forge(
                &json!({ "alg": alg, "typ": "JWT" }),
                &Value::Object(claims),
                secret,
            );
            Forged {
                alg,
                exp,
                project,
                user,
                right_secret,
                token,
            }
        })
}

/// Strings that are not tokens of this connector: anything, token-shaped text, prefixes alone.
fn garbage() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[A-Za-z0-9_=-]{0,40}(\\.[A-Za-z0-9_=-]{0,40}){0,4}",
        "([bB]earer)?[ \t]{0,3}",
        json::value().prop_map(|v| {
            let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            format!("{}.{}.", b64.encode(v.to_string()), b64.encode("{}"))
        }),
    ]
}

proptest! {
    #![proptest_config(proptest_inputs::config())]

    #[test]
    fn garbage_is_refused(token in garbage()) {
        let refused = keys().verify(&token);
        prop_assert!(refused.is_err(), "{refused:?}");
        if agent_assist_core::bearer::token(&token).is_empty() {
            prop_assert_eq!(refused, Err(JwtError::Missing));
        }
    }

    #[test]
    fn forged_tokens_are_accepted_only_when_everything_holds(forged in forged()) {
        let verified = keys().verify(&forged.token);
        let exp = forged.exp.as_ref().and_then(Value::as_u64);
        let expected = match forged.alg.as_str() {
            None => Err(JwtError::Malformed),
            Some(alg) if alg != "HS256" => Err(JwtError::Algorithm(alg.to_owned())),
            Some(_) if !forged.right_secret => Err(JwtError::Signature),
            Some(_) => match (&forged.project, &forged.exp, exp) {
                // The claims do not decode (a non-string project) or the expiry is not a
                // number of seconds: refused, whichever reason comes first.
                (Some(project), _, _) if !project.is_string() => {
                    prop_assert!(verified.is_err(), "{verified:?}");
                    return Ok(());
                }
                (_, Some(_), None) => {
                    prop_assert!(verified.is_err(), "{verified:?}");
                    return Ok(());
                }
                (_, None, _) => Err(JwtError::NoExpiry),
                (_, Some(_), Some(exp)) if exp < now_secs() => Err(JwtError::Expired),
                (None, _, _) => Err(JwtError::NoProject),
                (Some(project), _, _) if project != PROJECT => Err(JwtError::WrongProject),
                (Some(_), _, Some(exp)) => Ok(Claims {
                    exp,
                    gcp_agent_assist_project: PROJECT.to_owned(),
                    gcp_agent_assist_user: forged.user.as_ref().map_or(json!(""), read_back),
                }),
            },
        };
        prop_assert_eq!(verified, expected);
    }

    #[test]
    fn changed_tokens_are_refused_unless_they_still_say_the_same(
        (user, near) in json::value().prop_flat_map(|user| {
            let token = keys().issue_for(user.clone());
            (Just(user), proptest_inputs::mutation::near_text(token))
        })
    ) {
        // Only changes that leave the token as issued (surrounding whitespace, say) may pass.
        if let Ok(claims) = keys().verify(&near) {
            prop_assert_eq!(claims.gcp_agent_assist_user, read_back(&user));
            prop_assert_eq!(near.trim(), agent_assist_core::bearer::token(&near));
        }
    }

    #[test]
    fn issued_tokens_verify_back_to_their_user(
        user in json::value(),
        name in json::string(),
        prefix in "([bB][eE][aA][rR][eE][rR] )?",
    ) {
        let keys = keys();
        let claims = keys.verify(&format!("{prefix}{}", keys.issue_for(user.clone()))).unwrap();
        prop_assert_eq!(claims.gcp_agent_assist_user, read_back(&user));
        prop_assert_eq!(claims.gcp_agent_assist_project, PROJECT);
        let claims = keys.verify(&keys.issue(&name)).unwrap();
        prop_assert_eq!(claims.gcp_agent_assist_user, Value::String(name));
    }
}
