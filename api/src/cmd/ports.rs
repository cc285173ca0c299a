//! `v6fw ports`: list, open and close port/protocol pairs, globally or on one
//! connection; ignore or observe global pairs on a connection.
//!
//! Every `v6fw` administration command goes through the daemon when one
//! answers on `--socket`, and edits the policy file in `--state-dir` directly
//! otherwise (changes need root either way).

use std::path::PathBuf;
use std::process::ExitCode;

use v6fw_engine::policy::spec;
use v6fw_engine::{PortPair, PortRun};

use v6fw_api::control::client::{decode, execute, Fallback, Route};
use v6fw_api::control::protocol::{
    ChangedResult, ConnectionsResult, PortsResult, ProtoArg, Request, WirePort,
};
use v6fw_api::control::DEFAULT_SOCKET;
use v6fw_api::fw::FwError;

/// Where the daemon and the policy file are.
#[derive(Debug, Clone, clap::Args)]
pub struct Where {
    /// The daemon's control socket (default: the one the daemon using
    /// --state-dir recorded there; without --state-dir, /run/v6fw/control.sock).
    /// Given without --state-dir it names a daemon: if none answers there,
    /// the command fails and changes nothing.
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// The state directory holding policy.toml (default /etc/v6fw): its
    /// daemon is asked, or, when none runs, the file is read and changed.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

impl Where {
    /// The state directory.
    pub fn state_dir(&self) -> PathBuf {
        self.state_dir
            .clone()
            .unwrap_or_else(v6fw_api::store::default_state_dir)
    }

    /// The control socket to try: `--socket`; else, with `--state-dir`,
    /// the one its daemon recorded there (`None`: no daemon ever served
    /// it, so none is asked: another daemon's policy is never shown); else
    /// the default socket.
    pub fn socket(&self) -> Option<PathBuf> {
        match (&self.socket, &self.state_dir) {
            (Some(s), _) => Some(s.clone()),
            (None, Some(dir)) => v6fw_api::store::recorded_socket(dir),
            (None, None) => Some(PathBuf::from(DEFAULT_SOCKET)),
        }
    }

    /// The socket for commands that need a daemon; the error names what
    /// was tried.
    pub fn daemon_socket(&self) -> Result<PathBuf, FwError> {
        self.socket().ok_or_else(|| {
            let dir = self.state_dir();
            FwError::Fail(format!(
                "no v6fw daemon has used the state directory {} (no {} there): start one with `v6fw run --state-dir {}`, or pass --socket",
                dir.display(),
                v6fw_api::store::SOCKET_FILE,
                dir.display()
            ))
        })
    }

    /// Runs one request (through the daemon, or on the file). A daemon
    /// found through `--state-dir` must say it serves that directory. A
    /// caller who named only `--socket` named a daemon: when none answers
    /// there the request fails and nothing is changed (the file is used
    /// only when the caller named a state directory, or nothing).
    pub fn run(&self, req: &Request) -> Result<(serde_json::Value, Route), FwError> {
        let expect = match (&self.socket, &self.state_dir) {
            (None, Some(dir)) => Some(dir.as_path()),
            _ => None,
        };
        let file = match (&self.socket, &self.state_dir) {
            (Some(_), None) => Fallback::Never,
            _ => Fallback::File,
        };
        execute(
            self.socket().as_deref(),
            &self.state_dir(),
            req,
            expect,
            file,
        )
    }

    /// A note for a change, naming the file changed when no daemon ran.
    pub fn note(&self, route: Route) -> String {
        match route {
            Route::Daemon => String::new(),
            Route::File => format!(
                " (no daemon running: policy file updated: {})",
                self.state_dir()
                    .join(v6fw_api::store::POLICY_FILE)
                    .display()
            ),
        }
    }
}

/// Which set a command acts on.
#[derive(Debug, Clone, clap::Args)]
#[group(multiple = false)]
pub struct Scope {
    /// One connection (interface name on Linux); see `v6fw connections`.
    #[arg(long, value_name = "ID")]
    pub connection: Option<String>,
    /// The global pairs (the default for open and close).
    #[arg(long)]
    pub global: bool,
}

/// Arguments of `v6fw ports`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub action: Action,
}

