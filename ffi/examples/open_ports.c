/* libv6fw from C: open, read and close global and per-connection pairs on a
 * running v6fw daemon, checking every HRESULT and the snapshot semantics.
 *
 *   gcc -std=c11 -Wall -Wextra -pedantic -Iffi/include ffi/examples/open_ports.c \
 *       -Ltarget/release -lv6fw -Wl,-rpath,target/release -o open_ports
 *   ./open_ports SOCKET CONNECTION PHASE
 *
 * PHASE is what one run checks (ffi/tests/examples.rs runs them in order):
 *   open      as root: opens 18080/tcp globally and 18081/udp on CONNECTION
 *   user      as anyone else: sees both, and every change is E_ACCESSDENIED
 *   close     as root: closes both; an older snapshot still holds them
 *   nodaemon  SOCKET has no daemon: NetFwV6Mgr_Create fails with a message
 * Prints "ok: N checks" and exits 0, or names each failed check and exits 1. */
#include <stdio.h>
#include <string.h>

#include "v6fw.h"

static int checks, failures;

static const char *last(void) {
    const char *m = v6fw_last_error_message();
    return m ? m : "(none)";
}

#define CHECK(cond, what)                                                       \
    do {                                                                        \
        checks++;                                                               \
        if (!(cond)) {                                                          \
            failures++;                                                         \
            fprintf(stderr, "FAIL line %d: %s (last error: %s)\n", __LINE__,   \
                    what, last());                                              \
        }                                                                       \
    } while (0)

#define EXPECT_HR(call, want)                                                   \
    do {                                                                        \
        HRESULT hr_ = (call);                                                   \
        checks++;                                                               \
        if (hr_ != (want)) {                                                    \
            failures++;                                                         \
            fprintf(stderr, "FAIL line %d: %s = 0x%08lX, want 0x%08lX (%s)\n",  \
                    __LINE__, #call, (unsigned long)(uint32_t)hr_,             \
                    (unsigned long)(uint32_t)(want), last());                   \
        }                                                                       \
    } while (0)

enum { GLOBAL_PORT = 18080, CONN_PORT = 18081 };

/* Whether the collection holds port/protocol (read through Count and Item). */
static int holds(INetFwV6OpenPortsCollection *coll, USHORT port, PORT_PROTOCOL proto) {
    long n = -1;
    EXPECT_HR(INetFwV6OpenPortsCollection_get_Count(coll, &n), S_OK);
    for (long i = 0; i < n; i++) {
        USHORT p = 0;
        PORT_PROTOCOL pr = PORT_PROTOCOL_TCP;
        EXPECT_HR(INetFwV6OpenPortsCollection_Item(coll, i, &p, &pr), S_OK);
        if (p == port && pr == proto)
            return 1;
    }
    return 0;
}

static INetFwV6OpenPortsCollection *globals(INetFwV6Mgr *mgr) {
    INetFwV6OpenPortsCollection *coll = NULL;
    EXPECT_HR(INetFwV6Mgr_get_GloballyOpenPorts(mgr, &coll), S_OK);
    return coll;
}

static INetFwV6OpenPortsCollection *own(INetFwV6Connection *conn) {
    INetFwV6OpenPortsCollection *coll = NULL;
    EXPECT_HR(INetFwV6Connection_get_OpenPorts(conn, &coll), S_OK);
    return coll;
}

