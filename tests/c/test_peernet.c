/* C test suite of libpeernet: calls the exported functions as a C program does.
 * Every node listens on 127.0.0.1 with a short heartbeat. Prints "N passed, N failed".
 * The topics live in calls.c, callbacks.c, events.c, first_hour.c, pairing.c,
 * streams.c and streams_async.c, all included here (one translation unit, helpers in
 * suite.h); this file holds the lifecycle tests (versions, errors, keys, config, node
 * lifecycle), the logger, metrics, the inline-callback rerun and main(). */
#include "suite.h"

/* ---------- tests ---------- */

static void test_versions(void) {
    CHECK(strcmp(peernet_version(), PEERNET_VERSION) == 0);
    CHECK(peernet_abi_version() == PEERNET_ABI_VERSION);
    CHECK(PEERNET_VERSION_MAJOR == 0 && PEERNET_VERSION_MINOR == 1);
    for (int i = 0; i < PEERNET_STATUS_COUNT; i++) {
        const char *s = peernet_status_str(i);
        CHECK(s != NULL && strncmp(s, "PEERNET_", 8) == 0);
    }
    CHECK(strcmp(peernet_status_str(PEERNET_ERR_TIMEOUT), "PEERNET_ERR_TIMEOUT") == 0);
    CHECK(strcmp(peernet_status_str(-1), "PEERNET_ERR_UNKNOWN") == 0);
    CHECK(strcmp(peernet_status_str(9999), "PEERNET_ERR_UNKNOWN") == 0);
}

