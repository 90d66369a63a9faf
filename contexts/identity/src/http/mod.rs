//! Identity's HTTP surface under `/api/v1/identity`, plus `/.well-known/jwks.json`.

mod dto;

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use bus::Causation;
use kernel::id::UserId;
use platform::auth::{AdminUser, AuthUser};
use platform::db::Database;
use platform::error::{ApiError, ProblemBody};
use platform::http::{RequestContext, ValidJson};
use platform::pagination::{Page, PageQuery, PageRequest, Part};

use crate::application::accounts::{Accounts, ProfileChange, SignUp};
use crate::application::address_book::AddressBooks;
use crate::application::email_verifications::EmailVerifications;
use crate::application::order_history::OrderHistoryProjection;
use crate::application::password_resets::PasswordResets;
use crate::application::service_clients::{ClientCredentialsError, ServiceTokens};
use crate::application::sessions::{Sessions, TokenPair};
use crate::application::IdentityError;
use crate::domain::address_book::EntryChange;
use crate::infrastructure::keys::TokenSigner;
pub(crate) use dto::*;

pub(crate) struct State {
    pub(crate) accounts: Accounts,
    pub(crate) sessions: Sessions,
    pub(crate) resets: PasswordResets,
    pub(crate) verifications: EmailVerifications,
    pub(crate) addresses: AddressBooks,
    pub(crate) history: OrderHistoryProjection,
    pub(crate) signer: Arc<TokenSigner>,
    pub(crate) db: Database,
    pub(crate) service_tokens: ServiceTokens,
}

