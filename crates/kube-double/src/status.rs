//! `Status` failures, shaped like the ones `k8s.io/apimachinery/pkg/api/errors` builds.

use serde_json::{Map, Value, json};

pub(crate) use crate::cause::Cause;
use crate::registry::ResourceType;

#[derive(Debug, Clone, Default)]
pub(crate) struct Details {
    pub name: Option<String>,
    pub group: Option<String>,
    pub kind: Option<String>,
    pub causes: Vec<Cause>,
}

/// A failed request: rendered as a `Status` object with `code` as the HTTP status.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Box<Details>,
}

impl ApiError {
    pub(crate) fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: Box::default(),
        }
    }

    fn with_details(mut self, name: &str, group: &str, kind: &str) -> Self {
        self.details.name = Some(name.to_owned());
        self.details.group = Some(group.to_owned());
        self.details.kind = Some(kind.to_owned());
        self
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub(crate) fn not_found_path() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    pub(crate) fn method_not_allowed(method: &str) -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource ({method})"),
        )
    }

    pub(crate) fn unsupported_media_type(ct: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {ct:?})"
            ),
        )
    }

    pub(crate) fn not_found(ty: &ResourceType, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} {name:?} not found", ty.qualified()),
        )
        .with_details(name, &ty.gr.group, &ty.gr.resource)
    }

    pub(crate) fn already_exists(ty: &ResourceType, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} {name:?} already exists", ty.qualified()),
        )
        .with_details(name, &ty.gr.group, &ty.gr.resource)
    }

    pub(crate) fn conflict(ty: &ResourceType, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} {name:?}: {why}",
                ty.qualified()
            ),
        )
        .with_details(name, &ty.gr.group, &ty.gr.resource)
    }

    pub(crate) fn modified(ty: &ResourceType, name: &str) -> Self {
        Self::conflict(
            ty,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    pub(crate) fn apply_conflict(
        ty: &ResourceType,
        name: &str,
        message: String,
        causes: Vec<Cause>,
    ) -> Self {
        let mut e = Self::new(409, "Conflict", message).with_details(name, &ty.gr.group, &ty.kind);
        e.details.causes = causes;
        e
    }

    /// 422 Invalid: `Kind.group "name" is invalid: field: message`.
    pub(crate) fn invalid(ty: &ResourceType, name: &str, causes: Vec<Cause>) -> Self {
        let summary = causes
            .iter()
            .map(|c| {
                if c.field.is_empty() {
                    c.message.clone()
                } else {
                    format!("{}: {}", c.field, c.message)
                }
            })
            .collect::<Vec<_>>();
        let summary = if summary.len() == 1 {
            summary.join("")
        } else {
            format!("[{}]", summary.join(", "))
        };
        let mut e = Self::new(
            422,
            "Invalid",
            format!("{} {name:?} is invalid: {summary}", ty.qualified_kind()),
        )
        .with_details(name, &ty.gr.group, &ty.kind);
        e.details.causes = causes;
        e
    }

    /// 422 Invalid with a single free-form message (JSON patch failures and the like).
    pub(crate) fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(422, "Invalid", message)
    }

    pub(crate) fn forbidden(ty: &ResourceType, name: &str, why: &str) -> Self {
        Self::new(
            403,
            "Forbidden",
            format!("{} {name:?} is forbidden: {why}", ty.qualified()),
        )
        .with_details(name, &ty.gr.group, &ty.gr.resource)
    }

    pub(crate) fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    pub(crate) fn to_value(&self) -> Value {
        let mut details = Map::new();
        if let Some(n) = &self.details.name {
            details.insert("name".into(), json!(n));
        }
        if let Some(g) = &self.details.group {
            details.insert("group".into(), json!(g));
        }
        if let Some(k) = &self.details.kind {
            details.insert("kind".into(), json!(k));
        }
        if !self.details.causes.is_empty() {
            let causes: Vec<Value> = self
                .details
                .causes
                .iter()
                .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                .collect();
            details.insert("causes".into(), Value::Array(causes));
        }
        let mut v = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        });
        if !details.is_empty() {
            v["details"] = Value::Object(details);
        }
        v["code"] = json!(self.code);
        v
    }
}
