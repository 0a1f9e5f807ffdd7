//! Container images written without a builder or a registry: one uncompressed layer of the given
//! files, saved as a `docker save` archive, which `ctr images import`, `docker load` and
//! `podman load` all read. Enough for static binaries on `scratch` (the sandbox image, test
//! images); the project's own images come from `scripts/build-images` ([`project_archive`]).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use serde_json::json;

/// The archive of one of the project's images (a `scripts/build-images` target such as `probe`),
/// built offline or found in the script's layer cache; its build log goes to stderr.
pub fn project_archive(target: &str) -> Result<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/build-images");
    let out = Command::new("bash")
        .arg(&script)
        .arg(target)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !out.status.success() {
        bail!("scripts/build-images {target} failed ({})", out.status);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    match stdout.lines().last() {
        Some(path) if !path.is_empty() => Ok(PathBuf::from(path)),
        _ => bail!("scripts/build-images {target} printed no archive"),
    }
}

enum Entry {
    Dir,
    File { contents: Vec<u8>, mode: u32 },
    Symlink { target: String },
}

/// An image reference and the files of its single layer.
pub struct Image {
    reference: String,
    entries: Vec<(String, Entry)>,
    entrypoint: Vec<String>,
    env: Vec<String>,
}

impl Image {
    /// An empty image named `reference` (e.g. `localhost/kube-controlplane/pause:1`).
    pub fn new(reference: &str) -> Self {
        Self {
            reference: reference.to_string(),
            entries: Vec::new(),
            entrypoint: Vec::new(),
            env: vec!["PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin".into()],
        }
    }

    pub fn reference(&self) -> &str {
        &self.reference
    }

    /// Adds a file with the given contents and permission bits at the absolute `path`.
    pub fn file(mut self, path: &str, contents: Vec<u8>, mode: u32) -> Self {
        self.add_parents(path);
        self.entries
            .push((path.to_string(), Entry::File { contents, mode }));
        self
    }

    /// Adds a copy of the host file `source` at `path`, keeping its permission bits.
    pub fn host_file(self, path: &str, source: &Path) -> Result<Self> {
        use std::os::unix::fs::PermissionsExt;
        let contents =
            std::fs::read(source).with_context(|| format!("reading {}", source.display()))?;
        let mode = std::fs::metadata(source)?.permissions().mode() & 0o7777;
        Ok(self.file(path, contents, mode))
    }

    /// Adds a symbolic link at `path` pointing to `target`.
    pub fn symlink(mut self, path: &str, target: &str) -> Self {
        self.add_parents(path);
        self.entries.push((
            path.to_string(),
            Entry::Symlink {
                target: target.to_string(),
            },
        ));
        self
    }

    /// Adds an (empty) directory.
    pub fn dir(mut self, path: &str) -> Self {
        self.add_parents(&format!("{}/x", path.trim_end_matches('/')));
        self
    }

    pub fn entrypoint(mut self, args: &[&str]) -> Self {
        self.entrypoint = args.iter().map(|a| a.to_string()).collect();
        self
    }

    fn add_parents(&mut self, path: &str) {
        let mut parent = String::new();
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        for part in &parts[..parts.len().saturating_sub(1)] {
            parent.push('/');
            parent.push_str(part);
            if !self.entries.iter().any(|(p, _)| *p == parent) {
                self.entries.push((parent.clone(), Entry::Dir));
            }
        }
    }

    /// Writes the image as a `docker save` archive to `out`.
    pub fn write_archive(&self, out: &Path) -> Result<()> {
        let mut layer = Tar::default();
        for (path, entry) in &self.entries {
            let name = path.trim_start_matches('/');
            match entry {
                Entry::Dir => layer.append(&format!("{name}/"), b'5', 0o755, b"", "")?,
                Entry::File { contents, mode } => layer.append(name, b'0', *mode, contents, "")?,
                Entry::Symlink { target } => layer.append(name, b'2', 0o777, b"", target)?,
            }
        }
        let layer = layer.finish();
        let layer_digest = sha256_hex(&layer);
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        };
        let config = json!({
            "architecture": arch,
            "os": "linux",
            "config": {"Entrypoint": self.entrypoint, "Env": self.env},
            "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{layer_digest}")]},
            "history": [{"created_by": "kube-controlplane image writer"}],
        })
        .to_string()
        .into_bytes();
        let config_name = format!("{}.json", sha256_hex(&config));
        let layer_name = format!("{layer_digest}/layer.tar");
        let manifest = json!([{
            "Config": config_name,
            "RepoTags": [self.reference],
            "Layers": [layer_name],
        }])
        .to_string()
        .into_bytes();
        let mut archive = Tar::default();
        archive.append(&format!("{layer_digest}/"), b'5', 0o755, b"", "")?;
        archive.append(&layer_name, b'0', 0o644, &layer, "")?;
        archive.append(&config_name, b'0', 0o644, &config, "")?;
        archive.append("manifest.json", b'0', 0o644, &manifest, "")?;
        std::fs::write(out, archive.finish()).with_context(|| format!("writing {}", out.display()))
    }
}

