/* C suite, events and peers: event callbacks and polling, discovery auto-connect, RPC.
 * Included by test_peernet.c (one translation unit: the helpers in suite.h are shared). */

typedef struct ev_ctx {
    waiter connected, disconnected, discovered, lost;
    pthread_t thread;
    peernet_node *self;
    int reentrant_ok;
    atomic_int freed;
} ev_ctx;

static void ev_free(void *ud) { atomic_fetch_add(&((ev_ctx *)ud)->freed, 1); }

static void on_event(void *ud, peernet_event_kind kind, const peernet_key *key, const char *detail) {
    ev_ctx *c = ud;
    (void)detail;
    c->thread = pthread_self();
    switch (kind) {
    case PEERNET_EVENT_CONNECTED:
        c->reentrant_ok = key != NULL && peernet_is_connected(c->self, key);
        waiter_add(&c->connected, 1);
        break;
    case PEERNET_EVENT_DISCONNECTED: waiter_add(&c->disconnected, 1); break;
    case PEERNET_EVENT_DISCOVERED: waiter_add(&c->discovered, 1); break;
    case PEERNET_EVENT_LOST: waiter_add(&c->lost, 1); break;
    default: break;
    }
}

static void test_events(void) {
    pair p;
    REQUIRE(pair_start(&p, "events", false));
    ev_ctx c;
    memset(&c, 0, sizeof c);
    waiter_init(&c.connected);
    waiter_init(&c.disconnected);
    waiter_init(&c.discovered);
    waiter_init(&c.lost);
    c.self = p.a;
    CHECK_OK(peernet_set_event_callback(p.a, on_event, &c, ev_free));
    peernet_event ev;
    CHECK_STATUS(peernet_next_event(p.a, 0, &ev), PEERNET_ERR_TIMEOUT);
    CHECK_STATUS(peernet_next_event(p.a, 50, &ev), PEERNET_ERR_TIMEOUT);
    char addr[64];
    node_addr(p.b, addr, sizeof addr);
    CHECK_OK(peernet_connect(p.a, &p.kb, addr, 5000));
    CHECK(waiter_wait(&c.connected, 1, 5000) == 1);
    CHECK(c.reentrant_ok);
    CHECK(!pthread_equal(c.thread, pthread_self()));
    /* the same event is in the poll queue */
    CHECK_OK(peernet_next_event(p.a, 5000, &ev));
    CHECK(ev.kind == PEERNET_EVENT_CONNECTED && ev.has_key && memcmp(&ev.key, &p.kb, 32) == 0);
    CHECK(strcmp(ev.detail, addr) == 0);
    /* peers */
    peernet_peer_info *peers = NULL;
    size_t n = 0;
    CHECK_OK(peernet_peers(p.a, &peers, &n));
    CHECK(n == 1);
    if (n == 1) {
        CHECK(memcmp(&peers[0].key, &p.kb, 32) == 0);
        CHECK(peers[0].state == PEERNET_PEER_CONNECTED);
        CHECK(peers[0].trusted && !peers[0].rpc);
        CHECK(strcmp(peers[0].label, "b") == 0);
        CHECK(strcmp(peers[0].address, addr) == 0);
        CHECK(peers[0].last_seen_ms > 0);
    }
    peernet_peers_free(peers, n);
    peernet_peers_free(NULL, 0);
    {
        /* verification words: the same on both ends of one connection */
        char wa[PEERNET_VERIFICATION_WORDS_SIZE], wb[PEERNET_VERIFICATION_WORDS_SIZE];
        CHECK_OK(peernet_verification_words(p.a, &p.kb, wa, sizeof wa));
        CHECK_OK(peernet_verification_words(p.b, &p.ka, wb, sizeof wb));
        CHECK(strlen(wa) > 0 && strcmp(wa, wb) == 0);
        CHECK(peernet_verification_words(p.a, &p.kb, wa, 4) == PEERNET_ERR_INVALID_ARGUMENT);
        CHECK(peernet_verification_words(p.a, NULL, wa, sizeof wa) == PEERNET_ERR_INVALID_ARGUMENT);
    }
    CHECK_OK(peernet_disconnect(p.a, &p.kb));
    CHECK(waiter_wait(&c.disconnected, 1, 5000) == 1);
    CHECK_OK(peernet_next_event(p.a, 5000, &ev));
    CHECK(ev.kind == PEERNET_EVENT_DISCONNECTED && strlen(ev.detail) > 0);
    CHECK(ev.close_reason == PEERNET_CLOSE_LOCAL_DISCONNECT);
    {
        char w[PEERNET_VERIFICATION_WORDS_SIZE];
        CHECK(peernet_verification_words(p.a, &p.kb, w, sizeof w) == PEERNET_ERR_NOT_CONNECTED);
    }
    /* manual discovery */
    CHECK_OK(peernet_discovered(p.a, &p.kb, addr));
    CHECK(waiter_wait(&c.discovered, 1, 5000) >= 1);
    CHECK_OK(peernet_lost(p.a, &p.kb));
    CHECK(waiter_wait(&c.lost, 1, 5000) >= 1);
    pair_free(&p);
    CHECK(atomic_load(&c.freed) == 1);
    waiter_destroy(&c.connected);
    waiter_destroy(&c.disconnected);
    waiter_destroy(&c.discovered);
    waiter_destroy(&c.lost);
}

/* next_event waiting in another thread when the node is freed: CLOSED */
typedef struct poll_arg {
    peernet_node *n;
    peernet_status s;
    waiter started;
} poll_arg;

static void *poll_thread(void *p) {
    poll_arg *a = p;
    waiter_add(&a->started, 1);
    peernet_event ev;
    peernet_status s;
    do {
        s = peernet_next_event(a->n, 10000, &ev);
    } while (s == PEERNET_OK);
    a->s = s;
    return NULL;
}

