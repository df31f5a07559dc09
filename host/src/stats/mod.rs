//! The last 15 minutes of what the gateway did, in memory, for the dashboard
//! (`GET /admin/stats`): per route and stage, request rate, 4xx, 5xx and throttled rates,
//! p50/p90/p99 latency and integration latency, cache hit ratio; per plugin the calls and time
//! per call, and each plugin's own metrics.
//!
//! Nothing here runs per request. Every `BUCKET` a sampler reads the Prometheus recorder's
//! cumulative counters and histograms (the numbers `/metrics` shows) and keeps the difference
//! from the previous reading as one bucket of a fixed ring: memory is bounded by the ring's
//! length and the series caps, whatever the traffic. Quantiles are interpolated within the
//! recorder's histogram buckets, as Prometheus's `histogram_quantile` does.

mod exposition;

use exposition::{Kind, Sample};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// How much time one point of the history covers.
pub const BUCKET: Duration = Duration::from_secs(10);
/// Points kept: 15 minutes.
pub const BUCKETS_KEPT: usize = 90;
/// At most this many route series (route and stage) are followed; later ones are left out.
pub const MAX_ROUTES: usize = 100;
/// At most this many plugins, and this many plugin-recorded series.
pub const MAX_PLUGINS: usize = 100;
pub const MAX_PLUGIN_SERIES: usize = 200;

/// Latency histogram bounds (the recorder's, then +Inf).
const NB: usize = crate::admin::BUCKETS.len() + 1;

/// Cumulative counts per upper bound, as Prometheus keeps them.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Hist([f64; NB]);

impl Default for Hist {
    fn default() -> Hist {
        Hist([0.0; NB])
    }
}

impl Hist {
    fn set(&mut self, le: &str, value: f64) {
        let i = if le == "+Inf" {
            Some(NB - 1)
        } else {
            le.parse::<f64>().ok().and_then(|b| {
                crate::admin::BUCKETS
                    .iter()
                    .position(|x| (x - b).abs() <= 1e-9 * x.max(1e-9))
            })
        };
        if let Some(i) = i {
            self.0[i] = value;
        }
    }

    fn minus(&self, before: &Hist) -> Hist {
        let mut out = Hist::default();
        for i in 0..NB {
            out.0[i] = (self.0[i] - before.0[i]).max(0.0);
        }
        out
    }

    fn add(&mut self, other: &Hist) {
        for i in 0..NB {
            self.0[i] += other.0[i];
        }
    }

    fn count(&self) -> f64 {
        self.0[NB - 1]
    }

    /// The `q` quantile in seconds, interpolated linearly within its bucket; `None` without
    /// observations. Past the last finite bound, that bound (as `histogram_quantile` does).
    fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total <= 0.0 {
            return None;
        }
        let rank = q * total;
        let bounds = crate::admin::BUCKETS;
        let i = self.0.iter().position(|c| *c >= rank).unwrap_or(NB - 1);
        if i == NB - 1 {
            return Some(bounds[NB - 2]);
        }
        let (lower, below) = if i == 0 {
            (0.0, 0.0)
        } else {
            (bounds[i - 1], self.0[i - 1])
        };
        let inside = self.0[i] - below;
        if inside <= 0.0 {
            return Some(bounds[i]);
        }
        Some(lower + (bounds[i] - lower) * (rank - below) / inside)
    }
}

/// One route series' numbers: cumulative in a reading, the difference in a bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct RouteNumbers {
    /// Requests by status class: 2xx, 3xx, 4xx, 5xx.
    classes: [f64; 4],
    throttled: f64,
    latency: Hist,
    integration: Hist,
    cache_hits: f64,
    cache_misses: f64,
}

impl RouteNumbers {
    fn minus(&self, before: &RouteNumbers) -> RouteNumbers {
        let mut classes = [0.0; 4];
        for (i, c) in classes.iter_mut().enumerate() {
            *c = (self.classes[i] - before.classes[i]).max(0.0);
        }
        RouteNumbers {
            classes,
            throttled: (self.throttled - before.throttled).max(0.0),
            latency: self.latency.minus(&before.latency),
            integration: self.integration.minus(&before.integration),
            cache_hits: (self.cache_hits - before.cache_hits).max(0.0),
            cache_misses: (self.cache_misses - before.cache_misses).max(0.0),
        }
    }