impl From<IdentityError> for ApiError {
    fn from(e: IdentityError) -> Self {
        match e {
            IdentityError::Invalid(errors) => ApiError::validation(errors),
            IdentityError::EmailTaken => ApiError::conflict(
                "identity.email_taken",
                "an account with this email already exists",
            ),
            IdentityError::InvalidCredentials => ApiError::new(
                actix_web::http::StatusCode::UNAUTHORIZED,
                "identity.invalid_credentials",
                "wrong email or password",
            ),
            IdentityError::TooManyAttempts { retry_after_secs } => ApiError::new(
                actix_web::http::StatusCode::TOO_MANY_REQUESTS,
                "identity.too_many_attempts",
                "too many failed log-in attempts; try again later",
            )
            .with_retry_after(retry_after_secs),
            IdentityError::InvalidRefreshToken => ApiError::new(
                actix_web::http::StatusCode::UNAUTHORIZED,
                "identity.invalid_refresh_token",
                "the refresh token is invalid or expired",
            ),
            IdentityError::RefreshTokenReused => ApiError::new(
                actix_web::http::StatusCode::UNAUTHORIZED,
                "identity.refresh_token_reused",
                "the refresh token was already used; the session has been revoked",
            ),
            IdentityError::TooManySignUps { retry_after_secs } => ApiError::new(
                actix_web::http::StatusCode::TOO_MANY_REQUESTS,
                "identity.too_many_sign_ups",
                "too many accounts created from this address; try again later",
            )
            .with_retry_after(retry_after_secs),
            IdentityError::TooManyResets { retry_after_secs } => ApiError::new(
                actix_web::http::StatusCode::TOO_MANY_REQUESTS,
                "identity.too_many_resets",
                "too many password reset requests for this address or from this client; try again later",
            )
            .with_retry_after(retry_after_secs),
            IdentityError::ResetTokenInvalid => ApiError::bad_request(
                "identity.reset_token_invalid",
                "this reset link is invalid, used, superseded by a newer one, or expired; ask for a new one",
            ),
            IdentityError::TooManyVerifications { retry_after_secs } => ApiError::new(
                actix_web::http::StatusCode::TOO_MANY_REQUESTS,
                "identity.too_many_verifications",
                "too many verification links asked for this account; try again later",
            )
            .with_retry_after(retry_after_secs),
            IdentityError::VerificationTokenInvalid => ApiError::bad_request(
                "identity.verification_token_invalid",
                "this verification link is invalid, used, superseded by a newer one, or expired; ask for a new one",
            ),
            IdentityError::EmailAlreadyVerified => ApiError::conflict(
                "identity.email_already_verified",
                "your address is verified already and no change of address is pending",
            ),
            IdentityError::WrongPassword => ApiError::new(
                actix_web::http::StatusCode::FORBIDDEN,
                "identity.wrong_password",
                "that is not your account's password",
            ),
            IdentityError::AddressBookFull => ApiError::conflict(
                "identity.address_book_full",
                "the address book holds 20 addresses: remove one first",
            ),
            IdentityError::AddressNotFound => {
                ApiError::not_found("identity.address_not_found", "no such address in your address book")
            }
            IdentityError::UserNotFound => {
                ApiError::not_found("identity.user_not_found", "no such user")
            }
            IdentityError::LastAdmin => ApiError::conflict(
                "identity.last_admin",
                "this is the last admin: give another account the admin role first",
            ),
            IdentityError::Busy => ApiError::unavailable(
                "identity.busy",
                "too many log-ins and sign-ups at once; try again shortly",
            )
            .with_retry_after(1),
            IdentityError::ThrottleUnavailable => ApiError::unavailable(
                "service_unavailable",
                "log-ins cannot be checked against their limits right now; try again shortly",
            )
            .with_retry_after(5),
            IdentityError::Unexpected(e) => ApiError::internal(e),
        }
    }
}

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/.well-known/jwks.json").route(web::get().to(jwks)))
        .service(
            web::scope("/api/v1/identity")
                .service(
                    web::resource("/users")
                        .route(web::post().to(sign_up))
                        .route(web::get().to(list_users)),
                )
                .service(web::resource("/users/{id}/roles").route(web::put().to(set_roles)))
                .service(web::resource("/tokens").route(web::post().to(log_in)))
                .service(
                    web::resource("/password-resets").route(web::post().to(request_password_reset)),
                )
                .service(
                    web::resource("/password-resets/confirm")
                        .route(web::post().to(confirm_password_reset)),
                )
                .service(
                    web::resource("/email-verifications")
                        .route(web::post().to(resend_email_verification)),
                )
                .service(
                    web::resource("/email-verifications/confirm")
                        .route(web::post().to(confirm_email_verification)),
                )
                .service(web::resource("/tokens/refresh").route(web::post().to(refresh)))
                .service(web::resource("/tokens/revoke").route(web::post().to(revoke)))
                .service(web::resource("/oauth/token").route(web::post().to(service_token)))
                .service(
                    web::resource("/me")
                        .route(web::get().to(me))
                        .route(web::patch().to(update_me)),
                )
                .service(
                    web::resource("/me/addresses")
                        .route(web::get().to(list_addresses))
                        .route(web::post().to(add_address)),
                )
                .service(
                    web::resource("/me/addresses/{id}")
                        .route(web::patch().to(change_address))
                        .route(web::delete().to(remove_address)),
                )
                .service(web::resource("/me/email").route(web::post().to(change_email)))
                .service(web::resource("/me/orders").route(web::get().to(my_orders))),
        );
}

fn tokens(pair: TokenPair) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(TokenResponse {
            access_token: pair.access_token,
            refresh_token: pair.refresh_token,
            token_type: "Bearer",
            expires_in: pair.expires_in,
        })
}

/// How a service authenticates at the token endpoint (RFC 6749 §2.3.1, §5.2).
const CLIENT_CHALLENGE: &str = "Basic realm=\"emporium\"";

impl From<ClientCredentialsError> for ApiError {
    /// The `code` is the RFC 6749 §5.2 error code.
    fn from(e: ClientCredentialsError) -> Self {
        match e {
            ClientCredentialsError::InvalidClient => ApiError::new(
                actix_web::http::StatusCode::UNAUTHORIZED,
                "invalid_client",
                "unknown client or wrong secret",
            )
            .with_challenge(CLIENT_CHALLENGE),
            ClientCredentialsError::InvalidTarget(audience) => ApiError::bad_request(
                "invalid_target",
                format!("this client may not ask for a token for `{audience}`"),
            ),
            ClientCredentialsError::AudienceRequired => ApiError::bad_request(
                "invalid_request",
                "name the context the token is for in `audience`",
            ),
            ClientCredentialsError::Unexpected(e) => ApiError::internal(e),
        }
    }
}