static void test_last_error(void) {
    CHECK(peernet_last_error() != NULL);
    peernet_key k;
    CHECK_STATUS(peernet_key_from_hex("xyz", &k), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK(strlen(peernet_last_error()) > 0);
    /* status_str and version do not clear it */
    (void)peernet_status_str(0);
    (void)peernet_version();
    CHECK(strlen(peernet_last_error()) > 0);
    /* a successful call clears it */
    CHECK_OK(peernet_key_from_hex(
        "0000000000000000000000000000000000000000000000000000000000000001", &k));
    CHECK(strcmp(peernet_last_error(), "") == 0);
}

static void test_panic_guard(void) {
    CHECK_STATUS(peernet_selftest_panic(), PEERNET_ERR_INTERNAL);
    CHECK(strstr(peernet_last_error(), "deliberate panic") != NULL);
    /* the library keeps working */
    peernet_key k;
    CHECK_OK(peernet_key_from_hex(
        "ABCDEFabcdef0000000000000000000000000000000000000000000000000001", &k));
}

static void test_keys(void) {
    const char *hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    peernet_key k;
    CHECK_OK(peernet_key_from_hex(hex, &k));
    CHECK(k.bytes[0] == 0x00 && k.bytes[1] == 0x11 && k.bytes[31] == 0xff);
    char out[PEERNET_KEY_HEX_SIZE];
    peernet_key_to_hex(&k, out);
    CHECK(strcmp(out, hex) == 0);
    char fp[PEERNET_FINGERPRINT_SIZE];
    peernet_key_fingerprint(&k, fp);
    CHECK(strlen(fp) == 16);
    /* bad inputs */
    CHECK_STATUS(peernet_key_from_hex(NULL, &k), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(peernet_key_from_hex(hex, NULL), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(peernet_key_from_hex("0011", &k), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(peernet_key_from_hex(
                     "g0112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", &k),
                 PEERNET_ERR_INVALID_ARGUMENT);
    char bad_utf8[65];
    memset(bad_utf8, 'a', 64);
    bad_utf8[0] = (char)0xff;
    bad_utf8[64] = 0;
    CHECK_STATUS(peernet_key_from_hex(bad_utf8, &k), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK(strstr(peernet_last_error(), "UTF-8") != NULL);
    peernet_key_to_hex(NULL, out); /* no crash */
    CHECK(strlen(peernet_last_error()) > 0);
    peernet_key_fingerprint(&k, NULL);
    CHECK(strlen(peernet_last_error()) > 0);
}

static void test_config_builder(void) {
    CHECK(peernet_config_new(NULL) == NULL);
    CHECK(strlen(peernet_last_error()) > 0);
    CHECK(peernet_config_new("") == NULL);
    char bad[] = {'/', 't', 'm', 'p', '/', (char)0xc3, (char)0x28, 0};
    CHECK(peernet_config_new(bad) == NULL);
    peernet_config *c = test_config("config");
    REQUIRE(c != NULL);
    CHECK_STATUS(peernet_config_set_listen(c, "not an address"), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(peernet_config_set_listen(c, NULL), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(peernet_config_set_listen(NULL, "127.0.0.1:0"), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_OK(peernet_config_set_listen(c, "[::1]:0"));
    CHECK_OK(peernet_config_set_listen(c, "127.0.0.1:0"));
    CHECK_STATUS(peernet_config_set_max_frame(c, 1000), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_OK(peernet_config_set_max_frame(c, 128 * 1024));
    CHECK_STATUS(peernet_config_set_heartbeat(c, 0, 100), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(peernet_config_set_handshake_timeout(c, 0), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_OK(peernet_config_set_handshake_timeout(c, 1000));
    CHECK_STATUS(peernet_config_set_udp_discovery(c, 0, 100, "nonsense"),
                 PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_OK(peernet_config_set_udp_discovery(c, 4999, 100, "127.255.255.255, 127.0.0.1:5000"));
    CHECK_OK(peernet_config_set_network_monitor(c, 100));
    CHECK_OK(peernet_config_set_network_monitor(c, 0));
    CHECK_STATUS(peernet_config_set_max_concurrent_calls(c, 0), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(peernet_config_set_inline_callbacks(NULL, true), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_OK(peernet_config_set_inline_callbacks(c, true));
    CHECK_OK(peernet_config_set_inline_callbacks(c, false));
    peernet_config_free(c);
    peernet_config_free(NULL);
}

static void test_lifecycle(void) {
    peernet_node *n = NULL;
    CHECK_STATUS(peernet_node_start(NULL, &n), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK(n == NULL);
    peernet_config *c = test_config("life");
    REQUIRE(c != NULL);
    CHECK_STATUS(peernet_node_start(c, NULL), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_OK(peernet_node_start(c, &n));
    REQUIRE(n != NULL);
    CHECK(peernet_node_port(n) != 0);
    peernet_key k1, k2;
    peernet_node_key(n, &k1);
    peernet_node_free(n);
    /* same data dir: same identity */
    n = NULL;
    CHECK_OK(peernet_node_start(c, &n));
    REQUIRE(n != NULL);
    peernet_node_key(n, &k2);
    CHECK(memcmp(&k1, &k2, sizeof k1) == 0);
    /* trusting itself is refused */
    CHECK_STATUS(peernet_trust(n, &k2, NULL), PEERNET_ERR_INVALID_ARGUMENT);
    peernet_node_free(n);
    peernet_node_free(NULL);
    CHECK(peernet_node_port(NULL) == 0);
    peernet_config_free(c);
}

#include "calls.c"
#include "callbacks.c"
#include "events.c"

/* ---- logger ---- */

static atomic_int g_log_records;
static atomic_int g_log_bad_level;

static void on_log(void *ud, int level, const char *target, const char *message) {
    (void)ud;
    if (level < PEERNET_LOG_ERROR || level > PEERNET_LOG_DEBUG || !target || !message)
        atomic_fetch_add(&g_log_bad_level, 1);
    atomic_fetch_add(&g_log_records, 1);
    /* calling into the library from the log callback is fine (its records are dropped) */
    (void)peernet_version();
}

static void test_logger(void) {
    CHECK_OK(peernet_set_logger(on_log, NULL, PEERNET_LOG_DEBUG));
    peernet_node *n = start_node("logger");
    CHECK(n != NULL);
    peernet_node_free(n);
    CHECK(atomic_load(&g_log_records) > 0);
    CHECK(atomic_load(&g_log_bad_level) == 0);
    CHECK_OK(peernet_set_logger(NULL, NULL, PEERNET_LOG_OFF));
    int before = atomic_load(&g_log_records);
    n = start_node("logger");
    peernet_node_free(n);
    CHECK(atomic_load(&g_log_records) == before);
}

/* ---------- main ---------- */

/* The callback tests again, with every node running its callbacks inline on the runtime
 * thread (peernet_config_set_inline_callbacks): replies from inside the handler and
 * later from another thread, 1000 call_async completions, a handler that makes a
 * blocking call back into the library, node free from inside a callback and with calls
 * in flight, and RPC. */
static void test_inline_callbacks(void) {
    void (*again[])(void) = {test_call_and_send,    test_respond_later,
                             test_reentrancy,       test_1000_async_calls,
                             test_free_with_calls_in_flight, test_free_from_callback,
                             test_free_from_callback_many, test_completion_calls_back,
                             test_rpc};
    g_inline = true;
    for (size_t i = 0; i < sizeof again / sizeof again[0]; i++) again[i]();
    g_inline = false;
}

/* issue 19: the counters C reads are the node's (after 10 calls, 10 out and 10 in),
 * the struct is versioned by its size, the text is OpenMetrics, and a peer's detail
 * names its addresses and last dial */
static void test_metrics(void) {
    pair p;
    REQUIRE(pair_start(&p, "metrics", true));
    CHECK_OK(peernet_expose(p.b, "echo", echo_handler, NULL, NULL, NULL));
    for (int i = 0; i < 10; i++)
        CHECK_OK(peernet_call(p.a, &p.kb, "echo", (const uint8_t *)"ping", 4, 5000, NULL));
    peernet_node_metrics m;
    memset(&m, 0xff, sizeof m);
    m.size = sizeof m;
    CHECK_OK(peernet_metrics(p.a, &m));
    CHECK(m.size == sizeof m && m.version == PEERNET_METRICS_VERSION && m.enabled == 1);
    CHECK(m.calls_out == 10 && m.calls_in == 0 && m.handshakes_ok == 1);
    CHECK(m.connections_open == 1 && m.peers_connected == 1 && m.bytes_out > 0);
    peernet_node_metrics mb = {.size = sizeof mb};
    CHECK_OK(peernet_metrics(p.b, &mb));
    CHECK(mb.calls_in == 10 && mb.calls_out == 0);
    /* an older caller's smaller struct: only its bytes are written */
    peernet_node_metrics old;
    memset(&old, 0xab, sizeof old);
    old.size = 8 + 2 * sizeof(uint64_t);
    CHECK_OK(peernet_metrics(p.a, &old));
    CHECK(old.size == 8 + 2 * sizeof(uint64_t) && old.handshakes_ok == 1);
    CHECK(old.handshakes_untrusted == 0xababababababababULL);
    old.size = 4;
    CHECK_STATUS(peernet_metrics(p.a, &old), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(peernet_metrics(p.a, NULL), PEERNET_ERR_INVALID_ARGUMENT);
    peernet_buffer text = {0};
    CHECK_OK(peernet_metrics_text(p.b, &text));
    CHECK(text.data != NULL && strstr((char *)text.data, "peernet_calls_total{direction=\"in\"} 10\n"));
    CHECK(strstr((char *)text.data, "peernet_handler_calls_total{handler=\"echo\"} 10\n"));
    CHECK(text.len > 6 && strcmp((char *)text.data + text.len - 6, "# EOF\n") == 0);
    peernet_buffer_free(&text);
    peernet_peer_details d = {.size = sizeof d};
    CHECK_OK(peernet_peer_detail(p.a, &p.kb, &d));
    CHECK(d.version == PEERNET_METRICS_VERSION && d.calls_out == 10 && d.bytes_out > 0);
    CHECK(d.last_dial_ms > 0 && d.last_dial_error[0] == 0 && d.next_dial_ms == 0);
    CHECK(d.address_count == 1 && d.addresses[0].source == PEERNET_ADDRESS_MANUAL);
    CHECK(d.addresses[0].confirmed);
    peernet_key stranger;
    memset(&stranger, 7, sizeof stranger);
    CHECK_STATUS(peernet_peer_detail(p.a, &stranger, &d), PEERNET_ERR_NOT_CONNECTED);
    /* switched off while running: nothing more is counted, what was stays */
    CHECK_OK(peernet_set_metrics(p.a, false));
    CHECK_OK(peernet_call(p.a, &p.kb, "echo", (const uint8_t *)"ping", 4, 5000, NULL));
    CHECK_OK(peernet_metrics(p.a, &m));
    CHECK(m.enabled == 0 && m.calls_out == 10);
    CHECK_OK(peernet_set_metrics(p.a, true));
    CHECK_OK(peernet_call(p.a, &p.kb, "echo", (const uint8_t *)"ping", 4, 5000, NULL));
    CHECK_OK(peernet_metrics(p.a, &m));
    CHECK(m.enabled == 1 && m.calls_out == 11);
    CHECK_STATUS(peernet_set_metrics(NULL, true), PEERNET_ERR_INVALID_ARGUMENT);
    pair_free(&p);
}

typedef struct test_case {
    const char *name;
    void (*fn)(void);
} test_case;

#include "first_hour.c"
#include "pairing.c"
#include "streams.c"
#include "streams_async.c"

static const test_case TESTS[] = {
    /* first: peernet-core's dialer/discovery tasks may outlive peernet_node_free by up to
     * a handshake timeout (they hold the node's state); running this test early keeps
     * that from looking like a leak to valgrind at exit (see docs/c-api.md) */
    {"discovery_autoconnect", test_discovery_autoconnect},
    {"versions", test_versions},
    {"last_error", test_last_error},
    {"panic_guard", test_panic_guard},
    {"keys", test_keys},
    {"config", test_config_builder},
    {"lifecycle", test_lifecycle},
    {"call_and_send", test_call_and_send},
    {"every_status", test_every_status},
    {"overloaded_and_closed", test_overloaded_and_closed},
    {"bad_arguments", test_bad_arguments},
    {"respond_later", test_respond_later},
    {"reentrancy", test_reentrancy},
    {"free_user_data", test_free_user_data},
    {"1000_async_calls", test_1000_async_calls},
    {"free_with_calls_in_flight", test_free_with_calls_in_flight},
    {"free_from_callback", test_free_from_callback},
    {"free_from_callback_many", test_free_from_callback_many},
    {"completion_calls_back", test_completion_calls_back},
    {"events", test_events},
    {"poll_closed", test_poll_closed},
    {"rpc", test_rpc},
    {"inline_callbacks", test_inline_callbacks},
    {"logger", test_logger},
    {"metrics", test_metrics},
    {"untrusted_call_names_key_and_fix", test_untrusted_call_names_key_and_fix},
    {"errors_name_handler_and_sizes", test_errors_name_handler_and_sizes},
    {"closed_says_who_closed", test_closed_says_who_closed},
    {"connect_retries_until_timeout", test_connect_retries_until_timeout},
    {"node_address", test_node_address},
    {"event_fd", test_event_fd},
    {"pairing_by_ticket", test_pairing_by_ticket},
    {"stream_echo", test_stream_echo},
    {"stream_half_close", test_stream_half_close},
    {"stream_reset", test_stream_reset},
    {"stream_refused", test_stream_refused},
    {"stream_read_timeout", test_stream_read_timeout},
    {"stream_read_async", test_stream_read_async},
    {"stream_free", test_stream_free},
    {"stream_bad_arguments", test_stream_bad_arguments},
    {"stream_from_call_handler", test_stream_from_call_handler},
    {"stream_inline_callbacks", test_stream_inline_callbacks},
};

int main(int argc, char **argv) {
    snprintf(g_root, sizeof g_root, "/tmp/peernet-ctest-XXXXXX");
    if (!mkdtemp(g_root)) {
        perror("mkdtemp");
        return 2;
    }
    int passed = 0, failed = 0;
    for (size_t i = 0; i < sizeof TESTS / sizeof TESTS[0]; i++) {
        if (argc > 1 && strstr(TESTS[i].name, argv[1]) == NULL) continue;
        g_test_failed = 0;
        long long t0 = now_ms();
        TESTS[i].fn();
        printf("%s %s (%lld ms)\n", g_test_failed ? "FAIL" : "ok  ", TESTS[i].name, now_ms() - t0);
        fflush(stdout);
        if (g_test_failed) failed++;
        else passed++;
    }
    rm_tree(g_root);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
