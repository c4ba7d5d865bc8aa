//! RSA signing keys generated for one run, published as JWKs and used to mint ID tokens.

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::{EncodeRsaPrivateKey, EncodeRsaPublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use serde_json::{json, Value};

/// An RSA-2048 key pair with a key id, as Google's signing keys are.
pub struct TestKey {
    /// The `kid` tokens signed with it carry, and its JWK's.
    pub kid: String,
    /// The private key, for [`jsonwebtoken::encode`].
    pub signing: EncodingKey,
    /// The public key in PEM (PKCS#1): what an algorithm-confusion attack would use as an
    /// HMAC secret.
    pub public_pem: String,
    /// The public key as Google publishes it at `oauth2/v3/certs`.
    pub jwk: Value,
}

impl TestKey {
    /// Generates a key (tens of milliseconds with the workspace's optimised RSA builds).
    pub fn generate(kid: &str) -> Self {
        let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
            .expect("generate an RSA-2048 key");
        let public = private.to_public_key();
        let b64 = |bytes: Vec<u8>| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let der = private.to_pkcs1_der().expect("encode the private key");
        Self {
            kid: kid.to_owned(),
            signing: EncodingKey::from_rsa_der(der.as_bytes()),
            public_pem: public
                .to_pkcs1_pem(LineEnding::LF)
                .expect("encode the public key"),
            jwk: json!({
                "kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
                "n": b64(public.n().to_bytes_be()), "e": b64(public.e().to_bytes_be()),
            }),
        }
    }

    /// An RS256 token with `claims`, naming this key.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_with_kid(&self.kid, claims)
    }

    /// An RS256 token with `claims` signed with this key but naming `kid` (forgeries).
    pub fn sign_with_kid(&self, kid: &str, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, claims, &self.signing).expect("RS256 signing")
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The claims of the token Pub/Sub sends with an authenticated push: issued now, valid one
/// hour, for `audience`, by the push service account `email` (verified).
pub fn pubsub_push_claims(audience: &str, email: &str) -> Value {
    let now = unix_now();
    json!({
        "iss": "https://accounts.google.com",
        "aud": audience,
        "azp": "113774264463038321964",
        "email": email,
        "email_verified": true,
        "sub": "113774264463038321964",
        "iat": now,
        "exp": now + 3600,
    })
}
