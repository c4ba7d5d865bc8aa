//! Property tests of Google ID token checking, against a real JWKS stand-in on 127.0.0.1 that
//! publishes one RSA key generated here:
//! - any `Authorization` value is either one non-empty bearer token or a 401 (`not_bearer`);
//! - garbage tokens (anything whose header does not name an RS256 key by `kid`, and anything
//!   over the length limit) are 401 and never cause a key fetch: the module docs say only an
//!   unknown `kid` does;
//! - tokens that do name an RS256 key but are forged are 401, and however many arrive, the key
//!   set is fetched once (the re-fetch interval is set to an hour here);
//! - tokens signed by the published key verify to the identity they carry, and any change to
//!   their signed part makes them a 401;
//! - signed tokens whose claims are each right, wrong, missing or of the wrong type get the
//!   class and reason the module docs give, in the documented order.

use std::sync::LazyLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::HeaderValue;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{json, Value};

use super::*;

const AUDIENCE: &str = "https://interceptor.example.test/push";
const PUSHER: &str = "pubsub-pusher@demo-project.iam.gserviceaccount.com";
const KID: &str = "published-key";

/// The published key (RSA key generation is slow in debug builds: once per test binary).
static KEY: LazyLock<(EncodingKey, Value)> = LazyLock::new(|| {
    let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let b64 = |bytes: Vec<u8>| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let jwk = json!({
        "kty": "RSA", "alg": "RS256", "use": "sig", "kid": KID,
        "n": b64(private.n().to_bytes_be()), "e": b64(private.e().to_bytes_be()),
    });
    let signing = EncodingKey::from_rsa_der(private.to_pkcs1_der().unwrap().as_bytes());
    (signing, jwk)
});

/// A runtime, a JWKS stand-in serving [`KEY`], and a verifier with its own key cache.
struct Fixture {
    runtime: tokio::runtime::Runtime,
    verifier: IdTokenVerifier,
}

impl Fixture {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let url = runtime.block_on(async {
            let jwks = json!({ "keys": [KEY.1.clone()] });
            let app = axum::Router::new().route(
                "/certs",
                axum::routing::get(move || std::future::ready(axum::Json(jwks.clone()))),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}/certs", listener.local_addr().unwrap());
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            url
        });
        let options = KeyCacheOptions {
            min_refetch_interval: Duration::from_secs(3600),
            ..KeyCacheOptions::default()
        };
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let keys = GoogleKeys::with_options(url, http, options);
        let verifier = IdTokenVerifier::new(keys, Expectation::new(AUDIENCE, PUSHER)).unwrap();
        Self { runtime, verifier }
    }

    fn verify(&self, token: &str) -> Result<VerifiedIdentity, IdTokenError> {
        self.runtime.block_on(self.verifier.verify_token(token))
    }

    fn fetches(&self) -> u64 {
        self.verifier.keys().stats().fetches
    }
}

/// Runs `test` on the shared case count. Used instead of `proptest!` where the cases share a
/// fixture (a runtime, the stand-in and a key cache whose fetches are counted across cases).
fn check<S: Strategy>(strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>) {
    let mut runner = TestRunner::new(ProptestConfig {
        source_file: Some(file!()),
        ..proptest_inputs::config()
    });
    if let Err(failure) = runner.run(&strategy, test) {
        panic!("{failure}");
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The reason of a 401, or a failure naming the class it got instead.
fn unauthenticated(
    result: Result<VerifiedIdentity, IdTokenError>,
) -> Result<UnauthenticatedReason, TestCaseError> {
    match result {
        Err(IdTokenError::Unauthenticated { reason, detail }) => {
            prop_assert!(!detail.is_empty());
            Ok(reason)
        }
        other => Err(TestCaseError::fail(format!(
            "expected a 401, got {other:?}"
        ))),
    }
}

/// Whether the module docs allow `token` to cause a key fetch: three parts, within the length
/// limit (16 KiB, the verifier's `MAX_TOKEN_BYTES`), and a header that names an RS256 key by
/// `kid`.
fn names_a_key(token: &str) -> bool {
    let parts: Vec<&str> = token.split('.').collect();
    let Some(header) = parts
        .first()
        .filter(|_| parts.len() == 3 && token.len() <= 16 * 1024)
        .and_then(|h| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(h)
                .ok()
        })
        .and_then(|h| serde_json::from_slice::<Value>(&h).ok())
    else {
        return false;
    };
    header["alg"] == "RS256" && header["kid"].is_string()
}

/// Algorithms a forger would try, `RS256` look-alikes included.
fn forged_alg() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::sample::select(vec![
            "none",
            "None",
            "HS256",
            "RS384",
            "RS512",
            "PS256",
            "ES256",
            "EdDSA",
            "rs256",
            "RS256 ",
            " RS256",
            "RS256\u{0}",
            "",
        ])
        .prop_map(Value::from),
        proptest_inputs::json::value(),
    ]
}

