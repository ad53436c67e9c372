//! Task inputs from the command line: a directory holds one input per file,
//! a `.jsonl` file one input per line.

use std::path::Path;

use anyhow::{Context, bail};

/// The inputs at `path`, in task order.
///
/// - A directory: each regular file (symbolic links followed) is one input,
///   its whole content, in file-name order (byte order, so `task-010` comes
///   after `task-009` but `task-10` before `task-9`: pad numbers).
///   Subdirectories are skipped.
/// - A `.jsonl` file: each line that is not blank is one input, its bytes
///   without the line ending (`\n` or `\r\n`).
///
/// An empty set is an error: a workload without tasks is surely a mistake.
pub fn read_inputs(path: &Path) -> anyhow::Result<Vec<Vec<u8>>> {
    let metadata = std::fs::metadata(path)
        .with_context(|| format!("cannot read inputs {}", path.display()))?;
    let inputs = if metadata.is_dir() {
        read_directory(path)?
    } else if path.extension().is_some_and(|ext| ext == "jsonl") {
        let text = std::fs::read(path)
            .with_context(|| format!("cannot read inputs {}", path.display()))?;
        split_lines(&text)
    } else {
        bail!(
            "inputs {} must be a directory (one file per task) or a .jsonl file (one line per task)",
            path.display()
        );
    };
    if inputs.is_empty() {
        let what = if metadata.is_dir() {
            "no files"
        } else {
            "no non-blank lines"
        };
        bail!(
            "no task inputs: {} has {what}, and a workload needs at least one task",
            path.display()
        );
    }
    Ok(inputs)
}

fn read_directory(dir: &Path) -> anyhow::Result<Vec<Vec<u8>>> {
    let cannot_list = || format!("cannot list inputs directory {}", dir.display());
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(cannot_list)? {
        let path = entry.with_context(cannot_list)?.path();
        let metadata = std::fs::metadata(&path)
            .with_context(|| format!("cannot read input {}", path.display()))?;
        if metadata.is_file() {
            files.push(path);
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    files
        .iter()
        .map(|path| {
            std::fs::read(path).with_context(|| format!("cannot read input {}", path.display()))
        })
        .collect()
}

/// The non-blank lines of `text`, without their line endings.
pub fn split_lines(text: &[u8]) -> Vec<Vec<u8>> {
    text.split(|&byte| byte == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
        .map(<[u8]>::to_vec)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_gives_one_input_per_file_in_name_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        for (name, content) in [("b", "2"), ("a", "1"), ("c.json", "{\"x\":3}\n")] {
            std::fs::write(dir.path().join(name), content).expect("write");
        }
        std::fs::create_dir(dir.path().join("aa-subdir")).expect("mkdir");
        let inputs = read_inputs(dir.path()).expect("inputs");
        assert_eq!(
            inputs,
            vec![b"1".to_vec(), b"2".to_vec(), b"{\"x\":3}\n".to_vec()]
        );
    }

    #[test]
    fn a_jsonl_file_gives_one_input_per_non_blank_line() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("inputs.jsonl");
        std::fs::write(&file, "{\"a\":1}\n\n  \n{\"a\":2}\r\n{\"a\":3}").expect("write");
        let inputs = read_inputs(&file).expect("inputs");
        assert_eq!(
            inputs,
            vec![
                b"{\"a\":1}".to_vec(),
                b"{\"a\":2}".to_vec(),
                b"{\"a\":3}".to_vec()
            ]
        );
    }

    #[test]
    fn an_empty_set_of_inputs_is_an_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let error = read_inputs(dir.path()).expect_err("empty dir");
        assert!(error.to_string().contains("no task inputs"), "{error}");
        let file = dir.path().join("blank.jsonl");
        std::fs::write(&file, "\n\n").expect("write");
        let error = read_inputs(&file).expect_err("blank file");
        assert!(error.to_string().contains("no non-blank lines"), "{error}");
    }

    #[test]
    fn other_files_and_missing_paths_are_errors() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("inputs.txt");
        std::fs::write(&file, "1\n").expect("write");
        let error = read_inputs(&file).expect_err("not jsonl");
        assert!(error.to_string().contains("must be a directory"), "{error}");
        let error = read_inputs(&dir.path().join("missing")).expect_err("missing");
        assert!(error.to_string().contains("cannot read inputs"), "{error}");
    }
}
