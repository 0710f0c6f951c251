/* C suite, callbacks: threads, respond later, re-entrancy, free_user_data, async calls and
 * node free from inside callbacks. Included by test_peernet.c (one translation unit). */

typedef struct later_ctx {
    pthread_mutex_t mu;
    peernet_responder *pending[8];
    int n;
    pthread_t handler_thread;
    waiter got;
} later_ctx;

static void later_handler(void *ud, const peernet_key *from, const uint8_t *body, size_t len,
                          peernet_responder *r) {
    (void)from; (void)body; (void)len;
    later_ctx *c = ud;
    pthread_mutex_lock(&c->mu);
    c->handler_thread = pthread_self();
    if (c->n < 8) c->pending[c->n++] = r;
    pthread_mutex_unlock(&c->mu);
    waiter_add(&c->got, 1);
}

static void *responder_thread(void *p) {
    later_ctx *c = p;
    waiter_wait(&c->got, 1, 5000);
    pthread_mutex_lock(&c->mu);
    peernet_responder *r = c->n > 0 ? c->pending[0] : NULL;
    pthread_mutex_unlock(&c->mu);
    peernet_status s1 = peernet_respond(r, (const uint8_t *)"later", 5);
    /* a second answer is an error, not undefined behaviour */
    peernet_status s2 = peernet_respond(r, (const uint8_t *)"again", 5);
    peernet_status s3 = peernet_respond_error(r, "again");
    return (void *)(intptr_t)(s1 == PEERNET_OK && s2 == PEERNET_ERR_INVALID_ARGUMENT &&
                              s3 == PEERNET_ERR_INVALID_ARGUMENT);
}

static void test_respond_later(void) {
    pair p;
    REQUIRE(pair_start(&p, "later", true));
    later_ctx c;
    memset(&c, 0, sizeof c);
    pthread_mutex_init(&c.mu, NULL);
    waiter_init(&c.got);
    CHECK_OK(peernet_expose(p.b, "later", later_handler, NULL, &c, NULL));
    pthread_t t;
    pthread_create(&t, NULL, responder_thread, &c);
    peernet_buffer out = {0};
    CHECK_OK(peernet_call(p.a, &p.kb, "later", NULL, 0, 5000, &out));
    CHECK(out.len == 5 && memcmp(out.data, "later", 5) == 0);
    peernet_buffer_free(&out);
    void *ok = NULL;
    pthread_join(t, &ok);
    CHECK(ok == (void *)1);
    /* the handler ran on a library thread, not ours */
    CHECK(!pthread_equal(c.handler_thread, pthread_self()));
    /* an unanswered responder whose node is freed: the call fails, nothing leaks,
     * and answering it afterwards is an error */
    c.n = 0;
    c.got.count = 0;
    call_thread_arg arg = {p.a, p.kb, "later", 10000, PEERNET_ERR_INTERNAL};
    pthread_create(&t, NULL, call_thread, &arg);
    CHECK(waiter_wait(&c.got, 1, 5000) == 1);
    peernet_node_free(p.b);
    pthread_join(t, NULL);
    CHECK(arg.status == PEERNET_ERR_CLOSED || arg.status == PEERNET_ERR_HANDLER_FAILED);
    CHECK_STATUS(peernet_respond(c.pending[0], (const uint8_t *)"x", 1), PEERNET_ERR_INVALID_ARGUMENT);
    peernet_node_free(p.a);
    pthread_mutex_destroy(&c.mu);
    waiter_destroy(&c.got);
}

/* re-entrancy: b's handler calls back into a (blocking call from inside a callback),
 * inspects peers, and exposes/revokes a handler */
typedef struct reentry_ctx {
    peernet_node *b;
    peernet_key ka;
    peernet_status inner;
    int peers_ok;
} reentry_ctx;

static void reentrant_handler(void *ud, const peernet_key *from, const uint8_t *body, size_t len,
                              peernet_responder *r) {
    reentry_ctx *c = ud;
    (void)from;
    peernet_buffer out = {0};
    c->inner = peernet_call(c->b, &c->ka, "echo", body, len, 5000, &out);
    peernet_peer_info *peers = NULL;
    size_t n = 0;
    c->peers_ok = peernet_peers(c->b, &peers, &n) == PEERNET_OK && n == 1 &&
                  peers[0].state == PEERNET_PEER_CONNECTED;
    peernet_peers_free(peers, n);
    peernet_expose(c->b, "temp", echo_handler, NULL, NULL, NULL);
    peernet_revoke(c->b, "temp");
    peernet_respond(r, out.data, out.len);
    peernet_buffer_free(&out);
}

