//! A server's operating system as one probe found it: `/etc/os-release`
//! (`ID`, `ID_LIKE`, `VERSION_ID`, `VERSION_CODENAME`), `uname -m`, the init
//! system, the package managers, Docker's package and version, its socket,
//! the SSH user and its `sudo -n` right. `PROBE` is the one command that
//! gathers all of it; `HostFacts::parse` reads its output and never fails
//! (any text gives facts, unknowns left empty). Also the `docker.version`
//! constraint (`27.*`) and the shell quoting of argument lists.

use serde::{Deserialize, Serialize};

/// The probe, run as `sh -c PROBE tomo-facts SOCKET` (the socket path is an
/// argument, never part of the script). One line per fact, `key=value`;
/// `/etc/os-release` between `[os-release]` and `[end]`.
pub const PROBE: &str = r#"echo 'tomo-facts 1'
if [ -r /etc/os-release ]; then echo '[os-release]'; head -c 16384 /etc/os-release; echo; echo '[end]'; fi
echo "arch=$(uname -m)"
echo "uid=$(id -u)"
echo "user=$(id -un)"
if [ -d /run/systemd/system ]; then echo init=systemd
elif command -v openrc >/dev/null 2>&1 || command -v rc-service >/dev/null 2>&1; then echo init=openrc
else echo init=unknown; fi
for p in apt-get dnf yum apk pacman; do command -v "$p" >/dev/null 2>&1 && echo "pm=$p"; done
PATH="$PATH:/usr/sbin:/sbin"
if command -v dockerd >/dev/null 2>&1; then echo "dockerd=$(dockerd --version 2>/dev/null | head -n 1)"; fi
if command -v dpkg-query >/dev/null 2>&1; then dpkg-query -W -f='pkg=${db:Status-Abbrev}|${Package}|${Version}\n' docker.io docker-ce moby-engine 2>/dev/null; fi
if command -v rpm >/dev/null 2>&1; then rpm -q --qf 'pkg=ii|%{NAME}|%{VERSION}\n' docker-ce moby-engine docker 2>/dev/null | grep '^pkg='; fi
if command -v apk >/dev/null 2>&1; then apk info -ev docker 2>/dev/null | sed -n '1s/^docker-\([0-9][^ ]*\).*/pkg=ii|docker|\1/p'; fi
if command -v pacman >/dev/null 2>&1; then pacman -Q docker 2>/dev/null | sed 's/^\([^ ]*\) \(.*\)$/pkg=ii|\1|\2/'; fi
if [ -S "$1" ]; then echo socket=yes; if [ -r "$1" ] && [ -w "$1" ]; then echo socket_access=yes; fi; fi
if [ "$(id -u)" != 0 ]; then if ! command -v sudo >/dev/null 2>&1; then echo sudo=missing
elif sudo -n true >/dev/null 2>&1; then echo sudo=yes; else echo sudo=no; fi; fi
exit 0
"#;

/// The init system that runs services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Init {
    Systemd,
    Openrc,
    #[default]
    Unknown,
}

/// A package manager found on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageManager {
    Apt,
    Dnf,
    Yum,
    Apk,
    Pacman,
}

impl PackageManager {
    pub fn command(self) -> &'static str {
        match self {
            PackageManager::Apt => "apt-get",
            PackageManager::Dnf => "dnf",
            PackageManager::Yum => "yum",
            PackageManager::Apk => "apk",
            PackageManager::Pacman => "pacman",
        }
    }

    fn from_command(c: &str) -> Option<PackageManager> {
        Some(match c {
            "apt-get" => PackageManager::Apt,
            "dnf" => PackageManager::Dnf,
            "yum" => PackageManager::Yum,
            "apk" => PackageManager::Apk,
            "pacman" => PackageManager::Pacman,
            _ => return None,
        })
    }
}

/// Whether the SSH user may run `sudo -n` (asked only when it is not root).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SudoRight {
    /// Root needs none (or it was not asked).
    #[default]
    NotNeeded,
    Yes,
    /// `sudo -n` asks for a password or refuses.
    No,
    /// There is no `sudo`.
    Missing,
}

/// A package of Docker Engine found installed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstalledPackage {
    pub name: String,
    pub version: String,
}