static void open_phase(INetFwV6Mgr *mgr, INetFwV6Connection *conn) {
    INetFwV6OpenPortsCollection *before = globals(mgr);
    INetFwV6OpenPortsCollection *conn_before = own(conn);
    EXPECT_HR(INetFwV6Mgr_OpenGlobalPort(mgr, GLOBAL_PORT, PORT_PROTOCOL_TCP, "c example"), S_OK);
    EXPECT_HR(INetFwV6Mgr_OpenGlobalPort(mgr, GLOBAL_PORT, PORT_PROTOCOL_TCP, "again"), S_OK);
    EXPECT_HR(INetFwV6Mgr_OpenGlobalPort(mgr, 0, PORT_PROTOCOL_TCP, "zero"), E_INVALIDARG);
    CHECK(strstr(last(), "E_INVALIDARG") != NULL, "the message names the code");
    EXPECT_HR(INetFwV6Mgr_OpenGlobalPort(mgr, 80, (PORT_PROTOCOL)1, "icmp"), E_INVALIDARG);
    EXPECT_HR(INetFwV6Connection_OpenPort(conn, CONN_PORT, PORT_PROTOCOL_UDP, "c example udp"), S_OK);
    EXPECT_HR(INetFwV6Connection_OpenPort(conn, 0, PORT_PROTOCOL_UDP, NULL), E_INVALIDARG);

    INetFwV6OpenPortsCollection *after = globals(mgr);
    CHECK(!holds(before, GLOBAL_PORT, PORT_PROTOCOL_TCP), "a snapshot taken before the open lacks it");
    CHECK(holds(after, GLOBAL_PORT, PORT_PROTOCOL_TCP), "a snapshot taken after holds it");
    char *name = NULL;
    long n = 0;
    EXPECT_HR(INetFwV6OpenPortsCollection_get_Count(after, &n), S_OK);
    for (long i = 0; i < n; i++) {
        USHORT p = 0;
        PORT_PROTOCOL pr = PORT_PROTOCOL_UDP;
        EXPECT_HR(INetFwV6OpenPortsCollection_Item(after, i, &p, &pr), S_OK);
        if (p == GLOBAL_PORT) {
            EXPECT_HR(INetFwV6OpenPortsCollection_get_ItemName(after, i, &name), S_OK);
            CHECK(name && strcmp(name, "c example") == 0, "the first name stays");
            v6fw_string_free(name);
        }
    }
    USHORT port = 7;
    PORT_PROTOCOL proto = PORT_PROTOCOL_UDP;
    EXPECT_HR(INetFwV6OpenPortsCollection_Item(after, n, &port, &proto), E_INVALIDARG);
    EXPECT_HR(INetFwV6OpenPortsCollection_Item(after, -1, &port, &proto), E_INVALIDARG);
    EXPECT_HR(INetFwV6OpenPortsCollection_Item(after, 0, NULL, &proto), E_POINTER);
    CHECK(port == 7 && proto == PORT_PROTOCOL_UDP, "a failed Item writes nothing");
    EXPECT_HR(INetFwV6OpenPortsCollection_get_Count(after, NULL), E_POINTER);

    INetFwV6OpenPortsCollection *conn_after = own(conn);
    CHECK(!holds(conn_before, CONN_PORT, PORT_PROTOCOL_UDP), "the connection's older snapshot lacks it");
    CHECK(holds(conn_after, CONN_PORT, PORT_PROTOCOL_UDP), "the connection's own pair");
    CHECK(holds(conn_after, GLOBAL_PORT, PORT_PROTOCOL_TCP), "and the global pair");
    VARIANT_BOOL open = VARIANT_FALSE;
    EXPECT_HR(INetFwV6Connection_IsPortOpen(conn, CONN_PORT, PORT_PROTOCOL_UDP, &open), S_OK);
    CHECK(open == VARIANT_TRUE, "IsPortOpen sees the own pair");
    EXPECT_HR(INetFwV6Connection_IsPortOpen(conn, GLOBAL_PORT, PORT_PROTOCOL_TCP, &open), S_OK);
    CHECK(open == VARIANT_FALSE, "IsPortOpen is the connection's own pairs only");

    CHECK(INetFwV6OpenPortsCollection_Release(before) == 0, "Release frees");
    INetFwV6OpenPortsCollection_Release(after);
    INetFwV6OpenPortsCollection_Release(conn_before);
    INetFwV6OpenPortsCollection_Release(conn_after);
}

static void user_phase(INetFwV6Mgr *mgr, INetFwV6Connection *conn) {
    INetFwV6OpenPortsCollection *g = globals(mgr);
    CHECK(holds(g, GLOBAL_PORT, PORT_PROTOCOL_TCP), "anyone reads the global pairs");
    INetFwV6OpenPortsCollection_Release(g);
    VARIANT_BOOL open = VARIANT_FALSE;
    EXPECT_HR(INetFwV6Connection_IsPortOpen(conn, CONN_PORT, PORT_PROTOCOL_UDP, &open), S_OK);
    CHECK(open == VARIANT_TRUE, "anyone reads a connection's pairs");
    EXPECT_HR(INetFwV6Connection_get_IsFirewalled(conn, &open), S_OK);
    CHECK(open == VARIANT_TRUE, "the firewall is on");

    EXPECT_HR(INetFwV6Mgr_OpenGlobalPort(mgr, 18082, PORT_PROTOCOL_TCP, "no"), E_ACCESSDENIED);
    CHECK(strstr(last(), "E_ACCESSDENIED 0x80070005") != NULL, "the message says so");
    EXPECT_HR(INetFwV6Mgr_CloseGlobalPort(mgr, GLOBAL_PORT, PORT_PROTOCOL_TCP), E_ACCESSDENIED);
    EXPECT_HR(INetFwV6Connection_OpenPort(conn, 18083, PORT_PROTOCOL_UDP, "no"), E_ACCESSDENIED);
    EXPECT_HR(INetFwV6Connection_ClosePort(conn, CONN_PORT, PORT_PROTOCOL_UDP), E_ACCESSDENIED);
    EXPECT_HR(INetFwV6Connection_DisableFirewall(conn), E_ACCESSDENIED);
    EXPECT_HR(INetFwV6Mgr_put_LogDroppedPackets(mgr, VARIANT_TRUE), E_ACCESSDENIED);

    g = globals(mgr);
    CHECK(holds(g, GLOBAL_PORT, PORT_PROTOCOL_TCP), "the refused close changed nothing");
    CHECK(!holds(g, 18082, PORT_PROTOCOL_TCP), "the refused open changed nothing");
    INetFwV6OpenPortsCollection_Release(g);
}