static void test_poll_closed(void) {
    poll_arg a;
    a.n = start_node("pollclosed");
    REQUIRE(a.n != NULL);
    a.s = PEERNET_OK;
    waiter_init(&a.started);
    pthread_t t;
    pthread_create(&t, NULL, poll_thread, &a);
    waiter_wait(&a.started, 1, 5000);
    peernet_node_free(a.n);
    pthread_join(t, NULL);
    CHECK(a.s == PEERNET_ERR_CLOSED || a.s == PEERNET_ERR_INVALID_ARGUMENT);
    waiter_destroy(&a.started);
}

/* auto-connect through manual discovery, and UDP discovery on 127.255.255.255 */
static void test_discovery_autoconnect(void) {
    peernet_config *ca = test_config("disc-a"), *cb = test_config("disc-b");
    REQUIRE(ca && cb);
    CHECK_OK(peernet_config_set_auto_connect(ca, true));
    CHECK_OK(peernet_config_set_auto_connect(cb, true));
    pair p = {0};
    CHECK_OK(peernet_node_start(ca, &p.a));
    CHECK_OK(peernet_node_start(cb, &p.b));
    peernet_config_free(ca);
    peernet_config_free(cb);
    REQUIRE(p.a && p.b);
    peernet_node_key(p.a, &p.ka);
    peernet_node_key(p.b, &p.kb);
    CHECK_OK(peernet_trust(p.a, &p.kb, NULL));
    CHECK_OK(peernet_trust(p.b, &p.ka, NULL));
    char addr[64];
    node_addr(p.b, addr, sizeof addr);
    CHECK_OK(peernet_discovered(p.a, &p.kb, addr));
    CHECK_OK(peernet_wait_connected(p.a, &p.kb, 10000));
    pair_free(&p);

    /* UDP discovery: both on the same UDP port, loopback broadcast only */
    int port = 20000 + (int)(getpid() % 20000);
    ca = test_config("udp-a");
    cb = test_config("udp-b");
    REQUIRE(ca && cb);
    CHECK_OK(peernet_config_set_auto_connect(ca, true));
    CHECK_OK(peernet_config_set_auto_connect(cb, true));
    CHECK_OK(peernet_config_set_udp_discovery(ca, (uint16_t)port, 100, "127.255.255.255"));
    CHECK_OK(peernet_config_set_udp_discovery(cb, (uint16_t)port, 100, "127.255.255.255"));
    CHECK_OK(peernet_config_set_network_monitor(ca, 200));
    memset(&p, 0, sizeof p);
    CHECK_OK(peernet_node_start(ca, &p.a));
    CHECK_OK(peernet_node_start(cb, &p.b));
    peernet_config_free(ca);
    peernet_config_free(cb);
    REQUIRE(p.a && p.b);
    peernet_node_key(p.a, &p.ka);
    peernet_node_key(p.b, &p.kb);
    CHECK_OK(peernet_trust(p.a, &p.kb, NULL));
    CHECK_OK(peernet_trust(p.b, &p.ka, NULL));
    CHECK_OK(peernet_wait_connected(p.a, &p.kb, 15000));
    int discovered = 0;
    peernet_event ev;
    long long deadline = now_ms() + 5000;
    while (!discovered && now_ms() < deadline) {
        if (peernet_next_event(p.a, 500, &ev) == PEERNET_OK && ev.kind == PEERNET_EVENT_DISCOVERED)
            discovered = 1;
    }
    CHECK(discovered);
    pair_free(&p);
}

/* ---- RPC ---- */

static void rpc_dispatch(void *ud, const peernet_key *from, const char *module,
                         const char *function, const uint8_t *args, size_t n,
                         peernet_responder *r) {
    (void)ud; (void)from;
    char buf[256];
    int len = snprintf(buf, sizeof buf, "%s.%s(%.*s)", module, function, (int)n, (const char *)args);
    peernet_respond(r, (const uint8_t *)buf, (size_t)len);
}

static void test_rpc(void) {
    pair p;
    REQUIRE(pair_start(&p, "rpc", true));
    peernet_buffer out = {0};
    CHECK_STATUS(peernet_rpc_call(p.a, &p.kb, "m", "f", (const uint8_t *)"[1]", 3, 5000, &out),
                 PEERNET_ERR_FORBIDDEN);
    CHECK_OK(peernet_grant_rpc(p.b, &p.ka, true));
    CHECK_STATUS(peernet_rpc_call(p.a, &p.kb, "m", "f", (const uint8_t *)"[1]", 3, 5000, &out),
                 PEERNET_ERR_NO_SUCH_HANDLER);
    CHECK_OK(peernet_set_rpc_dispatcher(p.b, rpc_dispatch, NULL, NULL));
    CHECK_OK(peernet_rpc_call(p.a, &p.kb, "math", "add", (const uint8_t *)"[1,2]", 5, 5000, &out));
    CHECK(out.len == strlen("math.add([1,2])") && memcmp(out.data, "math.add([1,2])", out.len) == 0);
    peernet_buffer_free(&out);
    CHECK_OK(peernet_set_rpc_dispatcher(p.b, NULL, NULL, NULL));
    CHECK_STATUS(peernet_rpc_call(p.a, &p.kb, "m", "f", NULL, 0, 5000, NULL), PEERNET_ERR_NO_SUCH_HANDLER);
    CHECK_OK(peernet_untrust(p.b, &p.ka));
    CHECK(!peernet_is_trusted(p.b, &p.ka));
    long long deadline = now_ms() + 5000;
    while (peernet_is_connected(p.a, &p.kb) && now_ms() < deadline) usleep(2000);
    CHECK(!peernet_is_connected(p.a, &p.kb));
    pair_free(&p);
}
