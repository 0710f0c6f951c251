/* Issue 20, "the first hour", in C: every error names the thing and the fix, and the
 * ergonomic additions (peernet_node_address, peernet_event_fd). Included by
 * test_peernet.c (one translation unit: the helpers in suite.h are shared, and the suite runs
 * once plain, static, under ASan+UBSan and valgrind). */
#include <poll.h>

/* Completion of an async call: its status and last error, copied in the callback. */
typedef struct first_async {
    waiter done;
    peernet_status status;
    char error[512];
} first_async;

static void first_async_done(void *ud, peernet_status status, const uint8_t *data, size_t len) {
    (void)data;
    (void)len;
    first_async *a = ud;
    a->status = status;
    snprintf(a->error, sizeof a->error, "%s", peernet_last_error());
    waiter_add(&a->done, 1);
}

static void test_untrusted_call_names_key_and_fix(void) {
    peernet_node *a = start_node("untrusted-call");
    REQUIRE(a != NULL);
    peernet_key stranger;
    CHECK_OK(peernet_key_from_hex(
        "2222222222222222222222222222222222222222222222222222222222222222", &stranger));
    char fp[PEERNET_FINGERPRINT_SIZE];
    peernet_key_fingerprint(&stranger, fp);
    CHECK_STATUS(peernet_call(a, &stranger, "echo", NULL, 0, 1000, NULL), PEERNET_ERR_UNTRUSTED_PEER);
    CHECK(strstr(peernet_last_error(), fp) != NULL);
    CHECK(strstr(peernet_last_error(), "peernet_trust") != NULL);
    CHECK_STATUS(peernet_send(a, &stranger, "echo", NULL, 0), PEERNET_ERR_UNTRUSTED_PEER);
    CHECK(strstr(peernet_last_error(), fp) != NULL);
    first_async r;
    memset(&r, 0, sizeof r);
    waiter_init(&r.done);
    CHECK_OK(peernet_call_async(a, &stranger, "echo", NULL, 0, 1000, first_async_done, &r));
    CHECK(waiter_wait(&r.done, 1, 5000) == 1);
    CHECK(r.status == PEERNET_ERR_UNTRUSTED_PEER);
    CHECK(strstr(r.error, fp) != NULL && strstr(r.error, "peernet_trust") != NULL);
    /* trusted but not connected stays NOT_CONNECTED */
    CHECK_OK(peernet_trust(a, &stranger, NULL));
    CHECK_STATUS(peernet_call(a, &stranger, "echo", NULL, 0, 1000, NULL), PEERNET_ERR_NOT_CONNECTED);
    peernet_node_free(a);
    waiter_destroy(&r.done);
}

static void test_errors_name_handler_and_sizes(void) {
    pair p;
    REQUIRE(pair_start(&p, "names", true));
    CHECK_OK(peernet_expose(p.b, "echo", echo_handler, NULL, NULL, NULL));
    CHECK_STATUS(peernet_call(p.a, &p.kb, "no.such", NULL, 0, 5000, NULL), PEERNET_ERR_NO_SUCH_HANDLER);
    CHECK(strstr(peernet_last_error(), "\"no.such\"") != NULL);
    size_t big = 2u << 20;
    uint8_t *body = calloc(1, big);
    REQUIRE(body != NULL);
    CHECK_STATUS(peernet_call(p.a, &p.kb, "echo", body, big, 5000, NULL), PEERNET_ERR_PAYLOAD_TOO_LARGE);
    CHECK(strstr(peernet_last_error(), "2097152 bytes") != NULL);
    CHECK(strstr(peernet_last_error(), "1048576") != NULL);
    CHECK_STATUS(peernet_send(p.a, &p.kb, "echo", body, big), PEERNET_ERR_PAYLOAD_TOO_LARGE);
    CHECK(strstr(peernet_last_error(), "2097152 bytes") != NULL);
    free(body);
    pair_free(&p);
}

/* A blocking call in its own thread, keeping its status and last error. */
typedef struct first_call {
    peernet_node *n;
    peernet_key k;
    peernet_status status;
    char error[512];
} first_call;

static void *first_call_thread(void *arg) {
    first_call *c = arg;
    c->status = peernet_call(c->n, &c->k, "hold", NULL, 0, 20000, NULL);
    snprintf(c->error, sizeof c->error, "%s", peernet_last_error());
    return NULL;
}

