//! The dump splitter alone, on a synthetic plain-format dump held in memory: how fast one core
//! turns pg_dump's stream into CSV, row counts and content checksums, against SHA-256 of the same
//! bytes (what `pg_dump | sha256sum` costs on top of the dump).
//!
//!   cargo bench --bench pgdump
#![allow(clippy::unwrap_used)]
use std::io::Write;
use std::time::Instant;

use sha2::Digest;
use terroir::reversibility::pgdump::{CsvSink, DumpSplitter, NoCsv};

struct Discard(u64);
impl CsvSink for Discard {
    fn begin(&mut self, _: &str) -> std::io::Result<bool> {
        Ok(true)
    }
    fn write(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.0 += b.len() as u64;
        Ok(())
    }
    fn end(&mut self, _: &str) -> std::io::Result<()> {
        Ok(())
    }
}

fn main() {
    // rows shaped like benches/export.sh's `events` table
    let mut dump = Vec::new();
    writeln!(
        dump,
        "COPY public.events (id, customer, kind, at, payload) FROM stdin;"
    )
    .unwrap();
    let kinds = ["mail", "call", "chat", "visit"];
    for i in 0..2_000_000u64 {
        let h = format!(
            "{:032x}",
            (i as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c834)
        );
        writeln!(
            dump,
            "{i}\t{}\t{}\t2026-01-01 00:00:00+00\t{h} {h} {}",
            i % 100_000,
            kinds[(i % 4) as usize],
            "x".repeat((i % 40) as usize)
        )
        .unwrap();
    }
    writeln!(dump, "\\.").unwrap();
    let mb = dump.len() as f64 / 1e6;
    let chunks: Vec<&[u8]> = dump.chunks(1 << 18).collect();
    let time = |name: &str, f: &mut dyn FnMut()| {
        let mut best = f64::MAX;
        for _ in 0..3 {
            let t = Instant::now();
            f();
            best = best.min(t.elapsed().as_secs_f64());
        }
        println!(
            "{name:<40} {:>8.1} ms  {:>8.0} MB/s",
            best * 1000.0,
            mb / best
        );
    };
    println!("synthetic dump: {mb:.0} MB, 2,000,000 rows");
    time("sha256 of the stream", &mut || {
        std::hint::black_box(sha2::Sha256::digest(&dump));
    });
    time("split: counts and checksums only", &mut || {
        let mut s = DumpSplitter::new(NoCsv);
        for c in &chunks {
            s.feed(c).unwrap();
        }
        std::hint::black_box(s.finish().unwrap());
    });
    time("split: with CSV (discarded)", &mut || {
        let mut s = DumpSplitter::new(Discard(0));
        for c in &chunks {
            s.feed(c).unwrap();
        }
        std::hint::black_box(s.finish().unwrap());
    });
}
