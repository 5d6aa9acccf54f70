//! The report through the `metrics` facade.

use super::families::{Family, Kind};

pub(super) fn emit(families: &[Family]) {
    for family in families {
        match family.kind {
            Kind::Counter if family.name.ends_with("_seconds_total") => {
                metrics::describe_gauge!(family.name, family.help)
            }
            Kind::Counter => metrics::describe_counter!(family.name, family.help),
            Kind::Gauge => metrics::describe_gauge!(family.name, family.help),
        }
        for sample in &family.samples {
            let labels: Vec<metrics::Label> = sample
                .labels
                .iter()
                .map(|(key, value)| metrics::Label::new(*key, value.clone()))
                .collect();
            match family.kind {
                // The facade's counters are integers: time in seconds goes
                // out as a gauge holding the running total.
                Kind::Counter if family.name.ends_with("_seconds_total") => {
                    metrics::gauge!(family.name, labels).set(sample.value)
                }
                Kind::Counter => {
                    metrics::counter!(family.name, labels).absolute(sample.value as u64)
                }
                Kind::Gauge => metrics::gauge!(family.name, labels).set(sample.value),
            }
        }
    }
}