static void test_reentrancy(void) {
    pair p;
    REQUIRE(pair_start(&p, "reentry", true));
    CHECK_OK(peernet_expose(p.a, "echo", echo_handler, NULL, NULL, NULL));
    reentry_ctx c = {p.b, p.ka, PEERNET_ERR_INTERNAL, 0};
    CHECK_OK(peernet_expose(p.b, "reenter", reentrant_handler, NULL, &c, NULL));
    peernet_buffer out = {0};
    CHECK_OK(peernet_call(p.a, &p.kb, "reenter", (const uint8_t *)"ping", 4, 5000, &out));
    CHECK(out.len == 4 && memcmp(out.data, "ping", 4) == 0);
    peernet_buffer_free(&out);
    CHECK_OK(c.inner);
    CHECK(c.peers_ok);
    pair_free(&p);
}

/* free_user_data exactly once: revoke, failed expose, replace, node free */
static void noop_event(void *ud, peernet_event_kind k, const peernet_key *key, const char *d) {
    (void)ud; (void)k; (void)key; (void)d;
}

static void noop_rpc(void *ud, const peernet_key *from, const char *m, const char *f,
                     const uint8_t *a, size_t n, peernet_responder *r) {
    (void)ud; (void)from; (void)m; (void)f;
    peernet_respond(r, a, n);
}

static void test_free_user_data(void) {
    pair p;
    REQUIRE(pair_start(&p, "free", true));
    atomic_int f_revoke = 0, f_node = 0, f_ev1 = 0, f_ev2 = 0, f_rpc1 = 0, f_rpc2 = 0, f_fail = 0;
    CHECK_OK(peernet_expose(p.b, "r", echo_handler, NULL, &f_revoke, count_free));
    CHECK_OK(peernet_call(p.a, &p.kb, "r", NULL, 0, 5000, NULL));
    CHECK_OK(peernet_revoke(p.b, "r"));
    /* freed once no call is running: poll with a deadline */
    long long deadline = now_ms() + 5000;
    while (atomic_load(&f_revoke) == 0 && now_ms() < deadline) usleep(1000);
    CHECK(atomic_load(&f_revoke) == 1);
    CHECK_STATUS(peernet_call(p.a, &p.kb, "r", NULL, 0, 5000, NULL), PEERNET_ERR_NO_SUCH_HANDLER);
    CHECK_OK(peernet_expose(p.b, "n", echo_handler, NULL, &f_node, count_free));
    CHECK_STATUS(peernet_expose(p.b, "n", echo_handler, NULL, &f_fail, count_free), PEERNET_ERR_ALREADY_EXISTS);
    CHECK_OK(peernet_set_event_callback(p.b, noop_event, &f_ev1, count_free));
    CHECK_OK(peernet_set_event_callback(p.b, noop_event, &f_ev2, count_free));
    CHECK(atomic_load(&f_ev1) == 1); /* replaced: freed at once (not running) */
    CHECK_OK(peernet_set_rpc_dispatcher(p.b, noop_rpc, &f_rpc1, count_free));
    CHECK_OK(peernet_set_rpc_dispatcher(p.b, noop_rpc, &f_rpc2, count_free));
    CHECK(atomic_load(&f_rpc1) == 1);
    peernet_node_free(p.b);
    /* all released before node_free returned, exactly once */
    CHECK(atomic_load(&f_node) == 1);
    CHECK(atomic_load(&f_ev2) == 1);
    CHECK(atomic_load(&f_rpc2) == 1);
    CHECK(atomic_load(&f_fail) == 0);
    CHECK(atomic_load(&f_revoke) == 1);
    CHECK(atomic_load(&f_ev1) == 1);
    CHECK(atomic_load(&f_rpc1) == 1);
    peernet_node_free(p.a);
}

/* ---- async calls ---- */

typedef struct async_ctx {
    waiter done;
    atomic_int ok, closed, other, bad_body;
    atomic_int calls[1000];
} async_ctx;

typedef struct async_one {
    async_ctx *ctx;
    int index;
} async_one;