static void test_closed_says_who_closed(void) {
    pair p;
    REQUIRE(pair_start(&p, "closedwhy", true));
    waiter entered;
    waiter_init(&entered);
    CHECK_OK(peernet_expose(p.b, "hold", hold_handler, NULL, &entered, NULL));
    first_call c = {.n = p.a, .k = p.kb, .status = PEERNET_OK};
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, first_call_thread, &c) == 0);
    CHECK(waiter_wait(&entered, 1, 5000) == 1);
    peernet_node_free(p.b); /* says Goodbye (closing) */
    p.b = NULL;
    pthread_join(t, NULL);
    CHECK(c.status == PEERNET_ERR_CLOSED);
    CHECK(strstr(c.error, "the peer closed the connection (Goodbye: closing)") != NULL);
    pair_free(&p);
    waiter_destroy(&entered);
}

static void test_connect_retries_until_timeout(void) {
    peernet_node *a = start_node("retry-a");
    REQUIRE(a != NULL);
    peernet_key k;
    CHECK_OK(peernet_key_from_hex(
        "3333333333333333333333333333333333333333333333333333333333333333", &k));
    CHECK_OK(peernet_trust(a, &k, NULL));
    int fd, port;
    REQUIRE(bind_loopback(&fd, &port, 0)); /* bound, not listening: refused */
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    CHECK_STATUS(peernet_connect(a, &k, addr, 400), PEERNET_ERR_IO);
    CHECK(strstr(peernet_last_error(), "is the peer running") != NULL);
    CHECK(strstr(peernet_last_error(), addr) != NULL);
    close(fd);
    peernet_node_free(a);
}

static void test_node_address(void) {
    peernet_node *n = start_node("address");
    REQUIRE(n != NULL);
    char buf[PEERNET_PEER_TEXT_SIZE], want[64];
    node_addr(n, want, sizeof want);
    CHECK_OK(peernet_node_address(n, buf, sizeof buf));
    CHECK(strcmp(buf, want) == 0);
    /* too small: INVALID_ARGUMENT naming the size needed, buf left empty */
    char tiny[4] = "xyz";
    CHECK_STATUS(peernet_node_address(n, tiny, sizeof tiny), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK(tiny[0] == '\0');
    char need[32];
    snprintf(need, sizeof need, "at least %zu bytes", strlen(want) + 1);
    CHECK(strstr(peernet_last_error(), need) != NULL);
    CHECK_STATUS(peernet_node_address(n, NULL, 64), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(peernet_node_address(NULL, buf, sizeof buf), PEERNET_ERR_INVALID_ARGUMENT);
    peernet_node_free(n);
    /* a node that does not listen: the empty string */
    peernet_config *c = test_config("address-none");
    REQUIRE(c != NULL);
    CHECK_OK(peernet_config_set_listen(c, "none"));
    CHECK_OK(peernet_node_start(c, &n));
    peernet_config_free(c);
    REQUIRE(n != NULL);
    CHECK_OK(peernet_node_address(n, buf, sizeof buf));
    CHECK(buf[0] == '\0');
    peernet_node_free(n);
}

static int readable(int fd, int timeout_ms) {
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int r = poll(&pfd, 1, timeout_ms);
    return r == 1 && (pfd.revents & POLLIN);
}

static void test_event_fd(void) {
    pair p;
    REQUIRE(pair_start(&p, "eventfd", false));
    CHECK(peernet_event_fd(NULL) == -1);
    int fd = peernet_event_fd(p.a);
    REQUIRE(fd >= 0);
    CHECK(peernet_event_fd(p.a) == fd);
    CHECK(!readable(fd, 0)); /* no event queued */
    char addr[64];
    node_addr(p.b, addr, sizeof addr);
    CHECK_OK(peernet_connect(p.a, &p.kb, addr, 5000));
    /* the Connected event makes it readable; level-triggered: still readable on a
     * second poll before the queue is drained */
    CHECK(readable(fd, 5000));
    CHECK(readable(fd, 0));
    peernet_event ev;
    int got = 0;
    while (peernet_next_event(p.a, 0, &ev) == PEERNET_OK) got++;
    CHECK(got >= 1);
    CHECK(!readable(fd, 0)); /* drained */
    CHECK_OK(peernet_disconnect(p.a, &p.kb));
    CHECK(readable(fd, 5000));
    CHECK_OK(peernet_next_event(p.a, 0, &ev));
    CHECK(ev.kind == PEERNET_EVENT_DISCONNECTED);
    CHECK(ev.close_reason == PEERNET_CLOSE_LOCAL_DISCONNECT);
    while (peernet_next_event(p.a, 0, &ev) == PEERNET_OK) {
    }
    CHECK(!readable(fd, 0));
    pair_free(&p);
}
