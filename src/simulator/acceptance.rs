//! The simulator as the Gateway controller the test environment lacks: it marks every
//! parentRef of a route `Accepted` for the route's current generation, which is what
//! Flagger's `GetRoutes` waits for before it reads or shifts weights.

use gateway_api::httproutes::{
    HttpRoute, HttpRouteParentRefs, HttpRouteStatusParents, HttpRouteStatusParentsParentRef,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// The `controllerName` of the status entries the simulator writes.
pub const CONTROLLER_NAME: &str = "serin.dev/mesh-simulator";

const ACCEPTED: &str = "Accepted";

/// The `status.parents` the route should carry, or `None` when it already does: then no write
/// is made, so the simulator and whoever edits the route never chase each other.
///
/// Entries of other controllers are kept as they are; the simulator's own are rebuilt, one
/// per parentRef, and those of parentRefs the route no longer has are dropped (the Gateway
/// API asks controllers to clean up after themselves).
pub fn accepted_parents(route: &HttpRoute, now: Time) -> Option<Vec<HttpRouteStatusParents>> {
    let generation = route.metadata.generation.unwrap_or_default();
    let refs = route.spec.parent_refs.as_deref().unwrap_or_default();
    let current = route
        .status
        .as_ref()
        .map(|s| s.parents.as_slice())
        .unwrap_or_default();
    let ours = |entry: &&HttpRouteStatusParents| entry.controller_name == CONTROLLER_NAME;
    let up_to_date = current.iter().filter(ours).count() == refs.len()
        && refs.iter().all(|parent| {
            current
                .iter()
                .filter(ours)
                .find(|entry| same_parent(&entry.parent_ref, parent))
                .and_then(|entry| accepted(entry))
                .is_some_and(|c| c.status == "True" && c.observed_generation == Some(generation))
        });
    if up_to_date {
        return None;
    }

    let mut parents: Vec<HttpRouteStatusParents> = current
        .iter()
        .filter(|entry| entry.controller_name != CONTROLLER_NAME)
        .cloned()
        .collect();
    for parent in refs {
        // An Accepted that stays True keeps the time it became True.
        let since = current
            .iter()
            .filter(ours)
            .find(|entry| same_parent(&entry.parent_ref, parent))
            .and_then(|entry| accepted(entry))
            .filter(|c| c.status == "True")
            .map(|c| c.last_transition_time.clone());
        parents.push(HttpRouteStatusParents {
            conditions: vec![Condition {
                type_: ACCEPTED.into(),
                status: "True".into(),
                reason: ACCEPTED.into(),
                message: "Accepted by the Serin mesh simulator".into(),
                observed_generation: Some(generation),
                last_transition_time: since.unwrap_or_else(|| now.clone()),
            }],
            controller_name: CONTROLLER_NAME.into(),
            parent_ref: HttpRouteStatusParentsParentRef {
                group: parent.group.clone(),
                kind: parent.kind.clone(),
                name: parent.name.clone(),
                namespace: parent.namespace.clone(),
                port: parent.port,
                section_name: parent.section_name.clone(),
            },
        });
    }
    Some(parents)
}

fn accepted(entry: &HttpRouteStatusParents) -> Option<&Condition> {
    entry.conditions.iter().find(|c| c.type_ == ACCEPTED)
}

/// The same parent as Flagger compares them: every field of the reference, as stored (the
/// API server fills in group and kind on both sides).
fn same_parent(status: &HttpRouteStatusParentsParentRef, spec: &HttpRouteParentRefs) -> bool {
    status.group == spec.group
        && status.kind == spec.kind
        && status.name == spec.name
        && status.namespace == spec.namespace
        && status.section_name == spec.section_name
        && status.port == spec.port
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::traffic::tests::weighted;
    use gateway_api::httproutes::HttpRouteStatus;
    use k8s_openapi::jiff::Timestamp;

    fn at(seconds: i64) -> Time {
        Time(Timestamp::from_second(seconds).expect("valid timestamp"))
    }

    fn with_status(mut route: HttpRoute, parents: Vec<HttpRouteStatusParents>) -> HttpRoute {
        route.status = Some(HttpRouteStatus { parents });
        route
    }

    #[test]
    fn a_new_route_gets_accepted_for_its_generation() {
        let parents = accepted_parents(&weighted(100, 0), at(10)).expect("needs a write");
        assert_eq!(parents.len(), 1);
        let entry = &parents[0];
        assert_eq!(entry.controller_name, CONTROLLER_NAME);
        assert_eq!(entry.parent_ref.name, "gateway");
        assert_eq!(entry.parent_ref.namespace.as_deref(), Some("istio-ingress"));
        let c = &entry.conditions[0];
        assert_eq!(
            (c.type_.as_str(), c.status.as_str(), c.observed_generation),
            ("Accepted", "True", Some(1))
        );
    }

    #[test]
    fn an_accepted_route_is_left_alone_until_its_generation_moves() {
        let route = weighted(100, 0);
        let parents = accepted_parents(&route, at(10)).expect("needs a write");
        let mut route = with_status(route, parents);
        assert_eq!(accepted_parents(&route, at(20)), None, "no write loop");

        route.metadata.generation = Some(2);
        let parents = accepted_parents(&route, at(30)).expect("new generation");
        let c = &parents[0].conditions[0];
        assert_eq!(c.observed_generation, Some(2));
        assert_eq!(c.last_transition_time, at(10), "still True since 10");
    }

    #[test]
    fn other_controllers_entries_stay_and_stale_own_entries_go() {
        let route = weighted(100, 0);
        let mut parents = accepted_parents(&route, at(10)).expect("needs a write");
        let mut foreign = parents[0].clone();
        foreign.controller_name = "istio.io/gateway-controller".into();
        foreign.conditions[0].status = "False".into();
        let mut stale = parents[0].clone();
        stale.parent_ref.name = "old-gateway".into();
        parents.push(foreign.clone());
        parents.push(stale);
        let route = with_status(route, parents);

        let parents = accepted_parents(&route, at(20)).expect("stale entry to drop");
        assert_eq!(parents.len(), 2, "{parents:?}");
        assert_eq!(parents[0], foreign);
        assert_eq!(parents[1].parent_ref.name, "gateway");
    }
}
