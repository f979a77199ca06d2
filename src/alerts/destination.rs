//! An AlertProvider, with its Secret, resolved to where and how an alert is sent.
//!
//! The address is `spec.address`, or the Secret's `address` key, which wins: a webhook URL
//! is a credential and belongs in a Secret (reference §1.6). The Secret may also hold `proxy`
//! (winning over `spec.proxy`) and `token`, sent as `Authorization: Bearer` by the types that
//! use one. Values are trimmed, so a Secret made with `echo ... | base64` works.

use std::fmt;

use k8s_openapi::api::core::v1::Secret;
use reqwest::Url;

use super::AlertError;
use super::notifier::{Notifier, notifier_for};
use crate::api::{AlertProviderSpec, AlertProviderType};

/// One receiver, ready to send to. Its `Debug` shows the provider and type only.
pub struct Destination {
    /// `<namespace>/<name>` of the AlertProvider, for logs and reports.
    pub provider: String,
    notifier: Box<dyn Notifier>,
    url: Url,
    proxy: Option<Url>,
    token: Option<String>,
}

impl fmt::Debug for Destination {
    // The derived Debug would print the URL and the token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Destination")
            .field("provider", &self.provider)
            .field("type", &self.notifier.kind())
            .field("proxy", &self.proxy.is_some())
            .field("token", &self.token.is_some())
            .finish()
    }
}

impl Destination {
    /// Resolves the AlertProvider `provider` (`<namespace>/<name>`, for messages) from its
    /// spec and, when it has a `secretRef`, the Secret it names.
    pub fn resolve(
        provider: &str,
        spec: &AlertProviderSpec,
        secret: Option<&Secret>,
    ) -> Result<Destination, AlertError> {
        let type_name = spec.r#type.as_deref().unwrap_or_default();
        let kind = AlertProviderType::parse(type_name)
            .ok_or_else(|| AlertError::UnknownType(type_name.to_string()))?;
        let key = |key: &str| secret.and_then(|s| secret_value(s, key));
        let spec_value = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let address = key("address")
            .or_else(|| spec_value(&spec.address))
            .ok_or_else(|| {
                AlertError::NoAddress(match &spec.secret_ref {
                    Some(s) => format!(
                        "Secret {} has no address key and the AlertProvider no address",
                        s.name.as_deref().unwrap_or_default()
                    ),
                    None => "the AlertProvider has neither address nor secretRef".to_string(),
                })
            })?;
        let notifier = notifier_for(kind, spec);
        let url = notifier.endpoint(&http_url(&address, "address")?);
        let proxy = key("proxy")
            .or_else(|| spec_value(&spec.proxy))
            .map(|p| http_url(&p, "proxy"))
            .transpose()?;
        Ok(Destination {
            provider: provider.to_string(),
            notifier,
            url,
            proxy,
            token: key("token"),
        })
    }

    /// The AlertProvider type.
    pub fn kind(&self) -> AlertProviderType {
        self.notifier.kind()
    }

    pub(crate) fn notifier(&self) -> &dyn Notifier {
        self.notifier.as_ref()
    }

    pub(crate) fn url(&self) -> &Url {
        &self.url
    }

    pub(crate) fn proxy(&self) -> Option<&Url> {
        self.proxy.as_ref()
    }

    /// The bearer token, when the Secret has one and the type sends it.
    pub(crate) fn bearer(&self) -> Option<&str> {
        self.token
            .as_deref()
            .filter(|_| self.notifier.sends_token())
    }
}

/// A Secret key as trimmed text; `None` when absent, empty or not UTF-8.
fn secret_value(secret: &Secret, key: &str) -> Option<String> {
    let bytes = &secret.data.as_ref()?.get(key)?.0;
    let text = std::str::from_utf8(bytes).ok()?.trim();
    (!text.is_empty()).then(|| text.to_string())
}

/// `text` as an absolute http(s) URL. The error names the setting, never the value.
fn http_url(text: &str, what: &'static str) -> Result<Url, AlertError> {
    match Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => Ok(url),
        _ => Err(AlertError::InvalidUrl(what)),
    }
}
