//! Rendering speed: one example, and 1,000 distinct Platform documents.
//! Run: cargo bench --bench render
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use terroir::document::load_str;
use terroir::pipeline::blueprint::Catalog;
use terroir::pipeline::render::Renderer;

fn example(name: &str) -> String {
    std::fs::read_to_string(format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR")))
        .expect("example readable")
}

/// 1,000 distinct documents: names, addresses, sizes and targets all vary.
fn corpus() -> Vec<(String, String)> {
    let bases = [
        example("baremetal.yaml"),
        example("kubernetes.yaml"),
        example("secnumcloud-outscale.yaml"),
    ];
    (0..1000)
        .map(|i| {
            let base = &bases[i % 3];
            let text = base
                .replace("name: acme-crm", &format!("name: acme-crm-{i}"))
                .replace("name: mutuelle-crm", &format!("name: mutuelle-crm-{i}"))
                .replace(
                    "namespace: mutuelle-crm",
                    &format!("namespace: mutuelle-crm-{i}"),
                )
                .replace(
                    "name: collectivite-grc",
                    &format!("name: collectivite-grc-{i}"),
                )
                .replace("198.18.0.", &format!("198.18.{}.", i % 250))
                .replace(
                    "maxConnections: 200",
                    &format!("maxConnections: {}", 100 + i),
                )
                .replace("storage: 200Gi", &format!("storage: {}Gi", 100 + i));
            (format!("doc-{i}.yaml"), text)
        })
        .collect()
}

fn one_example(c: &mut Criterion) {
    let text = example("kubernetes.yaml");
    let catalog = Catalog::default();
    // Cold: what one `terroir render` does in-process (blueprint loaded and compiled each time).
    c.bench_function(
        "render kubernetes example (cold: load, validate, compile templates, render, sums)",
        |b| {
            b.iter(|| {
                let loaded = load_str("kubernetes.yaml", &text).expect("valid");
                let renderer =
                    Renderer::new(catalog.load("engagement-platform").expect("blueprint"))
                        .expect("compiles");
                let (_, tree) = renderer.render(&loaded).expect("renders");
                tree.sha256sums()
            })
        },
    );
    let renderer =
        Renderer::new(catalog.load("engagement-platform").expect("blueprint")).expect("compiles");
    c.bench_function(
        "render kubernetes example (warm: templates already compiled)",
        |b| {
            b.iter(|| {
                let loaded = load_str("kubernetes.yaml", &text).expect("valid");
                let (_, tree) = renderer.render(&loaded).expect("renders");
                tree.sha256sums()
            })
        },
    );
}

fn thousand_documents(c: &mut Criterion) {
    let docs = corpus();
    let catalog = Catalog::default();
    let mut group = c.benchmark_group("1000 documents");
    group.sample_size(10);
    group.bench_function(
        "render 1,000 distinct Platform documents (one thread)",
        |b| {
            b.iter(|| {
                let renderer =
                    Renderer::new(catalog.load("engagement-platform").expect("blueprint"))
                        .expect("compiles");
                let mut files = 0;
                for (name, text) in &docs {
                    let loaded = load_str(name, text).expect("valid");
                    let (_, tree) = renderer.render(&loaded).expect("renders");
                    files += tree.files.len();
                    std::hint::black_box(tree.sha256sums());
                }
                files
            })
        },
    );
    group.finish();
    // One plain wall-clock figure for the README.
    let start = Instant::now();
    let renderer =
        Renderer::new(catalog.load("engagement-platform").expect("blueprint")).expect("compiles");
    for (name, text) in &docs {
        let loaded = load_str(name, text).expect("valid");
        std::hint::black_box(renderer.render(&loaded).expect("renders").1.sha256sums());
    }
    eprintln!(
        "1,000 documents, one pass: {:.3} s",
        start.elapsed().as_secs_f64()
    );
}

criterion_group!(benches, one_example, thousand_documents);
criterion_main!(benches);
