//! Owns the benchmarks' readings of process CPU time and memory from /proc.

use std::process::Command;

pub fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|v| *v > 0.0)
        .unwrap_or(100.0)
}

/// utime+stime in clock ticks from a /proc/.../stat file.
pub fn stat_ticks(path: &str) -> Option<u64> {
    let s = std::fs::read_to_string(path).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // after "pid (comm) ": state=0 ... utime=11 stime=12
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// CPU seconds of process `pid` (all threads, including exited ones).
pub fn proc_cpu_secs(pid: u32, tck: f64) -> f64 {
    stat_ticks(&format!("/proc/{pid}/stat")).expect("read /proc/<natsmon>/stat") as f64 / tck
}

/// CPU seconds of the calling thread: ns precision from schedstat when
/// available, else clock ticks from /proc/thread-self/stat.
pub fn thread_cpu_secs(tck: f64) -> f64 {
    if let Ok(s) = std::fs::read_to_string("/proc/thread-self/schedstat")
        && let Some(ns) = s
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
    {
        return ns as f64 / 1e9;
    }
    stat_ticks("/proc/thread-self/stat").unwrap_or(0) as f64 / tck
}

pub fn status_kib(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("read /proc/<natsmon>/status");
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{field} missing from /proc/{pid}/status"))
}