/// What the probe found. Strings are as the server wrote them, bounded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct HostFacts {
    /// `ID` of os-release (`debian`, `ubuntu`, `rocky`, …), lowercased.
    pub os_id: String,
    /// `ID_LIKE`, split.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub os_like: Vec<String>,
    pub version_id: String,
    /// `VERSION_CODENAME` (Debian and Ubuntu name their apt suites so).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub codename: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pretty_name: String,
    /// `uname -m`.
    pub arch: String,
    pub init: Init,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub package_managers: Vec<PackageManager>,
    pub user: String,
    pub uid: Option<u32>,
    pub sudo: SudoRight,
    /// `dockerd --version`'s version (`27.3.1`), when dockerd is installed.
    pub docker_version: Option<String>,
    /// Docker Engine packages installed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<InstalledPackage>,
    /// The socket exists.
    pub socket: bool,
    /// The SSH user may read and write the socket.
    pub socket_access: bool,
    /// The Engine answered an API call (set by observation, not the probe).
    #[serde(default)]
    pub daemon: bool,
}

fn bounded(v: &str) -> String {
    crate::term::field(v.trim()).into_owned()
}

impl HostFacts {
    /// Reads the probe's output. Never fails: what is missing or malformed
    /// is left unknown.
    pub fn parse(text: &str) -> HostFacts {
        let mut f = HostFacts::default();
        let mut in_release = false;
        for line in text.lines().take(10_000) {
            let line = line.trim_end_matches('\r');
            if line == "[os-release]" {
                in_release = true;
                continue;
            }
            if line == "[end]" {
                in_release = false;
                continue;
            }
            let Some((k, v)) = line.split_once('=') else { continue };
            if in_release {
                f.os_release_field(k.trim(), &unquote(v));
            } else {
                f.probe_field(k, v);
            }
        }
        f
    }

    fn os_release_field(&mut self, k: &str, v: &str) {
        match k {
            "ID" => self.os_id = bounded(v).to_ascii_lowercase(),
            "ID_LIKE" => self.os_like = v.split_whitespace().take(8).map(|w| bounded(w).to_ascii_lowercase()).collect(),
            "VERSION_ID" => self.version_id = bounded(v),
            "VERSION_CODENAME" => self.codename = bounded(v),
            "PRETTY_NAME" => self.pretty_name = bounded(v),
            _ => {}
        }
    }

    fn probe_field(&mut self, k: &str, v: &str) {
        match k {
            "arch" => self.arch = bounded(v),
            "uid" => self.uid = v.trim().parse().ok(),
            "user" => self.user = bounded(v),
            "init" => {
                self.init = match v.trim() {
                    "systemd" => Init::Systemd,
                    "openrc" => Init::Openrc,
                    _ => Init::Unknown,
                }
            }
            "pm" => {
                if let Some(p) = PackageManager::from_command(v.trim())
                    && !self.package_managers.contains(&p)
                {
                    self.package_managers.push(p);
                }
            }
            "dockerd" => self.docker_version = dockerd_version(v),
            "pkg" => {
                // `STATUS|NAME|VERSION`; dpkg's `ii` = installed (`un`, `rc`: not).
                let mut w = v.split('|').map(str::trim);
                if let (Some("ii"), Some(name), Some(version)) = (w.next(), w.next(), w.next())
                    && !name.is_empty()
                    && !version.is_empty()
                    && self.packages.len() < 8
                {
                    self.packages.push(InstalledPackage { name: bounded(name), version: bounded(version) });
                }
            }
            "socket" => self.socket = v.trim() == "yes",
            "socket_access" => self.socket_access = v.trim() == "yes",
            "sudo" => {
                self.sudo = match v.trim() {
                    "yes" => SudoRight::Yes,
                    "missing" => SudoRight::Missing,
                    _ => SudoRight::No,
                }
            }
            _ => {}
        }
    }

    pub fn is_root(&self) -> bool {
        self.uid == Some(0)
    }

    /// Whether Docker Engine is installed (dockerd found, or a package).
    pub fn docker_installed(&self) -> bool {
        self.docker_version.is_some() || !self.packages.is_empty()
    }

