/* C suite, calls: call and send, every status, OVERLOADED/CLOSED, bad arguments.
 * Included by test_peernet.c (one translation unit: the helpers in suite.h are shared). */

static void test_call_and_send(void) {
    pair p;
    REQUIRE(pair_start(&p, "call", true));
    atomic_int freed = 0;
    CHECK_OK(peernet_expose(p.b, "echo", echo_handler, NULL, &freed, count_free));
    CHECK(peernet_is_connected(p.a, &p.kb));
    peernet_buffer out = {0};
    const char *msg = "hello";
    CHECK_OK(peernet_call(p.a, &p.kb, "echo", (const uint8_t *)msg, 5, 5000, &out));
    CHECK(out.len == 5 && memcmp(out.data, "hello", 5) == 0 && out.data[5] == 0);
    peernet_buffer_free(&out);
    CHECK(out.data == NULL && out.len == 0);
    peernet_buffer_free(&out); /* twice: harmless */
    peernet_buffer_free(NULL);
    /* empty body, NULL result */
    CHECK_OK(peernet_call(p.a, &p.kb, "echo", NULL, 0, 5000, NULL));
    CHECK_OK(peernet_call(p.a, &p.kb, "echo", NULL, 0, 5000, &out));
    CHECK(out.data == NULL && out.len == 0);
    /* send */
    CHECK_OK(peernet_send(p.a, &p.kb, "echo", (const uint8_t *)"x", 1));
    /* disconnect */
    CHECK_OK(peernet_disconnect(p.a, &p.kb));
    CHECK(!peernet_is_connected(p.a, &p.kb));
    CHECK_STATUS(peernet_disconnect(p.a, &p.kb), PEERNET_ERR_NOT_CONNECTED);
    CHECK_STATUS(peernet_send(p.a, &p.kb, "echo", (const uint8_t *)"x", 1),
                 PEERNET_ERR_NOT_CONNECTED);
    pair_free(&p);
    CHECK(atomic_load(&freed) == 1);
}

/* handler that fails */
static void fail_handler(void *ud, const peernet_key *from, const uint8_t *body, size_t len,
                         peernet_responder *r) {
    (void)ud; (void)from; (void)body; (void)len;
    if (r) peernet_respond_error(r, "it broke");
}

static bool deny_all(void *ud, const peernet_key *from) {
    (void)ud; (void)from;
    return false;
}

/* handler that blocks until released (holds the call) */
typedef struct gate {
    waiter entered;
    waiter release;
} gate;

static void gate_handler(void *ud, const peernet_key *from, const uint8_t *body, size_t len,
                         peernet_responder *r) {
    (void)from; (void)body; (void)len;
    gate *g = ud;
    waiter_add(&g->entered, 1);
    waiter_wait(&g->release, 1, 10000);
    if (r) peernet_respond(r, (const uint8_t *)"late", 4);
}

/* a loopback TCP socket on a port of the kernel's choosing; listening (never
 * accepting) or only bound (a connect to it is refused, and the port stays ours) */
static void *bind_loopback(int *fd_out, int *port_out, int do_listen) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = 0;
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || (do_listen && listen(fd, 8) != 0)) {
        if (fd >= 0) close(fd);
        return NULL;
    }
    socklen_t sl = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    *fd_out = fd;
    *port_out = ntohs(sa.sin_port);
    return fd_out;
}

static void *listen_no_accept(int *fd_out, int *port_out) { return bind_loopback(fd_out, port_out, 1); }

