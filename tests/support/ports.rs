//! Ports for child processes, which must be told theirs before they
//! bind it (in-process servers bind port 0 instead).

/// A port that was free a moment ago, never one this process handed out
/// before (only for child processes, which must be told their port;
/// in-process servers bind port 0).
///
/// Picked at random below the kernel's ephemeral range (where every
/// outgoing connection's source port and every port-0 bind land), so
/// that between its release here and the child's bind nothing else on the
/// machine takes it: with ports from port 0, the four mode suites running
/// at once and the tests' own connections took one now and then, and a
/// proxy's readiness probe then reached another test's server.
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (low, high) = (10_000u16, ephemeral_low.max(10_001));
    let mut given = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..1000 {
        let port = rand::random_range(low..high);
        if given.contains(&port) {
            continue;
        }
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.push(port);
            return port;
        }
    }
    // Nothing free below the ephemeral range: any port the kernel gives.
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
