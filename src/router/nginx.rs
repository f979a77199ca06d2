//! NGINX ingress: the canary Ingress `<ingress>-canary` with `canary-weight` /
//! `canary-by-header` annotations (Flagger reference §4.6).
//!
//! The user's Ingress (`spec.ingressRef`) is read, never written. Serin keeps a copy of it,
//! `<ingress>-canary`, whose backend `<apex>` becomes `<apex>-canary`; ingress-nginx sends it
//! the share of the user's traffic its `<prefix>/canary-*` annotations say. Everything Flagger
//! derives is built by pure functions: [`canary_ingress_spec`] (the copied rules and TLS),
//! [`initial_annotations`] (the annotations of a new canary Ingress, and of one reset to
//! weight 0), [`routed_annotations`] (what `SetRoutes` writes), [`read_routes`] (what
//! `GetRoutes` reports) and [`inexpressible`] (what this router refuses).

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{Ingress, IngressSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::Patch;
use kube::{Api, Client};

use super::{
    ApiAction, Inexpressible, Router, RouterError, Routes, api_error, canary_namespace,
    controlled_by, owner_reference, strict_apply, with_flux_opt_out,
};
use super::{refuse, set_match_fields};
use crate::api::{Canary, CanaryStatus, HttpMatchRequest};

/// The `spec.provider` value this router serves.
pub const PROVIDER: &str = "nginx";
/// ingress-nginx's annotation prefix (Flagger's `-ingress-annotations-prefix` default).
pub const DEFAULT_ANNOTATIONS_PREFIX: &str = "nginx.ingress.kubernetes.io";
/// The A/B header key that selects `canary-by-cookie` instead of `canary-by-header`.
pub const COOKIE_KEY: &str = "cookie";
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
const INGRESS_KIND: &str = "Ingress";

/// The canary annotations, as suffixes of the prefix.
pub const CANARY: &str = "canary";
pub const CANARY_WEIGHT: &str = "canary-weight";
pub const CANARY_BY_COOKIE: &str = "canary-by-cookie";
pub const CANARY_BY_HEADER: &str = "canary-by-header";
pub const CANARY_BY_HEADER_VALUE: &str = "canary-by-header-value";
pub const CANARY_BY_HEADER_PATTERN: &str = "canary-by-header-pattern";

/// `<prefix>/<suffix>` (Flagger's `GetAnnotationWithPrefix`).
pub fn annotation(prefix: &str, suffix: &str) -> String {
    format!("{prefix}/{suffix}")
}

// ---------------------------------------------------------------------------------------
// Names and the copied spec
// ---------------------------------------------------------------------------------------

/// `spec.ingressRef.name`, which this provider requires (Flagger's text when it is absent).
pub fn ingress_ref_name(canary: &Canary) -> Result<&str, RouterError> {
    canary
        .spec
        .ingress_ref
        .as_ref()
        .map(|r| r.name())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| RouterError::Refused("ingress selector is empty".into()))
}

/// `<ingressRef.name>-canary`.
pub fn canary_ingress_name(canary: &Canary) -> Result<String, RouterError> {
    Ok(format!("{}-canary", ingress_ref_name(canary)?))
}

/// The user's Ingress spec with every rule path whose backend is the apex Service sent to
/// `<apex>-canary` instead; an Ingress that never names the apex is an error (Flagger's
/// text). Rules and TLS are otherwise copied as they are; the default backend is not
/// rewritten, as in Flagger.
pub fn canary_ingress_spec(canary: &Canary, user: &Ingress) -> Result<IngressSpec, RouterError> {
    let apex = canary.spec.apex_service_name();
    let canary_service = canary.spec.canary_service_name();
    let mut spec = user.spec.clone().unwrap_or_default();
    let mut found = false;
    let paths = spec
        .rules
        .iter_mut()
        .flatten()
        .filter_map(|rule| rule.http.as_mut())
        .flat_map(|http| http.paths.iter_mut());
    for path in paths {
        if let Some(service) = path.backend.service.as_mut()
            && service.name == apex
        {
            service.name = canary_service.clone();
            found = true;
        }
    }
    if !found {
        return Err(RouterError::Refused(format!(
            "backend {apex} not found in ingress {}",
            ingress_ref_name(canary)?
        )));
    }
    Ok(spec)
}

