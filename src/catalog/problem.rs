//! A problem found in the configuration, located precisely enough to fix it.

use std::fmt;

use serde::Serialize;

use crate::api::{Finding, Severity};

/// Where in the repository something is: a file and, within it, a YAML document (1-based).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Location {
    pub file: String,
    pub document: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (document {})", self.file, self.document)
    }
}

/// One problem: file, document, object, field, what is wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    #[serde(serialize_with = "severity_name")]
    pub severity: Severity,
    pub file: String,
    /// 1-based YAML document within the file, when the problem is inside one.
    pub document: Option<usize>,
    /// e.g. `Canary test/podinfo`.
    pub object: Option<String>,
    /// e.g. `spec.analysis.stepWeights[2]`.
    pub field: Option<String>,
    pub problem: String,
    pub fix: String,
}

fn severity_name<S: serde::Serializer>(s: &Severity, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
    })
}

impl Problem {
    pub fn file(severity: Severity, file: &str, problem: String, fix: &str) -> Self {
        Problem {
            severity,
            file: file.to_string(),
            document: None,
            object: None,
            field: None,
            problem,
            fix: fix.to_string(),
        }
    }

    pub fn document(severity: Severity, at: &Location, problem: String, fix: &str) -> Self {
        Problem {
            document: Some(at.document),
            ..Problem::file(severity, &at.file, problem, fix)
        }
    }

    pub fn object(
        severity: Severity,
        at: &Location,
        object: &str,
        field: &str,
        problem: String,
        fix: String,
    ) -> Self {
        Problem {
            severity,
            file: at.file.clone(),
            document: Some(at.document),
            object: Some(object.to_string()),
            field: (!field.is_empty()).then(|| field.to_string()),
            problem,
            fix,
        }
    }

    /// A validation finding of an object, placed at its location.
    pub fn from_finding(at: &Location, object: &str, f: Finding) -> Self {
        Problem::object(f.severity, at, object, &f.field, f.problem, f.fix)
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{level}: {}", self.file)?;
        if let Some(d) = self.document {
            write!(f, " (document {d})")?;
        }
        if let Some(o) = &self.object {
            write!(f, " {o}")?;
        }
        if let Some(field) = &self.field {
            write!(f, " {field}")?;
        }
        write!(f, ": {}", self.problem)?;
        if !self.fix.is_empty() {
            write!(f, "\n  fix: {}", self.fix)?;
        }
        Ok(())
    }
}
