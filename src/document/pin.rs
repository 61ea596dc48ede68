//! Writing image references pinned by digest into a document's text. Only `spec.images` entries
//! change (the mapping is added when missing); every other byte, comments included, stays as
//! written. The caller loads the edited text again before writing it.

use super::diagnostic::one_of;
use super::image::{DIGEST_EXPECTED, DigestError, ImageRef};
use super::load::parse_yaml;
use super::platform::Images;
use super::source::{Pos, SourceMap};
use super::validate::is_image_ref;

/// One `KEY=REFERENCE@sha256:DIGEST` of the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    pub key: String,
    pub reference: String,
}

/// One entry of `spec.images` as it was and as it is written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    pub key: String,
    /// The reference written before, if the entry existed.
    pub before: Option<String>,
    pub after: String,
}

/// The edited text and what changed in it (nothing when every pin was already written).
#[derive(Debug, Clone)]
pub struct Edit {
    pub text: String,
    pub changes: Vec<Change>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImagePinError {
    #[error("`{0}` is not KEY=REFERENCE@sha256:DIGEST")]
    Syntax(String),
    #[error("unknown image key `{key}`; expected {expected}")]
    UnknownKey { key: String, expected: String },
    #[error("`{key}={reference}` is not pinned; expected {DIGEST_EXPECTED}")]
    NotPinned { key: String, reference: String },
    #[error("`{key}`: image {source}; expected {DIGEST_EXPECTED}")]
    Digest {
        key: String,
        #[source]
        source: DigestError,
    },
    #[error(
        "`{key}={reference}` is not a container image reference; expected a repository such as `terroir/postgres:15-bookworm`, relative to the registry or starting with a registry host"
    )]
    Reference { key: String, reference: String },
    #[error("{file}:{pos}: {what}; expected {expected}")]
    Layout {
        file: String,
        pos: Pos,
        what: String,
        expected: &'static str,
    },
    #[error(
        "{file}: pinning would change more than `spec.images`, so the file was left as it is; expected a document whose `spec` is a block mapping, one key per line"
    )]
    Unconfined { file: String },
    #[error("{file}: the document cannot be read: {first}")]
    Unreadable { file: String, first: String },
}

impl Pin {
    /// Read `KEY=REFERENCE@sha256:DIGEST`: a known key and a reference pinned by SHA-256.
    pub fn parse(arg: &str) -> Result<Self, ImagePinError> {
        let (key, reference) = arg
            .split_once('=')
            .ok_or_else(|| ImagePinError::Syntax(arg.to_owned()))?;
        if !Images::KEYS.contains(&key) {
            let mut expected = one_of(&Images::KEYS);
            if key == "app" {
                expected.push_str(" (the application's image is `spec.components.app.image`)");
            } else if let Some(s) = super::diagnostic::did_you_mean(key, Images::KEYS) {
                expected = format!("{expected} (did you mean `{s}`?)");
            }
            return Err(ImagePinError::UnknownKey {
                key: key.to_owned(),
                expected,
            });
        }
        let parsed = ImageRef::parse(reference).map_err(|source| ImagePinError::Digest {
            key: key.to_owned(),
            source,
        })?;
        if parsed.sha256.is_none() {
            return Err(ImagePinError::NotPinned {
                key: key.to_owned(),
                reference: reference.to_owned(),
            });
        }
        if !is_image_ref(reference) {
            return Err(ImagePinError::Reference {
                key: key.to_owned(),
                reference: reference.to_owned(),
            });
        }
        Ok(Pin {
            key: key.to_owned(),
            reference: reference.to_owned(),
        })
    }
}

/// `text` with every pin written into `spec.images`.
pub fn pin(file: &str, text: &str, pins: &[Pin]) -> Result<Edit, ImagePinError> {
    let mut text = text.to_owned();
    let mut changes = Vec::new();
    for p in pins {
        let (raw, map) = parse_yaml(file, &text).map_err(|d| ImagePinError::Unreadable {
            file: file.to_owned(),
            first: d.first().map(ToString::to_string).unwrap_or_default(),
        })?;
        let before = raw
            .pointer(&format!("/spec/images/{}", p.key))
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned);
        if before.as_deref() == Some(p.reference.as_str()) {
            continue;
        }
        text = write_one(file, &text, &raw, &map, p)?;
        changes.retain(|c: &Change| c.key != p.key);
        changes.push(Change {
            key: p.key.clone(),
            before,
            after: p.reference.clone(),
        });
    }
    Ok(Edit { text, changes })
}