/// Go's `cmp.Diff` on the spec with empty lists equal to absent ones.
pub fn spec_needs_update(live: Option<&IngressSpec>, desired: &IngressSpec) -> bool {
    let comparable = |spec: Option<&IngressSpec>| {
        let mut value = serde_json::to_value(spec.cloned().unwrap_or_default()).unwrap_or_default();
        strip_empty(&mut value);
        value
    };
    comparable(live) != comparable(Some(desired))
}

fn strip_empty(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for v in map.values_mut() {
                strip_empty(v);
            }
            map.retain(|_, v| {
                !(v.is_null()
                    || v.as_array().is_some_and(Vec::is_empty)
                    || v.as_object().is_some_and(serde_json::Map::is_empty))
            });
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_empty),
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------
// Annotations
// ---------------------------------------------------------------------------------------

/// The annotations of a new canary Ingress, and what `SetRoutes` resets to at weight 0
/// (Flagger's `makeAnnotations`): `annotations` without any `<prefix>/canary*` key and
/// without kubectl's last-applied configuration, plus the Flux opt-out, `canary: "true"`
/// and `canary-weight: "0"`.
pub fn initial_annotations(
    prefix: &str,
    annotations: Option<&BTreeMap<String, String>>,
) -> BTreeMap<String, String> {
    let canary_keys = annotation(prefix, CANARY);
    let mut out: BTreeMap<String, String> = with_flux_opt_out(annotations)
        .into_iter()
        .filter(|(k, _)| !k.contains(&canary_keys) && !k.contains(LAST_APPLIED))
        .collect();
    out.insert(canary_keys, "true".into());
    out.insert(annotation(prefix, CANARY_WEIGHT), "0".into());
    out
}

/// The header and cookie an A/B analysis routes on (Flagger's loop over `analysis.match`:
/// the key `cookie` selects a cookie by its exact value, any other key a header by exact
/// value or regex; the last one wins, so [`inexpressible`] refuses more than one of each).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AbSelectors {
    pub cookie: Option<String>,
    pub header: Option<String>,
    pub header_value: Option<String>,
    pub header_pattern: Option<String>,
}

pub fn ab_selectors(matches: &[HttpMatchRequest]) -> AbSelectors {
    let non_empty = |v: &Option<String>| v.clone().filter(|v| !v.is_empty());
    let mut out = AbSelectors::default();
    for (name, selector) in matches.iter().flat_map(|m| m.headers.iter().flatten()) {
        if name == COOKIE_KEY {
            out.cookie = non_empty(&selector.exact);
        } else {
            out.header = Some(name.clone()).filter(|n| !n.is_empty());
            out.header_value = non_empty(&selector.exact);
            out.header_pattern = non_empty(&selector.regex);
        }
    }
    out
}

/// The annotations `SetRoutes` writes on the canary Ingress for `canary_weight`.
///
/// A/B (`analysis.match`): the live annotations with the Flux opt-out, `canary: "true"` and
/// the by-cookie / by-header annotations; `canary-weight` stays as it was (0). Otherwise the
/// live annotations with `canary-weight` set. Then, at weight 0, everything resets to
/// [`initial_annotations`] (dropping the by-header/by-cookie keys); above 0, `canary` is
/// `"true"`.
pub fn routed_annotations(
    prefix: &str,
    canary: &Canary,
    live: Option<&BTreeMap<String, String>>,
    canary_weight: u32,
) -> BTreeMap<String, String> {
    let matches = canary.analysis().map(|a| a.matches()).unwrap_or_default();
    let mut out = if matches.is_empty() {
        let mut out = live.cloned().unwrap_or_default();
        out.insert(annotation(prefix, CANARY_WEIGHT), canary_weight.to_string());
        out
    } else {
        // Flagger's makeHeaderAnnotations means to drop the canary keys here but tests the
        // values, so in practice it keeps them all; Serin keeps them all too.
        let selectors = ab_selectors(matches);
        let mut out = with_flux_opt_out(live);
        out.insert(annotation(prefix, CANARY), "true".into());
        for (suffix, value) in [
            (CANARY_BY_COOKIE, selectors.cookie),
            (CANARY_BY_HEADER, selectors.header),
            (CANARY_BY_HEADER_VALUE, selectors.header_value),
            (CANARY_BY_HEADER_PATTERN, selectors.header_pattern),
        ] {
            if let Some(value) = value {
                out.insert(annotation(prefix, suffix), value);
            }
        }
        out
    };
    if canary_weight > 0 {
        out.insert(annotation(prefix, CANARY), "true".into());
        out
    } else {
        initial_annotations(prefix, Some(&out))
    }
}

