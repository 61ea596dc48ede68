//! One pass over a plain-format `pg_dump` stream: the stream itself goes to the dump file, and
//! every table's data section is turned, as it passes, into a CSV file, a row count and a content
//! checksum. The database is read once, never held in memory.
//!
//! The content checksum of a table is the sum (wrapping, 128 bits) of the XXH3-128 hash of each
//! row in PostgreSQL's text COPY format. It does not depend on row order, so a restored table
//! (whose rows may come back in another physical order) has the same checksum as the original
//! when it holds the same rows. It detects accidental differences (a lost, duplicated or changed
//! row), not deliberate ones: the export's files are protected by their SHA-256 in SHA256SUMS.
//! XXH3 rather than SHA-256 per row: the database is read at the speed of pg_dump.

/// What one table's data section held.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TableStats {
    /// `schema.table`, unquoted.
    pub name: String,
    pub columns: Vec<String>,
    pub rows: u64,
    /// See the module documentation: `xxh3-128-rowsum:` followed by 32 hex digits.
    pub checksum: String,
}

/// Where each table's CSV goes.
pub trait CsvSink {
    /// A table's section begins; false to only count and checksum it.
    fn begin(&mut self, table: &str) -> std::io::Result<bool>;
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()>;
    /// The table's section ended.
    fn end(&mut self, table: &str) -> std::io::Result<()>;
}

/// Counting only: no CSV is written.
pub struct NoCsv;

impl CsvSink for NoCsv {
    fn begin(&mut self, _: &str) -> std::io::Result<bool> {
        Ok(false)
    }
    fn write(&mut self, _: &[u8]) -> std::io::Result<()> {
        Ok(())
    }
    fn end(&mut self, _: &str) -> std::io::Result<()> {
        Ok(())
    }
}

struct Current {
    stats: TableStats,
    sum: u128,
    csv: bool,
}

/// Feed it the dump's bytes in any chunks; `finish` returns every table's figures.
pub struct DumpSplitter<S: CsvSink> {
    sink: S,
    carry: Vec<u8>,
    current: Option<Current>,
    tables: Vec<TableStats>,
    field: Vec<u8>,
    out: Vec<u8>,
    line_no: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error("dump line {line}: {message}")]
    Format { line: u64, message: String },
    #[error("writing the CSV of {table}: {source}")]
    Io {
        table: String,
        source: std::io::Error,
    },
}

impl<S: CsvSink> DumpSplitter<S> {
    pub fn new(sink: S) -> Self {
        DumpSplitter {
            sink,
            carry: Vec::with_capacity(1 << 16),
            current: None,
            tables: Vec::new(),
            field: Vec::with_capacity(256),
            out: Vec::with_capacity(1 << 12),
            line_no: 0,
        }
    }

    pub fn feed(&mut self, mut chunk: &[u8]) -> Result<(), DumpError> {
        // finish a line begun in an earlier chunk
        if !self.carry.is_empty() {
            match memchr::memchr(b'\n', chunk) {
                Some(i) => {
                    let mut line = std::mem::take(&mut self.carry);
                    line.extend_from_slice(&chunk[..i]);
                    self.line(&line)?;
                    line.clear();
                    self.carry = line;
                    chunk = &chunk[i + 1..];
                }
                None => {
                    self.carry.extend_from_slice(chunk);
                    return Ok(());
                }
            }
        }
        let mut start = 0;
        for i in memchr::memchr_iter(b'\n', chunk) {
            self.line(&chunk[start..i])?;
            start = i + 1;
        }
        self.carry.extend_from_slice(&chunk[start..]);
        Ok(())
    }

    pub fn finish(self) -> Result<Vec<TableStats>, DumpError> {
        self.finish_with_sink().map(|(t, _)| t)
    }

    /// As `finish`, also giving the sink back.
    pub fn finish_with_sink(mut self) -> Result<(Vec<TableStats>, S), DumpError> {
        if !self.carry.is_empty() {
            let line = std::mem::take(&mut self.carry);
            self.line(&line)?;
        }
        if let Some(c) = &self.current {
            return Err(DumpError::Format {
                line: self.line_no,
                message: format!(
                    "the data of {} ends without `\\.`: the dump is truncated",
                    c.stats.name
                ),
            });
        }
        Ok((self.tables, self.sink))
    }

