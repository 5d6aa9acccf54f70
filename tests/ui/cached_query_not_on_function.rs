use dbkit::cached_query;

#[cached_query(ttl = 300, tables = "users")]
struct User {
    id: i32,
}

fn main() {}
