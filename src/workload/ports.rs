//! Port discovery (Flagger reference §3.5, `getPorts`): with `service.portDiscovery` the
//! generated Services expose every container port besides the main one, so that metrics,
//! admin or gRPC ports keep working through the primary and canary Services.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Container;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::api::CanaryService;

/// Mesh sidecars whose ports belong to the mesh, not to the application.
const SIDECARS: [&str; 2] = ["istio-proxy", "envoy"];

/// Port name → container port for every port of `containers` except sidecars' and the
/// Service's own target port; unnamed ports are called `tcp-<container>-<index>`.
/// Empty unless `service.portDiscovery` is true.
pub fn discovered_ports(
    service: Option<&CanaryService>,
    containers: &[Container],
) -> BTreeMap<String, i32> {
    let Some(service) = service.filter(|s| s.port_discovery == Some(true)) else {
        return BTreeMap::new();
    };
    // `target_port()` already falls back to `port` when targetPort is unset, as Flagger does.
    let main = service.target_port();
    let mut ports = BTreeMap::new();
    for container in containers {
        if SIDECARS.contains(&container.name.as_str()) {
            continue;
        }
        for (index, port) in container.ports.iter().flatten().enumerate() {
            let is_main = match &main {
                Some(IntOrString::Int(n)) => port.container_port == *n,
                Some(IntOrString::String(name)) => port.name.as_deref() == Some(name.as_str()),
                None => false,
            };
            if is_main {
                continue;
            }
            let name = match port.name.as_deref() {
                Some(n) if !n.is_empty() => n.to_string(),
                _ => format!("tcp-{}-{index}", container.name),
            };
            ports.insert(name, port.container_port);
        }
    }
    ports
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use k8s_openapi::api::core::v1::ContainerPort;

    use super::*;

    fn container(name: &str, ports: &[(Option<&str>, i32)]) -> Container {
        Container {
            name: name.into(),
            ports: Some(
                ports
                    .iter()
                    .map(|(n, p)| ContainerPort {
                        name: n.map(String::from),
                        container_port: *p,
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }
    }

    fn service(port: i32, target: Option<IntOrString>, discovery: bool) -> CanaryService {
        CanaryService {
            port: Some(port),
            target_port: target,
            port_discovery: Some(discovery),
            ..Default::default()
        }
    }

    #[test]
    fn discovery_table() {
        let containers = vec![
            container(
                "podinfod",
                &[
                    (Some("http"), 9898),
                    (Some("http-metrics"), 9797),
                    (None, 9999),
                ],
            ),
            container("istio-proxy", &[(Some("http-envoy-prom"), 15090)]),
            container("envoy", &[(None, 8443)]),
            container("sidecar", &[(None, 7000)]),
        ];
        let table: [(CanaryService, Vec<(&str, i32)>); 4] = [
            // targetPort unset: the Service port is the main one.
            (
                service(9898, None, true),
                vec![
                    ("http-metrics", 9797),
                    ("tcp-podinfod-2", 9999),
                    ("tcp-sidecar-0", 7000),
                ],
            ),
            // A numeric targetPort is the main one, whatever the Service port.
            (
                service(80, Some(IntOrString::Int(9797)), true),
                vec![
                    ("http", 9898),
                    ("tcp-podinfod-2", 9999),
                    ("tcp-sidecar-0", 7000),
                ],
            ),
            // A named targetPort matches by port name.
            (
                service(80, Some(IntOrString::String("http".into())), true),
                vec![
                    ("http-metrics", 9797),
                    ("tcp-podinfod-2", 9999),
                    ("tcp-sidecar-0", 7000),
                ],
            ),
            (service(9898, None, false), vec![]),
        ];
        for (svc, want) in table {
            let got = discovered_ports(Some(&svc), &containers);
            let want: BTreeMap<String, i32> =
                want.into_iter().map(|(n, p)| (n.to_string(), p)).collect();
            assert_eq!(got, want, "{svc:?}");
        }
        assert!(discovered_ports(None, &containers).is_empty());
    }
}
