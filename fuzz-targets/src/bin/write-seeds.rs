//! Writes every target's seeds to `DIR/<target>/seed-<sha256 prefix>`, where
//! `cargo fuzz run <target>` finds them (DIR is `fuzz/corpus`):
//!
//! ```text
//! cargo run -p wasmgrid-fuzz-targets --bin write-seeds -- fuzz/corpus
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use sha2::{Digest, Sha256};
use wasmgrid_fuzz_targets::{TARGETS, seeds};

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: write-seeds DIR   (e.g. fuzz/corpus)");
        return ExitCode::from(2);
    };
    for (target, _) in TARGETS {
        let target_dir = dir.join(target);
        if let Err(error) = std::fs::create_dir_all(&target_dir) {
            eprintln!("cannot create {}: {error}", target_dir.display());
            return ExitCode::FAILURE;
        }
        let mut inputs = seeds::for_target(target);
        inputs.extend(
            seeds::repository_files(target)
                .into_iter()
                .map(|(_, bytes)| bytes),
        );
        for input in &inputs {
            let name = format!("seed-{}", &hex::encode(Sha256::digest(input))[..16]);
            let path = target_dir.join(name);
            if let Err(error) = std::fs::write(&path, input) {
                eprintln!("cannot write {}: {error}", path.display());
                return ExitCode::FAILURE;
            }
        }
        println!("{}: {} seeds", target_dir.display(), inputs.len());
    }
    ExitCode::SUCCESS
}
