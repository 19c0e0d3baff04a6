//! What a run found, as the tables print it and as the JSON carries it:
//! `{"workloads":[{"name":..,"systems":{"weir":{"ops_s":..,"p50_ms":..,"p99_ms":..,"p999_ms":..,
//! "durability":".."},"postgres":{..},..}}]}`, a system absent where it has no such workload and
//! `"error"` where it could not run.

use serde_json::{json, Map, Value};

use crate::harness::{fmt_rate, fmt_ratio, Series};
use crate::latency::{LatencyResult, Summary};

/// One system in one workload.
pub struct SystemOutcome {
    /// The JSON key: `weir`, `weir_never`, `postgres`, `rabbitmq_quorum`, `rabbitmq_classic`, `nats`.
    pub label: String,
    pub durability: String,
    pub series: Series,
    /// The latency run at half the measured peak (None where the workload has none).
    pub latency: Option<Result<LatencyResult, String>>,
}

impl SystemOutcome {
    /// Why it could not run, if it could not (throughput first, then latency).
    pub fn error(&self) -> Option<String> {
        self.series.error.clone().or_else(|| match &self.latency {
            Some(Err(e)) => Some(format!("latency run: {e}")),
            _ => None,
        })
    }

    fn latency_ok(&self) -> Option<&LatencyResult> {
        self.latency.as_ref().and_then(|l| l.as_ref().ok())
    }

    /// The figures the contract's `p50_ms`/`p99_ms`/`p999_ms` carry: end-to-end delivery where
    /// the workload has receivers, else the durable send.
    pub fn headline_latency(&self) -> Option<Summary> {
        let l = self.latency_ok()?;
        l.e2e.or(l.send)
    }
}

pub struct WorkloadOutcome {
    pub name: &'static str,
    /// What one operation is.
    pub ops: &'static str,
    pub systems: Vec<SystemOutcome>,
    pub note: String,
}

impl WorkloadOutcome {
    pub fn weir(&self) -> Option<&SystemOutcome> {
        self.systems.iter().find(|s| s.label == "weir")
    }

    /// weir at `Durability::Never`, where the workload has it (beside a peer that does not
    /// fsync every write).
    pub fn weir_never(&self) -> Option<&SystemOutcome> {
        self.systems.iter().find(|s| s.label == "weir_never")
    }
}

/// weir's median over the other's, when both are measured and neither's rounds were unstable
/// (more than 2 x apart).
pub fn ratio(weir: &Series, other: &Series) -> Option<f64> {
    Some(weir.usable()? / other.usable()?)
}

fn ms(v: Option<f64>) -> Value {
    v.map_or(Value::Null, |v| json!((v * 1000.0).round() / 1000.0))
}

fn put_summary(obj: &mut Map<String, Value>, prefix: &str, s: Option<Summary>) {
    obj.insert(format!("{prefix}p50_ms"), ms(s.map(|s| s.p50_ms)));
    obj.insert(format!("{prefix}p99_ms"), ms(s.map(|s| s.p99_ms)));
    obj.insert(format!("{prefix}p999_ms"), ms(s.map(|s| s.p999_ms)));
}

fn is_weir(label: &str) -> bool {
    label == "weir" || label == "weir_never"
}

fn ratio_json(r: Option<f64>) -> Value {
    r.map_or(Value::Null, |r| json!((r * 1000.0).round() / 1000.0))
}

/// One system's object in the JSON: `weir_ratio` is weir's median over this one's (null when
/// either was unstable), `weir_never_ratio` the same for weir at `Durability::Never`.
pub fn system_json(s: &SystemOutcome, weir: Option<&Series>, weir_never: Option<&Series>) -> Value {
    let mut o = Map::new();
    o.insert("ops_s".into(), s.series.median().map_or(Value::Null, |v| json!(v.round())));
    put_summary(&mut o, "", s.headline_latency());
    o.insert("durability".into(), json!(s.durability));
    o.insert("rounds".into(), json!(s.series.rounds.iter().map(|v| v.round()).collect::<Vec<_>>()));
    o.insert("unstable".into(), json!(s.series.unstable()));
    if !is_weir(&s.label) {
        if let Some(weir) = weir {
            o.insert("weir_ratio".into(), ratio_json(ratio(weir, &s.series)));
        }
        if let Some(never) = weir_never {
            o.insert("weir_never_ratio".into(), ratio_json(ratio(never, &s.series)));
        }
    }
    if let Some(l) = s.latency_ok() {
        o.insert("offered_per_s".into(), json!(l.offered.round()));
        o.insert("achieved_per_s".into(), json!(l.achieved.round()));
        put_summary(&mut o, "send_", l.send);
        if l.e2e.is_some() {
            put_summary(&mut o, "e2e_", l.e2e);
        }
        o.insert("missing_deliveries".into(), json!(l.missing));
    }
    if let Some(e) = s.error() {
        o.insert("error".into(), json!(e));
    }
    Value::Object(o)
}

