//! What the catalog reads from a compose file's services (or an App
//! manifest's, which has the same shape where it matters): the services in
//! order, their images, and the host ports they publish. Lenient: what it
//! cannot read it leaves out.

use crate::manifest::yaml::{Node, Value};

/// The text of a scalar (a string, number or boolean).
pub fn text(node: &Node) -> Option<String> {
    match &node.value {
        Value::String(s) | Value::Number(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The strings of a sequence (or of one string).
pub fn strings(node: Option<&Node>) -> Vec<String> {
    match node.map(|n| &n.value) {
        Some(Value::Seq(items)) => items.iter().filter_map(text).collect(),
        Some(Value::String(s)) if !s.is_empty() => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// The services, in file order.
pub fn services(root: &Node) -> Vec<(&str, &Node)> {
    root.get("services")
        .and_then(Node::as_map)
        .map_or_else(Vec::new, |m| m.iter().map(|(k, v)| (k.name.as_str(), v)).collect())
}

/// The tag of an image reference (`latest` when it has none), without a digest.
pub fn image_tag(image: &str) -> String {
    let image = image.split('@').next().unwrap_or(image);
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.rsplit_once(':') {
        Some((_, tag)) if !tag.is_empty() => tag.to_string(),
        _ => "latest".to_string(),
    }
}

/// `${VAR:-default}` and `${VAR-default}` replaced by their defaults.
pub fn with_defaults(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let inner = &after[..end];
        match inner.find(":-").map(|i| (i, 2)).or_else(|| inner.find('-').map(|i| (i, 1))) {
            Some((i, n)) => out.push_str(&inner[i + n..]),
            None => {
                out.push_str("${");
                out.push_str(inner);
                out.push('}');
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// One port entry: (published host port(s) as written, container port, protocol).
pub fn port_parts(node: &Node) -> Option<(Option<String>, String, String)> {
    if node.as_map().is_some() {
        let target = node.get("target").and_then(text)?;
        let published = node.get("published").and_then(text).map(|p| with_defaults(&p));
        let proto = node.get("protocol").and_then(text).unwrap_or_else(|| "tcp".to_string());
        return Some((published.filter(|p| !p.is_empty()), target, proto));
    }
    let s = with_defaults(&text(node)?);
    let (s, proto) = match s.rsplit_once('/') {
        Some((a, p)) => (a.to_string(), p.to_string()),
        None => (s, "tcp".to_string()),
    };
    // An IPv6 host address is bracketed: `[::1]:8080:80`.
    let unbracketed = match s.rfind(']') {
        Some(i) => &s[i + 1..],
        None => s.as_str(),
    };
    let parts: Vec<&str> = unbracketed.split(':').filter(|p| !p.is_empty()).collect();
    match parts.as_slice() {
        [target] => Some((None, target.to_string(), proto)),
        [.., published, target] => Some((Some(published.to_string()), target.to_string(), proto)),
        [] => None,
    }
}

/// The host ports a published value stands for (`8080`, `8000-8010`).
pub fn host_ports(published: &str) -> Vec<u16> {
    match published.split_once('-') {
        Some((a, b)) => match (a.trim().parse::<u16>(), b.trim().parse::<u16>()) {
            (Ok(a), Ok(b)) if a <= b && b - a < 100 => (a..=b).collect(),
            (Ok(a), _) => vec![a],
            _ => Vec::new(),
        },
        None => published.trim().parse::<u16>().ok().into_iter().collect(),
    }
}

/// Every host port the services publish, sorted, once each.
pub fn published_ports(root: &Node) -> Vec<u16> {
    let mut ports: Vec<u16> = services(root)
        .into_iter()
        .filter_map(|(_, s)| match s.get("ports").map(|p| &p.value) {
            Some(Value::Seq(items)) => Some(items),
            _ => None,
        })
        .flatten()
        .filter_map(port_parts)
        .filter_map(|(published, _, _)| published)
        .flat_map(|p| host_ports(&p))
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(yaml: &str) -> Node {
        let (docs, err) = crate::manifest::yaml::parse(yaml);
        assert!(err.is_none(), "{err:?}");
        docs.into_iter().next().unwrap().root
    }

    #[test]
    fn image_tags() {
        assert_eq!(image_tag("amir20/dozzle:v10.7.1@sha256:abc"), "v10.7.1");
        assert_eq!(image_tag("localhost:5000/app"), "latest");
        assert_eq!(image_tag("nginx"), "latest");
        assert_eq!(image_tag("ghcr.io/a/b:1.2"), "1.2");
    }

    #[test]
    fn ports_in_every_syntax() {
        let root = node(
            r#"
services:
  a:
    ports: ["8888:8080", "127.0.0.1:9000:9000/udp", "80", "[::1]:7000:70", "${P:-6000}:60", "5000-5002:5000-5002"]
  b:
    ports:
      - target: 8096
        published: "8097"
      - {target: 1, published: 8097}
      - 53
"#,
        );
        assert_eq!(published_ports(&root), vec![5000, 5001, 5002, 6000, 7000, 8097, 8888, 9000]);
    }
}
