//! Gloo Edge: the Upstreams `<ns>-<apex>-primaryupstream-<port>` / `-canaryupstream-<port>` and the RouteTable `<apex>` (Flagger reference 4.4).
