//! The Windows side of `v6fw service`: the service control manager's calls
//! (windows-service) and the service's main.

use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use v6fw_capture::privilege;
use windows_service::service::{
    ServiceAccess, ServiceControl, ServiceControlAccept, ServiceErrorControl, ServiceExitCode,
    ServiceInfo, ServiceStartType, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
use windows_service::{define_windows_service, service_dispatcher};

use super::{parse_run_args, Action, Args};

/// The service's name.
pub const SERVICE_NAME: &str = "v6fw";

/// The service's own log (the daemon's standard error) in its state directory.
pub const SERVICE_LOG: &str = "service.log";

/// How long `stop` and `uninstall` wait for the service to stop.
const STOP_WAIT: Duration = Duration::from_secs(30);

/// The `v6fw run` arguments of the service this process runs.
static RUN_ARGS: OnceLock<Vec<OsString>> = OnceLock::new();

/// Whether [`service_main`] started, and whether it has ended (so the
/// process does not exit under it: Wine's `StartServiceCtrlDispatcherW`
/// returns while the service still runs).
static SERVICE: (Mutex<(bool, bool)>, Condvar) = (Mutex::new((false, false)), Condvar::new());

fn service_state() -> std::sync::MutexGuard<'static, (bool, bool)> {
    SERVICE.0.lock().unwrap_or_else(|p| p.into_inner())
}

pub(super) fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.action {
        Action::Install { run, force } => install(run, force),
        Action::Uninstall => uninstall(),
        Action::Start => start(),
        Action::Stop => stop(),
        Action::Dispatch { run } => dispatch(run),
    }
}

fn manager(access: ServiceManagerAccess) -> anyhow::Result<ServiceManager> {
    ServiceManager::local_computer(None::<&str>, access).context(
        "cannot reach the service control manager: run from an elevated prompt (Run as administrator)",
    )
}

fn install(run: Vec<OsString>, force: bool) -> anyhow::Result<ExitCode> {
    parse_run_args(&run)?; // refuse bad arguments now, not at boot
    let exe = std::env::current_exe().context("cannot find v6fw.exe's own path")?;
    super::install_check::check_folder(&exe, force)?;
    let mut launch = vec![OsString::from("service"), OsString::from("dispatch")];
    launch.extend(run);
    let info = ServiceInfo {
        name: SERVICE_NAME.into(),
        display_name: "v6fw IPv6 firewall".into(),
        service_type: ServiceType::OWN_PROCESS,
        start_type: ServiceStartType::AutoStart,
        error_control: ServiceErrorControl::Normal,
        executable_path: exe,
        launch_arguments: launch,
        dependencies: vec![],
        account_name: None, // LocalSystem
        account_password: None,
    };
    let m = manager(ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE)?;
    let service = m
        .create_service(&info, ServiceAccess::CHANGE_CONFIG)
        .context(
            "cannot install the service v6fw (installed already? `v6fw service uninstall` first)",
        )?;
    let _ = service.set_description("v6fw run: diverts IPv6 with WinDivert and filters it");
    println!("installed the service v6fw; start it with `v6fw service start`");
    Ok(ExitCode::SUCCESS)
}

fn open(access: ServiceAccess) -> anyhow::Result<windows_service::service::Service> {
    manager(ServiceManagerAccess::CONNECT)?
        .open_service(SERVICE_NAME, access)
        .context("cannot open the service v6fw (not installed? `v6fw service install`)")
}

fn start() -> anyhow::Result<ExitCode> {
    let service = open(ServiceAccess::START | ServiceAccess::QUERY_STATUS)?;
    service
        .start::<OsString>(&[])
        .context("cannot start the service v6fw")?;
    println!("started the service v6fw");
    Ok(ExitCode::SUCCESS)
}