/// The document's lines, each with its line ending.
fn lines(text: &str) -> Vec<&str> {
    text.split_inclusive('\n').collect()
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// Whether a line holds something (not blank, not only a comment).
fn is_content(line: &str) -> bool {
    let t = line.trim();
    !t.is_empty() && !t.starts_with('#')
}

/// The index of the last content line of the block mapping opened at line `open` (0-based)
/// whose key is indented by `parent`.
fn block_end(lines: &[&str], open: usize, parent: usize) -> usize {
    let mut last = open;
    for (i, l) in lines.iter().enumerate().skip(open + 1) {
        if !is_content(l) {
            continue;
        }
        if indent(l) <= parent {
            break;
        }
        last = i;
    }
    last
}

fn write_one(
    file: &str,
    text: &str,
    raw: &serde_json::Value,
    map: &SourceMap,
    p: &Pin,
) -> Result<String, ImagePinError> {
    let ending = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let mut out: Vec<String> = lines(text).into_iter().map(str::to_owned).collect();
    if let Some(last) = out.last_mut()
        && !last.ends_with('\n')
    {
        last.push_str(ending);
    }
    let layout = |pos: Pos, what: &str, expected: &'static str| ImagePinError::Layout {
        file: file.to_owned(),
        pos,
        what: what.to_owned(),
        expected,
    };
    let entry = format!("/spec/images/{}", p.key);
    let line_of = |pos: Pos| usize::try_from(pos.line).unwrap_or(usize::MAX) - 1;
    if map.has(&entry) {
        // replace the scalar where it is written, keeping its quotes and what follows it
        let pos = map.value(&entry);
        let i = line_of(pos);
        let line = out.get(i).cloned().unwrap_or_default();
        let start = line
            .char_indices()
            .nth(usize::try_from(pos.column).unwrap_or(usize::MAX) - 1)
            .map_or(line.len(), |(b, _)| b);
        let rest = &line[start..];
        let end = scalar_len(rest).ok_or_else(|| {
            layout(
                pos,
                &format!("`spec.images.{}` is not written on one line", p.key),
                "a one-line value such as `postgres: terroir/postgres:15-bookworm`",
            )
        })?;
        let quote = &rest[..usize::from(rest.starts_with(['"', '\'']))];
        out[i] = format!(
            "{}{quote}{}{quote}{}",
            &line[..start],
            p.reference,
            &rest[end..]
        );
        return Ok(out.concat());
    }
    let block = "a block mapping, one key per line";
    if let Some(images) = raw.pointer("/spec/images") {
        let key_pos = map.key("/spec/images");
        let first = images
            .as_object()
            .and_then(|o| o.keys().next())
            .map(|k| map.key(&format!("/spec/images/{k}")));
        let Some(first) = first.filter(|f| f.line > key_pos.line) else {
            return Err(layout(key_pos, "`spec.images` is written inline", block));
        };
        let i = line_of(key_pos);
        let end = block_end(
            &out.iter().map(String::as_str).collect::<Vec<_>>(),
            i,
            indent(&out[i]),
        );
        let pad = " ".repeat(usize::try_from(first.column).unwrap_or(1) - 1);
        out.insert(end + 1, format!("{pad}{}: {}{ending}", p.key, p.reference));
        return Ok(out.concat());
    }
    let spec_key = map.key("/spec");
    let first = raw
        .pointer("/spec")
        .and_then(serde_json::Value::as_object)
        .and_then(|o| o.keys().next())
        .map(|k| map.key(&format!("/spec/{k}")));
    let Some(first) = first.filter(|f| f.line > spec_key.line) else {
        return Err(layout(spec_key, "`spec` is written inline", block));
    };
    let i = line_of(spec_key);
    let parent = indent(&out[i]);
    let end = block_end(
        &out.iter().map(String::as_str).collect::<Vec<_>>(),
        i,
        parent,
    );
    let child = usize::try_from(first.column).unwrap_or(1) - 1;
    let pad = " ".repeat(child);
    let inner = " ".repeat(child + child.saturating_sub(parent).max(2));
    out.insert(
        end + 1,
        format!(
            "{pad}images:{ending}{inner}{}: {}{ending}",
            p.key, p.reference
        ),
    );
    Ok(out.concat())
}