/// A token header (as JSON) that names no RS256 key: a wrong or missing `alg`, a missing or
/// non-string `kid`, or any JSON at all.
fn garbage_header() -> impl Strategy<Value = Value> {
    let kid = prop_oneof![
        Just(None),
        Just(Some(Value::from(KID))),
        proptest_inputs::json::value().prop_map(Some),
    ];
    prop_oneof![
        (forged_alg(), kid.clone()).prop_map(|(alg, kid)| {
            let mut header = json!({ "alg": alg, "typ": "JWT" });
            if let Some(kid) = kid {
                header["kid"] = kid;
            }
            header
        }),
        kid.prop_map(|kid| json!({ "alg": "RS256", "kid": kid.unwrap_or(Value::Null) })),
        Just(json!({ "alg": "RS256" })),
        proptest_inputs::json::value_using_keys(&["alg", "kid", "typ"]),
    ]
}

fn base64url_text() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{0,80}"
}

/// Anything but a well-formed RS256 header with a `kid`, and oversized tokens whose header is
/// well-formed.
fn garbage_token() -> impl Strategy<Value = String> {
    let part = prop_oneof![
        base64url_text(),
        proptest_inputs::json::value().prop_map(|v| b64(v.to_string().as_bytes())),
        any::<String>(),
    ];
    prop_oneof![
        any::<String>(),
        "[A-Za-z0-9_.=+/-]{0,120}",
        (garbage_header(), part.clone(), part.clone()).prop_map(|(header, payload, signature)| {
            format!(
                "{}.{payload}.{signature}",
                b64(header.to_string().as_bytes())
            )
        }),
        // The header as raw JSON rather than base64url.
        (garbage_header(), part.clone()).prop_map(|(header, rest)| format!("{header}.{rest}.x")),
        (part.clone(), 0..6usize).prop_map(|(part, dots)| format!("{part}{}", ".".repeat(dots))),
        (16 * 1024 - 64..17 * 1024usize).prop_map(|len| {
            let header = b64(json!({ "alg": "RS256", "kid": KID }).to_string().as_bytes());
            format!("{header}.{}.sig", "A".repeat(len))
        }),
    ]
}

/// A header that names an RS256 key (the published one or another) with forged payload and
/// signature: the tokens that may cause one fetch, and must still be refused.
fn forged_token() -> impl Strategy<Value = String> {
    let kid = prop_oneof![Just(KID.to_owned()), proptest_inputs::json::string()];
    let payload = prop_oneof![
        base64url_text(),
        proptest_inputs::json::value_using_keys(&["iss", "aud", "exp", "iat", "email"])
            .prop_map(|v| b64(v.to_string().as_bytes())),
        Just(b64(
            json!({ "iss": "https://accounts.google.com", "aud": AUDIENCE, "email": PUSHER,
                    "email_verified": true, "iat": now(), "exp": now() + 600 })
            .to_string()
            .as_bytes()
        )),
    ];
    let signature = prop_oneof![
        base64url_text(),
        prop::collection::vec(any::<u8>(), 256).prop_map(|bytes| b64(&bytes)),
        any::<String>(),
    ];
    (kid, proptest_inputs::json::value(), payload, signature).prop_map(
        |(kid, extra, payload, signature)| {
            let header = json!({ "alg": "RS256", "kid": kid, "typ": "JWT", "x": extra });
            format!(
                "{}.{payload}.{signature}",
                b64(header.to_string().as_bytes())
            )
        },
    )
}