/// The split a canary Ingress carries (Flagger's `GetRoutes`): with A/B testing, 0/100 as
/// soon as a by-cookie or by-header annotation is there; otherwise `canary-weight` (0 when
/// absent) and the rest to the primary. NGINX cannot mirror, so never `mirrored`.
pub fn read_routes(
    prefix: &str,
    canary: &Canary,
    annotations: Option<&BTreeMap<String, String>>,
) -> Result<Routes, RouterError> {
    let empty = BTreeMap::new();
    let annotations = annotations.unwrap_or(&empty);
    let ab = canary.analysis().is_some_and(|a| !a.matches().is_empty());
    if ab
        && (annotations.contains_key(&annotation(prefix, CANARY_BY_COOKIE))
            || annotations.contains_key(&annotation(prefix, CANARY_BY_HEADER)))
    {
        return Ok(Routes::new(0, 100));
    }
    let weight = match annotations.get(&annotation(prefix, CANARY_WEIGHT)) {
        Some(raw) => raw.parse::<i64>().map_err(|err| {
            RouterError::Refused(format!("failed to convert {raw} to int: {err}"))
        })?,
        None => 0,
    };
    let canary_weight = u32::try_from(weight.clamp(0, 100)).unwrap_or(0);
    Ok(Routes::new(100 - canary_weight, canary_weight))
}