/// The whole document; `extra` adds top-level fields (run settings, versions, load).
pub fn to_json(workloads: &[WorkloadOutcome], extra: Map<String, Value>) -> Value {
    let list: Vec<Value> = workloads
        .iter()
        .map(|w| {
            let weir = w.weir().map(|s| &s.series);
            let never = w.weir_never().map(|s| &s.series);
            let systems: Map<String, Value> =
                w.systems.iter().map(|s| (s.label.clone(), system_json(s, weir, never))).collect();
            json!({"name": w.name, "ops": w.ops, "note": w.note, "systems": systems})
        })
        .collect();
    let mut doc = Map::new();
    doc.insert("workloads".into(), Value::Array(list));
    doc.extend(extra);
    Value::Object(doc)
}

/// Milliseconds with three significant decimals below 1 ms.
fn fmt_ms(v: f64) -> String {
    if v < 1.0 {
        format!("{v:.3}")
    } else {
        format!("{v:.2}")
    }
}

fn lat_cell(s: Option<Summary>) -> String {
    s.map_or("-".into(), |s| format!("{} / {} / {}", fmt_ms(s.p50_ms), fmt_ms(s.p99_ms), fmt_ms(s.p999_ms)))
}

/// weir (or weir_never) over `s`, as the table prints it.
fn ratio_cell(base: Option<&Series>, s: &SystemOutcome) -> String {
    match base {
        _ if is_weir(&s.label) => "-".into(),
        Some(b) if b.unstable() || s.series.unstable() => "unstable".into(),
        Some(b) => fmt_ratio(ratio(b, &s.series)),
        None => "-".into(),
    }
}