/// What Pub/Sub's push token carries, with generated subject and times around now.
fn google_claims() -> impl Strategy<Value = Value> {
    (
        "[0-9]{1,21}",
        0..300u64,
        60..3600u64,
        prop_oneof![Just(json!(true)), Just(json!("true"))],
        prop::sample::select(vec!["accounts.google.com", "https://accounts.google.com"]),
    )
        .prop_map(|(sub, age, life, verified, iss)| {
            json!({
                "iss": iss, "aud": AUDIENCE, "email": PUSHER, "email_verified": verified,
                "sub": sub, "iat": now() - age, "exp": now() + life,
            })
        })
}

fn mint(claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(KID.to_owned());
    jsonwebtoken::encode(&header, claims, &KEY.0).unwrap()
}

#[test]
fn garbage_is_unauthenticated_and_fetches_no_keys() {
    let fixture = Fixture::start();
    check(garbage_token(), |token| {
        let before = fixture.fetches();
        let result = fixture.verify(&token);
        if names_a_key(&token) {
            // Generated by chance: a well-formed header, which may fetch; still a 401.
            unauthenticated(result)?;
            return Ok(());
        }
        let reason = unauthenticated(result)?;
        prop_assert!(
            matches!(
                reason,
                UnauthenticatedReason::MalformedToken | UnauthenticatedReason::DisallowedAlgorithm
            ),
            "{reason:?}"
        );
        prop_assert_eq!(fixture.fetches(), before, "garbage caused a key fetch");
        Ok(())
    });
}

#[test]
fn forged_tokens_naming_a_key_are_unauthenticated_and_fetch_once() {
    let fixture = Fixture::start();
    // Found by this property (a CI-like run, 2026-12-01): a run whose first token is malformed
    // past its header (here an empty payload and the signature ".", so four parts) is refused before any key lookup,
    // so "exactly one fetch" held only when an earlier token had needed the keys. The property
    // is "at most one fetch, and one by the time a token needed the keys".
    let four_parts = format!(
        "{}...",
        b64(
            json!({ "alg": "RS256", "kid": KID, "typ": "JWT", "x": null })
                .to_string()
                .as_bytes()
        )
    );
    let reason = unauthenticated(fixture.verify(&four_parts)).unwrap();
    assert_eq!(reason, UnauthenticatedReason::MalformedToken);
    assert_eq!(fixture.fetches(), 0, "refused before any key lookup");
    check(forged_token(), |token| {
        let reason = unauthenticated(fixture.verify(&token))?;
        prop_assert!(
            matches!(
                reason,
                UnauthenticatedReason::UnknownKey
                    | UnauthenticatedReason::InvalidSignature
                    | UnauthenticatedReason::MalformedToken
            ),
            "{reason:?}"
        );
        if reason == UnauthenticatedReason::MalformedToken {
            prop_assert!(fixture.fetches() <= 1);
        } else {
            // An unknown kid or a bad signature: the key set was needed, and fetched once.
            prop_assert_eq!(fixture.fetches(), 1);
        }
        Ok(())
    });
}

