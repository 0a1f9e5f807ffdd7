//! The operator's one error type.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    /// The spec breaks a rule the apiserver also enforces; the message is the CRD rule's message.
    #[error("{field}: {message}")]
    InvalidSpec { field: String, message: String },

    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },

    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },

    #[error("{path}: not a valid HealthCheck: {message}")]
    Parse { path: String, message: String },

    #[error("line {line}: {message}")]
    Dockerfile { line: usize, message: String },

    #[error("{path}: {message}")]
    Import { path: String, message: String },

    #[error("cannot serialize to YAML: {0}")]
    Yaml(String),

    #[error("not an AdmissionReview: {0}")]
    Admission(String),

    #[error("cannot serve on {address}: {source}")]
    Serve {
        address: std::net::SocketAddr,
        source: std::io::Error,
    },

    #[error("{context}: {source}")]
    Kube {
        context: String,
        source: kube::Error,
    },

    #[error("TLS: {0}")]
    Tls(String),

    #[error("{task} {how}; the operator stops so that it restarts")]
    TaskEnded { task: &'static str, how: String },
}

impl Error {
    /// When the operator's RBAC does not allow the request (the apiserver's 403): what was
    /// attempted and the apiserver's message, which names the verb, resource and namespace.
    pub fn forbidden(&self) -> Option<String> {
        match self {
            Error::Kube {
                context,
                source: kube::Error::Api(status),
            } if status.is_forbidden() => Some(format!("{context}: {}", status.message)),
            _ => None,
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidSpec {
            field: field.into(),
            message: message.into(),
        }
    }
}
