//! The routing objects of Istio, Gloo Edge, APISIX, Contour and NGINX, read the way their
//! data planes would route by them, as one model the traffic arithmetic understands.
//!
//! The simulator plays each provider's controller, so it reads the objects as the cluster
//! holds them (JSON), independent of the types Serin's routers write: a field a router puts
//! in the wrong place is then a route the simulator does not follow, and the analysis sees it.
//! Pure: the cluster reader hands the objects in.

use std::collections::BTreeMap;

use serde_json::Value;

use super::traffic::Source;

/// Labels a proxy adds to its own request series, beyond what a mesh reports.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tag {
    /// Envoy's upstream cluster (Contour `<ns>_<service>_<port>`, Gloo `<upstream>_<ns>`).
    Envoy { cluster: String },
    /// ingress-nginx: the Ingress that took the request, and the canary upstream
    /// (`<ns>-<service>-<port>`) when the canary Ingress answered it, else "".
    Nginx {
        namespace: String,
        ingress: String,
        canary: String,
    },
    /// APISIX's route label `<ns>_<ApisixRoute>_<http rule>`.
    Apisix { route: String },
}

/// One Service a rule sends a weighted share to.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyBackend {
    pub namespace: String,
    pub service: String,
    pub weight: f64,
    pub tag: Option<Tag>,
}

/// One rule of a routing object.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProxyRule {
    /// The rule asks for a header, cookie, method or query parameter plain requests lack.
    pub conditional: bool,
    pub backends: Vec<ProxyBackend>,
    /// Services that get a copy of the rule's requests, with the share copied (0..=1).
    pub mirrors: Vec<(ProxyBackend, f64)>,
}

/// A routing object as its data plane routes by it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyRoute {
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    pub source: Source,
    /// In the order the data plane tries them.
    pub rules: Vec<ProxyRule>,
}

/// The objects of the watched namespaces, as JSON.
#[derive(Debug, Clone, Default)]
pub struct ProxyObjects {
    pub virtual_services: Vec<Value>,
    pub route_tables: Vec<Value>,
    pub upstreams: Vec<Value>,
    pub apisix_routes: Vec<Value>,
    pub http_proxies: Vec<Value>,
    pub ingresses: Vec<Value>,
}

/// Every route the objects describe.
pub fn routes(objects: &ProxyObjects) -> Vec<ProxyRoute> {
    let mut out = Vec::new();
    out.extend(objects.virtual_services.iter().map(virtual_service));
    out.extend(
        objects
            .route_tables
            .iter()
            .map(|rt| route_table(rt, &objects.upstreams)),
    );
    out.extend(apisix_routes(&objects.apisix_routes));
    out.extend(objects.http_proxies.iter().map(http_proxy));
    out.extend(ingresses(&objects.ingresses));
    out
}

fn meta<'a>(object: &'a Value, field: &str) -> &'a str {
    object["metadata"][field].as_str().unwrap_or_default()
}

fn items(value: &Value) -> &[Value] {
    value.as_array().map(Vec::as_slice).unwrap_or_default()
}

fn non_empty(value: &Value) -> bool {
    match value {
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::Null => false,
        _ => true,
    }
}