static void test_every_status(void) {
    /* OK, INVALID_ARGUMENT, INTERNAL: covered above. */
    pair p;
    REQUIRE(pair_start(&p, "status", false));
    char addr_b[64];
    node_addr(p.b, addr_b, sizeof addr_b);
    peernet_key stranger;
    CHECK_OK(peernet_key_from_hex(
        "1111111111111111111111111111111111111111111111111111111111111111", &stranger));

    /* NOT_CONNECTED */
    CHECK_STATUS(peernet_call(p.a, &p.kb, "echo", NULL, 0, 1000, NULL), PEERNET_ERR_NOT_CONNECTED);
    /* UNTRUSTED_PEER */
    CHECK_STATUS(peernet_connect(p.a, &stranger, addr_b, 1000), PEERNET_ERR_UNTRUSTED_PEER);
    /* IO: connection refused (a port bound by this test, not listening: no other
     * process can start listening there meanwhile) */
    {
        int fd, port;
        REQUIRE(bind_loopback(&fd, &port, 0));
        char a[64];
        snprintf(a, sizeof a, "127.0.0.1:%d", port);
        /* refused dials are retried until the timeout, then IO */
        CHECK_STATUS(peernet_connect(p.a, &p.kb, a, 300), PEERNET_ERR_IO);
        close(fd);
    }
    /* IO: listen address in use */
    {
        peernet_config *c = test_config("status-io");
        REQUIRE(c != NULL);
        CHECK_OK(peernet_config_set_listen(c, addr_b));
        peernet_node *n = NULL;
        CHECK_STATUS(peernet_node_start(c, &n), PEERNET_ERR_IO);
        CHECK(n == NULL);
        peernet_config_free(c);
    }
    /* HANDSHAKE_FAILED: a TCP listener that never speaks */
    {
        int fd, port;
        REQUIRE(listen_no_accept(&fd, &port));
        peernet_config *c = test_config("status-hs");
        REQUIRE(c != NULL);
        CHECK_OK(peernet_config_set_handshake_timeout(c, 300));
        peernet_node *n = NULL;
        CHECK_OK(peernet_node_start(c, &n));
        peernet_config_free(c);
        REQUIRE(n != NULL);
        CHECK_OK(peernet_trust(n, &stranger, NULL));
        char a[64];
        snprintf(a, sizeof a, "127.0.0.1:%d", port);
        CHECK_STATUS(peernet_connect(n, &stranger, a, 3000), PEERNET_ERR_HANDSHAKE_FAILED);
        /* TIMEOUT: a connect deadline shorter than the handshake's */
        CHECK_STATUS(peernet_connect(n, &stranger, a, 100), PEERNET_ERR_TIMEOUT);
        peernet_node_free(n);
        close(fd);
    }
    /* CORRUPT_FILE: a trust file that does not parse */
    {
        char dir[512], file[600];
        make_dir(dir, sizeof dir, "status-corrupt");
        mkdir(dir, 0700);
        snprintf(file, sizeof file, "%s/trusted_peers", dir);
        FILE *f = fopen(file, "w");
        REQUIRE(f != NULL);
        fputs("this is not a trust file\n", f);
        fclose(f);
        peernet_config *c = peernet_config_new(dir);
        REQUIRE(c != NULL);
        peernet_node *n = NULL;
        CHECK_STATUS(peernet_node_start(c, &n), PEERNET_ERR_CORRUPT_FILE);
        peernet_config_free(c);
    }

    CHECK_OK(peernet_connect(p.a, &p.kb, addr_b, 5000));
    CHECK_OK(peernet_expose(p.b, "echo", echo_handler, NULL, NULL, NULL));
    CHECK_OK(peernet_expose(p.b, "fail", fail_handler, NULL, NULL, NULL));
    CHECK_OK(peernet_expose(p.b, "deny", echo_handler, deny_all, NULL, NULL));
    /* ALREADY_EXISTS (and its user_data is not freed) */
    atomic_int freed = 0;
    CHECK_STATUS(peernet_expose(p.b, "echo", echo_handler, NULL, &freed, count_free),
                 PEERNET_ERR_ALREADY_EXISTS);
    CHECK(atomic_load(&freed) == 0);
    /* NO_SUCH_HANDLER */
    CHECK_STATUS(peernet_call(p.a, &p.kb, "nope", NULL, 0, 5000, NULL), PEERNET_ERR_NO_SUCH_HANDLER);
    /* FORBIDDEN */
    CHECK_STATUS(peernet_call(p.a, &p.kb, "deny", NULL, 0, 5000, NULL), PEERNET_ERR_FORBIDDEN);
    /* HANDLER_FAILED: the text is in the result */
    peernet_buffer out = {0};
    CHECK_STATUS(peernet_call(p.a, &p.kb, "fail", NULL, 0, 5000, &out), PEERNET_ERR_HANDLER_FAILED);
    CHECK(out.len == 8 && memcmp(out.data, "it broke", 8) == 0);
    CHECK(strstr(peernet_last_error(), "it broke") != NULL);
    peernet_buffer_free(&out);
    /* PAYLOAD_TOO_LARGE: 2 MiB over the default 1 MiB frame limit; connection stays */
    size_t big = 2u << 20;
    uint8_t *body = calloc(1, big);
    REQUIRE(body != NULL);
    CHECK_STATUS(peernet_call(p.a, &p.kb, "echo", body, big, 5000, NULL), PEERNET_ERR_PAYLOAD_TOO_LARGE);
    free(body);
    CHECK_OK(peernet_call(p.a, &p.kb, "echo", (const uint8_t *)"ok", 2, 5000, NULL));
    /* TIMEOUT: a handler that holds the call */
    gate g;
    waiter_init(&g.entered);
    waiter_init(&g.release);
    CHECK_OK(peernet_expose(p.b, "gate", gate_handler, NULL, &g, NULL));
    CHECK_STATUS(peernet_call(p.a, &p.kb, "gate", NULL, 0, 200, NULL), PEERNET_ERR_TIMEOUT);
    waiter_add(&g.release, 1);
    CHECK(waiter_wait(&g.entered, 1, 5000) == 1);
    CHECK_OK(peernet_revoke(p.b, "gate"));
    CHECK_STATUS(peernet_revoke(p.b, "gate"), PEERNET_ERR_INVALID_ARGUMENT);
    pair_free(&p);
    waiter_destroy(&g.entered);
    waiter_destroy(&g.release);
}

