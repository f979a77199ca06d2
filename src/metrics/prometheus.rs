//! Prometheus instant queries with Flagger's provider semantics.
//!
//! A metric check needs one number. As in Flagger: the query's whitespace runs collapse to one
//! space; it is sent as `GET <address>/api/v1/query?query=...` with the configured headers and
//! credentials and a 5 s timeout; a vector result yields its (last) sample, an empty result or
//! `NaN` is "no values found" (distinct from 0), and a matrix is "multiple values". Serin also
//! accepts a `scalar` result, which Flagger cannot decode.

use std::fmt;
use std::time::Duration;

use reqwest::Url;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;

use crate::message::{error_chain, truncate};

/// Flagger's timeout for one Prometheus request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// How Serin authenticates to Prometheus (Flagger: secret keys `token`, or `username` + `password`).
#[derive(Clone)]
pub enum Credentials {
    Bearer(String),
    Basic { username: String, password: String },
}

impl fmt::Debug for Credentials {
    // Credentials reach logs through `Debug` of the config; never print the secret parts.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            Credentials::Basic { username, .. } => {
                write!(
                    f,
                    "Basic {{ username: {username:?}, password: <redacted> }}"
                )
            }
        }
    }
}

/// Where and how to reach one Prometheus server.
#[derive(Debug, Clone)]
pub struct PrometheusConfig {
    pub address: String,
    /// Extra request headers; a name may repeat (Flagger: `map[string][]string`).
    pub headers: Vec<(String, String)>,
    pub credentials: Option<Credentials>,
    pub insecure_skip_verify: bool,
    pub timeout: Duration,
}