    fn line(&mut self, line: &[u8]) -> Result<(), DumpError> {
        self.line_no += 1;
        if self.current.is_none() {
            if line.starts_with(b"COPY ") && line.ends_with(b" FROM stdin;") {
                let (name, columns) =
                    parse_copy_header(&line[5..line.len() - 12]).ok_or_else(|| {
                        DumpError::Format {
                            line: self.line_no,
                            message: format!(
                                "cannot read the COPY header `{}`",
                                String::from_utf8_lossy(line)
                            ),
                        }
                    })?;
                let csv = self.sink.begin(&name).map_err(|source| DumpError::Io {
                    table: name.clone(),
                    source,
                })?;
                if csv {
                    let header: Vec<Vec<u8>> =
                        columns.iter().map(|c| c.as_bytes().to_vec()).collect();
                    let mut out = Vec::new();
                    for (i, c) in header.iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        csv_field(&mut out, c);
                    }
                    out.push(b'\n');
                    self.sink.write(&out).map_err(|source| DumpError::Io {
                        table: name.clone(),
                        source,
                    })?;
                }
                self.current = Some(Current {
                    stats: TableStats {
                        name,
                        columns,
                        rows: 0,
                        checksum: String::new(),
                    },
                    sum: 0,
                    csv,
                });
            }
            return Ok(());
        }
        if line == b"\\." {
            let Some(mut c) = self.current.take() else {
                return Ok(());
            };
            let hex = format!("xxh3-128-rowsum:{:032x}", c.sum);
            c.stats.checksum = hex;
            if c.csv {
                self.sink
                    .end(&c.stats.name)
                    .map_err(|source| DumpError::Io {
                        table: c.stats.name.clone(),
                        source,
                    })?;
            }
            self.tables.push(c.stats);
            return Ok(());
        }
        let Some(c) = self.current.as_mut() else {
            return Ok(());
        };
        c.stats.rows += 1;
        c.sum = c.sum.wrapping_add(xxhash_rust::xxh3::xxh3_128(line));
        if c.csv {
            let out = &mut self.out;
            out.clear();
            // Most rows need no quoting or unescaping: no backslash (escapes, NULL), no comma,
            // no quote, no empty field. Then a tab becomes a comma and that is all.
            let plain = memchr::memchr3(b'\\', b',', b'"', line).is_none()
                && !line.is_empty()
                && line[0] != b'\t'
                && line[line.len() - 1] != b'\t'
                && memchr::memmem::find(line, b"\t\t").is_none();
            if plain {
                out.extend(line.iter().map(|&b| if b == b'\t' { b',' } else { b }));
            } else {
                let mut start = 0;
                let mut first = true;
                let ends = memchr::memchr_iter(b'\t', line).chain(std::iter::once(line.len()));
                for end in ends {
                    let raw = &line[start..end];
                    start = end + 1;
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    if raw == b"\\N" {
                        continue; // NULL: an unquoted empty field, as PostgreSQL's CSV writes it
                    }
                    if memchr::memchr(b'\\', raw).is_none() {
                        csv_field(out, raw);
                    } else {
                        self.field.clear();
                        unescape(raw, &mut self.field);
                        csv_field(out, &self.field);
                    }
                }
            }
            out.push(b'\n');
            self.sink.write(out).map_err(|source| DumpError::Io {
                table: c.stats.name.clone(),
                source,
            })?;
        }
        Ok(())
    }
}

/// `public.t (a, "B c")` → ("public.t", ["a", "B c"]).
fn parse_copy_header(s: &[u8]) -> Option<(String, Vec<String>)> {
    let s = std::str::from_utf8(s).ok()?;
    let (name, rest) = match s.find(" (") {
        Some(i) => (&s[..i], Some(&s[i + 2..])),
        None => (s, None),
    };
    let name = split_identifiers(name, '.')?.join(".");
    let columns = match rest {
        Some(r) => split_identifiers(r.strip_suffix(')')?, ',')?
            .into_iter()
            .map(|c| c.trim().to_owned())
            .collect(),
        None => Vec::new(),
    };
    Some((name, columns))
}

/// Split on `sep` outside double quotes, unquoting each part (`""` is a quote).
fn split_identifiers(s: &str, sep: char) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = s.trim().chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                parts.push(std::mem::take(&mut cur).trim().to_owned());
            }
            c => cur.push(c),
        }
    }
    if quoted {
        return None;
    }
    parts.push(cur.trim().to_owned());
    Some(parts)
}

