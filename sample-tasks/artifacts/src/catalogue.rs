//! The names of every guest program and hand-written hostile module.
//!
//! The lists are the contract between the guest workspace and the host
//! tests: a test below fails when a crate folder is added without being
//! listed here (and in `sample-tasks/Cargo.toml`), so every guest program is
//! built and can be required to have a host test.

/// Well-behaved tasks, `sample-tasks/tasks/<name>`.
pub const TASKS: &[&str] = &[
    "echo",
    "entropy",
    "exit-code",
    "mandelbrot",
    "memory-probe",
    "nqueens",
    "primes",
    "sum-u64",
];

/// Hostile programs, one hostile behaviour each, `sample-tasks/hostile/<name>`.
pub const HOSTILE: &[&str] = &[
    "deep-recursion",
    "escape-attempts",
    "hostcall-loop",
    "huge-output",
    "infinite-loop",
    "memory-bomb",
    "panic",
    "trap",
];

/// Hostile modules that are not Rust crates, as files in
/// `sample-tasks/hostile/`: see [`hostile_file`](crate::hostile_file).
pub const HOSTILE_FILES: &[&str] = &[
    "garbage.wasm",
    "native-stack-overflow.wat",
    "not-a-command.wat",
    "start-section-loop.wat",
    "table-bomb.wat",
    "unknown-import.wat",
];

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;

    use super::*;
    use crate::repo_root;

    /// Names of the crate folders (with a Cargo.toml) under `folder`.
    fn crate_folders(folder: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(folder)
            .expect("sample-tasks folder is readable")
            .map(|entry| entry.expect("readable entry").path())
            .filter(|path| path.join("Cargo.toml").is_file())
            .filter_map(|path| Some(path.file_name()?.to_str()?.to_owned()))
            .collect();
        names.sort();
        names
    }

    fn sorted(names: &[&str]) -> Vec<String> {
        let mut names: Vec<String> = names.iter().map(|&name| name.to_owned()).collect();
        names.sort();
        names
    }

    #[test]
    fn lists_match_the_crate_folders() {
        let sample_tasks = repo_root().join("sample-tasks");
        assert_eq!(crate_folders(&sample_tasks.join("tasks")), sorted(TASKS));
        assert_eq!(
            crate_folders(&sample_tasks.join("hostile")),
            sorted(HOSTILE)
        );
    }

    #[test]
    fn every_program_is_a_guest_workspace_member() {
        let manifest = fs::read_to_string(repo_root().join("sample-tasks/Cargo.toml"))
            .expect("guest workspace manifest is readable");
        let members = TASKS
            .iter()
            .map(|name| format!("\"tasks/{name}\""))
            .chain(HOSTILE.iter().map(|name| format!("\"hostile/{name}\"")));
        for member in members {
            assert!(
                manifest.contains(&member),
                "{member} missing from sample-tasks/Cargo.toml"
            );
        }
    }

    #[test]
    fn hostile_files_match_the_folder() {
        let mut files: Vec<String> = fs::read_dir(repo_root().join("sample-tasks/hostile"))
            .expect("hostile folder is readable")
            .map(|entry| entry.expect("readable entry").path())
            .filter(|path| path.is_file())
            .filter_map(|path| Some(path.file_name()?.to_str()?.to_owned()))
            .collect();
        files.sort();
        assert_eq!(files, sorted(HOSTILE_FILES));
    }

    #[test]
    fn names_are_unique() {
        let mut all = sorted(TASKS);
        all.extend(sorted(HOSTILE));
        let count = all.len();
        all.sort();
        all.dedup();
        assert_eq!(
            all.len(),
            count,
            "a task and a hostile program share a name"
        );
    }

    #[test]
    fn wat_files_are_valid_text() {
        for file_name in HOSTILE_FILES.iter().filter(|name| name.ends_with(".wat")) {
            let path = repo_root().join("sample-tasks/hostile").join(file_name);
            let binary =
                wat::parse_file(&path).unwrap_or_else(|error| panic!("{file_name}: {error}"));
            assert!(binary.starts_with(b"\0asm"), "{file_name}");
        }
    }

    #[test]
    fn garbage_passes_the_header_check() {
        let bytes = fs::read(repo_root().join("sample-tasks/hostile/garbage.wasm"))
            .expect("garbage.wasm is readable");
        assert_eq!(bytes.len(), 256);
        // Valid magic and version: a parser must reject the sections, not
        // merely the header.
        assert_eq!(&bytes[..8], b"\0asm\x01\0\0\0");
    }
}
