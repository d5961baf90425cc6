//! The finding catalogue: every kind jwtmon reports, once, with its stable
//! name, default severity, default action and a one-line meaning.
//! `docs/findings.md` documents exactly these kinds (a test holds them
//! together), and `decide.policy` keys are checked against them.

use std::{fmt, str::FromStr, time::Duration};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Severity;

/// What a finding leads to by policy.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Record only.
    Log,
    /// Record and alert.
    Alert,
    /// Drop the client address in the kernel for a TTL (and alert).
    BlockIp,
    /// Add the token to the revocation list (and alert).
    RevokeToken,
    /// Add the API key's id to the revocation list (and alert).
    RevokeApiKey,
}

impl Action {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Log => "log",
            Action::Alert => "alert",
            Action::BlockIp => "block_ip",
            Action::RevokeToken => "revoke_token",
            Action::RevokeApiKey => "revoke_api_key",
        }
    }
}

/// A kind's built-in policy: the action, and the block TTL of a first
/// offence for `block_ip` (`None`: `decide.block_ttl`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DefaultAction {
    /// The action.
    pub action: Action,
    /// First-offence TTL of a block.
    pub ttl: Option<Duration>,
}

const fn act(action: Action) -> DefaultAction {
    DefaultAction { action, ttl: None }
}

const fn block(secs: u64) -> DefaultAction {
    DefaultAction {
        action: Action::BlockIp,
        ttl: Some(Duration::from_secs(secs)),
    }
}

/// Forgeries block for an hour, brute force and injections for ten minutes.
const FORGERY: DefaultAction = block(3600);
const ABUSE: DefaultAction = block(600);
const ALERT: DefaultAction = act(Action::Alert);
const LOG: DefaultAction = act(Action::Log);