/// Asks `service` to stop (if it runs) and waits until it has.
fn stop_and_wait(service: &windows_service::service::Service) -> anyhow::Result<()> {
    let status = service
        .query_status()
        .context("cannot query the service v6fw")?;
    if status.current_state == ServiceState::Stopped {
        return Ok(());
    }
    service.stop().context("cannot stop the service v6fw")?;
    let deadline = Instant::now() + STOP_WAIT;
    while Instant::now() < deadline {
        if service.query_status()?.current_state == ServiceState::Stopped {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    anyhow::bail!(
        "the service v6fw did not stop within {} s; see the event log",
        STOP_WAIT.as_secs()
    )
}

fn stop() -> anyhow::Result<ExitCode> {
    stop_and_wait(&open(ServiceAccess::STOP | ServiceAccess::QUERY_STATUS)?)?;
    println!("stopped the service v6fw");
    Ok(ExitCode::SUCCESS)
}

fn uninstall() -> anyhow::Result<ExitCode> {
    let service = open(ServiceAccess::STOP | ServiceAccess::QUERY_STATUS | ServiceAccess::DELETE)?;
    stop_and_wait(&service)?;
    service.delete().context("cannot remove the service v6fw")?;
    println!("removed the service v6fw");
    Ok(ExitCode::SUCCESS)
}

/// Hands this process to the service control manager, which calls
/// [`service_main`] on a thread of its own.
fn dispatch(run: Vec<OsString>) -> anyhow::Result<ExitCode> {
    parse_run_args(&run)?;
    let _ = RUN_ARGS.set(run);
    service_dispatcher::start(SERVICE_NAME, ffi_service_main).context(
        "`v6fw service dispatch` is for the service control manager: use `v6fw run`, or `v6fw service start`",
    )?;
    let mut st = service_state();
    while st.0 && !st.1 {
        st = SERVICE.1.wait(st).unwrap_or_else(|p| p.into_inner());
    }
    Ok(ExitCode::SUCCESS)
}

define_windows_service!(ffi_service_main, service_main);

/// The service: `v6fw run` with the installed arguments until Stop or
/// Shutdown, which request the stop Ctrl-C requests.
fn service_main(_arguments: Vec<OsString>) {
    service_state().0 = true;
    serve_as_service();
    service_state().1 = true;
    SERVICE.1.notify_all();
}

/// Registers the control handler, reports Running, runs `v6fw run`,
/// reports Stopped with its outcome.
fn serve_as_service() {
    let handler = |control| match control {
        ServiceControl::Stop | ServiceControl::Shutdown => {
            privilege::request_stop();
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
        _ => ServiceControlHandlerResult::NotImplemented,
    };
    let Ok(status) = service_control_handler::register(SERVICE_NAME, handler) else {
        return;
    };
    let report = |state, accept, code| {
        let _ = status.set_service_status(ServiceStatus {
            service_type: ServiceType::OWN_PROCESS,
            current_state: state,
            controls_accepted: accept,
            exit_code: code,
            checkpoint: 0,
            wait_hint: Duration::from_secs(10),
            process_id: None,
        });
    };
    report(
        ServiceState::Running,
        ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN,
        ServiceExitCode::Win32(0),
    );
    let outcome = RUN_ARGS
        .get()
        .ok_or_else(|| anyhow::anyhow!("no run arguments"))
        .and_then(|a| parse_run_args(a))
        .and_then(|args| {
            log_to_file(&args.state_dir.join(SERVICE_LOG));
            super::super::run::run(args)
        });
    let code = match outcome {
        Ok(c) if c == ExitCode::SUCCESS => ServiceExitCode::Win32(0),
        Ok(_) => ServiceExitCode::ServiceSpecific(1),
        Err(e) => {
            tracing::error!("v6fw service: {}", crate::output::describe(&e));
            ServiceExitCode::ServiceSpecific(1)
        }
    };
    report(ServiceState::Stopped, ServiceControlAccept::empty(), code);
}

/// Sends this process's standard error (where `v6fw run` logs) to `path`,
/// appended: a service has no console. The file is for SYSTEM and
/// Administrators only and never a link followed; if it cannot be opened
/// (or its directory is not safe), the log goes nowhere.
fn log_to_file(path: &std::path::Path) {
    use std::os::windows::io::IntoRawHandle;
    use windows::Win32::Foundation::HANDLE;
    use windows::Win32::System::Console::{SetStdHandle, STD_ERROR_HANDLE};

    if let Some(dir) = path.parent() {
        if v6fw_api::winacl::create_state_dir(dir).is_err() {
            return; // `v6fw run` refuses the directory and says why
        }
    }
    let Ok(file) = v6fw_api::winacl::open_append(path, v6fw_api::winacl::LOG_FILE_SDDL) else {
        return;
    };
    // The handle stays open for the life of the process, as stderr's does.
    let raw = file.into_raw_handle();
    // SAFETY: `raw` is an open file handle owned by nobody else now; Rust's
    // stderr looks the handle up on every write, so it takes effect at once.
    let _ = unsafe { SetStdHandle(STD_ERROR_HANDLE, HANDLE(raw as isize)) };
}
