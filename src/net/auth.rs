//! `--api-token`: with it, a request that places, modifies or cancels an
//! order must carry `Authorization: Bearer <token>` (RFC 6750). Reads stay
//! open, as an exchange's market data is: the book, the trades, one order
//! by its unguessable id, the feed, health and metrics.

use crate::api::ApiError;

/// The secret order entry needs. Its `Debug` does not show it, so settings
/// printed in a log do not leak it.
#[derive(Clone)]
pub struct ApiToken(Box<[u8]>);

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiToken(..)")
    }
}

/// The challenge of a 401, naming the scheme a client should use.
const CHALLENGE: &str = "Bearer realm=\"orderbook\"";
/// The challenge of a 401 for a token that was sent but is wrong.
const CHALLENGE_INVALID: &str = "Bearer realm=\"orderbook\", error=\"invalid_token\"";

impl ApiToken {
    /// Fewest bytes a token may have: a short one can be guessed.
    pub const MIN_LEN: usize = 16;

    /// A token from the command line or environment: 16 to 256 characters of
    /// RFC 6750's `b64token` alphabet (letters, digits, `-._~+/`, ending
    /// `=`s), so it fits a header as it is.
    pub fn parse(text: &str) -> Result<Self, String> {
        let body = text.trim_end_matches('=');
        let allowed = |b: u8| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b);
        if text.len() < Self::MIN_LEN || text.len() > 256 {
            return Err(format!(
                "must be {} to 256 characters long (`openssl rand -hex 32` makes one)",
                Self::MIN_LEN
            ));
        }
        if body.is_empty() || !body.bytes().all(allowed) {
            return Err("may hold only letters, digits and -._~+/ (and = at its end)".into());
        }
        Ok(ApiToken(text.as_bytes().into()))
    }

    /// Checks a request's `Authorization` header: 401 with a
    /// `WWW-Authenticate` challenge if it is missing, not `Bearer`, or
    /// names another token.
    pub fn check(&self, authorization: Option<&[u8]>) -> Result<(), ApiError> {
        let Some(value) = authorization else {
            return Err(unauthorized(
                "Authorization: send `Authorization: Bearer <token>` to place, modify or cancel orders",
                CHALLENGE,
            ));
        };
        let value = value.trim_ascii();
        // The scheme's name is case-insensitive (RFC 9110 §11.1).
        let token = match value.split_at_checked(7) {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case(b"Bearer ") => rest.trim_ascii(),
            _ => {
                return Err(unauthorized(
                    "Authorization: must be `Bearer <token>`",
                    CHALLENGE,
                ))
            }
        };
        if same_bytes(token, &self.0) {
            Ok(())
        } else {
            Err(unauthorized(
                "Authorization: the token is not valid",
                CHALLENGE_INVALID,
            ))
        }
    }
}

fn unauthorized(detail: &str, challenge: &'static str) -> ApiError {
    ApiError {
        headers: vec![("WWW-Authenticate", challenge.into())],
        ..ApiError::new(401, detail)
    }
}

/// Compares in time that depends on the lengths only, not on where the
/// first difference is, so the token cannot be found a byte at a time by
/// timing answers.
fn same_bytes(given: &[u8], expected: &[u8]) -> bool {
    if given.len() != expected.len() {
        return false;
    }
    let difference = given
        .iter()
        .zip(expected)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    std::hint::black_box(difference) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "s3cr3t-t0ken_0123456789";

    fn refusal(header: Option<&str>) -> (u16, String, Option<(&'static str, String)>) {
        let error = ApiToken::parse(TOKEN)
            .unwrap()
            .check(header.map(str::as_bytes))
            .unwrap_err();
        let header =
            (error.headers.into_iter().next()).map(|(name, value)| (name, value.into_owned()));
        (error.status, error.detail, header)
    }

    #[test]
    fn only_the_bearer_token_passes() {
        let token = ApiToken::parse(TOKEN).unwrap();
        for good in [
            format!("Bearer {TOKEN}"),
            format!("bearer {TOKEN}"),
            format!("BEARER  {TOKEN} "),
        ] {
            assert_eq!(token.check(Some(good.as_bytes())), Ok(()), "{good}");
        }
        let challenge = Some(("WWW-Authenticate", "Bearer realm=\"orderbook\"".to_string()));
        assert_eq!(
            refusal(None),
            (
                401,
                "Authorization: send `Authorization: Bearer <token>` to place, modify or cancel orders".into(),
                challenge.clone()
            )
        );
        for scheme in [format!("Basic {TOKEN}"), TOKEN.to_string(), "Bearer".into()] {
            assert_eq!(
                refusal(Some(&scheme)),
                (
                    401,
                    "Authorization: must be `Bearer <token>`".into(),
                    challenge.clone()
                ),
                "{scheme}"
            );
        }
        let invalid = Some((
            "WWW-Authenticate",
            "Bearer realm=\"orderbook\", error=\"invalid_token\"".to_string(),
        ));
        for wrong in [
            format!("Bearer {TOKEN}x"),
            format!("Bearer {}", &TOKEN[1..]),
            "Bearer s3cr3t-t0ken_0123456788".into(),
        ] {
            assert_eq!(
                refusal(Some(&wrong)),
                (
                    401,
                    "Authorization: the token is not valid".into(),
                    invalid.clone()
                ),
                "{wrong}"
            );
        }
    }

    #[test]
    fn a_token_must_be_long_and_fit_a_header() {
        assert!(ApiToken::parse("abcdefghijklmnop").is_ok());
        assert!(ApiToken::parse("AbCd0123+/-._~xyz==").is_ok());
        assert!(ApiToken::parse("short").unwrap_err().contains("16 to 256"));
        assert!(ApiToken::parse(&"a".repeat(257)).is_err());
        for bad in [
            "has a space in it!!",
            "quote\"in-the-token",
            "================",
        ] {
            assert!(
                ApiToken::parse(bad).unwrap_err().contains("only letters"),
                "{bad}"
            );
        }
        assert_eq!(
            format!("{:?}", ApiToken::parse(TOKEN).unwrap()),
            "ApiToken(..)"
        );
    }
}