fn sha256_hex(data: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A ustar archive in memory: the few entry kinds an image layer needs, owned by root, mtime 0
/// (so the same files always give the same digest).
#[derive(Default)]
struct Tar {
    bytes: Vec<u8>,
}

impl Tar {
    fn append(&mut self, name: &str, kind: u8, mode: u32, data: &[u8], link: &str) -> Result<()> {
        if name.len() > 100 || link.len() > 100 {
            bail!("image path {name:?} (or its link target) is longer than 100 bytes");
        }
        let mut header = [0u8; 512];
        header[..name.len()].copy_from_slice(name.as_bytes());
        let octal = |field: &mut [u8], value: u64| {
            let text = format!("{value:0width$o}", width = field.len() - 1);
            field[..text.len()].copy_from_slice(text.as_bytes());
        };
        octal(&mut header[100..108], u64::from(mode));
        octal(&mut header[108..116], 0);
        octal(&mut header[116..124], 0);
        octal(&mut header[124..136], data.len() as u64);
        octal(&mut header[136..148], 0);
        header[156] = kind;
        header[157..157 + link.len()].copy_from_slice(link.as_bytes());
        header[257..263].copy_from_slice(b"ustar\0");
        header[263..265].copy_from_slice(b"00");
        header[148..156].copy_from_slice(b"        ");
        let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
        let text = format!("{sum:06o}\0 ");
        header[148..156].copy_from_slice(text.as_bytes());
        self.bytes.extend_from_slice(&header);
        self.bytes.extend_from_slice(data);
        self.bytes.resize(self.bytes.len().next_multiple_of(512), 0);
        Ok(())
    }

    fn finish(mut self) -> Vec<u8> {
        self.bytes.extend_from_slice(&[0u8; 1024]);
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_is_a_docker_save_tar_with_one_layer() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("image.tar");
        Image::new("localhost/test/hello:1")
            .file("/bin/hello", b"#!hello".to_vec(), 0o755)
            .symlink("/bin/hi", "hello")
            .entrypoint(&["/bin/hello"])
            .write_archive(&out)
            .unwrap();
        // GNU tar reads both levels and sees exactly what was put in.
        let list = |args: &[&str]| {
            let out = std::process::Command::new("tar")
                .args(args)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        };
        let outer = list(&["-tf", out.to_str().unwrap()]);
        assert!(outer.lines().any(|l| l == "manifest.json"), "{outer}");
        let layer = outer.lines().find(|l| l.ends_with("/layer.tar")).unwrap();
        let manifest = list(&["-xOf", out.to_str().unwrap(), "manifest.json"]);
        let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
        assert_eq!(manifest[0]["RepoTags"][0], "localhost/test/hello:1");
        assert_eq!(manifest[0]["Layers"][0], layer);
        list(&[
            "-xf",
            out.to_str().unwrap(),
            "-C",
            dir.path().to_str().unwrap(),
        ]);
        let layer_list = list(&["-tvf", dir.path().join(layer).to_str().unwrap()]);
        assert!(layer_list.contains("bin/hi -> hello"), "{layer_list}");
        assert!(layer_list.contains("-rwxr-xr-x"), "{layer_list}");
        // The layer digest in the config is the layer's real sha256.
        let digest = layer.trim_end_matches("/layer.tar");
        let bytes = std::fs::read(dir.path().join(layer)).unwrap();
        assert_eq!(sha256_hex(&bytes), digest);
    }
}