/// Undo COPY text-format escapes.
fn unescape(raw: &[u8], out: &mut Vec<u8>) {
    if memchr::memchr(b'\\', raw).is_none() {
        out.extend_from_slice(raw);
        return;
    }
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b != b'\\' || i + 1 >= raw.len() {
            out.push(b);
            i += 1;
            continue;
        }
        let e = raw[i + 1];
        i += 2;
        match e {
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                for _ in 0..2 {
                    match raw.get(i) {
                        Some(d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push((v & 0xff) as u8);
            }
            b'x' if raw.get(i).is_some_and(u8::is_ascii_hexdigit) => {
                let mut v = 0u32;
                for _ in 0..2 {
                    match raw.get(i).and_then(|d| (*d as char).to_digit(16)) {
                        Some(d) => {
                            v = v * 16 + d;
                            i += 1;
                        }
                        None => break,
                    }
                }
                out.push((v & 0xff) as u8);
            }
            other => out.push(other),
        }
    }
}

/// One CSV field as PostgreSQL's CSV format writes a non-NULL value: quoted when empty, when it
/// holds a separator, a quote or a line break, or when it is `\.`.
fn csv_field(out: &mut Vec<u8>, v: &[u8]) {
    let needs = v.is_empty()
        || v == b"\\."
        || memchr::memchr3(b',', b'"', b'\n', v).is_some()
        || memchr::memchr(b'\r', v).is_some();
    if !needs {
        out.extend_from_slice(v);
        return;
    }
    out.push(b'"');
    for &b in v {
        if b == b'"' {
            out.push(b'"');
        }
        out.push(b);
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Default, Clone)]
    struct Collect(
        Arc<Mutex<std::collections::BTreeMap<String, Vec<u8>>>>,
        Arc<Mutex<String>>,
    );
    impl CsvSink for Collect {
        fn begin(&mut self, t: &str) -> std::io::Result<bool> {
            *self.1.lock().unwrap() = t.to_owned();
            Ok(true)
        }
        fn write(&mut self, b: &[u8]) -> std::io::Result<()> {
            let t = self.1.lock().unwrap().clone();
            self.0
                .lock()
                .unwrap()
                .entry(t)
                .or_default()
                .extend_from_slice(b);
            Ok(())
        }
        fn end(&mut self, _: &str) -> std::io::Result<()> {
            Ok(())
        }
    }

    const DUMP: &[u8] = b"--\n-- PostgreSQL database dump\n--\nSET statement_timeout = 0;\n\
COPY public.customers (id, name, note) FROM stdin;\n\
1\tAnne\t\\N\n\
2\tBob, Jr.\tsays \"hi\"\\nand bye\n\
3\t\tback\\\\slash\\ttab\n\
\\.\n\
\n\
COPY \"Sales\".\"Order Lines\" (\"Id\", qty) FROM stdin;\n\
10\t5\n\
\\.\n\
SELECT pg_catalog.setval('public.customers_id_seq', 3, true);\n";

    fn split(chunk: usize) -> (Vec<TableStats>, std::collections::BTreeMap<String, Vec<u8>>) {
        let c = Collect::default();
        let mut s = DumpSplitter::new(c.clone());
        for part in DUMP.chunks(chunk) {
            s.feed(part).unwrap();
        }
        let t = s.finish().unwrap();
        let files = c.0.lock().unwrap().clone();
        (t, files)
    }

    #[test]
    fn tables_become_csv_with_counts_whatever_the_chunking() {
        let (tables, files) = split(1 << 20);
        assert_eq!(tables.len(), 2);
        assert_eq!(tables[0].name, "public.customers");
        assert_eq!(tables[0].columns, ["id", "name", "note"]);
        assert_eq!(tables[0].rows, 3);
        assert_eq!(tables[1].name, "Sales.Order Lines");
        assert_eq!(tables[1].columns, ["Id", "qty"]);
        assert_eq!(tables[1].rows, 1);
        let csv = String::from_utf8(files["public.customers"].clone()).unwrap();
        assert_eq!(
            csv,
            "id,name,note\n1,Anne,\n2,\"Bob, Jr.\",\"says \"\"hi\"\"\nand bye\"\n3,\"\",back\\slash\ttab\n"
        );
        for n in [1, 2, 3, 7, 64] {
            let (t, f) = split(n);
            assert_eq!(t, tables, "chunks of {n}");
            assert_eq!(f, files, "chunks of {n}");
        }
    }

    #[test]
    fn the_checksum_ignores_row_order_but_not_content() {
        let sum = |rows: &str| {
            let mut s = DumpSplitter::new(NoCsv);
            s.feed(format!("COPY public.t (a) FROM stdin;\n{rows}\\.\n").as_bytes())
                .unwrap();
            s.finish().unwrap().remove(0).checksum
        };
        assert_eq!(sum("1\n2\n3\n"), sum("3\n1\n2\n"));
        assert_ne!(sum("1\n2\n3\n"), sum("1\n2\n4\n"));
        assert_ne!(sum("1\n2\n"), sum("1\n2\n2\n"));
        assert!(sum("1\n").starts_with("xxh3-128-rowsum:"));
    }

    #[test]
    fn a_truncated_dump_is_an_error() {
        let mut s = DumpSplitter::new(NoCsv);
        s.feed(b"COPY public.t (a) FROM stdin;\n1\n2\n").unwrap();
        assert!(s.finish().unwrap_err().to_string().contains("truncated"));
    }

    #[test]
    fn octal_and_hex_escapes() {
        let mut out = Vec::new();
        unescape(b"a\\101\\x42\\\\", &mut out);
        assert_eq!(out, b"aAB\\");
    }
}

