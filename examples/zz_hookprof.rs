// Temporary profiling driver (not committed).
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use std::fmt::Write as _;
use std::hint::black_box;

diesel::table! { bench_rows (id) { id -> Integer, name -> Text, } }

struct RenderOnly(String);
impl diesel::connection::Instrumentation for RenderOnly {
    fn on_connection_event(&mut self, event: diesel::connection::InstrumentationEvent<'_>) {
        if let diesel::connection::InstrumentationEvent::StartQuery { query, .. } = event {
            self.0.clear();
            let _ = write!(self.0, "{query}");
            black_box(&self.0);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let variant = args[1].as_str();
    let op = args[2].as_str();
    let n: usize = args[3].parse().unwrap();
    let mut conn = SqliteConnection::establish(":memory:").unwrap();
    conn.batch_execute("CREATE TABLE bench_rows (id INTEGER PRIMARY KEY, name TEXT NOT NULL); INSERT INTO bench_rows VALUES (1, 'one');").unwrap();
    match variant {
        "plain" => {}
        "render" => conn.set_instrumentation(RenderOnly(String::with_capacity(256))),
        "dbkit" => dbkit::instrument(&mut conn),
        "nostats" => dbkit::Instrument::new()
            .query_stats(false)
            .install(&mut conn),
        _ => panic!(),
    }
    for _ in 0..n {
        match op {
            "select" => {
                black_box(
                    bench_rows::table
                        .find(1)
                        .get_result::<(i32, String)>(&mut conn)
                        .unwrap(),
                );
            }
            "update" => {
                diesel::update(bench_rows::table.find(1))
                    .set(bench_rows::name.eq("y"))
                    .execute(&mut conn)
                    .unwrap();
            }
            _ => panic!(),
        }
    }
}