/// The canary Ingress Serin applies. `labels` are the user Ingress's when Serin creates it,
/// the live ones afterwards (Flagger copies them once).
pub fn canary_ingress(
    canary: &Canary,
    owner: Option<OwnerReference>,
    labels: Option<BTreeMap<String, String>>,
    annotations: BTreeMap<String, String>,
    spec: IngressSpec,
) -> Result<Ingress, RouterError> {
    Ok(Ingress {
        metadata: ObjectMeta {
            name: Some(canary_ingress_name(canary)?),
            namespace: Some(canary_namespace(canary)?.to_string()),
            labels: labels.filter(|l| !l.is_empty()),
            annotations: Some(annotations),
            owner_references: owner.map(|o| vec![o]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    })
}

// ---------------------------------------------------------------------------------------
// What the router cannot express
// ---------------------------------------------------------------------------------------

fn problem(field: String, problem: String, fix: impl Into<String>) -> Inexpressible {
    Inexpressible {
        field,
        problem,
        fix: fix.into(),
    }
}

/// Everything in the Canary that ingress-nginx's canary annotations cannot express.
///
/// A/B testing routes on one header (exact value or regex) and one cookie (by name: the
/// cookie's value `always` selects the canary), each on its own: ingress-nginx ORs them, so
/// a header and a cookie must sit in separate match entries (which are alternatives).
/// Nothing else of a match (uri, method, query parameters, ...) has an annotation, and
/// neither do mirroring and session affinity; Flagger ignores them silently.
pub fn inexpressible(canary: &Canary) -> Vec<Inexpressible> {
    let quoted = format!("{PROVIDER:?}");
    let mut out = Vec::new();
    let Some(analysis) = canary.analysis() else {
        return out;
    };
    let a = format!("spec.{}", canary.spec.analysis_field());
    let (mut headers, mut cookies) = (0usize, 0usize);
    for (i, m) in analysis.matches().iter().enumerate() {
        let field = format!("{a}.match[{i}]");
        for name in set_match_fields(m) {
            out.push(problem(
                format!("{field}.{name}"),
                format!("provider {quoted} routes A/B requests by one header or cookie only; {name} cannot be expressed"),
                format!("remove {name} and match on a header or a cookie"),
            ));
        }
        let entries = m.headers.as_ref().filter(|h| !h.is_empty());
        let Some(entries) = entries else {
            out.push(problem(
                field.clone(),
                format!("provider {quoted} needs a header or cookie condition in every A/B match; without one the canary gets no traffic"),
                "add headers with an exact or regex condition, or cookie with the exact cookie name",
            ));
            continue;
        };
        let set = |v: &Option<String>| v.as_deref().is_some_and(|v| !v.is_empty());
        let (mut header_here, mut cookie_here) = (false, false);
        for (name, selector) in entries {
            let header = format!("{field}.headers.{name}");
            if name == COOKIE_KEY {
                cookie_here = true;
                cookies += 1;
                if !set(&selector.exact) {
                    out.push(problem(
                        header.clone(),
                        format!("provider {quoted} matches a cookie by its exact name only (canary-by-cookie: the cookie's value \"always\" selects the canary)"),
                        "use cookie: {exact: <cookie name>}",
                    ));
                }
                if cookies > 1 {
                    out.push(problem(
                        header,
                        format!("provider {quoted} routes on one cookie only (canary-by-cookie)"),
                        "keep a single cookie condition across all of match",
                    ));
                }
            } else {
                header_here = true;
                headers += 1;
                if !(set(&selector.exact) || set(&selector.regex)) {
                    out.push(problem(
                        header.clone(),
                        format!("provider {quoted} matches a header by exact value or regex only"),
                        "use exact, or regex (a prefix is ^value.*, a suffix .*value$)",
                    ));
                }
                if headers > 1 {
                    out.push(problem(
                        header,
                        format!("provider {quoted} routes on one header only (canary-by-header)"),
                        "keep a single header condition across all of match",
                    ));
                }
            }
        }
        if header_here && cookie_here {
            out.push(problem(
                format!("{field}.headers.{COOKIE_KEY}"),
                format!("provider {quoted} cannot require a header and a cookie together: either one sends a request to the canary"),
                "put the cookie in a match entry of its own (match entries are alternatives)",
            ));
        }
    }
    if analysis.mirror() {
        out.push(problem(
            format!("{a}.mirror"),
            format!("provider {quoted} does not mirror traffic"),
            "remove mirror, or use istio or a Gateway API provider",
        ));
    }
    if analysis.session_affinity.is_some() {
        out.push(problem(
            format!("{a}.sessionAffinity"),
            format!("provider {quoted} has no session affinity for canaries"),
            "remove sessionAffinity, or use istio or a Gateway API provider",
        ));
    }
    out
}

/// Fields of `spec.service` that Flagger's NGINX router silently ignores (routing, timeouts
/// and headers come from the user's Ingress and its annotations); worth a warning, not a
/// refusal.
pub fn ignored_fields(canary: &Canary) -> Vec<Inexpressible> {
    let quoted = format!("{PROVIDER:?}");
    let Some(service) = canary.spec.service.as_ref() else {
        return Vec::new();
    };
    let set = [
        (
            "match",
            service.r#match.as_ref().is_some_and(|m| !m.is_empty()),
        ),
        (
            "timeout",
            service.timeout.as_ref().is_some_and(|t| !t.is_empty()),
        ),
        ("retries", service.retries.is_some()),
        ("headers", service.headers.is_some()),
        ("corsPolicy", service.cors_policy.is_some()),
        ("rewrite", service.rewrite.is_some()),
        (
            "mirror",
            service.mirror.as_ref().is_some_and(|m| !m.is_empty()),
        ),
        (
            "backendTimeout",
            service
                .backend_timeout
                .as_ref()
                .is_some_and(|t| !t.is_empty()),
        ),
    ];
    set.into_iter()
        .filter(|(_, set)| *set)
        .map(|(name, _)| {
            problem(
                format!("spec.service.{name}"),
                format!("provider {quoted} ignores service.{name}: traffic follows the Ingress"),
                format!("remove service.{name} and configure it on the Ingress (its rules or ingress-nginx annotations)"),
            )
        })
        .collect()
}

fn refuse_inexpressible(canary: &Canary) -> Result<(), RouterError> {
    refuse(canary, "a canary Ingress", &inexpressible(canary))
}

// ---------------------------------------------------------------------------------------
// I/O
// ---------------------------------------------------------------------------------------

/// Writes the canary Ingress of `nginx` canaries and reads its weights.
#[derive(Clone)]
pub struct NginxRouter {
    client: Client,
    prefix: String,
}

impl NginxRouter {
    /// `annotations_prefix`: ingress-nginx's annotation prefix (`-ingress-annotations-prefix`,
    /// [`DEFAULT_ANNOTATIONS_PREFIX`] unless the controller was started with another).
    pub fn new(client: Client, annotations_prefix: String) -> Self {
        NginxRouter {
            client,
            prefix: annotations_prefix,
        }
    }

    pub fn annotations_prefix(&self) -> &str {
        &self.prefix
    }

    /// Flagger's NGINX router has nothing to undo: the user's Ingress was never touched and
    /// the canary Ingress is the Canary's (owner reference), so it goes with it.
    pub async fn finalize(&self, _canary: &Canary) -> Result<(), RouterError> {
        Ok(())
    }

    fn api(&self, namespace: &str) -> Api<Ingress> {
        Api::namespaced(self.client.clone(), namespace)
    }

    async fn canary_ingress_live(&self, canary: &Canary) -> Result<Ingress, RouterError> {
        let namespace = canary_namespace(canary)?;
        let name = canary_ingress_name(canary)?;
        self.api(namespace).get(&name).await.map_err(api_error(
            INGRESS_KIND,
            &name,
            namespace,
            ApiAction::Get,
        ))
    }

    /// Server-side apply of the whole canary Ingress (apply removes whatever Serin wrote
    /// before and leaves out now). The owner reference is only written on an Ingress Serin
    /// creates or already owns.
    async fn apply(
        &self,
        canary: &Canary,
        live: Option<&Ingress>,
        labels: Option<BTreeMap<String, String>>,
        annotations: BTreeMap<String, String>,
        spec: IngressSpec,
    ) -> Result<(), RouterError> {
        let canary_name = canary.metadata.name.as_deref().unwrap_or_default();
        let owner = match live {
            Some(live) if !controlled_by(&live.metadata, canary_name) => None,
            _ => Some(owner_reference(canary)?),
        };
        let object = canary_ingress(canary, owner, labels, annotations, spec)?;
        let namespace = canary_namespace(canary)?;
        let name = canary_ingress_name(canary)?;
        self.api(namespace)
            .patch(&name, &strict_apply(), &Patch::Apply(&object))
            .await
            .map_err(api_error(INGRESS_KIND, &name, namespace, ApiAction::Apply))?;
        Ok(())
    }
}

impl Router for NginxRouter {
    /// Creates `<ingress>-canary` from the user's Ingress at weight 0, or brings its rules
    /// and TLS back in step with the user's Ingress, keeping its annotations.
    async fn reconcile(&self, canary: &Canary) -> Result<(), RouterError> {
        let user_name = ingress_ref_name(canary)?;
        refuse_inexpressible(canary)?;
        let namespace = canary_namespace(canary)?;
        let user = self.api(namespace).get(user_name).await.map_err(api_error(
            INGRESS_KIND,
            user_name,
            namespace,
            ApiAction::Get,
        ))?;
        let desired = canary_ingress_spec(canary, &user)?;
        let name = canary_ingress_name(canary)?;
        let live = self.api(namespace).get_opt(&name).await.map_err(api_error(
            INGRESS_KIND,
            &name,
            namespace,
            ApiAction::Get,
        ))?;
        match live {
            None => {
                let annotations =
                    initial_annotations(&self.prefix, user.metadata.annotations.as_ref());
                self.apply(canary, None, user.metadata.labels, annotations, desired)
                    .await?;
                tracing::info!(canary = %canary.dotted_name(), "Ingress {name}.{namespace} created");
            }
            Some(live) if spec_needs_update(live.spec.as_ref(), &desired) => {
                let annotations = live.metadata.annotations.clone().unwrap_or_default();
                let labels = live.metadata.labels.clone();
                self.apply(canary, Some(&live), labels, annotations, desired)
                    .await?;
                tracing::info!(canary = %canary.dotted_name(), "Ingress {name} updated");
            }
            Some(_) => {}
        }
        Ok(())
    }

    async fn set_routes(
        &self,
        canary: &Canary,
        routes: Routes,
        _status: &mut CanaryStatus,
    ) -> Result<(), RouterError> {
        refuse_inexpressible(canary)?;
        let live = self.canary_ingress_live(canary).await?;
        let annotations = routed_annotations(
            &self.prefix,
            canary,
            live.metadata.annotations.as_ref(),
            routes.canary,
        );
        let labels = live.metadata.labels.clone();
        let spec = live.spec.clone().unwrap_or_default();
        self.apply(canary, Some(&live), labels, annotations, spec)
            .await
    }

    async fn get_routes(&self, canary: &Canary) -> Result<Routes, RouterError> {
        let live = self.canary_ingress_live(canary).await?;
        read_routes(&self.prefix, canary, live.metadata.annotations.as_ref())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