/// Istio: `spec.http[]` (else `spec.tcp[]`) routes to `destination.host` by weight, and
/// copies `mirrorPercentage` of them (all when unset) to `mirror.host`.
fn virtual_service(vs: &Value) -> ProxyRoute {
    let namespace = meta(vs, "namespace").to_string();
    let spec = &vs["spec"];
    let gateway = items(&spec["gateways"])
        .first()
        .and_then(Value::as_str)
        .unwrap_or("mesh");
    let host_service = |host: &str| ProxyBackend {
        // A short host is a Service of the route's namespace; a long one names its own.
        namespace: host
            .split('.')
            .nth(1)
            .unwrap_or(namespace.as_str())
            .to_string(),
        service: host.split('.').next().unwrap_or_default().to_string(),
        weight: 0.0,
        tag: None,
    };
    let destinations = |route: &Value| -> Vec<ProxyBackend> {
        let list = items(route);
        list.iter()
            .filter_map(|d| {
                let host = d["destination"]["host"].as_str()?;
                // Istio: a lone destination takes everything, whatever its weight says.
                let weight = if list.len() == 1 {
                    100.0
                } else {
                    d["weight"].as_f64().unwrap_or(0.0)
                };
                Some(ProxyBackend {
                    weight,
                    ..host_service(host)
                })
            })
            .collect()
    };
    let http = items(&spec["http"]);
    let rules = if http.is_empty() {
        items(&spec["tcp"])
            .iter()
            .map(|r| ProxyRule {
                conditional: false,
                backends: destinations(&r["route"]),
                mirrors: Vec::new(),
            })
            .collect()
    } else {
        http.iter()
            .map(|r| {
                let conditional = items(&r["match"]).iter().any(|m| {
                    ["headers", "queryParams", "method", "withoutHeaders"]
                        .iter()
                        .any(|k| non_empty(&m[*k]))
                });
                let mirrors = r["mirror"]["host"]
                    .as_str()
                    .map(|host| {
                        let share = r["mirrorPercentage"]["value"].as_f64().unwrap_or(100.0);
                        (host_service(host), (share / 100.0).clamp(0.0, 1.0))
                    })
                    .into_iter()
                    .collect();
                ProxyRule {
                    conditional,
                    backends: destinations(&r["route"]),
                    mirrors,
                }
            })
            .collect()
    };
    ProxyRoute {
        kind: "VirtualService",
        name: meta(vs, "name").to_string(),
        source: Source {
            workload: gateway
                .split('/')
                .next_back()
                .unwrap_or(gateway)
                .to_string(),
            namespace: namespace.clone(),
        },
        namespace,
        rules,
    }
}

/// Gloo: `spec.routes[].routeAction` sends to Upstreams (`multi.destinations` by weight or
/// one `single` upstream); each kube Upstream names a Service. Envoy names the cluster of
/// Upstream `u` in namespace `ns` `u_ns`.
fn route_table(rt: &Value, upstreams: &[Value]) -> ProxyRoute {
    let namespace = meta(rt, "namespace").to_string();
    let upstream = |reference: &Value, weight: f64| -> Option<ProxyBackend> {
        let name = reference["name"].as_str()?;
        let ns = reference["namespace"].as_str().unwrap_or(&namespace);
        let found = upstreams
            .iter()
            .find(|u| meta(u, "name") == name && meta(u, "namespace") == ns);
        let kube = &found?["spec"]["kube"];
        Some(ProxyBackend {
            namespace: kube["serviceNamespace"].as_str().unwrap_or(ns).to_string(),
            service: kube["serviceName"].as_str()?.to_string(),
            weight,
            tag: Some(Tag::Envoy {
                cluster: format!("{name}_{ns}"),
            }),
        })
    };
    let rules = items(&rt["spec"]["routes"])
        .iter()
        .map(|r| {
            let action = &r["routeAction"];
            let backends = if non_empty(&action["single"]) {
                upstream(&action["single"]["upstream"], 1.0)
                    .into_iter()
                    .collect()
            } else {
                items(&action["multi"]["destinations"])
                    .iter()
                    .filter_map(|d| {
                        upstream(
                            &d["destination"]["upstream"],
                            d["weight"].as_f64().unwrap_or(0.0),
                        )
                    })
                    .collect()
            };
            ProxyRule {
                conditional: items(&r["matchers"]).iter().any(|m| {
                    ["headers", "methods", "queryParameters"]
                        .iter()
                        .any(|k| non_empty(&m[*k]))
                }),
                backends,
                mirrors: Vec::new(),
            }
        })
        .collect();
    ProxyRoute {
        kind: "RouteTable",
        namespace,
        name: meta(rt, "name").to_string(),
        source: Source {
            workload: "gateway-proxy".into(),
            namespace: "gloo-system".into(),
        },
        rules,
    }
}