/// The length in bytes of the one-line scalar at the start of `rest` (quotes included), or
/// `None` for a block scalar or a quoted one that does not close on this line.
fn scalar_len(rest: &str) -> Option<usize> {
    let body = rest.trim_end_matches(['\n', '\r']);
    match body.chars().next() {
        Some('|' | '>') | None => None,
        Some('\'') => {
            let mut chars = body.char_indices().skip(1).peekable();
            while let Some((i, c)) = chars.next() {
                if c == '\'' {
                    if chars.peek().is_some_and(|(_, n)| *n == '\'') {
                        chars.next();
                        continue;
                    }
                    return Some(i + 1);
                }
            }
            None
        }
        Some('"') => {
            let mut escaped = false;
            for (i, c) in body.char_indices().skip(1) {
                match c {
                    '\\' if !escaped => escaped = true,
                    '"' if !escaped => return Some(i + 1),
                    _ => escaped = false,
                }
            }
            None
        }
        Some(_) => {
            let cut = body.find(" #").unwrap_or(body.len());
            Some(body[..cut].trim_end().len())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn pin_of(key: &str, reference: &str) -> Pin {
        Pin::parse(&format!("{key}={reference}@sha256:{HEX}")).expect("a valid pin")
    }

    const DOC: &str = "# head\napiVersion: terroir.eu/v1alpha1\nspec:\n  blueprint:\n    name: x # keep\n  endpoints: {}\n# tail\n";

    #[test]
    fn a_missing_mapping_is_added_at_the_end_of_spec() {
        let edit = pin("d.yaml", DOC, &[pin_of("postgres", "terroir/postgres")]).unwrap();
        assert_eq!(
            edit.text,
            format!(
                "# head\napiVersion: terroir.eu/v1alpha1\nspec:\n  blueprint:\n    name: x # keep\n  endpoints: {{}}\n  images:\n    postgres: terroir/postgres@sha256:{HEX}\n# tail\n"
            )
        );
        assert_eq!(edit.changes.len(), 1);
        assert_eq!(edit.changes[0].before, None);
    }

    #[test]
    fn entries_are_replaced_in_place_and_added_beside_the_others() {
        let doc = "spec:\n  images:\n    grafana: \"grafana/grafana-oss:12.1.1\"  # pinned later\n  endpoints: {}\n";
        let edit = pin(
            "d.yaml",
            doc,
            &[
                pin_of("grafana", "grafana/grafana-oss:12.1.1"),
                pin_of("postfix", "terroir/postfix:3.7-bookworm"),
            ],
        )
        .unwrap();
        assert_eq!(
            edit.text,
            format!(
                "spec:\n  images:\n    grafana: \"grafana/grafana-oss:12.1.1@sha256:{HEX}\"  # pinned later\n    postfix: terroir/postfix:3.7-bookworm@sha256:{HEX}\n  endpoints: {{}}\n"
            )
        );
        assert_eq!(
            edit.changes[0].before.as_deref(),
            Some("grafana/grafana-oss:12.1.1")
        );
        // pinning again changes nothing
        let again = pin(
            "d.yaml",
            &edit.text,
            &[pin_of("grafana", "grafana/grafana-oss:12.1.1")],
        )
        .unwrap();
        assert_eq!(again.text, edit.text);
        assert!(again.changes.is_empty());
    }

    #[test]
    fn inline_mappings_and_bad_arguments_are_refused() {
        let doc = "spec:\n  images: {grafana: x}\n";
        assert!(matches!(
            pin("d.yaml", doc, &[pin_of("postgres", "terroir/postgres")]),
            Err(ImagePinError::Layout { .. })
        ));
        assert!(matches!(
            Pin::parse(&format!("postgre=terroir/postgres@sha256:{HEX}")),
            Err(ImagePinError::UnknownKey { expected, .. }) if expected.contains("did you mean `postgres`")
        ));
        assert!(matches!(
            Pin::parse("postgres=terroir/postgres:15"),
            Err(ImagePinError::NotPinned { .. })
        ));
        assert!(matches!(
            Pin::parse("postgres=terroir/postgres@sha256:ABC"),
            Err(ImagePinError::Digest { .. })
        ));
        assert!(matches!(
            Pin::parse("postgres"),
            Err(ImagePinError::Syntax(_))
        ));
    }
}
