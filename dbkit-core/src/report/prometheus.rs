//! Prometheus' text exposition format, version 0.0.4.

use std::fmt::Write as _;

use super::families::{Family, Kind};

pub(super) fn render(families: &[Family]) -> String {
    let mut out = String::with_capacity(families.len() * 256);
    for family in families {
        let kind = match family.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        let _ = writeln!(out, "# HELP {} {}", family.name, escape_help(family.help));
        let _ = writeln!(out, "# TYPE {} {kind}", family.name);
        for sample in &family.samples {
            out.push_str(family.name);
            if !sample.labels.is_empty() {
                out.push('{');
                for (i, (key, value)) in sample.labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{key}=\"{}\"", escape_label(value));
                }
                out.push('}');
            }
            let _ = writeln!(out, " {}", sample.value);
        }
    }
    out
}

/// Label values escape backslash, double quote and line feed.
fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Help text escapes backslash and line feed.
fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::families::Sample;

    #[test]
    fn labels_are_escaped() {
        let text = render(&[Family {
            name: "dbkit_query_calls_total",
            help: "Executions.",
            kind: Kind::Counter,
            samples: vec![Sample {
                labels: vec![("shape", "SELECT \"a\\b\"\nFROM t".into())],
                value: 3.0,
            }],
        }]);
        assert_eq!(
            text,
            "# HELP dbkit_query_calls_total Executions.\n\
             # TYPE dbkit_query_calls_total counter\n\
             dbkit_query_calls_total{shape=\"SELECT \\\"a\\\\b\\\"\\nFROM t\"} 3\n"
        );
    }
}
