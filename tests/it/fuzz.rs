//! Random and mutated YAML never panics the loader: every input ends in a
//! desired state or diagnostics.

use tomo::manifest::{self, LoadOptions, SecretCheck, Sources};

use crate::harness::repo;

/// A small deterministic PRNG (xorshift64*), so failures reproduce by seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const ALPHABET: &[&str] = &[
    ":",
    "-",
    " ",
    "  ",
    "\n",
    "\t",
    "[",
    "]",
    "{",
    "}",
    ",",
    "&a",
    "*a",
    "!!str ",
    "!x ",
    "|",
    ">",
    "'",
    "\"",
    "#",
    "?",
    "<<: ",
    "---\n",
    "...",
    "%YAML 1.2\n",
    "\\",
    "é",
    "0x1F",
    "1e9",
    "~",
    "null",
    "true",
    "kind",
    "App",
    "Server",
    "services",
    "image",
    "ports",
    "depends_on",
    "8080:80",
    "${A}",
    "\u{feff}",
    "\r\n",
];

fn load(text: &str) {
    let sources = Sources::from_texts([("fuzz.yaml", text)]);
    let secrets = SecretCheck::Known(Default::default());
    let l =
        manifest::load(&sources, &LoadOptions { secrets: &secrets, inline_check: tomo::vault::check_inline_format });
    // Every diagnostic renders without panicking too.
    for d in l.diagnostics.iter() {
        let _ = d.to_string();
    }
}

fn seeds() -> Vec<String> {
    let mut v = Vec::new();
    for dir in ["state", "examples/homelab", "tests/invalid"] {
        let s = manifest::read_dir(&repo().join(dir)).unwrap();
        v.extend(s.files.iter().map(|f| f.text.clone()));
    }
    v
}

#[test]
fn mutated_manifests_never_panic() {
    let seeds = seeds();
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    for i in 0..4000 {
        let mut text = seeds[rng.below(seeds.len())].clone();
        for _ in 0..1 + rng.below(6) {
            let mut at = rng.below(text.len() + 1);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            match rng.below(3) {
                0 => text.insert_str(at, ALPHABET[rng.below(ALPHABET.len())]),
                1 => {
                    let mut end = (at + 1 + rng.below(12)).min(text.len());
                    while !text.is_char_boundary(end) {
                        end += 1;
                    }
                    text.replace_range(at..end, "");
                }
                _ => {
                    let lines: Vec<&str> = text.lines().collect();
                    if lines.len() > 1 {
                        let l = lines[rng.below(lines.len())].to_string();
                        text.insert_str(at, &format!("{l}\n"));
                    }
                }
            }
        }
        let r = std::panic::catch_unwind(|| load(&text));
        assert!(r.is_ok(), "iteration {i} panicked on:\n{text}");
    }
}

#[test]
fn random_yaml_never_panics() {
    let mut rng = Rng(0xdead_beef_cafe_f00d);
    for i in 0..3000 {
        let mut text = String::new();
        for _ in 0..rng.below(40) {
            text.push_str(ALPHABET[rng.below(ALPHABET.len())]);
        }
        let r = std::panic::catch_unwind(|| load(&text));
        assert!(r.is_ok(), "iteration {i} panicked on: {text:?}");
    }
}

#[test]
fn deep_nesting_and_alias_bombs_are_refused() {
    let deep = format!("{}{}", "[".repeat(500), "]".repeat(500));
    load(&deep);
    let mut bomb = String::from("a: &a [x,x,x,x,x,x,x,x,x,x]\n");
    for (p, c) in ('a'..='i').zip('b'..='j') {
        bomb.push_str(&format!("{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n"));
    }
    load(&bomb);
}