/* OVERLOADED: one call at a time per peer; a second concurrent one is refused */
typedef struct call_thread_arg {
    peernet_node *n;
    peernet_key k;
    const char *name;
    int timeout;
    peernet_status status;
} call_thread_arg;

static void *call_thread(void *p) {
    call_thread_arg *a = p;
    a->status = peernet_call(a->n, &a->k, a->name, NULL, 0, (uint32_t)a->timeout, NULL);
    return NULL;
}

/* freeing a node with 200 async calls in flight (the callee holds them) */
static void hold_handler(void *ud, const peernet_key *from, const uint8_t *body, size_t len,
                         peernet_responder *r) {
    (void)from; (void)body; (void)len; (void)r; /* never answered */
    waiter_add((waiter *)ud, 1);
}

static void test_overloaded_and_closed(void) {
    peernet_config *c = test_config("ovl-b");
    REQUIRE(c != NULL);
    CHECK_OK(peernet_config_set_max_concurrent_calls(c, 1));
    pair p;
    p.a = start_node("ovl-a");
    CHECK_OK(peernet_node_start(c, &p.b));
    peernet_config_free(c);
    REQUIRE(p.a && p.b);
    peernet_node_key(p.a, &p.ka);
    peernet_node_key(p.b, &p.kb);
    CHECK_OK(peernet_trust(p.a, &p.kb, NULL));
    CHECK_OK(peernet_trust(p.b, &p.ka, NULL));
    char addr[64];
    node_addr(p.b, addr, sizeof addr);
    CHECK_OK(peernet_connect(p.a, &p.kb, addr, 5000));
    gate g;
    waiter_init(&g.entered);
    waiter_init(&g.release);
    CHECK_OK(peernet_expose(p.b, "gate", gate_handler, NULL, &g, NULL));
    call_thread_arg arg = {p.a, p.kb, "gate", 10000, PEERNET_ERR_INTERNAL};
    pthread_t t;
    pthread_create(&t, NULL, call_thread, &arg);
    CHECK(waiter_wait(&g.entered, 1, 5000) == 1);
    CHECK_STATUS(peernet_call(p.a, &p.kb, "gate", NULL, 0, 5000, NULL), PEERNET_ERR_OVERLOADED);
    waiter_add(&g.release, 1);
    pthread_join(t, NULL);
    CHECK_OK(arg.status);
    /* CLOSED: the callee is freed while a call waits for an answer that never comes */
    waiter held;
    waiter_init(&held);
    CHECK_OK(peernet_expose(p.b, "hold", hold_handler, NULL, &held, NULL));
    arg.name = "hold";
    arg.status = PEERNET_ERR_INTERNAL;
    pthread_create(&t, NULL, call_thread, &arg);
    CHECK(waiter_wait(&held, 1, 5000) == 1);
    peernet_node_free(p.b);
    pthread_join(t, NULL);
    CHECK_STATUS(arg.status, PEERNET_ERR_CLOSED);
    peernet_node_free(p.a);
    waiter_destroy(&held);
    waiter_destroy(&g.entered);
    waiter_destroy(&g.release);
}