    fn add(&mut self, other: &RouteNumbers) {
        for i in 0..4 {
            self.classes[i] += other.classes[i];
        }
        self.throttled += other.throttled;
        self.latency.add(&other.latency);
        self.integration.add(&other.integration);
        self.cache_hits += other.cache_hits;
        self.cache_misses += other.cache_misses;
    }

    fn requests(&self) -> f64 {
        self.classes.iter().sum()
    }
}

/// Calls into one plugin and the time they took (all phases).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct PluginNumbers {
    calls: f64,
    seconds: f64,
}

/// A series a plugin records itself, through the `metrics` capability.
#[derive(Debug, Clone, Copy, PartialEq)]
struct OwnNumbers {
    kind: Kind,
    /// Counter: the count; gauge: the value; histogram: the sum of observations.
    value: f64,
    /// Histogram: how many observations.
    count: f64,
}

/// The route a series is of, and its stage (in a config with stages).
type RouteKey = (String, Option<String>);
/// A plugin's name, and its series' name with its labels (`hits_total{route="pets"}`).
type OwnKey = (String, String);

/// What the recorder said at one moment.
#[derive(Debug, Clone, Default)]
struct Reading {
    at: f64,
    routes: BTreeMap<RouteKey, RouteNumbers>,
    plugins: BTreeMap<String, PluginNumbers>,
    own: BTreeMap<OwnKey, OwnNumbers>,
}

impl Reading {
    fn take(handle: &PrometheusHandle) -> Reading {
        Reading::from_samples(&exposition::parse(&handle.render()), now())
    }

    fn from_samples(samples: &[Sample], at: f64) -> Reading {
        let mut r = Reading {
            at,
            ..Reading::default()
        };
        // Cache outcomes are labelled by route name only (not stage): applied afterwards.
        let mut cache: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
        for s in samples {
            match s.family.as_str() {
                "wicket_requests_total"
                | "wicket_requests_throttled_total"
                | "wicket_request_seconds"
                | "wicket_integration_seconds" => {
                    let Some(n) = r.route(s) else { continue };
                    match (s.family.as_str(), s.suffix) {
                        ("wicket_requests_total", _) => {
                            let i = match s.label("class") {
                                Some("2xx") => 0,
                                Some("3xx") => 1,
                                Some("4xx") => 2,
                                _ => 3,
                            };
                            n.classes[i] += s.value;
                        }
                        ("wicket_requests_throttled_total", _) => n.throttled += s.value,
                        ("wicket_request_seconds", "_bucket") => {
                            n.latency.set(s.label("le").unwrap_or_default(), s.value)
                        }
                        ("wicket_integration_seconds", "_bucket") => n
                            .integration
                            .set(s.label("le").unwrap_or_default(), s.value),
                        _ => {}
                    }
                }
                "wicket_plugin_seconds" => {
                    let Some(plugin) = s.label("plugin") else {
                        continue;
                    };
                    let full = r.plugins.len() >= MAX_PLUGINS;
                    if full && !r.plugins.contains_key(plugin) {
                        continue;
                    }
                    let p = r.plugins.entry(plugin.to_string()).or_default();
                    match s.suffix {
                        "_sum" => p.seconds += s.value,
                        "_count" => p.calls += s.value,
                        _ => {}
                    }
                }
                family => {
                    if let Some(route) = s.label("route") {
                        let c = match family {
                            "wicket_plugin_cache_hits_total" => Some(true),
                            "wicket_plugin_cache_misses_total" => Some(false),
                            _ => None,
                        };
                        if let Some(hit) = c {
                            let e = cache.entry(route).or_default();
                            if hit {
                                e.0 += s.value
                            } else {
                                e.1 += s.value
                            }
                        }
                    }
                    r.own(s);
                }
            }
        }
        for ((route, _), n) in r.routes.iter_mut() {
            if let Some((hits, misses)) = cache.get(route.as_str()) {
                n.cache_hits = *hits;
                n.cache_misses = *misses;
            }
        }
        r
    }

    /// The route series `s` is of, unless the cap is reached.
    fn route(&mut self, s: &Sample) -> Option<&mut RouteNumbers> {
        let key = (
            s.label("route")?.to_string(),
            s.label("stage").map(str::to_string),
        );
        if self.routes.len() >= MAX_ROUTES && !self.routes.contains_key(&key) {
            return None;
        }
        Some(self.routes.entry(key).or_default())
    }

