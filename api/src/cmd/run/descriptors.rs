//! The daemon's descriptor limit: at start the soft `RLIMIT_NOFILE` is
//! raised to the hard one, so what the endpoints may hold (at most
//! [`v6fw_api::http::Limits::default`]'s connections for `--metrics`,
//! [`v6fw_api::control::server::MAX_CLIENTS`] on the control socket, each bounded on
//! its own) leaves room for the store, the log and the rules' commands.

/// The most the soft limit is raised to where the hard limit is unlimited
/// (some BSDs and macOS refuse an unlimited soft limit).
const CEILING: u64 = 1 << 20;

/// Raises the soft descriptor limit to the hard limit; says so in the
/// log, and warns (and goes on) if the system refuses.
pub fn raise_soft_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let now = getrlimit(Resource::Nofile);
    let target = now.maximum.unwrap_or(CEILING).min(CEILING);
    let soft = now.current.unwrap_or(u64::MAX);
    if soft >= target {
        tracing::debug!("v6fw run: descriptor limit {soft} (the hard limit)");
        return;
    }
    match setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(target),
            maximum: now.maximum,
        },
    ) {
        Ok(()) => tracing::debug!("v6fw run: descriptor limit raised from {soft} to {target}"),
        Err(e) => tracing::warn!(
            "v6fw run: cannot raise the descriptor limit from {soft} to {target}: {e} \
             (the endpoints' connection caps still hold)"
        ),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_soft_limit_reaches_the_hard_one() {
        use rustix::process::{getrlimit, Resource};
        super::raise_soft_limit();
        let now = getrlimit(Resource::Nofile);
        let hard = now.maximum.unwrap_or(super::CEILING).min(super::CEILING);
        assert_eq!(now.current, Some(hard));
    }
}
