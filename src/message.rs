//! Errors and long texts as one-line messages for people: logs, Events, webhook reasons.

use std::error::Error;

/// The error and its causes on one line, `outer: inner: root`, each said once: kube, hyper and
/// io errors often repeat their cause in their own message.
pub fn error_chain(error: &(dyn Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut next = error.source();
    while let Some(e) = next {
        let text = e.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = e.source();
    }
    out
}

/// `text` cut after `max` characters, with an ellipsis when it was cut.
pub fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// The first 12 characters of a hash or commit id: enough to find it, short enough for a
/// message.
pub fn short_id(id: &str) -> &str {
    id.char_indices().nth(12).map_or(id, |(i, _)| &id[..i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct Layer(&'static str, #[source] Option<Box<Layer>>);

    #[test]
    fn causes_are_joined_and_repeats_dropped() {
        let root = Layer("connection refused", None);
        let mid = Layer(
            "tcp connect error: connection refused",
            Some(Box::new(root)),
        );
        let top = Layer("request failed", Some(Box::new(mid)));
        assert_eq!(
            error_chain(&top),
            "request failed: tcp connect error: connection refused"
        );
    }

    #[test]
    fn truncation_counts_characters() {
        assert_eq!(truncate("héllo", 3), "hél…");
        assert_eq!(truncate("hi", 3), "hi");
    }
}