static void async_done(void *ud, peernet_status s, const uint8_t *data, size_t len) {
    async_one *one = ud;
    async_ctx *c = one->ctx;
    atomic_fetch_add(&c->calls[one->index], 1);
    if (s == PEERNET_OK) {
        if (len != sizeof(int) || memcmp(data, &one->index, sizeof(int)) != 0)
            atomic_fetch_add(&c->bad_body, 1);
        atomic_fetch_add(&c->ok, 1);
    } else if (s == PEERNET_ERR_CLOSED) {
        atomic_fetch_add(&c->closed, 1);
    } else {
        if (atomic_fetch_add(&c->other, 1) == 0)
            fprintf(stderr, "  async call %d: %s: %s\n", one->index, peernet_status_str(s),
                    peernet_last_error());
    }
    waiter_add(&c->done, 1);
}

static void test_1000_async_calls(void) {
    pair p;
    REQUIRE(pair_start(&p, "async", true));
    CHECK_OK(peernet_expose(p.b, "echo", echo_handler, NULL, NULL, NULL));
    async_ctx *c = calloc(1, sizeof *c);
    async_one *ones = calloc(1000, sizeof *ones);
    REQUIRE(c && ones);
    waiter_init(&c->done);
    for (int i = 0; i < 1000; i++) {
        ones[i].ctx = c;
        ones[i].index = i;
        CHECK_OK(peernet_call_async(p.a, &p.kb, "echo", (const uint8_t *)&ones[i].index,
                                    sizeof(int), 60000, async_done, &ones[i]));
    }
    /* generous: under valgrind on a loaded machine 1000 round trips took over 20 s */
    CHECK(waiter_wait(&c->done, 1000, 90000) == 1000);
    CHECK(atomic_load(&c->ok) == 1000);
    CHECK(atomic_load(&c->bad_body) == 0);
    int once = 1;
    for (int i = 0; i < 1000; i++) once &= atomic_load(&c->calls[i]) == 1;
    CHECK(once);
    pair_free(&p);
    waiter_destroy(&c->done);
    free(c);
    free(ones);
}

static void test_free_with_calls_in_flight(void) {
    pair p;
    REQUIRE(pair_start(&p, "inflight", true));
    waiter held;
    waiter_init(&held);
    CHECK_OK(peernet_expose(p.b, "hold", hold_handler, NULL, &held, NULL));
    async_ctx *c = calloc(1, sizeof *c);
    async_one *ones = calloc(200, sizeof *ones);
    REQUIRE(c && ones);
    waiter_init(&c->done);
    for (int i = 0; i < 200; i++) {
        ones[i].ctx = c;
        ones[i].index = i;
        CHECK_OK(peernet_call_async(p.a, &p.kb, "hold", NULL, 0, 30000, async_done, &ones[i]));
    }
    CHECK(waiter_wait(&held, 200, 10000) == 200);
    peernet_node_free(p.a);
    /* every completion ran exactly once, with CLOSED, before node_free returned */
    CHECK(waiter_get(&c->done) == 200);
    CHECK(atomic_load(&c->closed) == 200);
    int once = 1;
    for (int i = 0; i < 200; i++) once &= atomic_load(&c->calls[i]) == 1;
    CHECK(once);
    peernet_node_free(p.b);
    waiter_destroy(&c->done);
    waiter_destroy(&held);
    free(c);
    free(ones);
}

/* node_free from inside one of its own callbacks */
typedef struct self_free {
    peernet_node *n;
    waiter done;
} self_free;

static void free_self_done(void *ud, peernet_status s, const uint8_t *d, size_t l) {
    (void)s; (void)d; (void)l;
    self_free *sf = ud;
    peernet_node_free(sf->n);
    waiter_add(&sf->done, 1);
}

static void test_free_from_callback(void) {
    pair p;
    REQUIRE(pair_start(&p, "selffree", true));
    CHECK_OK(peernet_expose(p.b, "echo", echo_handler, NULL, NULL, NULL));
    self_free sf;
    sf.n = p.a;
    waiter_init(&sf.done);
    CHECK_OK(peernet_call_async(p.a, &p.kb, "echo", NULL, 0, 5000, free_self_done, &sf));
    CHECK(waiter_wait(&sf.done, 1, 10000) == 1);
    peernet_node_free(p.b);
    waiter_destroy(&sf.done);
}