/// APISIX: each `spec.http[]` entry sends to `backends[]` by weight (100 when unset). Of
/// the entries that match the same hosts and paths, only the highest `priority` takes
/// requests: that is how Flagger's generated canary route (priority 10000) overrides the
/// user's.
fn apisix_routes(routes: &[Value]) -> Vec<ProxyRoute> {
    type Key = (String, String, String);
    let key = |route: &Value, entry: &Value| -> Key {
        (
            meta(route, "namespace").to_string(),
            entry["match"]["hosts"].to_string(),
            entry["match"]["paths"].to_string(),
        )
    };
    let mut best: BTreeMap<Key, i64> = BTreeMap::new();
    for route in routes {
        for entry in items(&route["spec"]["http"]) {
            let priority = entry["priority"].as_i64().unwrap_or(0);
            best.entry(key(route, entry))
                .and_modify(|p| *p = (*p).max(priority))
                .or_insert(priority);
        }
    }
    routes
        .iter()
        .map(|route| {
            let namespace = meta(route, "namespace").to_string();
            let name = meta(route, "name").to_string();
            let rules = items(&route["spec"]["http"])
                .iter()
                .filter(|entry| {
                    best.get(&key(route, entry)).copied()
                        == Some(entry["priority"].as_i64().unwrap_or(0))
                })
                .map(|entry| {
                    let rule = entry["name"].as_str().unwrap_or_default();
                    let backends = items(&entry["backends"])
                        .iter()
                        .filter_map(|b| {
                            Some(ProxyBackend {
                                namespace: namespace.clone(),
                                service: b["serviceName"].as_str()?.to_string(),
                                weight: b["weight"].as_f64().unwrap_or(100.0),
                                tag: Some(Tag::Apisix {
                                    route: format!("{namespace}_{name}_{rule}"),
                                }),
                            })
                        })
                        .collect();
                    ProxyRule {
                        // The synthetic requests are GETs.
                        conditional: non_empty(&entry["match"]["exprs"])
                            || (non_empty(&entry["match"]["methods"])
                                && !items(&entry["match"]["methods"])
                                    .iter()
                                    .any(|m| m.as_str() == Some("GET"))),
                        backends,
                        mirrors: Vec::new(),
                    }
                })
                .collect();
            ProxyRoute {
                kind: "ApisixRoute",
                namespace,
                name,
                source: Source {
                    workload: "apisix-gateway".into(),
                    namespace: "apisix".into(),
                },
                rules,
            }
        })
        .collect()
}

/// Contour: `spec.routes[].services[]` by weight (evenly when none has one); a service with
/// `mirror: true` gets a copy of every request instead. Envoy's cluster is
/// `<ns>_<service>_<port>`.
fn http_proxy(proxy: &Value) -> ProxyRoute {
    let namespace = meta(proxy, "namespace").to_string();
    let rules = items(&proxy["spec"]["routes"])
        .iter()
        .map(|r| {
            let services = items(&r["services"]);
            let backend = |s: &Value, weight: f64| -> Option<ProxyBackend> {
                let service = s["name"].as_str()?;
                let port = s["port"].as_i64().unwrap_or_default();
                Some(ProxyBackend {
                    namespace: namespace.clone(),
                    service: service.to_string(),
                    weight,
                    tag: Some(Tag::Envoy {
                        cluster: format!("{namespace}_{service}_{port}"),
                    }),
                })
            };
            let routed: Vec<&Value> = services
                .iter()
                .filter(|s| !s["mirror"].as_bool().unwrap_or(false))
                .collect();
            let weighted = routed.iter().any(|s| s["weight"].as_f64().is_some());
            ProxyRule {
                conditional: items(&r["conditions"])
                    .iter()
                    .any(|c| non_empty(&c["header"]) || non_empty(&c["queryParameter"])),
                backends: routed
                    .iter()
                    .filter_map(|s| {
                        let weight = if weighted {
                            s["weight"].as_f64().unwrap_or(0.0)
                        } else {
                            1.0
                        };
                        backend(s, weight)
                    })
                    .collect(),
                mirrors: services
                    .iter()
                    .filter(|s| s["mirror"].as_bool().unwrap_or(false))
                    .filter_map(|s| backend(s, 0.0).map(|b| (b, 1.0)))
                    .collect(),
            }
        })
        .collect();
    ProxyRoute {
        kind: "HTTPProxy",
        name: meta(proxy, "name").to_string(),
        namespace,
        source: Source {
            workload: "envoy".into(),
            namespace: "projectcontour".into(),
        },
        rules,
    }
}