    /// A plugin's own series (`wicket_plugin_<name>` with a `plugin` label).
    fn own(&mut self, s: &Sample) {
        let Some(name) = s.family.strip_prefix("wicket_plugin_") else {
            return;
        };
        let Some(plugin) = s.label("plugin") else {
            return;
        };
        let kind = match (s.kind, s.suffix) {
            (Kind::Counter | Kind::Gauge, "") => s.kind,
            (Kind::Histogram, "_sum" | "_count") => Kind::Histogram,
            _ => return,
        };
        let labels: Vec<String> = s
            .labels
            .iter()
            .filter(|(k, _)| k != "plugin")
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect();
        let series = if labels.is_empty() {
            name.to_string()
        } else {
            format!("{name}{{{}}}", labels.join(","))
        };
        let key = (plugin.to_string(), series);
        if self.own.len() >= MAX_PLUGIN_SERIES && !self.own.contains_key(&key) {
            return;
        }
        let e = self.own.entry(key).or_insert(OwnNumbers {
            kind,
            value: 0.0,
            count: 0.0,
        });
        match s.suffix {
            "_count" => e.count = s.value,
            _ => e.value = s.value,
        }
    }
}

/// The change from one reading to the next: one point of every series.
#[derive(Debug, Clone, Default)]
struct Bucket {
    start: f64,
    end: f64,
    routes: BTreeMap<RouteKey, RouteNumbers>,
    plugins: BTreeMap<String, PluginNumbers>,
    own: BTreeMap<OwnKey, OwnNumbers>,
}

impl Bucket {
    fn between(before: &Reading, after: &Reading) -> Bucket {
        let routes = after
            .routes
            .iter()
            .map(|(k, n)| {
                let d = n.minus(before.routes.get(k).unwrap_or(&RouteNumbers::default()));
                (k.clone(), d)
            })
            .collect();
        let plugins = after
            .plugins
            .iter()
            .map(|(k, n)| {
                let b = before.plugins.get(k).copied().unwrap_or_default();
                let d = PluginNumbers {
                    calls: (n.calls - b.calls).max(0.0),
                    seconds: (n.seconds - b.seconds).max(0.0),
                };
                (k.clone(), d)
            })
            .collect();
        let own = after
            .own
            .iter()
            .map(|(k, n)| {
                let b = before.own.get(k);
                let d = match n.kind {
                    Kind::Gauge => *n,
                    _ => OwnNumbers {
                        kind: n.kind,
                        value: (n.value - b.map_or(0.0, |b| b.value)).max(0.0),
                        count: (n.count - b.map_or(0.0, |b| b.count)).max(0.0),
                    },
                };
                (k.clone(), d)
            })
            .collect();
        Bucket {
            start: before.at,
            end: after.at,
            routes,
            plugins,
            own,
        }
    }

    fn seconds(&self) -> f64 {
        (self.end - self.start).max(0.001)
    }
}

/// The history the dashboard draws: a ring of buckets and the reading the next starts from.
pub struct Stats {
    handle: PrometheusHandle,
    inner: Mutex<Inner>,
}

struct Inner {
    last: Reading,
    ring: VecDeque<Bucket>,
}

impl Stats {
    pub fn new(handle: PrometheusHandle) -> Arc<Stats> {
        let last = Reading::take(&handle);
        Arc::new(Stats {
            handle,
            inner: Mutex::new(Inner {
                last,
                ring: VecDeque::with_capacity(BUCKETS_KEPT),
            }),
        })
    }

    /// End the bucket in progress and start the next.
    pub fn close_bucket(&self) {
        let reading = Reading::take(&self.handle);
        let mut inner = self.inner.lock().unwrap();
        let bucket = Bucket::between(&inner.last, &reading);
        inner.last = reading;
        if inner.ring.len() == BUCKETS_KEPT {
            inner.ring.pop_front();
        }
        inner.ring.push_back(bucket);
    }

