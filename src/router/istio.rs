//! Istio: the VirtualService `<apex>` and the DestinationRules `<apex>-primary` / `<apex>-canary` (Flagger reference 4.3).