macro_rules! catalogue {
    ($( $(#[doc = $doc:literal])+ $variant:ident = $name:literal, $severity:ident, $action:expr; )+) => {
        /// A finding kind.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Kind {
            $( $(#[doc = $doc])+ $variant, )+
        }

        impl Kind {
            /// Every kind, in catalogue order.
            pub const ALL: &'static [Kind] = &[$(Kind::$variant),+];

            /// The stable name (`jwt_alg_none`).
            pub const fn name(self) -> &'static str {
                match self { $(Kind::$variant => $name,)+ }
            }

            /// The severity it is reported with unless its detector or the
            /// policy says otherwise.
            pub const fn severity(self) -> Severity {
                match self { $(Kind::$variant => Severity::$severity,)+ }
            }

            /// The built-in policy.
            pub const fn default_action(self) -> DefaultAction {
                match self { $(Kind::$variant => $action,)+ }
            }

            /// One line on what it means.
            pub fn doc(self) -> &'static str {
                match self { $(Kind::$variant => concat!($($doc),+).trim_ascii(),)+ }
            }
        }
    };
}

catalogue! {
    /// The token is not three strict base64url parts, or its header or payload is not a JSON object, or it has no `alg`.
    JwtMalformed = "jwt_malformed", Medium, ALERT;
    /// `alg` is "none": an unsigned token.
    JwtAlgNone = "jwt_alg_none", Critical, FORGERY;
    /// The signature part is empty.
    JwtNullSignature = "jwt_null_signature", Critical, FORGERY;
    /// An ECDSA signature with r or s zero or out of range (CVE-2022-21449).
    JwtPsychicSignature = "jwt_psychic_signature", Critical, FORGERY;
    /// No trusted key of the token's algorithm verifies it.
    JwtSignatureInvalid = "jwt_signature_invalid", High, ALERT;
    /// `alg` is not allowed for the issuer, or no trusted key has it.
    JwtAlgNotAllowed = "jwt_alg_not_allowed", High, ALERT;
    /// An HS* token at an issuer that uses public keys (key confusion).
    JwtAlgConfusion = "jwt_alg_confusion", Critical, FORGERY;
    /// The `kid` is in no key set.
    JwtUnknownKey = "jwt_unknown_key", High, ALERT;
    /// The header carries its own `jwk`.
    JwtEmbeddedJwk = "jwt_embedded_jwk", Critical, FORGERY;
    /// `jku` points outside the trusted key URLs.
    JwtUntrustedJku = "jwt_untrusted_jku", High, FORGERY;
    /// `x5u` points outside the trusted key URLs.
    JwtUntrustedX5u = "jwt_untrusted_x5u", High, FORGERY;
    /// The `kid` carries path traversal, a system path, SQL or shell metacharacters.
    JwtKidInjection = "jwt_kid_injection", High, FORGERY;
    /// Two or more different JWTs in one request (two `Authorization` headers, a header and a cookie, ...); each is analysed.
    JwtMultipleTokens = "jwt_multiple_tokens", Medium, ALERT;
    /// An HS* token verifies with an empty or dictionary secret.
    JwtWeakSecret = "jwt_weak_secret", Critical, ALERT;
    /// `exp` plus leeway is before the observation time.
    JwtExpired = "jwt_expired", Medium, ALERT;
    /// `nbf` minus leeway is after the observation time.
    JwtNotYetValid = "jwt_not_yet_valid", Medium, ALERT;
    /// `iat` minus leeway is after the observation time.
    JwtIssuedInFuture = "jwt_issued_in_future", Medium, ALERT;
    /// No `exp`, or a lifetime outside the issuer's bounds.
    JwtLifetimeAnomalous = "jwt_lifetime_anomalous", Low, LOG;
    /// Issuers are configured and none matches `iss`.
    JwtIssuerUnexpected = "jwt_issuer_unexpected", High, ALERT;
    /// `aud` shares no value with the issuer's audiences.
    JwtAudienceUnexpected = "jwt_audience_unexpected", Medium, ALERT;
    /// The token (or its jti, kid or sub) is revoked.
    JwtRevoked = "jwt_revoked", High, ALERT;
    /// The same token from too many client addresses within the replay window.
    JwtReplayMultiIp = "jwt_replay_multi_ip", High, act(Action::RevokeToken);
    /// The same token with another User-Agent within the replay window.
    JwtAgentChange = "jwt_agent_change", Medium, ALERT;
    /// A subject's token grants more privileges than the one it showed before.
    JwtClaimsEscalation = "jwt_claims_escalation", High, ALERT;
    /// Too many failed logins from one address.
    LoginBruteforce = "login_bruteforce", High, ABUSE;
    /// Too many authentication failures on any endpoint from one address.
    AuthFailureBurst = "auth_failure_burst", Medium, ALERT;
    /// One address failing for many usernames, or one username from many addresses.
    CredentialStuffing = "credential_stuffing", High, ABUSE;
    /// An address's request rate far above its own average or a ceiling.
    RateSpikeIp = "rate_spike_ip", Medium, ALERT;
    /// A token's request rate far above its own average or a ceiling.
    RateSpikeToken = "rate_spike_token", Medium, ALERT;
    /// One API key used from more networks than `max_networks` within the window: a leaked key.
    ApiKeyShared = "api_key_shared", High, act(Action::RevokeApiKey);
    /// An API key's request rate far above its own average or a ceiling.
    ApiKeyRateSpike = "api_key_rate_spike", Medium, ALERT;
    /// One API key refused (401/403) more than `max_failures` times within the window.
    ApiKeyFailures = "api_key_failures", Medium, ALERT;
    /// One address (or network) trying many distinct API keys that fail.
    ApiKeyGuessing = "api_key_guessing", High, ABUSE;
    /// A revoked API key was used again.
    ApiKeyRevoked = "api_key_revoked", High, ABUSE;
    /// Many distinct paths answered 404/405 for one address, or for the addresses of one network.
    EndpointScan = "endpoint_scan", Medium, ALERT;
    /// Failed logins over the whole service far above their baseline, for many usernames from many addresses: each participant is named.
    LoginCampaign = "login_campaign", High, ABUSE;
    /// One principal reaching many object ids under one template that are not its own (403, or first served to another).
    ObjectEnumeration = "object_enumeration", High, ALERT;
    /// A request value tokenizes into an SQL injection shape.
    InjectionSqli = "injection_sqli", High, ABUSE;
    /// Script tags, event handlers, `javascript:` URLs or DOM sinks in a request value.
    InjectionXss = "injection_xss", Medium, ALERT;
    /// `../` steps, system files or NUL bytes in a request value.
    InjectionPathTraversal = "injection_path_traversal", High, ABUSE;
    /// A shell separator with a command, command substitution or a shell path.
    InjectionCommand = "injection_command", High, ABUSE;
    /// CR/LF followed by a header or a status line in a value: header injection, response splitting.
    InjectionCrlf = "injection_crlf", High, ABUSE;
    /// A JNDI lookup (`${jndi:ldap://...}`, Log4Shell), obfuscated lookups resolved first.
    InjectionJndi = "injection_jndi", High, ABUSE;
    /// Server-side template syntax that computes or reaches objects (`{{7*7}}`, `${...}`, `<%= %>`).
    InjectionSsti = "injection_ssti", High, ABUSE;
    /// An XML document that declares external entities (`<!ENTITY ... SYSTEM`, parameter entities).
    InjectionXxe = "injection_xxe", High, ABUSE;
    /// A URL value naming a loopback, private, link-local or metadata address, or a gopher/dict/file URL.
    InjectionSsrf = "injection_ssrf", High, ABUSE;
    /// LDAP filter syntax in a value (`*)(uid=*`, `)(|(`).
    InjectionLdap = "injection_ldap", High, ABUSE;
    /// A server-side include directive (`<!--#exec`, `<!--#include`).
    InjectionSsi = "injection_ssi", High, ABUSE;
    /// CR/LF followed by an SMTP or IMAP command in a value (mail command injection).
    InjectionMail = "injection_mail", High, ABUSE;
    /// A parameter that names a remote or wrapper URL to include (`http://1.2.3.4/x?`, `php://`, `expect://`), or a URL whose user info disguises its host (`http://a.test%2f@evil.test/`).
    InjectionRfi = "injection_rfi", High, ABUSE;
    /// PHP code or PHP object syntax in a value (`<?php`, `system(`, `O:8:"stdClass"`, wrappers).
    InjectionPhp = "injection_php", High, ABUSE;
    /// Java gadget classes, OGNL/EL expressions or a serialized Java object in a value.
    InjectionJava = "injection_java", High, ABUSE;
    /// Server-side script code (Node.js `child_process`, `process.mainModule`, Perl `@{[ ]}`, Python `__import__`).
    InjectionCode = "injection_code", High, ABUSE;
    /// An ORM filter expression chosen by the client (`user__password__startswith`): relations walked or lookups that leak fields.
    InjectionOrm = "injection_orm", Medium, ALERT;
    /// `__proto__` or `constructor.prototype` in a parameter name or JSON key.
    InjectionPrototypePollution = "injection_prototype_pollution", Medium, ALERT;
    /// A session identifier set from the request (a session parameter, or a cookie set in a value).
    SessionFixation = "session_fixation", Medium, ALERT;
    /// A request for a backup, editor or leftover file (`.bak`, `~`, `.git/`, `.env`).
    ProbeLeftoverFile = "probe_leftover_file", Medium, ALERT;
    /// An upload stored under a server-side script's name (`.aspx`, `.cgi`) or a file that configures the server, application or shell (`.htaccess`, `web.config`, `authorized_keys`).
    UploadRestrictedFile = "upload_restricted_file", High, ABUSE;
    /// A verified subject active far from its usual hours.
    UnusualHour = "unusual_hour", Medium, ALERT;
    /// A verified subject from a network (or country) it never used.
    NewNetworkForSubject = "new_network_for_subject", Medium, ALERT;
    /// A verified subject calling an endpoint it never called.
    EndpointUnusualForSubject = "endpoint_unusual_for_subject", Medium, ALERT;
    /// A query or body parameter the endpoint's schema does not know (learned from enough principals, or declared).
    SchemaUnknownParameter = "schema_unknown_parameter", Medium, ALERT;
    /// A parameter value of a kind the schema never accepts there (text for an integer, an object for a string).
    SchemaTypeMismatch = "schema_type_mismatch", Medium, ALERT;
    /// A parameter value outside its learned or declared shape (length, range, enumeration, control characters).
    SchemaValueAnomalous = "schema_value_anomalous", Medium, ALERT;
    /// A parameter every learned request carried (or the document requires) is missing.
    SchemaMissingRequired = "schema_missing_required", Low, ALERT;
    /// The server answered an operation the OpenAPI document does not declare (a shadow endpoint).
    SchemaUndeclaredEndpoint = "schema_undeclared_endpoint", Low, ALERT;
    /// A `[[sequence.rules]]` rule was broken.
    SequenceRuleViolation = "sequence_rule_violation", Medium, ALERT;
    /// A session's recent calls are improbable under the learnt call-order model.
    SequenceAnomalous = "sequence_anomalous", Medium, ALERT;
    /// A Content-Type that would send the body to the wrong parser (a boundary on a non-multipart type, a media type in a parameter, several types).
    EvasionContentType = "evasion_content_type", Medium, ALERT;
    /// A request two parsers read differently: text after a parameter's array index (`foo[1]a=`), an RFC 2109 `$Version` cookie.
    EvasionParserConfusion = "evasion_parser_confusion", Medium, ALERT;
    /// TCP in IP fragments to a monitored port (real TCP stacks do not fragment).
    EvasionIpFragment = "evasion_ip_fragment", Medium, ALERT;
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not in the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown finding kind `{name}`{}", .closest.map(|k| format!(" (did you mean `{k}`?)")).unwrap_or_default())]
pub struct UnknownKind {
    /// What was given.
    pub name: String,
    /// The nearest valid kind, when one is near.
    pub closest: Option<Kind>,
}

impl FromStr for Kind {
    type Err = UnknownKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(k) = Kind::ALL.iter().find(|k| k.name() == s) {
            return Ok(*k);
        }
        let closest = Kind::ALL
            .iter()
            .map(|k| (strsim::jaro_winkler(s, k.name()), *k))
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .filter(|(score, _)| *score >= 0.8)
            .map(|(_, k)| k);
        Err(UnknownKind {
            name: s.to_string(),
            closest,
        })
    }
}

impl Serialize for Kind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        let mut names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Kind::ALL.len());
        for k in Kind::ALL {
            assert_eq!(k.name().parse::<Kind>(), Ok(*k));
            assert!(!k.doc().is_empty(), "{k} has no doc");
        }
    }

    #[test]
    fn a_misspelt_kind_names_the_closest() {
        let e = "login_bruteforse".parse::<Kind>().unwrap_err();
        assert_eq!(e.closest, Some(Kind::LoginBruteforce));
        assert!(
            e.to_string().contains("did you mean `login_bruteforce`"),
            "{e}"
        );
        assert_eq!("zzz".parse::<Kind>().unwrap_err().closest, None);
    }

    /// `docs/findings.md` lists exactly the catalogue, each kind with its
    /// default severity first in the severity column.
    #[test]
    fn the_documented_catalogue_is_the_catalogue() {
        let doc = include_str!("../../../docs/findings.md");
        let mut documented = Vec::new();
        let mut in_kind_table = false;
        for line in doc.lines() {
            if line.starts_with("| kind |") {
                in_kind_table = true;
            } else if !line.starts_with('|') {
                in_kind_table = false;
            }
            if !in_kind_table || !line.starts_with("| `") {
                continue;
            }
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let (names, severity) = (cells[1], cells[2]);
            for name in names.split(',').map(|n| n.trim().trim_matches('`')) {
                let kind: Kind = name.parse().unwrap_or_else(|e| panic!("docs: {e}"));
                assert!(
                    severity.starts_with(&kind.severity().to_string()),
                    "docs give {name} severity `{severity}`, the catalogue {}",
                    kind.severity()
                );
                documented.push(kind);
            }
        }
        let mut all = Kind::ALL.to_vec();
        all.sort_unstable();
        documented.sort_unstable();
        assert_eq!(documented, all, "docs/findings.md and the catalogue differ");
    }
}