/// A service's token (OAuth 2.0 client credentials): `sub` is the service, `aud` the
/// context it may call. Clients and their secrets' SHA-256 come from
/// `EMPORIUM_SERVICE_CLIENTS`.
#[utoipa::path(
    post, path = "/api/v1/identity/oauth/token", tag = "identity", operation_id = "issue_service_token",
    request_body(content = ClientCredentialsRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "A service token", body = ServiceTokenResponse),
        (status = 400, description = "Not a client-credentials request (`unsupported_grant_type`, `invalid_request`), or an audience this client may not call (`invalid_target`)", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Unknown client or wrong secret (`invalid_client`)", body = ProblemBody, content_type = "application/problem+json"),
        (status = 415, description = "Not form-encoded", body = ProblemBody, content_type = "application/problem+json")
    ),
    security(())
)]
pub(crate) async fn service_token(
    state: web::Data<State>,
    req: HttpRequest,
    form: web::Form<ClientCredentialsRequest>,
) -> Result<HttpResponse, ApiError> {
    let form = form.into_inner();
    if form.grant_type != "client_credentials" {
        return Err(ApiError::bad_request(
            "unsupported_grant_type",
            "only `client_credentials` is supported here",
        ));
    }
    let basic = basic_credentials(&req);
    let (id, secret) =
        match (basic, form.client_id, form.client_secret) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(ApiError::bad_request(
                    "invalid_request",
                    "authenticate the client one way: HTTP Basic or the form, not both",
                ))
            }
            (Some(pair), None, None) => pair,
            (None, Some(id), Some(secret)) => (id, secret),
            _ => return Err(ApiError::new(
                actix_web::http::StatusCode::UNAUTHORIZED,
                "invalid_client",
                "client authentication is required (HTTP Basic, or client_id and client_secret)",
            )
            .with_challenge(CLIENT_CHALLENGE)),
        };
    let issued = state
        .service_tokens
        .issue(&id, &secret, form.audience.as_deref())?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(ServiceTokenResponse {
            access_token: issued.token,
            token_type: "Bearer",
            expires_in: issued.expires_in,
        }))
}

/// `Authorization: Basic` client id and secret (RFC 6749 §2.3.1: each form-url-encoded).
fn basic_credentials(req: &HttpRequest) -> Option<(String, String)> {
    use base64::Engine;
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| {
        serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("v={s}"))
            .ok()
            .and_then(|mut v| v.pop())
            .map(|(_, v)| v)
    };
    Some((unescape(id)?, unescape(secret)?))
}

/// The public keys that verify access tokens.
#[utoipa::path(
    get, path = "/.well-known/jwks.json", tag = "identity", operation_id = "get_jwks",
    responses((status = 200, description = "JSON Web Key Set (Ed25519 keys)", body = Object))
)]
pub(crate) async fn jwks(state: web::Data<State>) -> Result<HttpResponse, ApiError> {
    let set = state
        .signer
        .jwks(&state.db)
        .await
        .map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=60"))
        .json(set))
}