impl PrometheusConfig {
    pub fn new(address: impl Into<String>) -> Self {
        PrometheusConfig {
            address: address.into(),
            headers: Vec::new(),
            credentials: None,
            insecure_skip_verify: false,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// Why a query gave no number.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("prometheus address {address} is not a valid URL: {reason}")]
    InvalidAddress { address: String, reason: String },
    #[error("prometheus header {name} is not valid: {reason}")]
    InvalidHeader { name: String, reason: String },
    #[error("cannot build an HTTP client for prometheus: {0}")]
    Client(String),
    /// The query matched no series, or its value is NaN: usually the target receives no traffic.
    #[error("no values found")]
    NoValuesFound,
    #[error("query returned multiple values")]
    MultipleValues,
    #[error("prometheus query to {endpoint} failed: {reason}")]
    Request { endpoint: String, reason: String },
    #[error("error response: status {status}: {message}")]
    ErrorResponse { status: String, message: String },
    #[error("cannot decode the reply of {endpoint}: {reason}")]
    Decode { endpoint: String, reason: String },
}

/// A Prometheus server that answers instant queries.
#[derive(Debug, Clone)]
pub struct Prometheus {
    http: reqwest::Client,
    query_url: Url,
    /// `query_url` without user info, for messages.
    endpoint: String,
    credentials: Option<Credentials>,
}

impl Prometheus {
    pub fn new(config: &PrometheusConfig) -> Result<Self, QueryError> {
        let invalid = |reason: String| QueryError::InvalidAddress {
            address: scrub_userinfo(&config.address),
            reason,
        };
        let mut base = Url::parse(config.address.trim()).map_err(|e| invalid(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(invalid(format!(
                "scheme {} is not http or https",
                base.scheme()
            )));
        }
        // Keep a path prefix (e.g. https://host/prometheus) and append the API path to it.
        let path = format!("{}/api/v1/query", base.path().trim_end_matches('/'));
        base.set_path(&path);
        base.set_query(None);
        base.set_fragment(None);

        let mut headers = HeaderMap::new();
        for (name, value) in &config.headers {
            let bad = |reason: String| QueryError::InvalidHeader {
                name: name.clone(),
                reason,
            };
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| bad(e.to_string()))?;
            let mut value = HeaderValue::from_str(value).map_err(|e| bad(e.to_string()))?;
            value.set_sensitive(true);
            headers.append(name, value);
        }
        // reqwest panics without a process-wide rustls provider; make sure there is one.
        crate::crypto::install_default_provider();
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .default_headers(headers)
            .danger_accept_invalid_certs(config.insecure_skip_verify)
            .build()
            .map_err(|e| QueryError::Client(error_chain(&e)))?;
        Ok(Prometheus {
            endpoint: scrub_userinfo(base.as_str()),
            http,
            query_url: base,
            credentials: config.credentials.clone(),
        })
    }

    /// The value of an instant query evaluated now.
    pub async fn query(&self, query: &str) -> Result<f64, QueryError> {
        let query = query.split_whitespace().collect::<Vec<_>>().join(" ");
        let mut request = self
            .http
            .get(self.query_url.clone())
            .query(&[("query", &query)]);
        request = match &self.credentials {
            Some(Credentials::Bearer(token)) => request.bearer_auth(token),
            Some(Credentials::Basic { username, password }) => {
                request.basic_auth(username, Some(password))
            }
            None => request,
        };
        let failed = |e: reqwest::Error| QueryError::Request {
            endpoint: self.endpoint.clone(),
            reason: error_chain(&e.without_url()),
        };
        let response = request.send().await.map_err(failed)?;
        let status = response.status();
        let body = response.bytes().await.map_err(failed)?;
        let reply: Result<ApiReply, _> = serde_json::from_slice(&body);
        if status.is_client_error() || status.is_server_error() {
            let message = match reply {
                Ok(ApiReply {
                    error: Some(error),
                    error_type,
                    ..
                }) => match error_type {
                    Some(kind) => format!("{kind}: {error}"),
                    None => error,
                },
                _ => truncate(&String::from_utf8_lossy(&body), 512),
            };
            return Err(QueryError::ErrorResponse {
                status: status.to_string(),
                message,
            });
        }
        let decode = |reason: String| QueryError::Decode {
            endpoint: self.endpoint.clone(),
            reason,
        };
        let reply = reply.map_err(|e| decode(e.to_string()))?;
        if reply.status != "success" {
            return Err(QueryError::ErrorResponse {
                status: status.to_string(),
                message: reply.error.unwrap_or(reply.status),
            });
        }
        let data = reply
            .data
            .ok_or_else(|| decode("the reply has no data".into()))?;
        value_of(data).map_err(|e| match e {
            ValueError::Query(e) => e,
            ValueError::Decode(reason) => decode(reason),
        })
    }

    /// Whether the server answers `vector(1)` with 1, Flagger's liveness check.
    pub async fn is_online(&self) -> Result<bool, QueryError> {
        Ok(self.query("vector(1)").await? == 1.0)
    }
}

#[derive(Deserialize)]
struct ApiReply {
    status: String,
    data: Option<QueryData>,
    #[serde(rename = "errorType")]
    error_type: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum QueryData {
    Vector(Vec<VectorSample>),
    Scalar(SampleValue),
    Matrix(Vec<serde_json::Value>),
    String(serde::de::IgnoredAny),
}

#[derive(Deserialize)]
struct VectorSample {
    value: SampleValue,
}

/// `[<unix time>, "<value>"]`: Prometheus sends values as strings ("1.5", "NaN", "+Inf").
#[derive(Deserialize)]
struct SampleValue(#[allow(dead_code)] f64, String);

enum ValueError {
    Query(QueryError),
    Decode(String),
}

fn value_of(data: QueryData) -> Result<f64, ValueError> {
    let sample = match data {
        // Flagger takes the last sample of a vector; a query without an aggregation that
        // matches several series therefore yields one of them, as it does in Flagger.
        QueryData::Vector(samples) => match samples.into_iter().last() {
            Some(s) => s.value,
            None => return Err(ValueError::Query(QueryError::NoValuesFound)),
        },
        QueryData::Scalar(v) => v,
        QueryData::Matrix(series) if series.is_empty() => {
            return Err(ValueError::Query(QueryError::NoValuesFound));
        }
        QueryData::Matrix(_) => return Err(ValueError::Query(QueryError::MultipleValues)),
        QueryData::String(_) => {
            return Err(ValueError::Decode(
                "the query returned a string, not a number".into(),
            ));
        }
    };
    let value: f64 = sample
        .1
        .parse()
        .map_err(|_| ValueError::Decode(format!("sample value {:?} is not a number", sample.1)))?;
    if value.is_nan() {
        return Err(ValueError::Query(QueryError::NoValuesFound));
    }
    Ok(value)
}

/// The URL without `user:password@`, so that a credential in an address never reaches a message.
fn scrub_userinfo(address: &str) -> String {
    match Url::parse(address.trim()) {
        Ok(mut url) if !url.username().is_empty() || url.password().is_some() => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.to_string()
        }
        Ok(url) => url.to_string(),
        Err(_) => match address.rsplit_once('@') {
            Some((_, host)) => format!("<redacted>@{host}"),
            None => address.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<f64, String> {
        let reply: ApiReply = serde_json::from_str(json).map_err(|e| e.to_string())?;
        value_of(reply.data.ok_or("no data")?).map_err(|e| match e {
            ValueError::Query(q) => q.to_string(),
            ValueError::Decode(d) => format!("decode: {d}"),
        })
    }

    #[test]
    fn result_shapes_map_to_flagger_semantics() {
        let cases: &[(&str, Result<f64, &str>)] = &[
            (
                r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1.5,"99.5"]}]}}"#,
                Ok(99.5),
            ),
            (
                r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"1"},"value":[1,"1"]},{"metric":{"a":"2"},"value":[1,"2"]}]}}"#,
                Ok(2.0),
            ),
            (
                r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
                Err("no values found"),
            ),
            (
                r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"NaN"]}]}}"#,
                Err("no values found"),
            ),
            (
                r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"+Inf"]}]}}"#,
                Ok(f64::INFINITY),
            ),
            (
                r#"{"status":"success","data":{"resultType":"scalar","result":[1,"0"]}}"#,
                Ok(0.0),
            ),
            (
                r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"],[2,"2"]]}]}}"#,
                Err("query returned multiple values"),
            ),
            (
                r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#,
                Err("no values found"),
            ),
            (
                r#"{"status":"success","data":{"resultType":"string","result":[1,"x"]}}"#,
                Err("decode: the query returned a string, not a number"),
            ),
            (
                r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"abc"]}]}}"#,
                Err(r#"decode: sample value "abc" is not a number"#),
            ),
        ];
        for (json, want) in cases {
            let got = parse(json);
            assert_eq!(got, want.map_err(str::to_string), "reply {json}");
        }
    }

    #[test]
    fn address_must_be_http_and_keeps_its_path_prefix() {
        let p = Prometheus::new(&PrometheusConfig::new("https://mon.example/prometheus/"))
            .expect("valid address");
        assert_eq!(
            p.query_url.as_str(),
            "https://mon.example/prometheus/api/v1/query"
        );
        let err =
            Prometheus::new(&PrometheusConfig::new("prometheus:9090")).expect_err("no scheme");
        assert!(err.to_string().contains("is not http or https"), "{err}");
        let err = Prometheus::new(&PrometheusConfig::new("not a url")).expect_err("invalid");
        assert!(
            err.to_string()
                .starts_with("prometheus address not a url is not a valid URL"),
            "{err}"
        );
    }

    #[test]
    fn credentials_never_reach_messages() {
        let p = Prometheus::new(&PrometheusConfig::new("http://admin:s3cret@127.0.0.1:9/"))
            .expect("valid address");
        assert!(!p.endpoint.contains("s3cret"), "{}", p.endpoint);
        let mut cfg = PrometheusConfig::new("http://127.0.0.1:9");
        cfg.credentials = Some(Credentials::Basic {
            username: "u".into(),
            password: "s3cret".into(),
        });
        assert!(!format!("{cfg:?}").contains("s3cret"));
        cfg.credentials = Some(Credentials::Bearer("s3cret".into()));
        assert!(!format!("{cfg:?}").contains("s3cret"));
        assert_eq!(
            scrub_userinfo("::bad::user:s3cret@host"),
            "<redacted>@host".to_string()
        );
    }

    #[test]
    fn invalid_header_is_named() {
        let mut cfg = PrometheusConfig::new("http://127.0.0.1:9");
        cfg.headers.push(("Bad Header".into(), "x".into()));
        let err = Prometheus::new(&cfg).expect_err("invalid header");
        assert!(
            err.to_string()
                .starts_with("prometheus header Bad Header is not valid"),
            "{err}"
        );
    }
}
