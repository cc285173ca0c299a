//! The C API called as C calls it, against an in-memory manager behind the
//! same dispatch the daemon runs (no socket, so these also run under miri):
//! NULL handling, every `Release`, the snapshot semantics, who may change.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failure is a failed test"
)]

use std::ffi::{c_char, c_long, CStr};
use std::ptr::{null, null_mut};

use v6fw_api::fw::FirewallManager;
use v6fw_engine::{Connection, Policy};

use crate::collection::*;
use crate::connection::*;
use crate::handle::{into_handle, v6fw_string_free};
use crate::logging::*;
use crate::mgr::*;
use crate::session::local::Local;
use crate::session::Session;
use crate::types::*;

const TCP: PORT_PROTOCOL = PortProtocol::PORT_PROTOCOL_TCP as PORT_PROTOCOL;
const UDP: PORT_PROTOCOL = PortProtocol::PORT_PROTOCOL_UDP as PORT_PROTOCOL;

/// A daemon's manager with connection `eth0` ("Ethernet") and small state
/// tables, and a C handle to it as root (`admin`) or as anyone else. The
/// second handle is always an admin's, to set things up.
fn setup(admin: bool) -> (*mut INetFwV6Mgr, *mut INetFwV6Mgr) {
    let mut policy = Policy::default();
    policy.state.flow_slots = 8;
    policy.state.fragment_slots = 8;
    policy
        .add_connection(Connection::new("eth0", "Ethernet", 2))
        .unwrap();
    let mgr = FirewallManager::in_memory(policy);
    let handle = |admin| {
        let s = Session::over(Box::new(Local {
            mgr: std::sync::Arc::clone(&mgr),
            admin,
        }))
        .unwrap();
        into_handle(INetFwV6Mgr::new(s))
    };
    (handle(admin), handle(true))
}