/// The annotation prefix of an ingress-nginx canary Ingress (`<prefix>/canary: "true"`).
fn canary_prefix(ingress: &Value) -> Option<&str> {
    ingress["metadata"]["annotations"]
        .as_object()?
        .iter()
        .find(|(k, v)| k.ends_with("/canary") && v.as_str() == Some("true"))
        .and_then(|(k, _)| k.strip_suffix("/canary"))
}

/// The first backend Service of an Ingress and its port number.
fn ingress_backend(ingress: &Value) -> Option<(String, i64)> {
    items(&ingress["spec"]["rules"])
        .iter()
        .flat_map(|r| items(&r["http"]["paths"]))
        .chain(std::iter::once(&ingress["spec"]["defaultBackend"]))
        .find_map(|p| {
            let service = if p["backend"].is_object() {
                &p["backend"]["service"]
            } else {
                &p["service"]
            };
            Some((
                service["name"].as_str()?.to_string(),
                service["port"]["number"].as_i64().unwrap_or_default(),
            ))
        })
}

fn ingress_hosts(ingress: &Value) -> Vec<&str> {
    items(&ingress["spec"]["rules"])
        .iter()
        .filter_map(|r| r["host"].as_str())
        .collect()
}

/// ingress-nginx: each Ingress sends to its backend; a canary Ingress of the same host takes
/// `canary-weight` percent, and with `canary-by-header` / `canary-by-cookie` every request
/// carrying that header or cookie.
fn ingresses(list: &[Value]) -> Vec<ProxyRoute> {
    list.iter()
        .filter(|i| canary_prefix(i).is_none())
        .filter_map(|main| {
            let namespace = meta(main, "namespace").to_string();
            let name = meta(main, "name").to_string();
            let (service, _) = ingress_backend(main)?;
            let backend = |service: String, weight: f64, canary: String| ProxyBackend {
                namespace: namespace.clone(),
                service,
                weight,
                tag: Some(Tag::Nginx {
                    namespace: namespace.clone(),
                    ingress: name.clone(),
                    canary,
                }),
            };
            let hosts = ingress_hosts(main);
            let canary = list.iter().find(|c| {
                canary_prefix(c).is_some()
                    && meta(c, "namespace") == namespace
                    && ingress_hosts(c) == hosts
            });
            let mut rules = Vec::new();
            let mut plain = vec![backend(service.clone(), 100.0, String::new())];
            if let Some((c, prefix)) = canary.and_then(|c| canary_prefix(c).map(|p| (c, p)))
                && let Some((canary_service, port)) = ingress_backend(c)
            {
                let upstream = format!("{namespace}-{canary_service}-{port}");
                let annotation =
                    |key: &str| c["metadata"]["annotations"][format!("{prefix}/{key}")].as_str();
                let weight = annotation("canary-weight")
                    .and_then(|w| w.parse::<f64>().ok())
                    .unwrap_or(0.0)
                    .clamp(0.0, 100.0);
                if annotation("canary-by-header").is_some()
                    || annotation("canary-by-cookie").is_some()
                {
                    rules.push(ProxyRule {
                        conditional: true,
                        backends: vec![backend(canary_service.clone(), 100.0, upstream.clone())],
                        mirrors: Vec::new(),
                    });
                }
                plain = vec![
                    backend(service, 100.0 - weight, String::new()),
                    backend(canary_service, weight, upstream),
                ];
            }
            rules.push(ProxyRule {
                conditional: false,
                backends: plain,
                mirrors: Vec::new(),
            });
            Some(ProxyRoute {
                kind: "Ingress",
                namespace,
                name,
                source: Source {
                    workload: "ingress-nginx-controller".into(),
                    namespace: "ingress-nginx".into(),
                },
                rules,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn backend(service: &str, weight: f64, tag: Option<Tag>) -> ProxyBackend {
        ProxyBackend {
            namespace: "test".into(),
            service: service.into(),
            weight,
            tag,
        }
    }

    fn envoy(cluster: &str) -> Option<Tag> {
        Some(Tag::Envoy {
            cluster: cluster.into(),
        })
    }

    #[test]
    fn virtual_service_routes_by_weight_match_and_mirror() {
        let vs = json!({
            "metadata": {"name": "podinfo", "namespace": "test"},
            "spec": {
                "gateways": ["istio-system/public-gateway"],
                "http": [
                    {"match": [{"headers": {"x-canary": {"exact": "insider"}}}],
                     "route": [{"destination": {"host": "podinfo-primary"}, "weight": 0},
                               {"destination": {"host": "podinfo-canary"}, "weight": 100}]},
                    {"route": [{"destination": {"host": "podinfo-primary", "port": {"number": 9898}}, "weight": 90},
                               {"destination": {"host": "podinfo-canary.test.svc.cluster.local"}, "weight": 10}],
                     "mirror": {"host": "podinfo-canary"}, "mirrorPercentage": {"value": 50.0}}
                ]
            }
        });
        let route = virtual_service(&vs);
        assert_eq!(route.source.workload, "public-gateway");
        assert_eq!(
            route.rules,
            vec![
                ProxyRule {
                    conditional: true,
                    backends: vec![
                        backend("podinfo-primary", 0.0, None),
                        backend("podinfo-canary", 100.0, None)
                    ],
                    mirrors: vec![],
                },
                ProxyRule {
                    conditional: false,
                    backends: vec![
                        backend("podinfo-primary", 90.0, None),
                        backend("podinfo-canary", 10.0, None)
                    ],
                    mirrors: vec![(backend("podinfo-canary", 0.0, None), 0.5)],
                },
            ]
        );
    }

    #[test]
    fn virtual_service_tcp_and_lone_destination() {
        let vs = json!({
            "metadata": {"name": "db", "namespace": "test"},
            "spec": {"tcp": [{"route": [{"destination": {"host": "db-primary"}}]}]}
        });
        let route = virtual_service(&vs);
        assert_eq!(route.source.workload, "mesh");
        assert_eq!(
            route.rules[0].backends,
            vec![backend("db-primary", 100.0, None)]
        );
    }

    #[test]
    fn route_table_resolves_upstreams_to_services() {
        let upstream = |name: &str, service: &str| {
            json!({"metadata": {"name": name, "namespace": "test"},
                   "spec": {"kube": {"serviceName": service, "serviceNamespace": "test", "servicePort": 9898}}})
        };
        let upstreams = vec![
            upstream("test-podinfo-primaryupstream-9898", "podinfo-primary"),
            upstream("test-podinfo-canaryupstream-9898", "podinfo-canary"),
        ];
        let rt = json!({
            "metadata": {"name": "podinfo", "namespace": "test"},
            "spec": {"routes": [{
                "matchers": [{"headers": [{"name": "x-canary", "value": "insider"}]}],
                "routeAction": {"multi": {"destinations": [
                    {"destination": {"upstream": {"name": "test-podinfo-primaryupstream-9898", "namespace": "test"}}, "weight": 80},
                    {"destination": {"upstream": {"name": "test-podinfo-canaryupstream-9898", "namespace": "test"}}, "weight": 20},
                    {"destination": {"upstream": {"name": "missing", "namespace": "test"}}, "weight": 5}
                ]}}
            }]}
        });
        let route = route_table(&rt, &upstreams);
        assert_eq!(
            route.rules,
            vec![ProxyRule {
                conditional: true,
                backends: vec![
                    backend(
                        "podinfo-primary",
                        80.0,
                        envoy("test-podinfo-primaryupstream-9898_test")
                    ),
                    backend(
                        "podinfo-canary",
                        20.0,
                        envoy("test-podinfo-canaryupstream-9898_test")
                    ),
                ],
                mirrors: vec![],
            }]
        );
    }

    #[test]
    fn apisix_canary_route_shadows_the_users_by_priority() {
        let entry = |priority: Option<i64>, backends: Value| {
            let mut e = json!({"name": "method", "match": {"hosts": ["app.example.com"], "paths": ["/*"]}, "backends": backends});
            if let Some(p) = priority {
                e["priority"] = json!(p);
            }
            e
        };
        let user = json!({"metadata": {"name": "podinfo", "namespace": "test"},
            "spec": {"http": [entry(None, json!([{"serviceName": "podinfo", "servicePort": 80}]))]}});
        let canary = json!({"metadata": {"name": "podinfo-podinfo-canary", "namespace": "test"},
            "spec": {"http": [entry(Some(10000), json!([
                {"serviceName": "podinfo-primary", "servicePort": 80, "weight": 70},
                {"serviceName": "podinfo-canary", "servicePort": 80, "weight": 30}]))]}});
        let routes = apisix_routes(&[user.clone(), canary]);
        assert!(routes[0].rules.is_empty(), "the user's route is shadowed");
        let tag = || {
            Some(Tag::Apisix {
                route: "test_podinfo-podinfo-canary_method".into(),
            })
        };
        assert_eq!(
            routes[1].rules[0].backends,
            vec![
                backend("podinfo-primary", 70.0, tag()),
                backend("podinfo-canary", 30.0, tag())
            ]
        );
        // Alone, the user's route takes the requests, its backend at the default weight.
        let alone = apisix_routes(&[user]);
        assert_eq!(
            alone[0].rules[0].backends,
            vec![backend(
                "podinfo",
                100.0,
                Some(Tag::Apisix {
                    route: "test_podinfo_method".into()
                })
            )]
        );
    }

    #[test]
    fn http_proxy_weights_conditions_and_mirrors() {
        let proxy = json!({
            "metadata": {"name": "podinfo", "namespace": "test"},
            "spec": {"routes": [
                {"conditions": [{"prefix": "/"}, {"header": {"name": "x-canary", "exact": "insider"}}],
                 "services": [{"name": "podinfo-primary", "port": 9898, "weight": 0},
                              {"name": "podinfo-canary", "port": 9898, "weight": 100}]},
                {"conditions": [{"prefix": "/"}],
                 "services": [{"name": "podinfo-primary", "port": 9898},
                              {"name": "podinfo-canary", "port": 9898, "mirror": true}]}
            ]}
        });
        let route = http_proxy(&proxy);
        assert!(route.rules[0].conditional);
        assert_eq!(
            route.rules[0].backends[1],
            backend("podinfo-canary", 100.0, envoy("test_podinfo-canary_9898"))
        );
        assert!(!route.rules[1].conditional);
        assert_eq!(
            route.rules[1].backends,
            vec![backend(
                "podinfo-primary",
                1.0,
                envoy("test_podinfo-primary_9898")
            )]
        );
        assert_eq!(
            route.rules[1].mirrors,
            vec![(
                backend("podinfo-canary", 0.0, envoy("test_podinfo-canary_9898")),
                1.0
            )]
        );
    }

    #[test]
    fn nginx_canary_ingress_takes_its_weight_and_header() {
        let ingress = |name: &str, service: &str, annotations: Value| {
            json!({"metadata": {"name": name, "namespace": "test", "annotations": annotations},
                   "spec": {"rules": [{"host": "app.example.com", "http": {"paths": [
                       {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": service, "port": {"number": 80}}}}]}}]}})
        };
        let main = ingress(
            "podinfo",
            "podinfo",
            json!({"kubernetes.io/ingress.class": "nginx"}),
        );
        let canary = ingress(
            "podinfo-canary",
            "podinfo-canary",
            json!({"nginx.ingress.kubernetes.io/canary": "true",
                   "nginx.ingress.kubernetes.io/canary-weight": "30",
                   "nginx.ingress.kubernetes.io/canary-by-header": "x-canary"}),
        );
        let routes = ingresses(&[main.clone(), canary]);
        assert_eq!(routes.len(), 1, "the canary Ingress is no route of its own");
        let tag = |canary: &str| {
            Some(Tag::Nginx {
                namespace: "test".into(),
                ingress: "podinfo".into(),
                canary: canary.into(),
            })
        };
        assert_eq!(
            routes[0].rules,
            vec![
                ProxyRule {
                    conditional: true,
                    backends: vec![backend(
                        "podinfo-canary",
                        100.0,
                        tag("test-podinfo-canary-80")
                    )],
                    mirrors: vec![],
                },
                ProxyRule {
                    conditional: false,
                    backends: vec![
                        backend("podinfo", 70.0, tag("")),
                        backend("podinfo-canary", 30.0, tag("test-podinfo-canary-80"))
                    ],
                    mirrors: vec![],
                },
            ]
        );
        let alone = ingresses(&[main]);
        assert_eq!(
            alone[0].rules[0].backends,
            vec![backend("podinfo", 100.0, tag(""))]
        );
    }
}
