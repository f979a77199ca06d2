//! Apache APISIX: the ApisixRoute `<routeRef>-<apex>-canary` beside the user's route (Flagger reference 4.5).
