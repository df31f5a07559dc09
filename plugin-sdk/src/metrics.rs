//! Custom metrics on the admin listener's `/metrics`, prefixed `wicket_plugin_` and labelled
//! with the plugin name (grant: `metrics`).

fn owned(labels: &[(&str, &str)]) -> Vec<(String, String)> {
    labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Adds `value` to the counter `name`.
pub fn counter_add(name: &str, value: u64, labels: &[(&str, &str)]) {
    crate::wit::metrics::counter_add(name, value, &owned(labels));
}

/// Adds one to the counter `name`.
pub fn counter_inc(name: &str, labels: &[(&str, &str)]) {
    counter_add(name, 1, labels);
}

/// Sets the gauge `name` to `value`.
pub fn gauge_set(name: &str, value: f64, labels: &[(&str, &str)]) {
    crate::wit::metrics::gauge_set(name, value, &owned(labels));
}

/// Records `value` in the histogram `name`.
pub fn histogram_record(name: &str, value: f64, labels: &[(&str, &str)]) {
    crate::wit::metrics::histogram_record(name, value, &owned(labels));
}
