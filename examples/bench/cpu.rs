//! CPU time a system spends, from /proc: the figure a loaded machine cannot bend much, since
//! it counts what the system did, not how long it waited for a core. PostgreSQL's share is
//! the server's: the postmaster with its reaped children, plus the backends still running.

use std::path::Path;

/// Clock ticks per second of /proc's time fields (USER_HZ, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU seconds (user + system) the processes `pids` used so far, and the PostgreSQL server
/// whose data directory is `postgres_data`.
pub(crate) fn seconds(pids: &[u32], postgres_data: Option<&Path>) -> f64 {
    // A process's own time and its reaped children's (the peer's commands, PostgreSQL's
    // backends that ended); children still running are counted for the server.
    let mut ticks: u64 = pids.iter().map(|pid| with_reaped(*pid)).sum();
    if let Some(postmaster) = postgres_data.and_then(postmaster_pid) {
        ticks += with_reaped(postmaster);
        ticks += children(postmaster).map(own_ticks).sum::<u64>();
    }
    ticks as f64 / TICKS_PER_SECOND
}

fn with_reaped(pid: u32) -> u64 {
    stat_fields(pid).map_or(0, |f| f[13..17].iter().sum())
}

fn own_ticks(pid: u32) -> u64 {
    stat_fields(pid).map(|f| f[13] + f[14]).unwrap_or(0)
}

/// The fields of /proc/PID/stat, indexed as in proc(5) minus one (`[3]` the parent, `[13]`
/// utime); the pid, the command name (which may hold spaces) and the state read as zeros.
fn stat_fields(pid: u32) -> Option<Vec<u64>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    let mut fields = vec![0, 0, 0];
    fields.extend(
        after_name
            .split_whitespace()
            .skip(1)
            .map(|v| v.parse().unwrap_or(0)),
    );
    (fields.len() > 16).then_some(fields)
}

fn postmaster_pid(data: &Path) -> Option<u32> {
    std::fs::read_to_string(data.join("postmaster.pid"))
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

fn children(parent: u32) -> impl Iterator<Item = u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(move |pid| stat_fields(*pid).is_some_and(|f| f[3] == u64::from(parent)))
}
