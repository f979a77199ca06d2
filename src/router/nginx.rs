//! NGINX ingress: the canary Ingress `<ingress>-canary` with `canary-weight` / `canary-by-header` annotations (Flagger reference 4.6).
