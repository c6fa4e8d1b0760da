//! The PostgreSQL harness itself: fresh databases are empty and apart, and a server of a
//! test's own stops like a crash and starts again with its data on the same port.

use crate::support::postgres::{fresh_database, shared_server, PgServer};

#[test]
fn each_fresh_database_is_empty_and_apart_from_the_others() {
    let (first, second) = (fresh_database(), fresh_database());
    assert_ne!(first, second);
    let name = |url: &str| url.rsplit('/').next().unwrap().to_owned();
    let server = shared_server();
    server.sql(&name(&first), "CREATE TABLE only_here (x int)");
    let tables = "SELECT count(*) FROM pg_tables WHERE tablename = 'only_here'";
    assert_eq!(server.sql(&name(&first), tables), "1");
    assert_eq!(server.sql(&name(&second), tables), "0");
}

#[test]
fn a_stopped_server_starts_again_on_its_port_with_its_data() {
    let mut server = PgServer::start();
    server.create_database("kept");
    server.sql("kept", "CREATE TABLE t (x int); INSERT INTO t VALUES (42)");
    let port = server.port();
    server.stop();
    let refused = server.try_sql("kept", "SELECT 1");
    assert!(
        !refused.status.success(),
        "a stopped server answers nothing"
    );
    server.start_again();
    assert_eq!(server.port(), port);
    assert_eq!(
        server.sql("kept", "SELECT x FROM t"),
        "42",
        "{}",
        server.log()
    );
    assert!(server.url("kept").ends_with(&format!(":{port}/kept")));
}
