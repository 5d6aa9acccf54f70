//! `GET /db-monitor/`: the report at a glance, as one server-rendered page
//! (no script, no framework): hit-rate bars, pool gauges, the slowest
//! statements, N+1 findings, warnings and advice. It refreshes itself every
//! five seconds.

use std::fmt::Write as _;

use dbkit::Report;

pub fn render(report: &Report, caching: bool) -> String {
    let mut html = String::with_capacity(16 * 1024);
    html.push_str(HEAD);

    let _ = write!(
        html,
        "<h1>dbkit</h1><p class=muted>caching {} · {} cached functions · {} pools · {} open sessions</p>",
        if caching { "on" } else { "<b>off</b>" },
        report.caches.len(),
        report.pools.len(),
        report.sessions.len()
    );

    if !report.warnings.is_empty() || !report.advice.is_empty() {
        html.push_str("<h2>Warnings and advice</h2><ul class=warn>");
        for warning in &report.warnings {
            let _ = write!(html, "<li>{}</li>", escape(warning));
        }
        for advice in &report.advice {
            let _ = write!(
                html,
                "<li>pool <code>{}</code>: {}</li>",
                escape(&advice.pool),
                escape(&advice.message)
            );
        }
        html.push_str("</ul>");
    }

    html.push_str("<h2>Cache hit rate</h2><table><tr><th>function</th><th>hit rate</th><th>hits</th><th>misses</th><th>stale</th><th>entries</th></tr>");
    for cache in &report.caches {
        let rate = cache.hit_rate() * 100.0;
        let _ = write!(
            html,
            "<tr><td><code>{}</code></td><td><div class=bar><span style=\"width:{rate:.0}%\"></span></div>{rate:.1}%</td><td>{}</td><td>{}</td><td>{}</td><td>{}/{}</td></tr>",
            escape(&cache.function),
            cache.hits,
            cache.misses,
            cache.stale_rejections,
            cache.entries,
            cache.max_entries
        );
    }
    html.push_str("</table>");

    html.push_str("<h2>Pools</h2>");
    for pool in &report.pools {
        let in_use = f64::from(pool.in_use) * 100.0 / f64::from(pool.max_size.max(1));
        let peak = f64::from(pool.peak_in_use) * 100.0 / f64::from(pool.max_size.max(1));
        let _ = write!(
            html,
            "<div class=pool><h3><code>{}</code></h3>\
             <div class=gauge title=\"in use now\"><span style=\"width:{in_use:.0}%\"></span></div>\
             <p>{} of {} connections in use (peak {}, {peak:.0}%), {} idle, {} waiting</p>\
             <p class=muted>{} checkouts, {} waited, {} timed out · mean wait {:.2} ms, longest {:.2} ms · breaker {}</p></div>",
            escape(&pool.name),
            pool.in_use,
            pool.max_size,
            pool.peak_in_use,
            pool.idle,
            pool.waiters,
            pool.checkouts,
            pool.waited,
            pool.timeouts,
            pool.wait_mean_us as f64 / 1e3,
            pool.wait_max_us as f64 / 1e3,
            match pool.breaker {
                dbkit::BreakerState::Closed { .. } => "closed",
                dbkit::BreakerState::Open { .. } => "<b>open</b>",
                _ => "half-open",
            }
        );
    }

    html.push_str("<h2>Statements, most total time first</h2><table><tr><th>statement</th><th>calls</th><th>mean</th><th>max</th><th>total</th><th>errors</th></tr>");
    for query in report.queries.iter().take(15) {
        let _ = write!(
            html,
            "<tr><td><code>{}</code></td><td>{}</td><td>{:.3} ms</td><td>{:.3} ms</td><td>{:.1} ms</td><td>{}</td></tr>",
            escape(&query.shape),
            query.calls,
            query.mean_us as f64 / 1e3,
            query.max_us as f64 / 1e3,
            query.total_us as f64 / 1e3,
            query.errors
        );
    }
    html.push_str("</table>");

    if !report.n_plus_one.is_empty() {
        html.push_str(
            "<h2>N+1 findings</h2><table><tr><th>session</th><th>statement</th><th>runs</th></tr>",
        );
        for finding in report.n_plus_one.iter().rev().take(10) {
            let _ = write!(
                html,
                "<tr><td><code>{}</code><br><span class=muted>{}</span></td><td><code>{}</code></td><td>{}</td></tr>",
                escape(&finding.label),
                escape(&finding.location),
                escape(&finding.shape),
                finding.count
            );
        }
        html.push_str("</table>");
    }

    let _ = write!(
        html,
        "<h2>Slow statements ({} so far)</h2><table><tr><th>statement</th><th>took</th><th>session</th></tr>",
        report.slow_queries_total
    );
    for slow in report.slow_queries.iter().rev().take(10) {
        let _ = write!(
            html,
            "<tr><td><code>{}</code></td><td>{:.1} ms</td><td>{}</td></tr>",
            escape(&slow.shape),
            slow.duration_us as f64 / 1e3,
            escape(slow.session.as_deref().unwrap_or("-"))
        );
    }
    html.push_str("</table></body></html>");
    html
}

const HEAD: &str = "<!doctype html><html><head><meta charset=utf-8>\
<meta http-equiv=refresh content=5><title>dbkit monitor</title><style>\
body{font:14px system-ui,sans-serif;margin:2em;max-width:70em;color:#222}\
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.3em .6em;border-bottom:1px solid #ddd;vertical-align:top}\
code{font-size:12px}.muted{color:#777}.warn li{color:#a40}\
.bar,.gauge{display:inline-block;background:#eee;height:.8em;width:8em;margin-right:.5em}\
.gauge{width:20em;height:1.2em}.bar span,.gauge span{display:block;height:100%;background:#2a7}\
.pool{margin-bottom:1em}</style></head><body>";

/// HTML text escaping: statements and labels are data.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