#[test]
fn signed_tokens_verify_and_any_change_to_their_signed_part_is_refused() {
    let fixture = Fixture::start();
    let strategy = google_claims().prop_flat_map(|claims| {
        let token = mint(&claims);
        let signed_len = token.rfind('.').unwrap();
        let signed = token[..signed_len].to_owned();
        (
            Just(claims),
            Just(token),
            proptest_inputs::mutation::near_text(signed.clone())
                .prop_filter("a change", move |near| near != &signed),
        )
    });
    check(strategy, |(claims, token, changed_signed_part)| {
        let identity = fixture
            .verify(&token)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(
            identity,
            VerifiedIdentity {
                email: PUSHER.to_owned(),
                audience: AUDIENCE.to_owned(),
                subject: claims["sub"].as_str().map(str::to_owned),
                issued_at: claims["iat"].as_u64().unwrap(),
                expires_at: claims["exp"].as_u64().unwrap(),
            }
        );
        let signature = &token[token.rfind('.').unwrap()..];
        unauthenticated(fixture.verify(&format!("{changed_signed_part}{signature}")))?;
        prop_assert!(fixture.fetches() <= 1);
        Ok(())
    });
}

/// Claims around every documented check: each one right, wrong, missing, or of the wrong type.
#[derive(Debug, Clone)]
struct ClaimChoices {
    iss: Option<&'static str>,
    aud: Option<Value>,
    /// Seconds from now; `Err` for a claim of the wrong type.
    exp: Option<Result<i64, Value>>,
    iat: Option<i64>,
    nbf: Option<i64>,
    email: Option<&'static str>,
    email_verified: Option<Value>,
}

fn claim_choices() -> impl Strategy<Value = ClaimChoices> {
    use prop::sample::select;
    (
        select(vec![
            Some("accounts.google.com"),
            Some("https://accounts.google.com"),
            Some("https://accounts.google.com.evil.example"),
            Some("https://evil.example"),
            None,
        ]),
        select(vec![
            Some(json!(AUDIENCE)),
            Some(json!(["https://other.example", AUDIENCE])),
            Some(json!("https://other.example")),
            Some(json!(["https://other.example"])),
            None,
        ]),
        // Skew is 30 s: 20 s late is still valid, 40 s late is not.
        select(vec![
            Some(Ok(3600)),
            Some(Ok(-20)),
            Some(Ok(-40)),
            Some(Ok(-3600)),
            Some(Err(json!("4102444800"))),
            None,
        ]),
        select(vec![Some(-600), Some(20), Some(40), None]),
        select(vec![None, Some(-10), Some(40)]),
        select(vec![Some(PUSHER), Some("someone@else.example"), None]),
        select(vec![
            Some(json!(true)),
            Some(json!("true")),
            Some(json!(false)),
            Some(json!("false")),
            Some(json!(1)),
            None,
        ]),
    )
        .prop_map(
            |(iss, aud, exp, iat, nbf, email, email_verified)| ClaimChoices {
                iss,
                aud,
                exp,
                iat,
                nbf,
                email,
                email_verified,
            },
        )
}

impl ClaimChoices {
    fn to_json(&self, now: i64) -> Value {
        let mut claims = json!({ "sub": "1234" });
        let mut set = |name: &str, value: Option<Value>| {
            if let Some(value) = value {
                claims[name] = value;
            }
        };
        set("iss", self.iss.map(Value::from));
        set("aud", self.aud.clone());
        set(
            "exp",
            self.exp
                .clone()
                .map(|exp| exp.map_or_else(|v| v, |s| json!(now + s))),
        );
        set("iat", self.iat.map(|s| json!(now + s)));
        set("nbf", self.nbf.map(|s| json!(now + s)));
        set("email", self.email.map(Value::from));
        set("email_verified", self.email_verified.clone());
        claims
    }