static void test_bad_arguments(void) {
    pair p;
    REQUIRE(pair_start(&p, "args", true));
    CHECK_OK(peernet_expose(p.b, "echo", echo_handler, NULL, NULL, NULL));
    char longname[300];
    memset(longname, 'n', 299);
    longname[299] = 0;
    char badname[] = {'e', (char)0xff, 'o', 0};
    CHECK_STATUS(peernet_expose(p.b, longname, echo_handler, NULL, NULL, NULL), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(peernet_expose(p.b, badname, echo_handler, NULL, NULL, NULL), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(peernet_expose(p.b, "", echo_handler, NULL, NULL, NULL), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(peernet_expose(p.b, "peernet.x", echo_handler, NULL, NULL, NULL), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(peernet_expose(p.b, "x", NULL, NULL, NULL, NULL), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(peernet_expose(NULL, "x", echo_handler, NULL, NULL, NULL), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(peernet_call(p.a, &p.kb, longname, NULL, 0, 1000, NULL), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(peernet_call(p.a, &p.kb, badname, NULL, 0, 1000, NULL), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(peernet_call(p.a, &p.kb, NULL, NULL, 0, 1000, NULL), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(peernet_call(p.a, NULL, "echo", NULL, 0, 1000, NULL), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(peernet_call(NULL, &p.kb, "echo", NULL, 0, 1000, NULL), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(peernet_call(p.a, &p.kb, "echo", NULL, 5, 1000, NULL), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(peernet_call(p.a, &p.kb, "peernet.rpc", NULL, 0, 1000, NULL), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(peernet_send(p.a, &p.kb, "echo", NULL, 5), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(peernet_call_async(p.a, &p.kb, "echo", NULL, 0, 1000, NULL, NULL), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(peernet_connect(p.a, &p.kb, "nowhere", 1000), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(peernet_connect(p.a, &p.kb, NULL, 1000), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(peernet_trust(p.a, &p.kb, badname), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(peernet_trust(p.a, NULL, NULL), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(peernet_respond(NULL, NULL, 0), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(peernet_respond_error(NULL, "x"), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(peernet_peers(p.a, NULL, NULL), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(peernet_next_event(p.a, 0, NULL), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(peernet_set_logger(NULL, NULL, 42), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(peernet_discovered(p.a, &p.kb, "bad"), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK(!peernet_is_connected(NULL, &p.kb));
    CHECK(!peernet_is_connected(p.a, NULL));
    /* the node is still fine */
    CHECK_OK(peernet_call(p.a, &p.kb, "echo", (const uint8_t *)"ok", 2, 5000, NULL));
    pair_free(&p);
}
