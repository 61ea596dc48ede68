//! The pure half of terroir: a checked document and its blueprint become a resolved platform, then
//! a rendered tree. Nothing here touches a target, the network or the user's files.

pub mod blueprint;
pub mod images;
pub mod render;
pub mod resolve;

use std::path::Path;

use crate::document::{self, Diagnostic, Invalid, Loaded};
use blueprint::{BlueprintError, Catalog};

/// Read and check a document, its blueprint parameters included: what every command that takes
/// a document starts from.
pub fn load(path: &Path, catalog: &Catalog) -> Result<Loaded, Invalid> {
    let text = std::fs::read_to_string(path).ok();
    let loaded = document::load_file(path).map_err(|diagnostics| Invalid {
        file: path.display().to_string(),
        text: text.clone(),
        diagnostics,
    })?;
    check_blueprint(loaded, text, catalog)
}

/// The resolved platform of a checked document (its blueprint's defaults, names and images),
/// without rendering its files.
pub fn resolved(
    loaded: &Loaded,
    catalog: &Catalog,
) -> Result<resolve::ResolvedPlatform, render::RenderError> {
    let bp = catalog.load(&loaded.platform.spec.blueprint.name)?;
    let params = bp
        .resolve_parameters(loaded)
        .map_err(render::RenderError::Invalid)?;
    Ok(resolve::resolve(&loaded.platform, &bp, params))
}

/// `load` for a document held in memory (an edit about to be written); `file` names it.
pub fn load_str(file: &str, text: &str, catalog: &Catalog) -> Result<Loaded, Invalid> {
    let loaded = document::load_str(file, text).map_err(|diagnostics| Invalid {
        file: file.to_owned(),
        text: Some(text.to_owned()),
        diagnostics,
    })?;
    check_blueprint(loaded, Some(text.to_owned()), catalog)
}

/// The blueprint the document names exists and accepts its parameters and images.
fn check_blueprint(
    loaded: Loaded,
    text: Option<String>,
    catalog: &Catalog,
) -> Result<Loaded, Invalid> {
    let file = loaded.file.clone();
    let invalid = |diagnostics: Vec<Diagnostic>, text: Option<String>| Invalid {
        file: file.clone(),
        text,
        diagnostics,
    };
    let ptr = "/spec/blueprint/name";
    match catalog.load(&loaded.platform.spec.blueprint.name) {
        Ok(bp) => bp
            .resolve_parameters(&loaded)
            .map(|_| loaded)
            .map_err(|d| invalid(d, text)),
        Err(BlueprintError::NotFound { .. }) => {
            let names = catalog.names();
            let wanted = &loaded.platform.spec.blueprint.name;
            let mut expected = format!(
                "the name of an available blueprint: {}",
                document::diagnostic::one_of(&names)
            );
            if let Some(s) =
                document::diagnostic::did_you_mean(wanted, names.iter().map(String::as_str))
                    .filter(|_| names.len() > 1)
            {
                expected = format!("{expected} (did you mean `{s}`?)");
            }
            let d = Diagnostic::new(
                &loaded.file,
                loaded.source_map.value(ptr),
                "spec.blueprint.name",
                format!("blueprint `{wanted}` not found"),
                expected,
            );
            Err(invalid(vec![d], text))
        }
        // the blueprint exists but cannot be read: say so where the document names it
        Err(e) => {
            let d = Diagnostic::new(
                &loaded.file,
                loaded.source_map.value(ptr),
                "spec.blueprint.name",
                e.to_string(),
                "a readable blueprint with a valid blueprint.yaml",
            );
            Err(invalid(vec![d], text))
        }
    }
}