/// Ask for a password reset link. The answer is the same whether or not an account has the
/// address; one that has gets a mail with a link that works once, for
/// `EMPORIUM_PASSWORD_RESET_TTL_SECS` (30 minutes), and only until a newer one is asked for.
#[utoipa::path(
    post, path = "/api/v1/identity/password-resets", tag = "identity", operation_id = "request_password_reset",
    request_body = PasswordResetRequest,
    responses(
        (status = 202, description = "Accepted: a link is mailed if an account has the address", body = MailAccepted),
        (status = 400, description = "Malformed JSON", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Not an email address", body = ProblemBody, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests for this address or from this client (see Retry-After)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn request_password_reset(
    state: web::Data<State>,
    ctx: RequestContext,
    req: HttpRequest,
    body: ValidJson<PasswordResetRequest>,
) -> Result<HttpResponse, ApiError> {
    let client = platform::client_ip::client_ip(&req).map(|ip| ip.to_string());
    state
        .resets
        .request(&body.email, client.as_deref(), &(&ctx).into())
        .await?;
    Ok(mail_accepted(
        "if an account has this address, a reset link is on its way",
    ))
}

/// Set a new password with the token from the reset mail (same rules as at sign-up). Every
/// session of the account ends: log in again.
#[utoipa::path(
    post, path = "/api/v1/identity/password-resets/confirm", tag = "identity", operation_id = "confirm_password_reset",
    request_body = PasswordResetConfirmRequest,
    responses(
        (status = 204, description = "Password set; every refresh token of the account is revoked"),
        (status = 400, description = "Malformed JSON, or `identity.reset_token_invalid`: unknown, used, superseded or expired", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "The password breaks a rule", body = ProblemBody, content_type = "application/problem+json"),
        (status = 503, description = "Password hashing at capacity (see Retry-After); the token still works", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn confirm_password_reset(
    state: web::Data<State>,
    body: ValidJson<PasswordResetConfirmRequest>,
) -> Result<HttpResponse, ApiError> {
    state.resets.confirm(&body.token, &body.password).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Mail the signed-in customer a new verification link: for the address they asked to move
/// to when a change is pending, else for their own while it is unverified. Earlier links stop
/// working.
#[utoipa::path(
    post, path = "/api/v1/identity/email-verifications", tag = "identity", operation_id = "resend_email_verification",
    security(("bearer" = [])),
    responses(
        (status = 202, description = "A link is on its way", body = MailAccepted),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "Account removed", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "`identity.email_already_verified`: nothing to verify", body = ProblemBody, content_type = "application/problem+json"),
        (status = 429, description = "Too many links asked for this account (see Retry-After)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn resend_email_verification(
    state: web::Data<State>,
    user: AuthUser,
    ctx: RequestContext,
) -> Result<HttpResponse, ApiError> {
    state
        .verifications
        .resend(user.user_id, &Causation::from(&ctx))
        .await?;
    Ok(mail_accepted("a verification link is on its way"))
}

/// Prove an address with the token from the verification mail. For a change of address, the
/// new address becomes the account's (log in with it from now on).
#[utoipa::path(
    post, path = "/api/v1/identity/email-verifications/confirm", tag = "identity", operation_id = "confirm_email_verification",
    request_body = EmailVerificationConfirmRequest,
    responses(
        (status = 204, description = "Verified"),
        (status = 400, description = "Malformed JSON, or `identity.verification_token_invalid`: unknown, used, superseded or expired", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "`identity.email_taken`: another account took the new address meanwhile; the link still works", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = ProblemBody, content_type = "application/problem+json")
    ),
    security(())
)]
pub(crate) async fn confirm_email_verification(
    state: web::Data<State>,
    ctx: RequestContext,
    body: ValidJson<EmailVerificationConfirmRequest>,
) -> Result<HttpResponse, ApiError> {
    state
        .verifications
        .confirm(&body.token, &Causation::from(&ctx))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Move the signed-in customer's account to another address. A link goes to the new address;
/// the account keeps its current address (and log-in) until the link is opened.
#[utoipa::path(
    post, path = "/api/v1/identity/me/email", tag = "identity", operation_id = "change_email",
    security(("bearer" = [])),
    request_body = EmailChangeRequest,
    responses(
        (status = 202, description = "A link is on its way to the new address", body = MailAccepted),
        (status = 400, description = "Malformed JSON", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "`identity.wrong_password`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "Account removed", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "`identity.email_taken`: another account has the address", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Not an email address, or the account's own", body = ProblemBody, content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts or links (see Retry-After)", body = ProblemBody, content_type = "application/problem+json"),
        (status = 503, description = "Password hashing at capacity (see Retry-After)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn change_email(
    state: web::Data<State>,
    user: AuthUser,
    ctx: RequestContext,
    req: HttpRequest,
    body: ValidJson<EmailChangeRequest>,
) -> Result<HttpResponse, ApiError> {
    let client = platform::client_ip::client_ip(&req).map(|ip| ip.to_string());
    state
        .verifications
        .change(
            user.user_id,
            &body.email,
            &body.password,
            client.as_deref(),
            &Causation::from(&ctx),
        )
        .await?;
    Ok(mail_accepted(
        "a verification link is on its way to the new address",
    ))
}

/// The signed-in customer's address book, oldest first.
#[utoipa::path(
    get, path = "/api/v1/identity/me/addresses", tag = "identity", operation_id = "list_addresses",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The address book (at most 20)", body = AddressBookResponse),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn list_addresses(
    state: web::Data<State>,
    user: AuthUser,
) -> Result<web::Json<AddressBookResponse>, ApiError> {
    let items = state.addresses.list(user.user_id).await?;
    Ok(web::Json(AddressBookResponse {
        items: items.into_iter().map(SavedAddressResponse::from).collect(),
    }))
}

/// Save an address (at most 20). The first one saved is the default.
#[utoipa::path(
    post, path = "/api/v1/identity/me/addresses", tag = "identity", operation_id = "add_address",
    security(("bearer" = [])),
    request_body = NewAddressRequest,
    responses(
        (status = 201, description = "Saved", body = SavedAddressResponse, headers(("Location" = String, description = "The address")), links(
            ("ChangeAddress" = (operation_id = "change_address", parameters(("id" = "$response.body#/id")))),
            ("RemoveAddress" = (operation_id = "remove_address", parameters(("id" = "$response.body#/id"))))
        )),
        (status = 400, description = "Malformed JSON", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "Account removed", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "`identity.address_book_full`: 20 addresses saved", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn add_address(
    state: web::Data<State>,
    user: AuthUser,
    ctx: RequestContext,
    body: ValidJson<NewAddressRequest>,
) -> Result<HttpResponse, ApiError> {
    let address = body
        .address
        .parse("address")
        .map_err(|e| ApiError::validation(vec![e]))?;
    let saved = state
        .addresses
        .add(
            user.user_id,
            address,
            body.is_default,
            &Causation::from(&ctx),
        )
        .await?;
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!("/api/v1/identity/me/addresses/{}", saved.id),
        ))
        .json(SavedAddressResponse::from(saved)))
}

/// Change a saved address, or make it (or stop it being) the default.
#[utoipa::path(
    patch, path = "/api/v1/identity/me/addresses/{id}", tag = "identity", operation_id = "change_address",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The address's id")),
    request_body = AddressChangeRequest,
    responses(
        (status = 200, description = "Changed", body = SavedAddressResponse),
        (status = 400, description = "Malformed JSON or id", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "`identity.address_not_found`: not in the caller's book", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn change_address(
    state: web::Data<State>,
    user: AuthUser,
    ctx: RequestContext,
    id: web::Path<uuid::Uuid>,
    body: ValidJson<AddressChangeRequest>,
) -> Result<web::Json<SavedAddressResponse>, ApiError> {
    let body = body.into_inner();
    let address = body
        .address
        .map(|a| a.parse("address"))
        .transpose()
        .map_err(|e| ApiError::validation(vec![e]))?;
    let changed = state
        .addresses
        .change(
            user.user_id,
            id.into_inner(),
            EntryChange {
                address,
                is_default: body.is_default,
            },
            &Causation::from(&ctx),
        )
        .await?;
    Ok(web::Json(changed.into()))
}

/// Remove a saved address (removing the default leaves none).
#[utoipa::path(
    delete, path = "/api/v1/identity/me/addresses/{id}", tag = "identity", operation_id = "remove_address",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The address's id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "Malformed id", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "`identity.address_not_found`: not in the caller's book", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn remove_address(
    state: web::Data<State>,
    user: AuthUser,
    ctx: RequestContext,
    id: web::Path<uuid::Uuid>,
) -> Result<HttpResponse, ApiError> {
    state
        .addresses
        .remove(user.user_id, id.into_inner(), &Causation::from(&ctx))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

fn mail_accepted(detail: &'static str) -> HttpResponse {
    HttpResponse::Accepted()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(MailAccepted {
            status: "accepted",
            detail,
        })
}

/// Sign up as a customer.
#[utoipa::path(
    post, path = "/api/v1/identity/users", tag = "identity", operation_id = "sign_up",
    request_body = SignUpRequest,
    responses(
        (status = 201, description = "Account created", body = UserResponse, headers(("Location" = String, description = "The new account's profile")), links(
            ("SetRoles" = (operation_id = "set_user_roles", parameters(("id" = "$response.body#/id"))))
        )),
        (status = 400, description = "Malformed JSON", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "Email already registered", body = ProblemBody, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = ProblemBody, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = ProblemBody, content_type = "application/problem+json"),
        (status = 429, description = "Too many sign-ups from this client (see Retry-After)", body = ProblemBody, content_type = "application/problem+json"),
        (status = 503, description = "Password hashing at capacity (see Retry-After)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn sign_up(
    state: web::Data<State>,
    ctx: RequestContext,
    req: HttpRequest,
    body: ValidJson<SignUpRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let user = state
        .accounts
        .sign_up(
            SignUp {
                email: body.email,
                password: body.password,
                name: body.name,
                client: platform::client_ip::client_ip(&req).map(|ip| ip.to_string()),
            },
            &(&ctx).into(),
        )
        .await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, "/api/v1/identity/me"))
        .json(UserResponse::from(user)))
}

/// Log in with email and password.
#[utoipa::path(
    post, path = "/api/v1/identity/tokens", tag = "identity", operation_id = "log_in",
    request_body = LogInRequest,
    responses(
        (status = 200, description = "Signed in", body = TokenResponse),
        (status = 400, description = "Malformed JSON", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Wrong email or password", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = ProblemBody, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed attempts (see Retry-After)", body = ProblemBody, content_type = "application/problem+json"),
        (status = 503, description = "Password hashing at capacity (see Retry-After)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn log_in(
    state: web::Data<State>,
    req: HttpRequest,
    body: ValidJson<LogInRequest>,
) -> Result<HttpResponse, ApiError> {
    let ip = platform::client_ip::client_ip(&req).map(|ip| ip.to_string());
    let pair = state
        .sessions
        .log_in(&body.email, &body.password, ip.as_deref())
        .await?;
    Ok(tokens(pair))
}

/// Exchange a refresh token for a new pair (the old one is spent).
#[utoipa::path(
    post, path = "/api/v1/identity/tokens/refresh", tag = "identity", operation_id = "refresh_tokens",
    request_body = RefreshTokenRequest,
    responses(
        (status = 200, description = "New tokens", body = TokenResponse),
        (status = 400, description = "Malformed JSON", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Invalid, expired or reused refresh token", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn refresh(
    state: web::Data<State>,
    body: ValidJson<RefreshTokenRequest>,
) -> Result<HttpResponse, ApiError> {
    Ok(tokens(state.sessions.refresh(&body.refresh_token).await?))
}

/// Log out: revoke the refresh token and every token rotated from the same log-in.
#[utoipa::path(
    post, path = "/api/v1/identity/tokens/revoke", tag = "identity", operation_id = "revoke_tokens",
    request_body = RefreshTokenRequest,
    responses(
        (status = 204, description = "Revoked (also for unknown tokens)"),
        (status = 400, description = "Malformed JSON", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn revoke(
    state: web::Data<State>,
    body: ValidJson<RefreshTokenRequest>,
) -> Result<HttpResponse, ApiError> {
    state.sessions.revoke(&body.refresh_token).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The signed-in user's profile.
#[utoipa::path(
    get, path = "/api/v1/identity/me", tag = "identity", operation_id = "get_me",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Profile", body = UserResponse),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "Account removed", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn me(
    state: web::Data<State>,
    user: AuthUser,
) -> Result<web::Json<UserResponse>, ApiError> {
    Ok(web::Json(state.accounts.me(user.user_id).await?.into()))
}

/// Change the name or default shipping address.
#[utoipa::path(
    patch, path = "/api/v1/identity/me", tag = "identity", operation_id = "update_me",
    security(("bearer" = [])),
    request_body = UpdateMeRequest,
    responses(
        (status = 200, description = "Updated profile", body = UserResponse),
        (status = 400, description = "Malformed JSON", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "Account removed", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn update_me(
    state: web::Data<State>,
    user: AuthUser,
    ctx: RequestContext,
    body: ValidJson<UpdateMeRequest>,
) -> Result<web::Json<UserResponse>, ApiError> {
    let body = body.into_inner();
    let address = match body.default_shipping_address {
        None => None,
        Some(None) => Some(None),
        Some(Some(a)) => Some(Some(
            a.parse("default_shipping_address")
                .map_err(|e| ApiError::validation(vec![e]))?,
        )),
    };
    let updated = state
        .accounts
        .update_me(
            user.user_id,
            ProfileChange {
                name: body.name,
                default_shipping_address: address,
            },
            &Causation::from(&ctx),
        )
        .await?;
    Ok(web::Json(updated.into()))
}

/// The signed-in customer's orders, newest first (eventually consistent with ordering).
#[utoipa::path(
    get, path = "/api/v1/identity/me/orders", tag = "identity", operation_id = "list_my_orders",
    security(("bearer" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "Order history", body = Page<OrderHistoryItem>),
        (status = 400, description = "Bad cursor", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Bad limit", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn my_orders(
    state: web::Data<State>,
    user: AuthUser,
    query: web::Query<PageQuery>,
) -> Result<Page<OrderHistoryItem>, ApiError> {
    let page =
        PageRequest::from_query(query.limit, query.cursor.as_deref(), &[Part::Int, Part::Id])?;
    let entries = state
        .history
        .for_customer(user.user_id, &page)
        .await
        .map_err(ApiError::internal)?;
    Ok(entries.map(OrderHistoryItem::from))
}

/// All accounts (admin).
#[utoipa::path(
    get, path = "/api/v1/identity/users", tag = "identity", operation_id = "list_users",
    security(("bearer" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "Users", body = Page<UserResponse>),
        (status = 400, description = "Bad cursor", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Bad limit", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn list_users(
    state: web::Data<State>,
    _admin: AdminUser,
    query: web::Query<PageQuery>,
) -> Result<Page<UserResponse>, ApiError> {
    let page = PageRequest::from_query(query.limit, query.cursor.as_deref(), &[Part::Id])?;
    Ok(state.accounts.list(&page).await?.map(UserResponse::from))
}

/// Replace a user's roles (admin). `customer` is always kept.
#[utoipa::path(
    put, path = "/api/v1/identity/users/{id}/roles", tag = "identity", operation_id = "set_user_roles",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "User id")),
    request_body = SetRolesRequest,
    responses(
        (status = 200, description = "Updated user", body = UserResponse),
        (status = 400, description = "Malformed JSON or id", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "The last admin would lose the admin role", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Unknown role", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn set_roles(
    state: web::Data<State>,
    _admin: AdminUser,
    id: web::Path<uuid::Uuid>,
    body: ValidJson<SetRolesRequest>,
) -> Result<web::Json<UserResponse>, ApiError> {
    let user = state
        .accounts
        .set_roles(UserId::from_uuid(id.into_inner()), body.into_inner().roles)
        .await?;
    Ok(web::Json(user.into()))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(jwks, sign_up, log_in, request_password_reset, confirm_password_reset, resend_email_verification, confirm_email_verification, change_email, list_addresses, add_address, change_address, remove_address, refresh, revoke, service_token, me, update_me, my_orders, list_users, set_roles),
    tags((name = "identity", description = "Accounts, tokens, roles and order history"))
)]
pub(crate) struct ApiDoc;