/// The `v6fw ports` actions.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// List open pairs: the global ones, a connection's effective set, or all.
    List {
        /// Which set (neither: global pairs and every connection).
        #[command(flatten)]
        scope: Scope,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Daemon socket and state directory.
        #[command(flatten)]
        place: Where,
    },
    /// Open a pair, e.g. `v6fw ports open 443/tcp --name https`.
    Open {
        /// PORT/PROTO, e.g. 443/tcp or 53/udp.
        pair: String,
        /// A name kept with the pair (the first name given stays).
        #[arg(long, default_value = "")]
        name: String,
        /// Let in only sources inside this IPv6 prefix (repeatable, e.g.
        /// `--from fd00::/8 --from 2001:db8::/32`; none: any source). Opening
        /// an open pair with another scope replaces its scope.
        #[arg(long = "from", value_name = "PREFIX")]
        from: Vec<String>,
        /// Where to open it (default: globally).
        #[command(flatten)]
        scope: Scope,
        /// Daemon socket and state directory.
        #[command(flatten)]
        place: Where,
    },
    /// Close a pair, e.g. `v6fw ports close 443/tcp`.
    Close {
        /// PORT/PROTO, e.g. 443/tcp.
        pair: String,
        /// Where to close it (default: globally).
        #[command(flatten)]
        scope: Scope,
        /// Daemon socket and state directory.
        #[command(flatten)]
        place: Where,
    },
    /// Stop a global pair from applying on one connection.
    IgnoreGlobal {
        /// PORT/PROTO of the global pair.
        pair: String,
        /// The connection.
        #[arg(long, value_name = "ID")]
        connection: String,
        /// Daemon socket and state directory.
        #[command(flatten)]
        place: Where,
    },
    /// Let an ignored global pair apply on one connection again.
    ObserveGlobal {
        /// PORT/PROTO of the global pair.
        pair: String,
        /// The connection.
        #[arg(long, value_name = "ID")]
        connection: String,
        /// Daemon socket and state directory.
        #[command(flatten)]
        place: Where,
    },
}