    /// Close a bucket every `BUCKET`, for ever.
    pub async fn sample(self: Arc<Self>) {
        let mut tick = tokio::time::interval(BUCKET);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            self.close_bucket();
        }
    }

    /// `GET /admin/stats`: every series over the ring, the bucket in progress last.
    pub fn json(&self) -> Value {
        let reading = Reading::take(&self.handle);
        let inner = self.inner.lock().unwrap();
        let open = Bucket::between(&inner.last, &reading);
        let buckets: Vec<&Bucket> = inner.ring.iter().chain([&open]).collect();
        render(&buckets)
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Seconds to milliseconds, rounded to the microsecond.
fn ms(seconds: Option<f64>) -> Value {
    match seconds {
        Some(s) => json!((s * 1e6).round() / 1e3),
        None => Value::Null,
    }
}

fn rate(count: f64, seconds: f64) -> Value {
    json!((count / seconds * 1000.0).round() / 1000.0)
}

fn ratio(part: f64, whole: f64) -> Value {
    if whole > 0.0 {
        json!((part / whole * 10000.0).round() / 10000.0)
    } else {
        Value::Null
    }
}

/// The JSON the dashboard polls: `times` (each bucket's end, Unix seconds) and, per series,
/// one value per bucket plus a `total` over the whole window.
fn render(buckets: &[&Bucket]) -> Value {
    let times: Vec<Value> = buckets.iter().map(|b| json!(b.end.round())).collect();
    let window: f64 = buckets.iter().map(|b| b.seconds()).sum();
    let mut route_keys: Vec<&RouteKey> = buckets.iter().flat_map(|b| b.routes.keys()).collect();
    route_keys.sort();
    route_keys.dedup();
    let routes: Vec<Value> = route_keys
        .into_iter()
        .map(|key| {
            let mut total = RouteNumbers::default();
            let mut series: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
            for b in buckets {
                let n = b.routes.get(key).copied().unwrap_or_default();
                total.add(&n);
                let secs = b.seconds();
                for (name, v) in route_point(&n, secs) {
                    series.entry(name).or_default().push(v);
                }
            }
            let mut out = json!({
                "route": key.0,
                "stage": key.1,
                "total": route_total(&total, window),
            });
            for (name, values) in series {
                out[name] = Value::Array(values);
            }
            out
        })
        .collect();

    let mut plugin_names: Vec<&String> = buckets
        .iter()
        .flat_map(|b| b.plugins.keys().chain(b.own.keys().map(|(p, _)| p)))
        .collect();
    plugin_names.sort();
    plugin_names.dedup();
    let plugins: Vec<Value> = plugin_names
        .into_iter()
        .map(|name| {
            let mut calls = Vec::new();
            let mut per_call = Vec::new();
            let mut total = PluginNumbers::default();
            for b in buckets {
                let n = b.plugins.get(name).copied().unwrap_or_default();
                total.calls += n.calls;
                total.seconds += n.seconds;
                calls.push(rate(n.calls, b.seconds()));
                per_call.push(ms((n.calls > 0.0).then(|| n.seconds / n.calls)));
            }
            let mut own_keys: Vec<&OwnKey> = buckets
                .iter()
                .flat_map(|b| b.own.keys().filter(|(p, _)| p == name))
                .collect();
            own_keys.sort();
            own_keys.dedup();
            let metrics: Vec<Value> = own_keys
                .into_iter()
                .map(|key| own_series(key, buckets, window))
                .collect();
            json!({
                "plugin": name,
                "calls_per_s": calls,
                "ms_per_call": per_call,
                "total": {
                    "calls": total.calls,
                    "calls_per_s": rate(total.calls, window),
                    "ms_per_call": ms((total.calls > 0.0).then(|| total.seconds / total.calls)),
                },
                "metrics": metrics,
            })
        })
        .collect();
    json!({
        "bucket_seconds": BUCKET.as_secs(),
        "window_seconds": BUCKET.as_secs() * BUCKETS_KEPT as u64,
        "times": times,
        "routes": routes,
        "plugins": plugins,
    })
}

fn route_point(n: &RouteNumbers, secs: f64) -> [(&'static str, Value); 12] {
    [
        ("requests_per_s", rate(n.requests(), secs)),
        ("errors_4xx_per_s", rate(n.classes[2], secs)),
        ("errors_5xx_per_s", rate(n.classes[3], secs)),
        ("throttled_per_s", rate(n.throttled, secs)),
        ("p50_ms", ms(n.latency.quantile(0.5))),
        ("p90_ms", ms(n.latency.quantile(0.9))),
        ("p99_ms", ms(n.latency.quantile(0.99))),
        ("integration_p50_ms", ms(n.integration.quantile(0.5))),
        ("integration_p90_ms", ms(n.integration.quantile(0.9))),
        ("integration_p99_ms", ms(n.integration.quantile(0.99))),
        (
            "cache_hit_ratio",
            ratio(n.cache_hits, n.cache_hits + n.cache_misses),
        ),
        ("requests", json!(n.requests())),
    ]
}

fn route_total(n: &RouteNumbers, window: f64) -> Value {
    json!({
        "requests": n.requests(),
        "errors_4xx": n.classes[2],
        "errors_5xx": n.classes[3],
        "throttled": n.throttled,
        "requests_per_s": rate(n.requests(), window),
        "p50_ms": ms(n.latency.quantile(0.5)),
        "p90_ms": ms(n.latency.quantile(0.9)),
        "p99_ms": ms(n.latency.quantile(0.99)),
        "integration_p50_ms": ms(n.integration.quantile(0.5)),
        "integration_p90_ms": ms(n.integration.quantile(0.9)),
        "integration_p99_ms": ms(n.integration.quantile(0.99)),
        "cache_hits": n.cache_hits,
        "cache_misses": n.cache_misses,
        "cache_hit_ratio": ratio(n.cache_hits, n.cache_hits + n.cache_misses),
    })
}

/// A plugin-recorded series: a counter as a rate per second, a gauge as its value, a
/// histogram as the mean observation of each bucket.
fn own_series(key: &OwnKey, buckets: &[&Bucket], window: f64) -> Value {
    let kind = buckets
        .iter()
        .find_map(|b| b.own.get(key).map(|n| n.kind))
        .unwrap_or(Kind::Untyped);
    let mut values = Vec::new();
    let (mut sum, mut count, mut last) = (0.0, 0.0, Value::Null);
    for b in buckets {
        let n = b.own.get(key);
        let v = match (kind, n) {
            (_, None) => Value::Null,
            (Kind::Counter, Some(n)) => rate(n.value, b.seconds()),
            (Kind::Gauge, Some(n)) => json!(n.value),
            (_, Some(n)) => ratio(n.value, n.count),
        };
        if let Some(n) = n {
            sum += n.value;
            count += n.count;
        }
        if !v.is_null() {
            last = v.clone();
        }
        values.push(v);
    }
    let (kind_name, total) = match kind {
        Kind::Counter => ("counter", json!({"count": sum, "per_s": rate(sum, window)})),
        Kind::Gauge => ("gauge", json!({"value": last})),
        _ => (
            "histogram",
            json!({"mean": ratio(sum, count), "count": count}),
        ),
    };
    json!({"name": key.1, "kind": kind_name, "values": values, "total": total})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(text: &str, at: f64) -> Reading {
        Reading::from_samples(&exposition::parse(text), at)
    }

    const BEFORE: &str = "# TYPE wicket_requests_total counter\n\
        wicket_requests_total{route=\"pets\",stage=\"prod\",class=\"2xx\"} 10\n\
        wicket_requests_total{route=\"pets\",stage=\"prod\",class=\"4xx\"} 2\n\
        # TYPE wicket_request_seconds histogram\n\
        wicket_request_seconds_bucket{route=\"pets\",stage=\"prod\",le=\"0.001\"} 4\n\
        wicket_request_seconds_bucket{route=\"pets\",stage=\"prod\",le=\"0.0025\"} 12\n\
        wicket_request_seconds_bucket{route=\"pets\",stage=\"prod\",le=\"+Inf\"} 12\n\
        # TYPE wicket_plugin_seconds histogram\n\
        wicket_plugin_seconds_sum{plugin=\"keys\",phase=\"on_request\"} 0.01\n\
        wicket_plugin_seconds_count{plugin=\"keys\",phase=\"on_request\"} 10\n\
        # TYPE wicket_plugin_cache_hits_total counter\n\
        wicket_plugin_cache_hits_total{plugin=\"edge\",route=\"pets\"} 1\n";

    const AFTER: &str = "# TYPE wicket_requests_total counter\n\
        wicket_requests_total{route=\"pets\",stage=\"prod\",class=\"2xx\"} 100\n\
        wicket_requests_total{route=\"pets\",stage=\"prod\",class=\"4xx\"} 12\n\
        wicket_requests_total{route=\"pets\",stage=\"prod\",class=\"5xx\"} 8\n\
        # TYPE wicket_requests_throttled_total counter\n\
        wicket_requests_throttled_total{route=\"pets\",stage=\"prod\"} 5\n\
        # TYPE wicket_request_seconds histogram\n\
        wicket_request_seconds_bucket{route=\"pets\",stage=\"prod\",le=\"0.001\"} 54\n\
        wicket_request_seconds_bucket{route=\"pets\",stage=\"prod\",le=\"0.0025\"} 112\n\
        wicket_request_seconds_bucket{route=\"pets\",stage=\"prod\",le=\"+Inf\"} 120\n\
        # TYPE wicket_plugin_seconds histogram\n\
        wicket_plugin_seconds_sum{plugin=\"keys\",phase=\"on_request\"} 0.03\n\
        wicket_plugin_seconds_count{plugin=\"keys\",phase=\"on_request\"} 20\n\
        # TYPE wicket_plugin_cache_hits_total counter\n\
        wicket_plugin_cache_hits_total{plugin=\"edge\",route=\"pets\"} 31\n\
        # TYPE wicket_plugin_cache_misses_total counter\n\
        wicket_plugin_cache_misses_total{plugin=\"edge\",route=\"pets\"} 10\n";

    #[test]
    fn a_bucket_is_the_difference_of_two_readings() {
        let b = Bucket::between(&reading(BEFORE, 100.0), &reading(AFTER, 110.0));
        let v = render(&[&b]);
        let pets = &v["routes"][0];
        assert_eq!(pets["route"], "pets");
        assert_eq!(pets["stage"], "prod");
        assert_eq!(pets["requests_per_s"][0], 10.8);
        assert_eq!(pets["errors_4xx_per_s"][0], 1.0);
        assert_eq!(pets["errors_5xx_per_s"][0], 0.8);
        assert_eq!(pets["throttled_per_s"][0], 0.5);
        // 108 new observations: 50 up to 1 ms, 50 in (1, 2.5] ms, 8 above.
        assert_eq!(pets["p50_ms"][0], 1.12);
        assert_eq!(pets["cache_hit_ratio"][0], 0.75);
        assert_eq!(pets["total"]["requests"], 108.0);
        let keys = &v["plugins"][1];
        assert_eq!(keys["plugin"], "keys");
        assert_eq!(keys["ms_per_call"][0], 2.0);
        let edge = &v["plugins"][0];
        assert_eq!(edge["plugin"], "edge");
        assert_eq!(
            edge["metrics"][0]["name"],
            "cache_hits_total{route=\"pets\"}"
        );
        assert_eq!(edge["metrics"][0]["values"][0], 3.0);
    }

    #[test]
    fn quantiles_interpolate_within_buckets() {
        let mut h = Hist::default();
        h.set("0.001", 50.0);
        h.set("0.0025", 100.0);
        for b in crate::admin::BUCKETS.iter().skip(6) {
            h.set(&b.to_string(), 100.0);
        }
        h.set("+Inf", 100.0);
        assert_eq!(h.quantile(0.5), Some(0.001));
        assert!((h.quantile(0.75).unwrap() - 0.00175).abs() < 1e-12);
        assert_eq!(Hist::default().quantile(0.5), None);
        let mut slow = Hist::default();
        slow.set("+Inf", 3.0);
        assert_eq!(slow.quantile(0.99), Some(30.0));
    }

    #[test]
    fn series_are_capped() {
        let mut text = String::from("# TYPE wicket_requests_total counter\n");
        for i in 0..MAX_ROUTES + 50 {
            text.push_str(&format!(
                "wicket_requests_total{{route=\"r{i}\",class=\"2xx\"}} 1\n"
            ));
        }
        text.push_str("# TYPE wicket_plugin_x_total counter\n");
        for i in 0..MAX_PLUGIN_SERIES + 50 {
            text.push_str(&format!(
                "wicket_plugin_x_total{{plugin=\"p\",k=\"{i}\"}} 1\n"
            ));
        }
        let r = reading(&text, 1.0);
        assert_eq!(r.routes.len(), MAX_ROUTES);
        assert_eq!(r.own.len(), MAX_PLUGIN_SERIES);
    }
}