/// Leaves the platform's own plumbing out of a plain dump, as it streams by: the audit schema
/// `terroir_audit` and everything in it, event triggers, and the pgaudit extension. They are
/// made by the platform's converge, need a superuser, and mean nothing to whoever loads the
/// dump elsewhere. Entries are recognised by pg_dump's table-of-contents headers
/// (`-- Name: X; Type: T; Schema: S; Owner: O`), never inside COPY data.
#[derive(Debug, Default)]
pub struct PlumbingFilter {
    /// Bytes of a line not complete yet.
    partial: Vec<u8>,
    in_copy: bool,
    skipping: bool,
    /// Entries left out, for the manifest: `Type Name`.
    pub dropped: Vec<String>,
}

impl PlumbingFilter {
    fn plumbing(header: &str) -> Option<String> {
        let rest = header
            .strip_prefix("-- Name: ")
            .or_else(|| header.strip_prefix("-- Data for Name: "))?;
        let field = |key: &str| rest.split("; ").find_map(|f| f.strip_prefix(key));
        let name = rest.split("; ").next().unwrap_or_default();
        let kind = field("Type: ").unwrap_or_default();
        let schema = field("Schema: ").unwrap_or_default();
        let drop = kind == "EVENT TRIGGER"
            || schema == "terroir_audit"
            || (kind == "SCHEMA" && name == "terroir_audit")
            || (kind == "EXTENSION" && name == "pgaudit")
            || (kind == "COMMENT"
                && (name == "EXTENSION pgaudit"
                    || name == "SCHEMA terroir_audit"
                    || name.starts_with("EVENT TRIGGER ")));
        drop.then(|| format!("{kind} {name}"))
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<u8>) {
        if self.in_copy {
            if line == b"\\.\n" || line == b"\\." {
                self.in_copy = false;
            }
            if !self.skipping {
                out.extend_from_slice(line);
            }
            return;
        }
        if line.starts_with(b"-- ") && memchr::memmem::find(line, b"; Type: ").is_some() {
            let header = String::from_utf8_lossy(line);
            let header = header.trim_end();
            match Self::plumbing(header) {
                Some(what) => {
                    self.skipping = true;
                    self.dropped.push(what);
                }
                None => self.skipping = false,
            }
        } else if line.starts_with(b"-- PostgreSQL database dump complete") {
            self.skipping = false;
        }
        if line.starts_with(b"COPY ") && line.trim_ascii_end().ends_with(b" FROM stdin;") {
            self.in_copy = true;
        }
        if !self.skipping {
            out.extend_from_slice(line);
        }
    }

    /// Filter one chunk: what to pass on (whole lines; a trailing partial line waits).
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(chunk.len());
        let mut rest = chunk;
        if !self.partial.is_empty() {
            match memchr::memchr(b'\n', rest) {
                Some(i) => {
                    let mut line = std::mem::take(&mut self.partial);
                    line.extend_from_slice(&rest[..=i]);
                    self.line(&line, &mut out);
                    rest = &rest[i + 1..];
                }
                None => {
                    self.partial.extend_from_slice(rest);
                    return out;
                }
            }
        }
        while !rest.is_empty() {
            if self.in_copy {
                // the data of a table, passed through whole up to its terminator line
                let end = if rest.starts_with(b"\\.\n") {
                    Some(0)
                } else {
                    memchr::memmem::find(rest, b"\n\\.\n").map(|i| i + 1)
                };
                match end {
                    Some(i) => {
                        if !self.skipping {
                            out.extend_from_slice(&rest[..i]);
                        }
                        rest = &rest[i..];
                        self.line(&rest[..3], &mut out);
                        rest = &rest[3..];
                    }
                    None => {
                        // keep the last line back: it may be the start of the terminator
                        let keep = memchr::memrchr(b'\n', rest).map(|i| i + 1).unwrap_or(0);
                        if !self.skipping {
                            out.extend_from_slice(&rest[..keep]);
                        }
                        self.partial.extend_from_slice(&rest[keep..]);
                        return out;
                    }
                }
                continue;
            }
            match memchr::memchr(b'\n', rest) {
                Some(i) => {
                    self.line(&rest[..=i], &mut out);
                    rest = &rest[i + 1..];
                }
                None => {
                    self.partial.extend_from_slice(rest);
                    break;
                }
            }
        }
        out
    }

    /// The last bytes (a final line without a newline).
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let line = std::mem::take(&mut self.partial);
        if !line.is_empty() {
            self.line(&line, &mut out);
        }
        out
    }
}

