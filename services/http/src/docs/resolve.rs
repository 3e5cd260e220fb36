//! Maps a docs path (`/docs/<path>`) to a page: an area, one endpoint
//! (`api/describe/model/fields/field/GET`), every method of one route path, the error table or
//! one error code. Unknown paths get up to five suggestions, nearest by edit distance.

use super::areas::{self, AreaView};
use crate::registry::{self, RouteDoc};
use abbotik_domain::ErrorCode;

/// What a docs path names.
pub enum Page {
    Area(AreaView),
    /// One route (`…/GET`).
    Endpoint(&'static RouteDoc),
    /// Every method registered on one path (the endpoint path without its method).
    RoutePath(String, Vec<&'static RouteDoc>),
    Errors,
    ErrorCode(ErrorCode),
}

/// Why a path names no page.
pub enum Miss {
    /// Empty path (`/docs/`).
    Empty,
    /// Unknown; `planned` when it names a contract area this binary does not serve yet.
    Unknown {
        planned: Option<&'static str>,
        suggestions: Vec<String>,
    },
}

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];

/// `GET /api/describe/{model}/fields/{field}` → `api/describe/model/fields/field` (no method).
pub fn route_key(r: &RouteDoc) -> String {
    r.path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_matches(|c| c == '{' || c == '}' || c == '*' || c == ':'))
        .collect::<Vec<_>>()
        .join("/")
}

/// The docs page of one route: `/docs/api/describe/model/fields/field/GET`. A trailing-slash
/// route (`/docs/`, the empty case of `/docs/{*path}`) shares the page of its catch-all sibling.
pub fn endpoint_path(r: &RouteDoc) -> String {
    if r.path.len() > 1 && r.path.ends_with('/') {
        let sibling = registry::all().into_iter().find(|o| {
            o.method == r.method
                && o.path.len() > r.path.len()
                && o.path.starts_with(r.path)
                && o.path[r.path.len()..].starts_with("{*")
        });
        if let Some(o) = sibling {
            return endpoint_path(o);
        }
    }
    let key = route_key(r);
    if key.is_empty() {
        format!("/docs/{}", r.method)
    } else {
        format!("/docs/{key}/{}", r.method)
    }
}

/// Normalises a requested path: trims slashes, lower-cases, upper-cases a trailing method.
fn normalise(raw: &str) -> String {
    let segs: Vec<&str> = raw.split('/').filter(|s| !s.is_empty()).collect();
    let n = segs.len();
    segs.iter()
        .enumerate()
        .map(|(i, s)| {
            let up = s.to_ascii_uppercase();
            if i + 1 == n && METHODS.contains(&up.as_str()) {
                up
            } else {
                s.to_ascii_lowercase()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Resolves the part after `/docs/`.
pub fn resolve(raw: &str) -> Result<Page, Miss> {
    let path = normalise(raw);
    if path.is_empty() {
        return Err(Miss::Empty);
    }
    // Short forms: `data` = `api/data`, `data/model/GET` = `api/data/model/GET`.
    if let Some(p) = exact(&path).or_else(|| exact(&format!("api/{path}"))) {
        return Ok(p);
    }
    let planned = [path.clone(), format!("api/{path}")]
        .iter()
        .find_map(|p| areas::find(p).filter(|a| !areas::is_available(a)))
        .map(|a| a.path);
    Err(Miss::Unknown {
        planned,
        suggestions: suggest(&path),
    })
}

fn exact(path: &str) -> Option<Page> {
    if path == "errors" {
        return Some(Page::Errors);
    }
    if let Some(code) = path.strip_prefix("errors/") {
        let up = code.to_ascii_uppercase();
        return ErrorCode::ALL
            .iter()
            .find(|c| c.as_str() == up)
            .map(|c| Page::ErrorCode(*c));
    }
    if let Some(a) = areas::available().into_iter().find(|a| a.path == path) {
        return Some(Page::Area(a));
    }
    let routes = registry::all();
    let (base, method) = path.rsplit_once('/').unwrap_or(("", path));
    if METHODS.contains(&method) {
        if let Some(r) = routes
            .iter()
            .find(|r| r.method == method && route_key(r) == base)
        {
            return Some(Page::Endpoint(r));
        }
    }
    let same: Vec<&'static RouteDoc> = routes
        .into_iter()
        .filter(|r| route_key(r) == path)
        .collect();
    (!same.is_empty()).then(|| Page::RoutePath(path.to_owned(), same))
}

/// Every docs path a client may ask for (without `/docs/`).
pub fn all_paths() -> Vec<String> {
    let mut out: Vec<String> = areas::available()
        .iter()
        .map(|a| a.path.to_owned())
        .collect();
    for r in registry::all() {
        let p = endpoint_path(r);
        out.push(p.strip_prefix("/docs/").unwrap_or(&p).to_owned());
    }
    out.sort();
    out.dedup();
    out
}

/// Up to five nearest doc paths (as `/docs/…`), nearest first.
pub fn suggest(path: &str) -> Vec<String> {
    let short = format!("api/{path}");
    let mut scored: Vec<(usize, String)> = all_paths()
        .into_iter()
        .map(|c| {
            let d = levenshtein(path, &c).min(levenshtein(&short, &c));
            // A request that is a prefix of a page (`api/da`) is as near as it gets.
            let d = if c.starts_with(path) || c.starts_with(&short) {
                d.min(1)
            } else {
                d
            };
            (d, c)
        })
        .collect();
    scored.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then(a.1.len().cmp(&b.1.len()))
            .then(a.1.cmp(&b.1))
    });
    scored
        .into_iter()
        .take(5)
        .map(|(_, c)| format!("/docs/{c}"))
        .collect()
}

/// Edit distance over chars (two-row dynamic programme).
pub fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance() {
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(levenshtein("same", "same"), 0);
    }

    #[test]
    fn normalises() {
        assert_eq!(normalise("/Api/Data/"), "api/data");
        assert_eq!(normalise("api/data/model/get"), "api/data/model/GET");
        assert_eq!(normalise("//"), "");
    }

    #[test]
    fn resolves_pages_and_short_forms() {
        assert!(matches!(resolve("errors"), Ok(Page::Errors)));
        assert!(matches!(
            resolve("errors/docs_not_found"),
            Ok(Page::ErrorCode(ErrorCode::DocsNotFound))
        ));
        assert!(matches!(resolve("operations"), Ok(Page::Area(_))));
        assert!(matches!(resolve("health/GET"), Ok(Page::Endpoint(_))));
        assert!(matches!(resolve("health"), Ok(Page::RoutePath(..))));
        assert!(matches!(resolve("docs/path/GET"), Ok(Page::Endpoint(_))));
        assert!(matches!(resolve("GET"), Ok(Page::Endpoint(_))));
        assert!(matches!(resolve(""), Err(Miss::Empty)));
    }

    #[test]
    fn unknown_paths_get_suggestions() {
        match resolve("operatons") {
            Err(Miss::Unknown { suggestions, .. }) => {
                assert_eq!(
                    suggestions.first().map(String::as_str),
                    Some("/docs/operations")
                );
                assert!(suggestions.len() <= 5);
            }
            _ => panic!("expected a miss"),
        }
        // A contract area with no routes in this binary is a miss that says so.
        match resolve("v1/responses") {
            Err(Miss::Unknown { planned, .. }) => assert_eq!(planned, Some("v1/responses")),
            _ => panic!("expected a planned miss"),
        }
    }
}