static void close_phase(INetFwV6Mgr *mgr, INetFwV6Connection *conn) {
    INetFwV6OpenPortsCollection *before = globals(mgr);
    INetFwV6OpenPortsCollection *conn_before = own(conn);
    EXPECT_HR(INetFwV6Mgr_CloseGlobalPort(mgr, GLOBAL_PORT, PORT_PROTOCOL_TCP), S_OK);
    EXPECT_HR(INetFwV6Mgr_CloseGlobalPort(mgr, GLOBAL_PORT, PORT_PROTOCOL_TCP), S_OK);
    EXPECT_HR(INetFwV6Connection_ClosePort(conn, CONN_PORT, PORT_PROTOCOL_UDP), S_OK);
    INetFwV6OpenPortsCollection *after = globals(mgr);
    INetFwV6OpenPortsCollection *conn_after = own(conn);
    CHECK(holds(before, GLOBAL_PORT, PORT_PROTOCOL_TCP), "a pair closed later is still in the older snapshot");
    CHECK(!holds(after, GLOBAL_PORT, PORT_PROTOCOL_TCP), "and not in a new one");
    CHECK(holds(conn_before, CONN_PORT, PORT_PROTOCOL_UDP), "the connection's older snapshot");
    CHECK(!holds(conn_after, CONN_PORT, PORT_PROTOCOL_UDP), "the connection's new one");
    INetFwV6OpenPortsCollection_Release(before);
    INetFwV6OpenPortsCollection_Release(after);
    INetFwV6OpenPortsCollection_Release(conn_before);
    INetFwV6OpenPortsCollection_Release(conn_after);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s SOCKET CONNECTION open|user|close|nodaemon\n", argv[0]);
        return 2;
    }
    const char *socket = argv[1], *id = argv[2], *phase = argv[3];
    INetFwV6Mgr *mgr = (INetFwV6Mgr *)&checks; /* not NULL: a failure must write NULL */
    if (strcmp(phase, "nodaemon") == 0) {
        HRESULT hr = NetFwV6Mgr_Create(socket, &mgr);
        CHECK(FAILED(hr), "no daemon is a failure");
        CHECK(mgr == NULL, "and writes NULL");
        CHECK(strstr(last(), "no v6fw daemon is running") != NULL, "with a clear message");
        printf("message: %s\n", last());
    } else {
        EXPECT_HR(NetFwV6Mgr_Create(socket, &mgr), S_OK);
        if (failures) {
            return 1;
        }
        INetFwV6Connection *conn = (INetFwV6Connection *)&checks;
        EXPECT_HR(INetFwV6Mgr_GetConnection(mgr, "no-such-connection", &conn), E_INVALIDARG);
        CHECK(conn == NULL, "an unknown connection writes NULL");
        EXPECT_HR(INetFwV6Mgr_GetConnection(mgr, id, NULL), E_POINTER);
        EXPECT_HR(INetFwV6Mgr_GetConnection(mgr, id, &conn), S_OK);
        char *s = NULL;
        EXPECT_HR(INetFwV6Connection_get_Id(conn, &s), S_OK);
        CHECK(s && strcmp(s, id) == 0, "get_Id is the id asked for");
        v6fw_string_free(s);
        if (strcmp(phase, "open") == 0)
            open_phase(mgr, conn);
        else if (strcmp(phase, "user") == 0)
            user_phase(mgr, conn);
        else if (strcmp(phase, "close") == 0)
            close_phase(mgr, conn);
        else
            CHECK(0, "a known phase");
        CHECK(INetFwV6Connection_AddRef(conn) == 2, "AddRef counts");
        CHECK(INetFwV6Connection_Release(conn) == 1, "Release counts");
        CHECK(INetFwV6Connection_Release(conn) == 0, "the last Release frees");
        CHECK(INetFwV6Mgr_Release(mgr) == 0, "the manager's last Release frees");
    }
    CHECK(INetFwV6Mgr_Release(NULL) == 0, "Release of NULL is harmless");
    CHECK(INetFwV6OpenPortsCollection_Release(NULL) == 0, "for every handle");
    if (failures) {
        fprintf(stderr, "%d of %d checks failed\n", failures, checks);
        return 1;
    }
    printf("ok: %d checks\n", checks);
    return 0;
}