/// The throughput table, the latency table, and the configurations, as printed.
pub fn render(workloads: &[WorkloadOutcome]) -> String {
    let mut out = String::new();
    let line = |out: &mut String, s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line(
        &mut out,
        format!(
            "{:<22} {:<17} {:>12} {:>11} {:>11}  rounds",
            "workload", "system", "ops/s", "weir/system", "never/sys."
        ),
    );
    for w in workloads {
        let weir = w.weir().map(|s| &s.series);
        let never = w.weir_never().map(|s| &s.series);
        for s in &w.systems {
            let rounds: Vec<String> = s.series.rounds.iter().map(|v| fmt_rate(*v)).collect();
            let tail = match s.error() {
                Some(e) => format!("ERROR: {e}"),
                None => rounds.join(" "),
            };
            line(
                &mut out,
                format!(
                    "{:<22} {:<17} {:>12} {:>11} {:>11}  {}",
                    w.name,
                    s.label,
                    s.series.median().map_or("-".into(), fmt_rate),
                    ratio_cell(weir, s),
                    if never.is_some() { ratio_cell(never, s) } else { "-".into() },
                    tail
                ),
            );
        }
    }
    line(&mut out, String::new());
    line(
        &mut out,
        format!(
            "{:<22} {:<17} {:>10}  {:<26} {:<29} {}",
            "latency (ms)", "system", "offered/s", "send p50 / p99 / p99.9", "end-to-end p50 / p99 / p99.9", "missing"
        ),
    );
    for w in workloads {
        for s in &w.systems {
            let Some(lat) = &s.latency else { continue };
            match lat {
                Ok(l) => line(
                    &mut out,
                    format!(
                        "{:<22} {:<17} {:>10}  {:<26} {:<29} {}",
                        w.name,
                        s.label,
                        fmt_rate(l.offered),
                        lat_cell(l.send),
                        lat_cell(l.e2e),
                        l.missing
                    ),
                ),
                Err(e) => line(&mut out, format!("{:<22} {:<17} ERROR: {e}", w.name, s.label)),
            }
        }
    }
    line(&mut out, String::new());
    line(&mut out, "ops and notes:".into());
    for w in workloads {
        line(
            &mut out,
            format!(
                "  {:<22} {}{}",
                w.name,
                w.ops,
                if w.note.is_empty() { String::new() } else { format!("; {}", w.note) }
            ),
        );
    }
    line(&mut out, "configurations:".into());
    // A label can stand for more than one configuration (weir through the library, through
    // its AMQP listener, through its MQTT listener): each one is listed.
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for s in workloads.iter().flat_map(|w| &w.systems) {
        let key = (s.label.as_str(), s.durability.as_str());
        if !seen.contains(&key) {
            seen.push(key);
            line(&mut out, format!("  {:<17} {}", s.label, s.durability));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(label: &str, rounds: &[f64]) -> Series {
        Series { label: label.into(), rounds: rounds.to_vec(), error: None }
    }

    fn summary(p50: f64) -> Summary {
        Summary { count: 100, p50_ms: p50, p99_ms: p50 * 2.0, p999_ms: p50 * 3.0, max_ms: p50 * 4.0 }
    }

    fn sample() -> Vec<WorkloadOutcome> {
        vec![WorkloadOutcome {
            name: "queue_cycle",
            ops: "messages/s",
            note: String::new(),
            systems: vec![
                SystemOutcome {
                    label: "weir".into(),
                    durability: "Always".into(),
                    series: series("weir", &[10_000.0, 12_000.0, 11_000.0]),
                    latency: Some(Ok(LatencyResult {
                        offered: 5_500.0,
                        achieved: 5_499.0,
                        send: Some(summary(1.0)),
                        e2e: Some(summary(2.0)),
                        missing: 0,
                    })),
                },
                SystemOutcome {
                    label: "postgres".into(),
                    durability: "synchronous_commit=on".into(),
                    series: series("postgres", &[2_000.0, 2_500.0, 2_200.0]),
                    latency: Some(Ok(LatencyResult {
                        offered: 1_100.0,
                        achieved: 1_100.0,
                        send: Some(summary(3.0)),
                        e2e: None,
                        missing: 0,
                    })),
                },
                SystemOutcome {
                    label: "rabbitmq_quorum".into(),
                    durability: "quorum".into(),
                    series: Series {
                        label: "rabbitmq_quorum".into(),
                        rounds: vec![],
                        error: Some("did not start".into()),
                    },
                    latency: None,
                },
                SystemOutcome {
                    label: "nats".into(),
                    durability: "file".into(),
                    series: series("nats", &[1_000.0, 3_000.0, 2_000.0]),
                    latency: None,
                },
            ],
        }]
    }

    #[test]
    fn json_has_the_contract_shape() {
        let doc = to_json(&sample(), Map::new());
        let w = &doc["workloads"][0];
        assert_eq!(w["name"], "queue_cycle");
        let systems = w["systems"].as_object().expect("systems is an object");
        assert_eq!(systems.len(), 4, "only the systems that have the workload");
        assert!(systems.get("rabbitmq_classic").is_none(), "absent, not null");
        let weir = &systems["weir"];
        assert_eq!(weir["ops_s"], 11_000.0);
        assert_eq!(weir["p50_ms"], 2.0, "the headline is end-to-end where there are receivers");
        assert_eq!(weir["p99_ms"], 4.0);
        assert_eq!(weir["p999_ms"], 6.0);
        assert_eq!(weir["send_p50_ms"], 1.0);
        assert_eq!(weir["durability"], "Always");
        assert!(weir.get("error").is_none());
        assert!(weir.get("weir_ratio").is_none());
        let pg = &systems["postgres"];
        assert_eq!(pg["p50_ms"], 3.0, "no receivers: the send latency is the headline");
        assert_eq!(pg["weir_ratio"], 5.0);
        assert!(pg.get("weir_never_ratio").is_none(), "no weir_never in this workload");
        let rabbit = &systems["rabbitmq_quorum"];
        assert_eq!(rabbit["error"], "did not start");
        assert_eq!(rabbit["ops_s"], Value::Null);
        assert_eq!(rabbit["p50_ms"], Value::Null);
    }

    #[test]
    fn an_unstable_baseline_gives_no_ratio() {
        let doc = to_json(&sample(), Map::new());
        let nats = &doc["workloads"][0]["systems"]["nats"];
        assert_eq!(nats["unstable"], true, "1,000 to 3,000 is 3 x apart");
        assert_eq!(nats["weir_ratio"], Value::Null);
        assert_eq!(nats["ops_s"], 2_000.0, "still reported");
        let text = render(&sample());
        let row = text.lines().find(|l| l.contains(" nats ")).expect("a nats row");
        assert!(row.contains("unstable"), "{row}");
        let pg = text.lines().find(|l| l.contains(" postgres ")).expect("a postgres row");
        assert!(pg.contains("5.00x"), "{pg}");
    }

    #[test]
    fn the_stability_rule_is_more_than_two_x() {
        assert!(!series("a", &[1_000.0, 2_000.0]).unstable(), "exactly 2 x is still stable");
        assert!(series("a", &[1_000.0, 2_001.0]).unstable());
        assert!(!series("a", &[5.0]).unstable(), "one round cannot vary");
        assert!(series("a", &[0.0, 5.0]).unstable(), "a round that measured nothing");
        assert_eq!(ratio(&series("w", &[10.0, 10.0]), &series("p", &[1.0, 4.0])), None);
        assert_eq!(ratio(&series("w", &[10.0, 10.0]), &series("p", &[4.0, 6.0])), Some(2.0));
    }

    #[test]
    fn errors_show_in_the_tables() {
        let text = render(&sample());
        let row = text.lines().find(|l| l.contains("rabbitmq_quorum")).expect("a rabbitmq row");
        assert!(row.contains("ERROR: did not start"), "{row}");
        assert!(text.contains("configurations:"));
    }
}