#[cfg(test)]
mod plumbing_tests {
    use super::PlumbingFilter;

    const DUMP: &str = "--\n-- PostgreSQL database dump\n--\n\nSET statement_timeout = 0;\n\n--\n\
-- Name: terroir_audit; Type: SCHEMA; Schema: -; Owner: -\n--\n\nCREATE SCHEMA terroir_audit;\n\n\n--\n\
-- Name: pgaudit; Type: EXTENSION; Schema: -; Owner: -\n--\n\nCREATE EXTENSION IF NOT EXISTS pgaudit WITH SCHEMA public;\n\n\n--\n\
-- Name: EXTENSION pgaudit; Type: COMMENT; Schema: -; Owner: \n--\n\nCOMMENT ON EXTENSION pgaudit IS 'provides auditing functionality';\n\n\n--\n\
-- Name: personal(); Type: FUNCTION; Schema: terroir_audit; Owner: -\n--\n\nCREATE FUNCTION terroir_audit.personal() RETURNS event_trigger\n    LANGUAGE plpgsql\n    AS $_$\nbegin\nend $_$;\n\n\n--\n\
-- Name: customers; Type: TABLE; Schema: public; Owner: -\n--\n\nCREATE TABLE public.customers (\n    id integer,\n    note text\n);\n\n\n--\n\
-- Data for Name: customers; Type: TABLE DATA; Schema: public; Owner: -\n--\n\nCOPY public.customers (id, note) FROM stdin;\n\
1\t-- Name: x; Type: EVENT TRIGGER; Schema: -; Owner: -\n2\t\\\\.\n\\.\n\n\n--\n\
-- Name: terroir_audit_personal; Type: EVENT TRIGGER; Schema: -; Owner: -\n--\n\nCREATE EVENT TRIGGER terroir_audit_personal ON ddl_command_end\n   EXECUTE FUNCTION terroir_audit.personal();\n\n\n--\n\
-- PostgreSQL database dump complete\n--\n\n";

    fn filtered(chunk: usize) -> (String, Vec<String>) {
        let mut f = PlumbingFilter::default();
        let mut out = Vec::new();
        for c in DUMP.as_bytes().chunks(chunk) {
            out.extend(f.feed(c));
        }
        out.extend(f.finish());
        (String::from_utf8(out).unwrap(), f.dropped)
    }

    #[test]
    fn the_platform_plumbing_is_left_out_whatever_the_chunks() {
        let (whole, dropped) = filtered(DUMP.len());
        assert!(
            !whole.contains("terroir_audit")
                && !whole.contains("pgaudit")
                && !whole.contains("EVENT TRIGGER terroir"),
            "{whole}"
        );
        assert!(whole.contains("CREATE TABLE public.customers"), "{whole}");
        // COPY data that looks like a header is data
        assert!(
            whole.contains(
                "1\t-- Name: x; Type: EVENT TRIGGER; Schema: -; Owner: -\n2\t\\\\.\n\\.\n"
            ),
            "{whole}"
        );
        assert!(
            whole.ends_with("-- PostgreSQL database dump complete\n--\n\n"),
            "{whole}"
        );
        assert_eq!(
            dropped,
            [
                "SCHEMA terroir_audit",
                "EXTENSION pgaudit",
                "COMMENT EXTENSION pgaudit",
                "FUNCTION personal()",
                "EVENT TRIGGER terroir_audit_personal"
            ]
        );
        for chunk in [1, 2, 3, 7, 64] {
            assert_eq!(filtered(chunk).0, whole, "chunk size {chunk}");
        }
    }
}