fn last_error() -> String {
    let p = crate::call::v6fw_last_error_message();
    assert!(!p.is_null(), "a failure leaves a message");
    // SAFETY: non-null, owned by this thread until the next call.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// Takes a string libv6fw returned and frees it.
unsafe fn take(s: *mut c_char) -> String {
    assert!(!s.is_null());
    // SAFETY: a live string from libv6fw, freed once here.
    let out = unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned();
    // SAFETY: as above.
    unsafe { v6fw_string_free(s) };
    out
}

/// The pairs of a collection, read through Count and Item.
unsafe fn pairs(coll: *mut INetFwV6OpenPortsCollection) -> Vec<(u16, PORT_PROTOCOL)> {
    let mut n: c_long = -1;
    // SAFETY: a live collection and locals.
    unsafe {
        assert_eq!(INetFwV6OpenPortsCollection_get_Count(coll, &mut n), S_OK);
        (0..n)
            .map(|i| {
                let (mut port, mut proto) = (0, 0);
                assert_eq!(
                    INetFwV6OpenPortsCollection_Item(coll, i, &mut port, &mut proto),
                    S_OK
                );
                (port, proto)
            })
            .collect()
    }
}

unsafe fn globals(mgr: *mut INetFwV6Mgr) -> *mut INetFwV6OpenPortsCollection {
    let mut coll = null_mut();
    // SAFETY: a live manager and a local.
    let hr = unsafe { INetFwV6Mgr_get_GloballyOpenPorts(mgr, &mut coll) };
    assert_eq!(hr, S_OK);
    assert!(!coll.is_null());
    coll
}

#[test]
fn global_pairs_open_read_close_as_snapshots() {
    let (mgr, admin) = setup(true);
    // SAFETY: live handles and locals throughout; each handle released once.
    unsafe {
        let empty = globals(mgr);
        let name = c"web".as_ptr();
        assert_eq!(INetFwV6Mgr_OpenGlobalPort(mgr, 8080, TCP, name), S_OK);
        assert_eq!(INetFwV6Mgr_OpenGlobalPort(mgr, 53, UDP, null()), S_OK);
        assert_eq!(
            INetFwV6Mgr_OpenGlobalPort(mgr, 8080, TCP, c"again".as_ptr()),
            S_OK
        );
        let two = globals(mgr);
        assert_eq!(pairs(empty), vec![], "taken before the opens");
        assert_eq!(pairs(two), vec![(8080, TCP), (53, UDP)]);
        let mut s = null_mut();
        assert_eq!(
            INetFwV6OpenPortsCollection_get_ItemName(two, 0, &mut s),
            S_OK
        );
        assert_eq!(take(s), "web", "the first name stays");
        let mut open = 0;
        assert_eq!(INetFwV6Mgr_IsGlobalPortOpen(mgr, 53, UDP, &mut open), S_OK);
        assert_eq!(open, VARIANT_TRUE);
        assert_eq!(INetFwV6Mgr_CloseGlobalPort(mgr, 8080, TCP), S_OK);
        assert_eq!(
            INetFwV6Mgr_CloseGlobalPort(mgr, 8080, TCP),
            S_OK,
            "closed twice"
        );
        assert_eq!(
            pairs(two),
            vec![(8080, TCP), (53, UDP)],
            "closed later: still in"
        );
        let one = globals(mgr);
        assert_eq!(pairs(one), vec![(53, UDP)]);
        assert_eq!(
            INetFwV6Mgr_IsGlobalPortOpen(mgr, 8080, TCP, &mut open),
            S_OK
        );
        assert_eq!(open, VARIANT_FALSE);
        for c in [empty, two, one] {
            assert_eq!(INetFwV6OpenPortsCollection_Release(c), 0);
        }
        assert_eq!(INetFwV6Mgr_Release(mgr), 0);
        assert_eq!(INetFwV6Mgr_Release(admin), 0);
    }
}

#[test]
fn bad_pairs_and_indexes_are_e_invalidarg() {
    let (mgr, admin) = setup(true);
    // SAFETY: live handles and locals; each handle released once.
    unsafe {
        assert_eq!(
            INetFwV6Mgr_OpenGlobalPort(mgr, 0, TCP, null()),
            E_INVALIDARG
        );
        assert!(last_error().contains("port 0"), "{}", last_error());
        assert_eq!(INetFwV6Mgr_OpenGlobalPort(mgr, 80, 1, null()), E_INVALIDARG);
        assert_eq!(
            INetFwV6Mgr_OpenGlobalPort(mgr, 80, -1, null()),
            E_INVALIDARG
        );
        assert_eq!(INetFwV6Mgr_CloseGlobalPort(mgr, 0, UDP), E_INVALIDARG);
        let long = [b'x'; 300].iter().chain(&[0]).copied().collect::<Vec<u8>>();
        assert_eq!(
            INetFwV6Mgr_OpenGlobalPort(mgr, 80, TCP, long.as_ptr().cast()),
            E_INVALIDARG
        );
        assert_eq!(INetFwV6Mgr_OpenGlobalPort(mgr, 80, TCP, null()), S_OK);
        let coll = globals(mgr);
        let (mut port, mut proto) = (7, 7);
        for bad in [-1, 1, 2, c_long::MAX, c_long::MIN] {
            assert_eq!(
                INetFwV6OpenPortsCollection_Item(coll, bad, &mut port, &mut proto),
                E_INVALIDARG,
                "index {bad}"
            );
        }
        assert_eq!((port, proto), (7, 7), "nothing written");
        assert!(last_error().contains("Count is 1"), "{}", last_error());
        assert_eq!(
            INetFwV6OpenPortsCollection_Item(coll, 0, &mut port, &mut proto),
            S_OK
        );
        assert_eq!((port, proto), (80, TCP));
        INetFwV6OpenPortsCollection_Release(coll);
        INetFwV6Mgr_Release(mgr);
        INetFwV6Mgr_Release(admin);
    }
}

#[test]
fn null_pointers_are_e_pointer_and_nothing_is_written() {
    let (mgr, admin) = setup(true);
    // SAFETY: live handles, locals and NULLs; each handle released once.
    unsafe {
        assert_eq!(
            INetFwV6Mgr_OpenGlobalPort(null_mut(), 80, TCP, null()),
            E_POINTER
        );
        assert!(last_error().contains("mgr is NULL"), "{}", last_error());
        assert_eq!(
            INetFwV6Mgr_get_GloballyOpenPorts(mgr, null_mut()),
            E_POINTER
        );
        let mut coll = std::ptr::NonNull::dangling().as_ptr();
        assert_eq!(
            INetFwV6Mgr_get_GloballyOpenPorts(null_mut(), &mut coll),
            E_POINTER
        );
        assert!(coll.is_null(), "a failed call writes NULL for a handle");
        assert_eq!(
            INetFwV6Mgr_GetConnection(mgr, null(), &mut null_mut()),
            E_POINTER
        );
        assert_eq!(
            INetFwV6Mgr_GetConnection(mgr, c"eth0".as_ptr(), null_mut()),
            E_POINTER
        );
        assert_eq!(
            INetFwV6Mgr_IsGlobalPortOpen(mgr, 80, TCP, null_mut()),
            E_POINTER
        );
        assert_eq!(NetFwV6Mgr_Create(null(), null_mut()), E_POINTER);
        let coll = globals(mgr);
        let (mut port, mut proto, mut n) = (9, 9, 9);
        assert_eq!(
            INetFwV6OpenPortsCollection_get_Count(coll, null_mut()),
            E_POINTER
        );
        assert_eq!(
            INetFwV6OpenPortsCollection_get_Count(null_mut(), &mut n),
            E_POINTER
        );
        assert_eq!(n, 9);
        assert_eq!(
            INetFwV6OpenPortsCollection_Item(coll, 0, null_mut(), &mut proto),
            E_POINTER
        );
        assert_eq!(
            INetFwV6OpenPortsCollection_Item(coll, 0, &mut port, null_mut()),
            E_POINTER
        );
        assert_eq!((port, proto), (9, 9));
        assert_eq!(
            INetFwV6OpenPortsCollection_get_ItemName(coll, 0, null_mut()),
            E_POINTER
        );
        let mut conn = null_mut();
        assert_eq!(
            INetFwV6Mgr_GetConnection(mgr, c"eth0".as_ptr(), &mut conn),
            S_OK
        );
        let mut vb = 5;
        assert_eq!(
            INetFwV6Connection_IsPortOpen(conn, 80, TCP, null_mut()),
            E_POINTER
        );
        assert_eq!(
            INetFwV6Connection_IsPortOpen(null_mut(), 80, TCP, &mut vb),
            E_POINTER
        );
        assert_eq!(
            INetFwV6Connection_get_IsFirewalled(conn, null_mut()),
            E_POINTER
        );
        assert_eq!(INetFwV6Connection_get_Name(conn, null_mut()), E_POINTER);
        assert_eq!(INetFwV6Connection_get_Id(conn, null_mut()), E_POINTER);
        assert_eq!(
            INetFwV6Connection_get_OpenPorts(conn, null_mut()),
            E_POINTER
        );
        assert_eq!(
            INetFwV6Connection_OpenPort(null_mut(), 80, TCP, null()),
            E_POINTER
        );
        assert_eq!(
            INetFwV6Mgr_get_LogDroppedPackets(mgr, null_mut()),
            E_POINTER
        );
        assert_eq!(INetFwV6Mgr_get_LogFileMaxSize(mgr, null_mut()), E_POINTER);
        assert_eq!(vb, 5);
        // Release and AddRef of NULL are harmless.
        assert_eq!(INetFwV6Mgr_Release(null_mut()), 0);
        assert_eq!(INetFwV6Mgr_AddRef(null_mut()), 0);
        assert_eq!(INetFwV6Connection_Release(null_mut()), 0);
        assert_eq!(INetFwV6OpenPortsCollection_Release(null_mut()), 0);
        assert_eq!(INetFwV6ConnectionsCollection_Release(null_mut()), 0);
        assert_eq!(IEnumNetFwV6OpenPorts_Release(null_mut()), 0);
        INetFwV6Connection_Release(conn);
        INetFwV6OpenPortsCollection_Release(coll);
        INetFwV6Mgr_Release(mgr);
        INetFwV6Mgr_Release(admin);
    }
}

#[test]
fn connections_have_their_own_pairs_and_switches() {
    let (mgr, admin) = setup(true);
    // SAFETY: live handles and locals; each handle released once.
    unsafe {
        let mut conn = std::ptr::NonNull::dangling().as_ptr();
        assert_eq!(
            INetFwV6Mgr_GetConnection(mgr, c"nope0".as_ptr(), &mut conn),
            E_INVALIDARG
        );
        assert!(conn.is_null(), "an unknown id writes NULL");
        assert!(last_error().contains("nope0"), "{}", last_error());
        assert_eq!(
            INetFwV6Mgr_GetConnection(mgr, c"eth0".as_ptr(), &mut conn),
            S_OK
        );
        let mut s = null_mut();
        assert_eq!(INetFwV6Connection_get_Id(conn, &mut s), S_OK);
        assert_eq!(take(s), "eth0");
        assert_eq!(INetFwV6Connection_get_Name(conn, &mut s), S_OK);
        assert_eq!(take(s), "Ethernet");

        assert_eq!(
            INetFwV6Mgr_OpenGlobalPort(mgr, 443, TCP, c"https".as_ptr()),
            S_OK
        );
        let before = null_mut::<INetFwV6OpenPortsCollection>();
        let mut before = before;
        assert_eq!(INetFwV6Connection_get_OpenPorts(conn, &mut before), S_OK);
        assert_eq!(
            INetFwV6Connection_OpenPort(conn, 5353, UDP, c"mdns".as_ptr()),
            S_OK
        );
        assert_eq!(
            INetFwV6Connection_OpenPort(conn, 0, UDP, null()),
            E_INVALIDARG
        );
        let mut vb = 0;
        assert_eq!(
            INetFwV6Connection_IsPortOpen(conn, 5353, UDP, &mut vb),
            S_OK
        );
        assert_eq!(vb, VARIANT_TRUE);
        assert_eq!(INetFwV6Connection_IsPortOpen(conn, 443, TCP, &mut vb), S_OK);
        assert_eq!(
            vb, VARIANT_FALSE,
            "IsPortOpen is the connection's own pairs"
        );
        let mut after = null_mut();
        assert_eq!(INetFwV6Connection_get_OpenPorts(conn, &mut after), S_OK);
        assert_eq!(pairs(before), vec![(443, TCP)]);
        assert_eq!(
            pairs(after),
            vec![(443, TCP), (5353, UDP)],
            "own and global"
        );

        assert_eq!(INetFwV6Connection_IgnoreGlobalPort(conn, 443, TCP), S_OK);
        let mut ignoring = null_mut();
        assert_eq!(INetFwV6Connection_get_OpenPorts(conn, &mut ignoring), S_OK);
        assert_eq!(pairs(ignoring), vec![(5353, UDP)]);
        assert_eq!(INetFwV6Connection_ObserveGlobalPort(conn, 443, TCP), S_OK);
        assert_eq!(INetFwV6Connection_ClosePort(conn, 5353, UDP), S_OK);
        let mut last = null_mut();
        assert_eq!(INetFwV6Connection_get_OpenPorts(conn, &mut last), S_OK);
        assert_eq!(pairs(last), vec![(443, TCP)]);

        assert_eq!(INetFwV6Connection_get_IsFirewalled(conn, &mut vb), S_OK);
        assert_eq!(vb, VARIANT_TRUE);
        assert_eq!(INetFwV6Connection_DisableFirewall(conn), S_OK);
        assert_eq!(INetFwV6Connection_get_IsFirewalled(conn, &mut vb), S_OK);
        assert_eq!(vb, VARIANT_FALSE);
        assert_eq!(INetFwV6Connection_EnableFirewall(conn), S_OK);
        assert_eq!(INetFwV6Connection_get_IsFirewalled(conn, &mut vb), S_OK);
        assert_eq!(vb, VARIANT_TRUE);

        // The connection handle outlives its manager.
        assert_eq!(INetFwV6Mgr_Release(mgr), 0);
        assert_eq!(
            INetFwV6Connection_IsPortOpen(conn, 5353, UDP, &mut vb),
            S_OK
        );
        assert_eq!(INetFwV6Connection_AddRef(conn), 2);
        assert_eq!(INetFwV6Connection_Release(conn), 1);
        assert_eq!(INetFwV6Connection_Release(conn), 0);
        for c in [before, after, ignoring, last] {
            assert_eq!(INetFwV6OpenPortsCollection_Release(c), 0);
        }
        INetFwV6Mgr_Release(admin);
    }
}

#[test]
fn anyone_reads_but_only_an_admin_changes() {
    let (user, admin) = setup(false);
    // SAFETY: live handles and locals; each handle released once.
    unsafe {
        assert_eq!(
            INetFwV6Mgr_OpenGlobalPort(admin, 22, TCP, c"ssh".as_ptr()),
            S_OK
        );
        let coll = globals(user);
        assert_eq!(pairs(coll), vec![(22, TCP)]);
        assert_eq!(
            INetFwV6Mgr_OpenGlobalPort(user, 8443, TCP, null()),
            E_ACCESSDENIED
        );
        assert!(
            last_error().contains("E_ACCESSDENIED 0x80070005"),
            "{}",
            last_error()
        );
        assert_eq!(INetFwV6Mgr_CloseGlobalPort(user, 22, TCP), E_ACCESSDENIED);
        assert_eq!(
            INetFwV6Mgr_put_LogDroppedPackets(user, VARIANT_TRUE),
            E_ACCESSDENIED
        );
        let mut conn = null_mut();
        assert_eq!(
            INetFwV6Mgr_GetConnection(user, c"eth0".as_ptr(), &mut conn),
            S_OK
        );
        let mut vb = 0;
        assert_eq!(INetFwV6Connection_get_IsFirewalled(conn, &mut vb), S_OK);
        assert_eq!(
            INetFwV6Connection_OpenPort(conn, 80, TCP, null()),
            E_ACCESSDENIED
        );
        assert_eq!(INetFwV6Connection_ClosePort(conn, 80, TCP), E_ACCESSDENIED);
        assert_eq!(
            INetFwV6Connection_IgnoreGlobalPort(conn, 22, TCP),
            E_ACCESSDENIED
        );
        assert_eq!(INetFwV6Connection_DisableFirewall(conn), E_ACCESSDENIED);
        let after = globals(user);
        assert_eq!(pairs(after), vec![(22, TCP)], "nothing changed");
        INetFwV6Connection_Release(conn);
        INetFwV6OpenPortsCollection_Release(coll);
        INetFwV6OpenPortsCollection_Release(after);
        INetFwV6Mgr_Release(user);
        INetFwV6Mgr_Release(admin);
    }
}

#[test]
fn enumerators_walk_a_snapshot() {
    let (mgr, admin) = setup(true);
    // SAFETY: live handles, locals and arrays of `celt` elements.
    unsafe {
        for port in [1, 2, 3] {
            assert_eq!(INetFwV6Mgr_OpenGlobalPort(mgr, port, UDP, null()), S_OK);
        }
        let coll = globals(mgr);
        let mut e = null_mut();
        assert_eq!(INetFwV6OpenPortsCollection_get__NewEnum(coll, &mut e), S_OK);
        assert_eq!(
            INetFwV6OpenPortsCollection_Release(coll),
            0,
            "the enumerator keeps the pairs"
        );
        let (mut ports, mut protos, mut got) = ([0u16; 2], [0; 2], 0u32);
        assert_eq!(
            IEnumNetFwV6OpenPorts_Next(e, 2, ports.as_mut_ptr(), protos.as_mut_ptr(), &mut got),
            S_OK
        );
        assert_eq!((got, ports, protos), (2, [1, 2], [UDP, UDP]));
        let mut copy = null_mut();
        assert_eq!(IEnumNetFwV6OpenPorts_Clone(e, &mut copy), S_OK);
        assert_eq!(
            IEnumNetFwV6OpenPorts_Next(e, 2, ports.as_mut_ptr(), protos.as_mut_ptr(), &mut got),
            S_FALSE
        );
        assert_eq!((got, ports[0]), (1, 3));
        assert_eq!(
            IEnumNetFwV6OpenPorts_Next(e, 1, ports.as_mut_ptr(), protos.as_mut_ptr(), null_mut()),
            S_FALSE,
            "at the end"
        );
        assert_eq!(
            IEnumNetFwV6OpenPorts_Next(e, 2, ports.as_mut_ptr(), protos.as_mut_ptr(), null_mut()),
            E_POINTER,
            "pceltFetched is needed unless celt is 1"
        );
        assert_eq!(IEnumNetFwV6OpenPorts_Reset(e), S_OK);
        assert_eq!(IEnumNetFwV6OpenPorts_Skip(e, 2), S_OK);
        assert_eq!(IEnumNetFwV6OpenPorts_Skip(e, 5), S_FALSE);
        assert_eq!(
            IEnumNetFwV6OpenPorts_Next(copy, 1, ports.as_mut_ptr(), protos.as_mut_ptr(), &mut got),
            S_OK,
            "the clone is where the original was"
        );
        assert_eq!((got, ports[0]), (1, 3));
        assert_eq!(IEnumNetFwV6OpenPorts_Release(copy), 0);
        assert_eq!(IEnumNetFwV6OpenPorts_AddRef(e), 2);
        assert_eq!(IEnumNetFwV6OpenPorts_Release(e), 1);
        assert_eq!(IEnumNetFwV6OpenPorts_Release(e), 0);

        let mut conn = null_mut();
        assert_eq!(
            INetFwV6Mgr_GetConnection(mgr, c"eth0".as_ptr(), &mut conn),
            S_OK
        );
        assert_eq!(INetFwV6Connection_EnumerateOpenPorts(conn, &mut e), S_OK);
        assert_eq!(
            IEnumNetFwV6OpenPorts_Next(e, 2, ports.as_mut_ptr(), protos.as_mut_ptr(), &mut got),
            S_OK
        );
        assert_eq!(ports, [1, 2], "the connection sees the global pairs");
        IEnumNetFwV6OpenPorts_Release(e);
        INetFwV6Connection_Release(conn);
        INetFwV6Mgr_Release(mgr);
        INetFwV6Mgr_Release(admin);
    }
}

#[test]
fn the_connections_collection_hands_out_connections() {
    let (mgr, admin) = setup(true);
    // SAFETY: live handles and locals; each handle released once.
    unsafe {
        let mut coll = null_mut();
        assert_eq!(INetFwV6Mgr_get_Connections(mgr, &mut coll), S_OK);
        let mut n = 0;
        assert_eq!(INetFwV6ConnectionsCollection_get_Count(coll, &mut n), S_OK);
        assert_eq!(n, 1);
        let mut conn = std::ptr::NonNull::dangling().as_ptr();
        assert_eq!(
            INetFwV6ConnectionsCollection_Item(coll, 1, &mut conn),
            E_INVALIDARG
        );
        assert!(conn.is_null());
        assert_eq!(INetFwV6ConnectionsCollection_Item(coll, 0, &mut conn), S_OK);
        assert_eq!(INetFwV6ConnectionsCollection_Release(coll), 0);
        let mut s = null_mut();
        assert_eq!(INetFwV6Connection_get_Id(conn, &mut s), S_OK);
        assert_eq!(take(s), "eth0");
        INetFwV6Connection_Release(conn);
        INetFwV6Mgr_Release(mgr);
        INetFwV6Mgr_Release(admin);
    }
}

#[test]
fn log_properties_read_and_change() {
    let (mgr, admin) = setup(true);
    // SAFETY: live handles and locals; each handle released once.
    unsafe {
        let mut vb = 7;
        assert_eq!(INetFwV6Mgr_get_LogDroppedPackets(mgr, &mut vb), S_OK);
        assert_eq!(vb, VARIANT_FALSE);
        assert_eq!(INetFwV6Mgr_put_LogDroppedPackets(mgr, VARIANT_TRUE), S_OK);
        assert_eq!(INetFwV6Mgr_get_LogDroppedPackets(mgr, &mut vb), S_OK);
        assert_eq!(vb, VARIANT_TRUE);
        assert_eq!(INetFwV6Mgr_put_LogConnections(mgr, VARIANT_TRUE), S_OK);
        assert_eq!(INetFwV6Mgr_get_LogConnections(mgr, &mut vb), S_OK);
        assert_eq!(vb, VARIANT_TRUE);
        assert_eq!(INetFwV6Mgr_put_LogFileMaxSize(mgr, 1), E_INVALIDARG);
        assert_eq!(INetFwV6Mgr_put_LogFileMaxSize(mgr, 65536), S_OK);
        let mut size = 0;
        assert_eq!(INetFwV6Mgr_get_LogFileMaxSize(mgr, &mut size), S_OK);
        assert_eq!(size, 65536);
        INetFwV6Mgr_Release(mgr);
        INetFwV6Mgr_Release(admin);
    }
}

#[test]
#[cfg_attr(miri, ignore = "the daemon checks the log file's directory (a stat)")]
fn the_log_file_path_reads_and_changes() {
    let (mgr, admin) = setup(true);
    // SAFETY: live handles and locals; each handle released once.
    unsafe {
        assert_eq!(
            INetFwV6Mgr_put_LogFilePath(mgr, c"relative.log".as_ptr()),
            E_INVALIDARG
        );
        // An absolute path in a directory that exists, on either system.
        let path: &CStr = if cfg!(windows) {
            c"C:\\windows\\fw.log"
        } else {
            c"/var/log/fw.log"
        };
        assert_eq!(INetFwV6Mgr_put_LogFilePath(mgr, path.as_ptr()), S_OK);
        let mut s = null_mut();
        assert_eq!(INetFwV6Mgr_get_LogFilePath(mgr, &mut s), S_OK);
        assert_eq!(take(s), path.to_str().unwrap());
        assert_eq!(INetFwV6Mgr_put_LogFilePath(mgr, null()), S_OK);
        assert_eq!(INetFwV6Mgr_get_LogFilePath(mgr, &mut s), S_OK);
        assert_eq!(
            take(s),
            "",
            "in memory: no state directory, no default file"
        );
        INetFwV6Mgr_Release(mgr);
        INetFwV6Mgr_Release(admin);
    }
}

#[test]
#[cfg_attr(miri, ignore = "miri cannot open sockets")]
fn no_daemon_is_e_fail_with_a_message() {
    let dir = std::env::temp_dir().join(format!("v6fw-ffi-none-{}", std::process::id()));
    let path =
        std::ffi::CString::new(dir.join("control.sock").to_string_lossy().into_owned()).unwrap();
    let mut mgr = std::ptr::NonNull::dangling().as_ptr();
    // SAFETY: a NUL-terminated local and a local out-pointer.
    let hr = unsafe { NetFwV6Mgr_Create(path.as_ptr(), &mut mgr) };
    assert_eq!(hr, E_FAIL);
    assert!(mgr.is_null());
    let msg = last_error();
    assert!(
        msg.contains("no v6fw daemon is running at") && msg.contains("v6fw run"),
        "{msg}"
    );
}

/// `s` as a NUL-terminated UTF-16 string.
#[cfg(windows)]
fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

#[test]
#[cfg(windows)]
fn the_w_variants_take_utf16_and_refuse_a_lone_surrogate() {
    use crate::windows::*;
    let (mgr, admin) = setup(true);
    // SAFETY: live handles, NUL-terminated UTF-16 locals and local
    // out-pointers throughout; each handle released once.
    unsafe {
        let name = wide("wëb");
        assert_eq!(
            INetFwV6Mgr_OpenGlobalPortW(mgr, 8080, TCP, name.as_ptr()),
            S_OK
        );
        let coll = globals(mgr);
        assert_eq!(pairs(coll), vec![(8080, TCP)]);
        let mut s = null_mut();
        assert_eq!(
            INetFwV6OpenPortsCollection_get_ItemName(coll, 0, &mut s),
            S_OK
        );
        assert_eq!(take(s), "wëb", "the UTF-16 name arrives as UTF-8");
        assert_eq!(INetFwV6OpenPortsCollection_Release(coll), 0);

        // A lone surrogate is not a string: E_INVALIDARG, nothing opened.
        let bad = [0xd800u16, 0];
        assert_eq!(
            INetFwV6Mgr_OpenGlobalPortW(mgr, 9090, TCP, bad.as_ptr()),
            E_INVALIDARG
        );
        assert!(last_error().contains("not valid UTF-16"));
        let coll = globals(mgr);
        assert_eq!(pairs(coll), vec![(8080, TCP)], "nothing opened");
        assert_eq!(INetFwV6OpenPortsCollection_Release(coll), 0);

        // A connection by its UTF-16 id, and a port opened on it.
        let mut conn = std::ptr::NonNull::dangling().as_ptr();
        let unknown = wide("nope");
        assert!(INetFwV6Mgr_GetConnectionW(mgr, unknown.as_ptr(), &mut conn) < 0);
        assert!(conn.is_null(), "an unknown id writes NULL");
        let id = wide("eth0");
        assert_eq!(
            INetFwV6Mgr_GetConnectionW(mgr, id.as_ptr(), &mut conn),
            S_OK
        );
        let dns = wide("dns");
        assert_eq!(
            INetFwV6Connection_OpenPortW(conn, 53, UDP, dns.as_ptr()),
            S_OK
        );
        let mut open = 0;
        assert_eq!(
            INetFwV6Connection_IsPortOpen(conn, 53, UDP, &mut open),
            S_OK
        );
        assert_eq!(open, VARIANT_TRUE);
        assert_eq!(INetFwV6Connection_Release(conn), 0);
        assert_eq!(INetFwV6Mgr_Release(mgr), 0);
        assert_eq!(INetFwV6Mgr_Release(admin), 0);
    }
}