/* node_free from inside a completion while the other completions of that node are
 * still queued or running: every one of them still runs exactly once, and node_free
 * returns (the thread it blocks must not strand the others). The completion that frees
 * the node first waits until the test thread has issued all 64 calls: a handle must not
 * be used after another thread may have freed it (on a loaded machine the first reply
 * can arrive while the loop is still calling). */
typedef struct free_many {
    peernet_node *n;
    atomic_int first, freed_before_return, gate_timed_out, calls[64];
    waiter issued, done;
} free_many;

typedef struct free_many_one {
    free_many *fm;
    int index;
} free_many_one;

static void free_many_done(void *ud, peernet_status s, const uint8_t *d, size_t l) {
    (void)s; (void)d; (void)l;
    free_many_one *one = ud;
    free_many *fm = one->fm;
    atomic_fetch_add(&fm->calls[one->index], 1);
    if (atomic_exchange(&fm->first, 1) == 0) {
        if (waiter_wait(&fm->issued, 1, 20000) != 1) atomic_store(&fm->gate_timed_out, 1);
        peernet_node_free(fm->n);
        /* every other completion has run by now: node_free waits for them */
        atomic_store(&fm->freed_before_return, (int)waiter_get(&fm->done) + 1);
    }
    waiter_add(&fm->done, 1);
}

static void test_free_from_callback_many(void) {
    pair p;
    REQUIRE(pair_start(&p, "selffreemany", true));
    CHECK_OK(peernet_expose(p.b, "echo", echo_handler, NULL, NULL, NULL));
    free_many *fm = calloc(1, sizeof *fm);
    free_many_one ones[64];
    REQUIRE(fm);
    fm->n = p.a;
    waiter_init(&fm->issued);
    waiter_init(&fm->done);
    for (int i = 0; i < 64; i++) {
        ones[i].fm = fm;
        ones[i].index = i;
        CHECK_OK(peernet_call_async(p.a, &p.kb, "echo", NULL, 0, 5000, free_many_done, &ones[i]));
    }
    /* p.a may be freed from here on: the loop above was its last use by this thread */
    waiter_add(&fm->issued, 1);
    CHECK(waiter_wait(&fm->done, 64, 20000) == 64);
    CHECK(atomic_load(&fm->gate_timed_out) == 0);
    CHECK(atomic_load(&fm->freed_before_return) == 64);
    int once = 1;
    for (int i = 0; i < 64; i++) once &= atomic_load(&fm->calls[i]) == 1;
    CHECK(once);
    peernet_node_free(p.b);
    waiter_destroy(&fm->issued);
    waiter_destroy(&fm->done);
    free(fm);
}

/* a call_async completion that makes a blocking call to the same peer: the reply to
 * that call must be read while the completion runs (it does not run on the
 * connection's reader) */
typedef struct nested_ctx {
    peernet_node *n;
    peernet_key peer;
    peernet_status first, inner;
    size_t inner_len;
    waiter done;
} nested_ctx;

static void nested_done(void *ud, peernet_status s, const uint8_t *d, size_t l) {
    (void)d; (void)l;
    nested_ctx *c = ud;
    c->first = s;
    peernet_buffer out = {0};
    c->inner = peernet_call(c->n, &c->peer, "echo", (const uint8_t *)"again", 5, 2000, &out);
    c->inner_len = out.len;
    peernet_buffer_free(&out);
    waiter_add(&c->done, 1);
}

static void test_completion_calls_back(void) {
    pair p;
    REQUIRE(pair_start(&p, "nested", true));
    CHECK_OK(peernet_expose(p.b, "echo", echo_handler, NULL, NULL, NULL));
    nested_ctx c;
    memset(&c, 0, sizeof c);
    c.n = p.a;
    c.peer = p.kb;
    c.first = c.inner = PEERNET_ERR_INTERNAL;
    waiter_init(&c.done);
    CHECK_OK(peernet_call_async(p.a, &p.kb, "echo", (const uint8_t *)"x", 1, 5000, nested_done, &c));
    CHECK(waiter_wait(&c.done, 1, 10000) == 1);
    CHECK_OK(c.first);
    CHECK_OK(c.inner);
    CHECK(c.inner_len == 5);
    pair_free(&p);
    waiter_destroy(&c.done);
}