/// Runs `v6fw ports`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.action {
        Action::List { scope, json, place } => list(&scope, json, &place)?,
        Action::Open {
            pair,
            name,
            from,
            scope,
            place,
        } => {
            for r in parse_runs(&pair)? {
                let req = Request::OpenPort {
                    connection: scope.connection.clone(),
                    port: i64::from(r.first),
                    protocol: ProtoArg::from(r.protocol),
                    name: name.clone(),
                    from: from.clone(),
                    last_port: (r.last != r.first).then_some(i64::from(r.last)),
                };
                change(&place, &req, r, "opened", "already open", &scope.connection)?;
            }
        }
        Action::Close { pair, scope, place } => {
            for r in parse_runs(&pair)? {
                let req = Request::ClosePort {
                    connection: scope.connection.clone(),
                    port: i64::from(r.first),
                    protocol: ProtoArg::from(r.protocol),
                    last_port: (r.last != r.first).then_some(i64::from(r.last)),
                };
                change(&place, &req, r, "closed", "not open", &scope.connection)?;
            }
        }
        Action::IgnoreGlobal {
            pair,
            connection,
            place,
        } => {
            let globals = global_ports(&place)?;
            for p in parse_pairs(&pair)? {
                let is_global = globals
                    .ports
                    .iter()
                    .any(|g| g.port == p.port() && g.protocol == p.protocol().name());
                if !is_global {
                    eprintln!(
                        "note: {p} is not a global pair now; the ignore is kept and takes effect if {p} is opened globally"
                    );
                }
                let req = Request::IgnoreGlobal {
                    connection: connection.clone(),
                    port: i64::from(p.port()),
                    protocol: ProtoArg::from(p.protocol()),
                };
                let what = format!("global {p} ignored");
                report(&place, &req, &what, "already ignored", &connection)?;
            }
        }
        Action::ObserveGlobal {
            pair,
            connection,
            place,
        } => {
            for p in parse_pairs(&pair)? {
                let req = Request::ObserveGlobal {
                    connection: connection.clone(),
                    port: i64::from(p.port()),
                    protocol: ProtoArg::from(p.protocol()),
                };
                let what = format!("global {p} observed");
                report(&place, &req, &what, "not ignored", &connection)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads what an admin writes: `22/tcp`, `6000:6007/tcp`, `ssh`, `ssh/tcp`
/// (names through `/etc/services`); errors are `E_INVALIDARG`.
pub fn parse_runs(s: &str) -> Result<Vec<PortRun>, FwError> {
    v6fw_api::fw::services::install();
    Ok(spec::parse_spec(s)?)
}

/// Every pair `s` names (see [`parse_runs`]).
pub fn parse_pairs(s: &str) -> Result<Vec<PortPair>, FwError> {
    v6fw_api::fw::services::install();
    Ok(spec::parse_pairs(s)?)
}

fn where_text(connection: &Option<String>) -> String {
    match connection {
        Some(id) => format!("on connection {}", crate::output::shown(id)),
        None => "globally".to_string(),
    }
}

fn change(
    place: &Where,
    req: &Request,
    pair: PortRun,
    done: &str,
    already: &str,
    connection: &Option<String>,
) -> Result<(), FwError> {
    let (v, route) = place.run(req)?;
    let r: ChangedResult = decode(v)?;
    let at = where_text(connection);
    if r.changed {
        println!("{done} {pair} {at}{}", place.note(route));
    } else {
        println!("{pair} was {already} {at}; nothing changed");
    }
    Ok(())
}

fn report(
    place: &Where,
    req: &Request,
    done: &str,
    already: &str,
    connection: &str,
) -> Result<(), FwError> {
    let (v, route) = place.run(req)?;
    let r: ChangedResult = decode(v)?;
    let connection = crate::output::shown(connection);
    if r.changed {
        println!("{done} on connection {connection}{}", place.note(route));
    } else {
        println!("{already} on connection {connection}; nothing changed");
    }
    Ok(())
}

fn list(scope: &Scope, json: bool, place: &Where) -> Result<(), FwError> {
    let (sections, global) = match (&scope.connection, scope.global) {
        (Some(id), _) => {
            let ports: PortsResult = decode(
                place
                    .run(&Request::OpenPorts {
                        connection: id.clone(),
                    })?
                    .0,
            )?;
            (vec![(id.clone(), ports)], None)
        }
        (None, true) => (Vec::new(), Some(global_ports(place)?)),
        (None, false) => {
            let global = global_ports(place)?;
            let conns: ConnectionsResult = decode(place.run(&Request::Connections)?.0)?;
            let mut sections = Vec::new();
            for c in conns.connections {
                let req = Request::OpenPorts {
                    connection: c.id.clone(),
                };
                sections.push((c.id, decode(place.run(&req)?.0)?));
            }
            (sections, Some(global))
        }
    };
    if json {
        let mut obj = serde_json::Map::new();
        if let Some(g) = &global {
            obj.insert("global".into(), serde_json::json!(g.ports));
        }
        if scope.connection.is_some() || !scope.global {
            let conns: serde_json::Map<String, serde_json::Value> = sections
                .iter()
                .map(|(id, p)| (id.clone(), serde_json::json!(p.ports)))
                .collect();
            obj.insert("connections".into(), serde_json::Value::Object(conns));
        }
        println!("{}", serde_json::Value::Object(obj));
        return Ok(());
    }
    if let Some(g) = &global {
        println!("global:");
        print_ports(&g.ports);
    }
    for (id, p) in &sections {
        println!("connection {}:", crate::output::shown(id));
        print_ports(&p.ports);
    }
    Ok(())
}

fn global_ports(place: &Where) -> Result<PortsResult, FwError> {
    decode(place.run(&Request::GlobalPorts)?.0)
}

/// Prints the pairs, consecutive ports with the same protocol, origin,
/// name and scope as one range (`6000:6007/tcp`).
pub(crate) fn print_ports(ports: &[WirePort]) {
    if ports.is_empty() {
        println!("  (none)");
    }
    let mut i = 0;
    while let Some(p) = ports.get(i) {
        let mut last = p.port;
        let mut j = i + 1;
        while let Some(q) = ports.get(j) {
            let same = q.protocol == p.protocol
                && q.scope == p.scope
                && q.name == p.name
                && q.from == p.from;
            if !same || u32::from(q.port) != u32::from(last) + 1 {
                break;
            }
            last = q.port;
            j += 1;
        }
        i = j;
        let pair = if last == p.port {
            format!("{}/{}", p.port, p.protocol)
        } else {
            format!("{}:{}/{}", p.port, last, p.protocol)
        };
        let name = if p.name.is_empty() {
            "-".into()
        } else {
            crate::output::shown(&p.name)
        };
        let from = if p.from.is_empty() {
            "any".to_string()
        } else {
            p.from.join(",")
        };
        println!(
            "  {pair:<14} {:<7} {name:<12} from {from}",
            p.scope.as_str()
        );
    }
}
