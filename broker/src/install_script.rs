//! The install script a broker serves at `/install.sh`: POSIX sh, written
//! to be read before it is run, with the broker's own download URL and the
//! sha256 of each build filled in when it is asked for. The template is
//! `install_script.sh` beside this file.

use crate::agent_dist::AgentDist;

/// The script, with `@BASE@`, `@TABLE@`, `@PLATFORMS@` and `@BROKER@` to fill.
const TEMPLATE: &str = include_str!("install_script.sh");

/// What stands for the broker's gRPC URL when it is not known.
const BROKER_PLACEHOLDER: &str = "BROKER_URL";

/// The script for a broker whose HTTP port volunteers reach at `base_url`
/// (e.g. `http://broker.example:8080`) and whose gRPC port at `broker_url`.
/// Both must be [`shell_safe`]: they are written into the script as they
/// are; an unsafe `broker_url` is replaced by a placeholder.
pub fn render(base_url: &str, builds: &AgentDist, broker_url: Option<&str>) -> String {
    debug_assert!(shell_safe(base_url), "{base_url}");
    let newest = builds.newest_per_platform();
    // Windows has no sh: its volunteers download from /downloads.
    let posix = newest.iter().filter(|((os, _), _)| *os != "windows");
    let mut table = String::new();
    let mut platforms = Vec::new();
    for ((os, arch), build) in posix {
        // Names and digests are made of letters, digits and `.+-_` only
        // (checked when the catalogue is read).
        table.push_str(&format!(
            "        {os}-{arch})\n            file='{}'\n            version='{}'\n            \
             sha256='{}'\n            ;;\n",
            build.file, build.name.version, build.sha256
        ));
        platforms.push(format!("{os}-{arch}"));
    }
    let platforms = if platforms.is_empty() {
        "none".to_owned()
    } else {
        platforms.join(", ")
    };
    let broker = broker_url
        .filter(|url| shell_safe(url))
        .unwrap_or(BROKER_PLACEHOLDER);
    TEMPLATE
        .replace("@TABLE@\n", &table)
        .replace("@PLATFORMS@", &platforms)
        .replace("@BASE@", base_url)
        .replace("@BROKER@", broker)
}

/// Whether `text` can stand in the script as it is, quoted or not: a URL
/// of letters, digits and `.:/[]_-` (no `$`, quotes, spaces or `;`).
pub fn shell_safe(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".:/[]_-".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dist_with(
        files: &[&str],
    ) -> Result<(tempfile::TempDir, AgentDist), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        for file in files {
            std::fs::write(dir.path().join(file), file.as_bytes())?;
        }
        let dist = AgentDist::scan(dir.path())?;
        Ok((dir, dist))
    }

    #[test]
    fn the_script_lists_the_newest_posix_build_of_each_platform()
    -> Result<(), Box<dyn std::error::Error>> {
        let (_dir, dist) = dist_with(&[
            "wasmgrid-agent-0.1.0-linux-x86_64",
            "wasmgrid-agent-0.2.0-linux-x86_64",
            "wasmgrid-agent-0.2.0-macos-aarch64",
            "wasmgrid-agent-0.2.0-windows-x86_64.exe",
        ])?;
        let script = render(
            "http://broker.example:8080",
            &dist,
            Some("https://broker.example:7070"),
        );
        let newest = dist.newest("linux", "x86_64").ok_or("no linux build")?;
        assert!(script.contains(&format!("sha256='{}'", newest.sha256)));
        assert!(script.contains("file='wasmgrid-agent-0.2.0-linux-x86_64'"));
        assert!(!script.contains("0.1.0"));
        assert!(!script.contains("windows"));
        assert!(script.contains("it has builds for: linux-x86_64, macos-aarch64"));
        assert!(script.contains("base='http://broker.example:8080'"));
        assert!(script.contains("update --broker https://broker.example:7070"));
        for placeholder in ["@BASE@", "@TABLE@", "@PLATFORMS@", "@BROKER@"] {
            assert!(
                !script.contains(placeholder),
                "{placeholder} is left:\n{script}"
            );
        }
        Ok(())
    }

    #[test]
    fn an_unsafe_broker_url_is_not_written_into_the_script()
    -> Result<(), Box<dyn std::error::Error>> {
        let (_dir, dist) = dist_with(&[])?;
        let script = render("http://b:1", &dist, Some("https://x$(rm -rf ~)"));
        assert!(!script.contains("rm -rf"));
        assert!(script.contains("--broker BROKER_URL"));
        assert!(script.contains("it has builds for: none"));
        assert!(!shell_safe("b'c"));
        assert!(shell_safe("http://[::1]:8080"));
        Ok(())
    }
}
