//! Contour: the HTTPProxy `<apex>` with weighted services (Flagger reference 4.6).
