//! Writes a deterministic, realistic result archive for the validation benchmark.
//!
//! Usage: `archive_bench_generate OUT.zip FILES [SCALE]`
//!
//! SCALE (default 1) multiplies every file's size: 2,000 files at scale 10 make an
//! archive as big as 20,000 at scale 1, which separates memory that grows with the
//! entry count from memory that would grow with the bytes.
//!
//! The mix imitates a design-system export: mostly generated text (token files, CSS,
//! TypeScript, JSON) that compresses around 4-6x, plus about 15% binary assets that do
//! not compress (half stored, half deflated, as different zip writers do). Timestamps
//! and content depend only on FILES and SCALE, so two runs produce the same bytes.

use std::io::Write;

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime};

/// xorshift64*: deterministic and fast; quality is irrelevant here.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const WORDS: &[&str] = &[
    "color",
    "primary",
    "secondary",
    "background",
    "surface",
    "border",
    "radius",
    "spacing",
    "font",
    "weight",
    "size",
    "line",
    "height",
    "shadow",
    "elevation",
    "brand",
    "neutral",
    "success",
    "warning",
    "danger",
    "info",
    "hover",
    "active",
    "disabled",
    "focus",
    "text",
    "icon",
    "button",
    "input",
    "card",
    "modal",
    "tooltip",
    "badge",
    "avatar",
    "grid",
];

fn text(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 128);
    while out.len() < len {
        let a = WORDS[rng.below(WORDS.len() as u64) as usize];
        let b = WORDS[rng.below(WORDS.len() as u64) as usize];
        let line = match rng.below(3) {
            0 => format!(
                "  --{a}-{b}-{}: #{:06x};\n",
                rng.below(900),
                rng.below(1 << 24)
            ),
            1 => format!(
                "  \"{a}.{b}.{}\": {{ \"value\": \"{}px\", \"type\": \"{b}\" }},\n",
                rng.below(100),
                rng.below(64)
            ),
            _ => format!(
                "export const {a}{}{} = '{}rem';\n",
                b[..1].to_uppercase(),
                &b[1..],
                rng.below(40) as f64 / 8.0
            ),
        };
        out.extend(line.as_bytes());
    }
    out.truncate(len);
    out
}

fn binary(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend(rng.next().to_le_bytes());
    }
    out.truncate(len);
    out
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(out), Some(files)) = (args.next(), args.next()) else {
        eprintln!("usage: archive_bench_generate OUT.zip FILES [SCALE]");
        std::process::exit(2);
    };
    let files: u64 = files.parse().expect("FILES is a number");
    let scale: usize = args
        .next()
        .map_or(1, |s| s.parse().expect("SCALE is a number"));
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ files);
    let file = std::fs::File::create(&out).expect("create output");
    let mut zip = zip::ZipWriter::new(std::io::BufWriter::new(file));
    let time = DateTime::from_date_and_time(2024, 1, 1, 0, 0, 0).expect("valid date");
    let (mut raw, mut dirs) = (0u64, std::collections::BTreeSet::new());
    for i in 0..files {
        let group = ["tokens", "css", "js", "assets", "docs"][(i % 5) as usize];
        let dir = format!("{group}/set{:03}", i / 100 % 40);
        if dirs.insert(dir.clone()) {
            let opts = SimpleFileOptions::default().last_modified_time(time);
            zip.add_directory(format!("{dir}/"), opts).expect("add dir");
        }
        let is_binary = rng.below(100) < 15;
        let (name, data, method) = if is_binary {
            let len = 8_192 + rng.below(73_728) as usize;
            let method = if rng.below(2) == 0 {
                CompressionMethod::Stored
            } else {
                CompressionMethod::Deflated
            };
            (
                format!("{dir}/asset-{i}.png"),
                binary(&mut rng, len * scale),
                method,
            )
        } else {
            let len = 1_024 + rng.below(26_624) as usize;
            (
                format!("{dir}/file-{i}.txt"),
                text(&mut rng, len * scale),
                CompressionMethod::Deflated,
            )
        };
        raw += data.len() as u64;
        let opts = SimpleFileOptions::default()
            .compression_method(method)
            .last_modified_time(time)
            .unix_permissions(0o644);
        zip.start_file(name, opts).expect("start file");
        zip.write_all(&data).expect("write file");
    }
    zip.finish().expect("finish archive");
    let size = std::fs::metadata(&out).expect("stat output").len();
    println!("{out}: {files} files, {raw} bytes uncompressed, {size} bytes on disk");
}