    /// The OS in a few words: `debian 12 (x86_64)`.
    pub fn os_summary(&self) -> String {
        let id = if self.os_id.is_empty() { "unknown OS" } else { &self.os_id };
        let v = if self.version_id.is_empty() { String::new() } else { format!(" {}", self.version_id) };
        let arch = if self.arch.is_empty() { "unknown architecture" } else { &self.arch };
        format!("{id}{v} ({arch})")
    }

    /// Docker's state in a few words: `27.3.1, answering` / `not installed`.
    pub fn docker_summary(&self) -> String {
        if !self.docker_installed() {
            return "not installed".into();
        }
        let v = self.docker_version.clone().unwrap_or_else(|| "installed".into());
        let state = match (self.daemon, self.socket) {
            (true, _) => "answering",
            (false, true) => "socket present, not answering",
            (false, false) => "not running",
        };
        format!("{v}, {state}")
    }
}

/// An os-release value without its quotes (`"12 (bookworm)"` → `12 (bookworm)`).
fn unquote(v: &str) -> String {
    let v = v.trim();
    let inner = v
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .or_else(|| v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))
        .unwrap_or(v);
    inner.replace("\\\"", "\"").replace("\\$", "$").replace("\\\\", "\\")
}

/// `Docker version 26.1.5+dfsg1, build a72d7cd` → `26.1.5`.
fn dockerd_version(line: &str) -> Option<String> {
    let rest = line.trim().strip_prefix("Docker version ")?;
    let v: String = rest.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
    let v = v.trim_end_matches('.');
    (!v.is_empty() && v.len() <= 32).then(|| v.to_string())
}

/// A `docker.version` constraint: a version prefix, `27`, `27.*`, `24.0.*`
/// or `27.3.1`: the versions whose leading numbers are these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct VersionConstraint {
    parts: Vec<u32>,
}

impl VersionConstraint {
    pub fn parse(s: &str) -> Result<VersionConstraint, String> {
        let body = s.trim().strip_suffix(".*").unwrap_or(s.trim());
        let parts: Option<Vec<u32>> =
            body.split('.').map(|p| if p.len() <= 6 { p.parse::<u32>().ok() } else { None }).collect();
        match parts {
            Some(parts) if !parts.is_empty() && parts.len() <= 3 => Ok(VersionConstraint { parts }),
            _ => Err(format!(
                "`{}` is not a version constraint: write leading version numbers, e.g. `27`, `27.*`, `24.0.*` or `27.3.1`",
                s.escape_default()
            )),
        }
    }

    /// The numbers fixed (`27.*` → [27]).
    pub fn parts(&self) -> &[u32] {
        &self.parts
    }

    /// The prefix as written without `.*`: `27`, `24.0`.
    pub fn prefix(&self) -> String {
        self.parts.iter().map(u32::to_string).collect::<Vec<_>>().join(".")
    }

    /// How an installed `version` stands to the constraint.
    pub fn compare(&self, version: &str) -> std::cmp::Ordering {
        let have = numbers(version);
        for (i, want) in self.parts.iter().enumerate() {
            match have.get(i).copied().unwrap_or(0).cmp(want) {
                std::cmp::Ordering::Equal => continue,
                other => return other,
            }
        }
        std::cmp::Ordering::Equal
    }

    pub fn matches(&self, version: &str) -> bool {
        self.compare(version) == std::cmp::Ordering::Equal
    }
}

impl std::fmt::Display for VersionConstraint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.parts.len() == 3 { write!(f, "{}", self.prefix()) } else { write!(f, "{}.*", self.prefix()) }
    }
}

impl TryFrom<String> for VersionConstraint {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        VersionConstraint::parse(&s)
    }
}

impl From<VersionConstraint> for String {
    fn from(c: VersionConstraint) -> String {
        c.to_string()
    }
}

/// The leading numbers of a version (`26.1.5+dfsg1` → [26, 1, 5]).
pub fn numbers(version: &str) -> Vec<u32> {
    let v = version.split(['+', '-', '~', ' ']).next().unwrap_or("");
    v.split('.').map_while(|p| p.parse().ok()).take(4).collect()
}

/// `major.minor` of a version, for plans (`26.1.5` → `26.1`).
pub fn short_version(version: &str) -> String {
    let n = numbers(version);
    match n.as_slice() {
        [] => crate::term::field(version).into_owned(),
        [a] => a.to_string(),
        [a, b, ..] => format!("{a}.{b}"),
    }
}