    /// The answer the module docs give, in their order: the payload must decode (a claim of
    /// the wrong type is `malformed_token`), then everything that makes the token
    /// untrustworthy (401) before what makes it someone else's (403), and the email's
    /// verification last.
    fn documented_outcome(&self) -> Result<(), (RejectionClass, &'static str)> {
        use RejectionClass::{Forbidden, Unauthenticated};
        let decodes = !matches!(self.exp, Some(Err(_)))
            && !matches!(self.email_verified, Some(Value::Number(_)));
        if !decodes {
            return Err((Unauthenticated, "malformed_token"));
        }
        let iss = self.iss.ok_or((Unauthenticated, "missing_claim"))?;
        if !GOOGLE_ISSUERS.contains(&iss) {
            return Err((Unauthenticated, "wrong_issuer"));
        }
        let Some(Ok(exp)) = self.exp else {
            return Err((Unauthenticated, "missing_claim"));
        };
        let iat = self.iat.ok_or((Unauthenticated, "missing_claim"))?;
        if exp < -30 {
            return Err((Unauthenticated, "expired"));
        }
        if iat.max(self.nbf.unwrap_or(i64::MIN)) > 30 {
            return Err((Unauthenticated, "not_yet_valid"));
        }
        let aud = self
            .aud
            .as_ref()
            .ok_or((Unauthenticated, "missing_claim"))?;
        let audiences: Vec<&str> = match aud {
            Value::Array(all) => all.iter().filter_map(Value::as_str).collect(),
            one => one.as_str().into_iter().collect(),
        };
        if !audiences.contains(&AUDIENCE) {
            return Err((Forbidden, "wrong_audience"));
        }
        if self.email != Some(PUSHER) {
            return Err((Forbidden, "wrong_email"));
        }
        match &self.email_verified {
            Some(verified) if verified == &json!(true) || verified == &json!("true") => Ok(()),
            _ => Err((Unauthenticated, "email_not_verified")),
        }
    }
}

#[test]
fn signed_tokens_get_the_documented_answer_for_their_claims() {
    let fixture = Fixture::start();
    check(claim_choices(), |choices| {
        let now = now() as i64;
        let token = mint(&choices.to_json(now));
        let answer = fixture
            .verify(&token)
            .map(|_| ())
            .map_err(|e| (e.class(), e.reason_label()));
        prop_assert_eq!(answer, choices.documented_outcome());
        Ok(())
    });
}

/// Header values of any bytes a client can send, and bearer-shaped ones.
fn authorization_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        ("[bB][eE][aA][rR][eE][rR]", "[ \t]{0,3}", "[ -~\t]{0,40}")
            .prop_map(|(scheme, gap, rest)| format!("{scheme}{gap}{rest}").into_bytes()),
        "[ -~\u{80}-\u{ff}]{0,40}".prop_map(String::into_bytes),
    ]
}

proptest! {
    #![proptest_config(proptest_inputs::config())]

    #[test]
    fn any_authorization_value_is_one_token_or_not_bearer(bytes in authorization_value()) {
        let Ok(value) = HeaderValue::from_bytes(&bytes) else {
            // Not a header value at all: HTTP parsing refuses it before any handler runs.
            return Ok(());
        };
        match bearer_token(Some(&value)) {
            Ok(token) => {
                prop_assert!(!token.is_empty() && !token.contains(char::is_whitespace));
                let text = value.to_str().unwrap();
                prop_assert_eq!(crate::bearer::bearer_token(text), Some(token));
            }
            Err(IdTokenError::Unauthenticated { reason, .. }) => {
                prop_assert_eq!(reason, UnauthenticatedReason::NotBearer);
            }
            Err(other) => prop_assert!(false, "{other:?}"),
        }
    }
}

#[test]
fn a_missing_or_garbage_header_never_reaches_the_key_cache() {
    // The whole `verify` path, for the header forms that must be refused before any lookup.
    let fixture = Fixture::start();
    check(authorization_value(), |bytes| {
        let value = HeaderValue::from_bytes(&bytes).ok();
        let result = fixture
            .runtime
            .block_on(fixture.verifier.verify(value.as_ref()));
        if let Some(token) = value.as_ref().and_then(|v| v.to_str().ok()) {
            if names_a_key(crate::bearer::token(token)) {
                return Ok(());
            }
        }
        unauthenticated(result)?;
        prop_assert_eq!(fixture.fetches(), 0);
        Ok(())
    });
}
