//! A reader for the Prometheus text format (0.0.4) the recorder renders: the dashboard's
//! history is taken from the same numbers `/metrics` shows, so the request path records
//! nothing twice. Only what the recorder writes needs reading: `# TYPE` lines, and samples
//! `name{label="value",...} number` with `\\`, `\"` and `\n` escapes in label values.

/// A family's type, from its `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Untyped,
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The family the sample belongs to (without `_bucket`, `_sum`, `_count` for histograms
    /// and summaries).
    pub family: String,
    /// What the line adds to the family's name: "", "_bucket", "_sum" or "_count".
    pub suffix: &'static str,
    pub kind: Kind,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Every sample of `text`; lines that do not parse are skipped (the recorder writes none).
pub fn parse(text: &str) -> Vec<Sample> {
    let mut types: Vec<(String, Kind)> = Vec::new();
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut words = rest.split_whitespace();
            if let (Some(name), Some(kind)) = (words.next(), words.next()) {
                let kind = match kind {
                    "counter" => Kind::Counter,
                    "gauge" => Kind::Gauge,
                    "histogram" => Kind::Histogram,
                    "summary" => Kind::Summary,
                    _ => Kind::Untyped,
                };
                types.push((name.to_string(), kind));
            }
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let Some((name, labels, value)) = sample_line(line) else {
            continue;
        };
        let (family, suffix, kind) = family_of(name, &types);
        out.push(Sample {
            family,
            suffix,
            kind,
            labels,
            value,
        });
    }
    out
}

/// The family a sample name belongs to, by the most recent `# TYPE` lines.
fn family_of(name: &str, types: &[(String, Kind)]) -> (String, &'static str, Kind) {
    let known = |n: &str| types.iter().rev().find(|(t, _)| t == n).map(|(_, k)| *k);
    if let Some(kind) = known(name) {
        return (name.to_string(), "", kind);
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if let Some(kind @ (Kind::Histogram | Kind::Summary)) = known(base) {
                return (base.to_string(), suffix, kind);
            }
        }
    }
    (name.to_string(), "", Kind::Untyped)
}

type Labels = Vec<(String, String)>;

fn sample_line(line: &str) -> Option<(&str, Labels, f64)> {
    let name_end = line.find(['{', ' '])?;
    let name = &line[..name_end];
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(body) = rest.strip_prefix('{') {
        let (parsed, after) = label_set(body)?;
        labels = parsed;
        rest = after;
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some((name, labels, value))
}

/// Labels up to the closing `}`, and what follows it.
fn label_set(mut s: &str) -> Option<(Labels, &str)> {
    let mut labels = Vec::new();
    loop {
        s = s.trim_start_matches(',');
        if let Some(after) = s.strip_prefix('}') {
            return Some((labels, after));
        }
        let eq = s.find('=')?;
        let key = s[..eq].trim().to_string();
        s = s[eq + 1..].strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (_, c) => value.push(c),
            }
        };
        labels.push((key, value));
        s = &s[end + 1..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_counters_histograms_and_escaped_labels() {
        let text = "# HELP a_total Described.\n# TYPE a_total counter\n\
                    a_total{route=\"p\\\"q\\\\r\\ns\",class=\"2xx\"} 12\n\n\
                    # TYPE h_seconds histogram\n\
                    h_seconds_bucket{route=\"x\",le=\"0.5\"} 3\n\
                    h_seconds_bucket{route=\"x\",le=\"+Inf\"} 4\n\
                    h_seconds_sum{route=\"x\"} 1.25\nh_seconds_count{route=\"x\"} 4\n\
                    # TYPE g gauge\ng 1.5e3\nbroken{ 1\n";
        let s = parse(text);
        assert_eq!(s.len(), 6);
        assert_eq!(s[0].family, "a_total");
        assert_eq!(s[0].kind, Kind::Counter);
        assert_eq!(s[0].label("route"), Some("p\"q\\r\ns"));
        assert_eq!(s[0].label("class"), Some("2xx"));
        assert_eq!(s[0].value, 12.0);
        assert_eq!(
            (s[1].family.as_str(), s[1].suffix),
            ("h_seconds", "_bucket")
        );
        assert_eq!(s[2].label("le"), Some("+Inf"));
        assert_eq!((s[3].suffix, s[3].value), ("_sum", 1.25));
        assert_eq!((s[4].suffix, s[4].kind), ("_count", Kind::Histogram));
        assert_eq!(
            (s[5].family.as_str(), s[5].kind, s[5].value),
            ("g", Kind::Gauge, 1500.0)
        );
    }
}