/// Quotes one argument for a POSIX shell: `'…'`, with `'` written `'\''`.
pub fn quote(arg: &str) -> String {
    if !arg.is_empty() && arg.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:@,+%".contains(c)) {
        return arg.to_string();
    }
    format!("'{}'", arg.replace('\'', r"'\''"))
}

/// The command line of an argument list, every argument quoted, behind
/// `sudo -n --` when `sudo`.
pub fn command_line<S: AsRef<str>>(args: &[S], sudo: bool) -> String {
    let quoted: Vec<String> = args.iter().map(|a| quote(a.as_ref())).collect();
    if sudo { format!("sudo -n -- {}", quoted.join(" ")) } else { quoted.join(" ") }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBIAN_PROBE: &str = "tomo-facts 1\n[os-release]\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nID=debian\n\n[end]\narch=x86_64\nuid=1000\nuser=deploy\ninit=systemd\npm=apt-get\ndockerd=Docker version 20.10.24+dfsg1, build 297e128\npkg=un |docker-ce|\npkg=ii |docker.io|20.10.24+dfsg1-1+b3\nsocket=yes\nsudo=yes\n";

    #[test]
    fn a_debian_probe() {
        let f = HostFacts::parse(DEBIAN_PROBE);
        assert_eq!(f.os_id, "debian");
        assert_eq!(f.version_id, "12");
        assert_eq!(f.codename, "bookworm");
        assert_eq!(f.arch, "x86_64");
        assert_eq!(f.uid, Some(1000));
        assert_eq!(f.init, Init::Systemd);
        assert_eq!(f.package_managers, vec![PackageManager::Apt]);
        assert_eq!(f.docker_version.as_deref(), Some("20.10.24"));
        assert_eq!(f.packages.len(), 1);
        assert_eq!(f.packages[0].name, "docker.io");
        assert!(f.socket && !f.socket_access);
        assert_eq!(f.sudo, SudoRight::Yes);
        assert!(f.docker_installed());
    }

    #[test]
    fn removed_packages_do_not_count() {
        let f = HostFacts::parse("pkg=rc |docker.io|20.10\npkg=un |docker-ce|\n");
        assert!(!f.docker_installed());
    }

    #[test]
    fn constraints() {
        let c = VersionConstraint::parse("27.*").unwrap();
        assert!(c.matches("27.3.1"));
        assert_eq!(c.compare("26.1.5"), std::cmp::Ordering::Less);
        assert_eq!(c.compare("28.0.0"), std::cmp::Ordering::Greater);
        let c = VersionConstraint::parse("24.0.*").unwrap();
        assert!(c.matches("24.0.7+dfsg1"));
        assert!(!c.matches("24.1.0"));
        assert_eq!(c.to_string(), "24.0.*");
        assert_eq!(VersionConstraint::parse("27.3.1").unwrap().to_string(), "27.3.1");
        for bad in ["", "*", "latest", "27.x", ">=27", "1.2.3.4", "27.*.*", "99999999"] {
            assert!(VersionConstraint::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn quoting() {
        assert_eq!(command_line(&["echo", "a b", "it's"], true), r"sudo -n -- echo 'a b' 'it'\''s'");
    }

    proptest::proptest! {
        #[test]
        fn the_parser_takes_any_text(s in ".{0,2000}") {
            let f = HostFacts::parse(&s);
            proptest::prop_assert!(f.os_id.len() <= crate::term::FIELD_MAX + 40);
            let _ = f.os_summary();
            let _ = f.docker_summary();
        }

        #[test]
        fn the_parser_takes_any_probe_lines(lines in proptest::collection::vec("(ID|VERSION_ID|ID_LIKE|arch|uid|pm|pkg|dockerd|sudo|init|socket|\\[os-release\\]|\\[end\\])(=.{0,40})?", 0..40)) {
            let _ = HostFacts::parse(&lines.join("\n"));
        }

        #[test]
        fn constraints_take_any_text(s in ".{0,40}", v in ".{0,40}") {
            if let Ok(c) = VersionConstraint::parse(&s) {
                let _ = c.matches(&v);
                proptest::prop_assert_eq!(VersionConstraint::parse(&c.to_string()).ok(), Some(c));
            }
            let _ = short_version(&v);
        }
    }
}
