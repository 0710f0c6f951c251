/* C suite, streams (issue 16), callbacks and threads: the callback form of read, what
 * free does with reads pending or blocked, stream calls from inside a call handler, and
 * the stream tests again with inline callbacks. Included by test_peernet.c after
 * streams.c, whose helpers it uses. */

/* ---- the callback form of read ---- */

typedef struct aread_ctx {
    pthread_mutex_t mu;
    peernet_status status;
    uint8_t data[64];
    size_t len;
    int calls;
    uint32_t code;
    char error[256];
    pthread_t test_thread;
    int on_test_thread;
    waiter done;
} aread_ctx;

static void aread_init(aread_ctx *c) {
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    waiter_init(&c->done);
    c->test_thread = pthread_self();
    c->status = PEERNET_ERR_INTERNAL;
}

static void aread_destroy(aread_ctx *c) {
    pthread_mutex_destroy(&c->mu);
    waiter_destroy(&c->done);
}

typedef struct aread_job {
    aread_ctx *c;
    peernet_stream *s;
} aread_job;

static void on_read(void *ud, peernet_status st, const uint8_t *data, size_t len) {
    aread_job *j = ud;
    aread_ctx *c = j->c;
    pthread_mutex_lock(&c->mu);
    c->status = st;
    c->len = len < sizeof c->data ? len : sizeof c->data;
    if (data && c->len) memcpy(c->data, data, c->len);
    c->calls++;
    c->on_test_thread |= pthread_equal(pthread_self(), c->test_thread);
    snprintf(c->error, sizeof c->error, "%s", peernet_last_error());
    /* typed reset details are there inside the completion too */
    if (st == PEERNET_ERR_STREAM_RESET && j->s) peernet_stream_reset_info(j->s, &c->code, NULL, 0);
    pthread_mutex_unlock(&c->mu);
    waiter_add(&c->done, 1);
}

static void test_stream_read_async(void) {
    pair p;
    REQUIRE(pair_start(&p, "stream-async", true));
    keep_ctx h;
    keep_init(&h);
    CHECK_OK(peernet_expose_stream(p.b, "hold", keep_stream_handler, NULL, &h, NULL));
    peernet_stream *s = NULL;
    CHECK_OK(peernet_stream_open(p.a, &p.kb, "hold", &s));
    peernet_stream *b = keep_get(&h, 0);
    REQUIRE(s != NULL && b != NULL);
    aread_ctx c;
    aread_init(&c);
    aread_job j = {&c, s};
    /* bytes */
    CHECK_OK(peernet_stream_read_async(s, 64, PEERNET_WAIT_FOREVER, on_read, &j));
    CHECK_OK(stream_write_all(b, (const uint8_t *)"async!", 6));
    CHECK(waiter_wait(&c.done, 1, STREAM_T) == 1);
    CHECK_OK(c.status);
    CHECK(c.len == 6 && memcmp(c.data, "async!", 6) == 0);
    CHECK(!c.on_test_thread);
    /* the end */
    CHECK_OK(peernet_stream_finish(b));
    CHECK_OK(peernet_stream_read_async(s, 64, STREAM_T, on_read, &j));
    CHECK(waiter_wait(&c.done, 2, STREAM_T) == 2);
    CHECK_OK(c.status);
    CHECK(c.len == 0);
    /* a timeout */
    peernet_stream *s2 = NULL;
    CHECK_OK(peernet_stream_open(p.a, &p.kb, "hold", &s2));
    peernet_stream *b2 = keep_get(&h, 1);
    REQUIRE(s2 != NULL && b2 != NULL);
    aread_job j2 = {&c, s2};
    CHECK_OK(peernet_stream_read_async(s2, 64, 50, on_read, &j2));
    CHECK(waiter_wait(&c.done, 3, STREAM_T) == 3);
    CHECK_STATUS(c.status, PEERNET_ERR_TIMEOUT);
    /* a reset while the read waits: the error, with the code, inside the completion */
    CHECK_OK(peernet_stream_read_async(s2, 64, PEERNET_WAIT_FOREVER, on_read, &j2));
    CHECK_OK(peernet_stream_reset(b2, 99, "stop reading"));
    CHECK(waiter_wait(&c.done, 4, STREAM_T) == 4);
    CHECK_STATUS(c.status, PEERNET_ERR_STREAM_RESET);
    CHECK(c.code == 99 && strstr(c.error, "stop reading") != NULL);
    /* bad arguments: done never runs */
    CHECK_STATUS(peernet_stream_read_async(s2, 0, 0, on_read, &j2), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(peernet_stream_read_async(s2, 8, 0, NULL, &j2), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(peernet_stream_read_async(NULL, 8, 0, on_read, &j2),
                 PEERNET_ERR_INVALID_ARGUMENT);
    /* a read pending when the node is freed completes, once, before the free returns */
    peernet_stream *s3 = NULL;
    CHECK_OK(peernet_stream_open(p.a, &p.kb, "hold", &s3));
    REQUIRE(s3 != NULL && keep_get(&h, 2) != NULL);
    aread_job j3 = {&c, s3};
    CHECK_OK(peernet_stream_read_async(s3, 64, PEERNET_WAIT_FOREVER, on_read, &j3));
    peernet_node_free(p.a);
    CHECK(waiter_get(&c.done) == 5);
    CHECK_STATUS(c.status, PEERNET_ERR_CLOSED);
    /* the streams outlive their node: reads fail, frees work */
    size_t got = 1;
    uint8_t one;
    CHECK_STATUS(peernet_stream_read(s3, &one, 1, 0, &got), PEERNET_ERR_CLOSED);
    CHECK_STATUS(peernet_stream_read_async(s3, 8, 0, on_read, &j3), PEERNET_ERR_CLOSED);
    peernet_stream_free(s);
    peernet_stream_free(s2);
    peernet_stream_free(s3);
    CHECK(c.calls == 5);
    peernet_node_free(p.b);
    keep_destroy(&h);
    aread_destroy(&c);
}

/* free of an unfinished stream resets it with CANCELLED (the peer's blocked read sees
 * it), and completes a read of it still pending; a reset wakes a read blocked on
 * another thread */
typedef struct blocked_read {
    peernet_stream *s;
    peernet_status status;
    waiter started;
} blocked_read;

static void *blocked_read_thread(void *p) {
    blocked_read *r = p;
    uint8_t buf[8];
    size_t got = 0;
    waiter_add(&r->started, 1);
    r->status = peernet_stream_read(r->s, buf, sizeof buf, STREAM_T, &got);
    return NULL;
}

static void test_stream_free(void) {
    pair p;
    REQUIRE(pair_start(&p, "stream-free", true));
    keep_ctx h;
    keep_init(&h);
    CHECK_OK(peernet_expose_stream(p.b, "hold", keep_stream_handler, NULL, &h, NULL));
    peernet_stream *s = NULL;
    CHECK_OK(peernet_stream_open(p.a, &p.kb, "hold", &s));
    peernet_stream *b = keep_get(&h, 0);
    REQUIRE(s != NULL && b != NULL);
    blocked_read r;
    memset(&r, 0, sizeof r);
    r.s = b;
    r.status = PEERNET_ERR_INTERNAL;
    waiter_init(&r.started);
    pthread_t t;
    pthread_create(&t, NULL, blocked_read_thread, &r);
    CHECK(waiter_wait(&r.started, 1, STREAM_T) == 1);
    peernet_stream_free(s); /* not finished: reset with CANCELLED */
    pthread_join(t, NULL);
    CHECK_STATUS(r.status, PEERNET_ERR_STREAM_RESET);
    uint32_t code = 99;
    CHECK_OK(peernet_stream_reset_info(b, &code, NULL, 0));
    CHECK(code == PEERNET_STREAM_RESET_CANCELLED);
    /* a reset from this thread wakes a read of the same stream on another thread (the
     * read fails whether it started waiting before the reset or after) */
    CHECK_OK(peernet_stream_open(p.a, &p.kb, "hold", &s));
    REQUIRE(s != NULL && keep_get(&h, 1) != NULL);
    r.s = s;
    r.status = PEERNET_ERR_INTERNAL;
    r.started.count = 0;
    pthread_create(&t, NULL, blocked_read_thread, &r);
    CHECK(waiter_wait(&r.started, 1, STREAM_T) == 1);
    CHECK_OK(peernet_stream_reset(s, 20, "wake up"));
    pthread_join(t, NULL);
    CHECK_STATUS(r.status, PEERNET_ERR_INVALID_ARGUMENT);
    peernet_stream_free(s);
    /* a free while a read of the stream is pending (read_async holds the stream: the
     * free cannot pull it from under the read): the unfinished stream is reset, which
     * completes the read, once */
    CHECK_OK(peernet_stream_open(p.a, &p.kb, "hold", &s));
    REQUIRE(s != NULL && keep_get(&h, 2) != NULL);
    aread_ctx c;
    aread_init(&c);
    aread_job j = {&c, NULL}; /* NULL: the completion must not touch the freed stream */
    CHECK_OK(peernet_stream_read_async(s, 8, PEERNET_WAIT_FOREVER, on_read, &j));
    peernet_stream_free(s);
    CHECK(waiter_wait(&c.done, 1, STREAM_T) == 1);
    CHECK_STATUS(c.status, PEERNET_ERR_INVALID_ARGUMENT);
    CHECK(c.calls == 1);
    aread_destroy(&c);
    peernet_stream_free(NULL);
    keep_destroy(&h);
    pair_free(&p);
    waiter_destroy(&r.started);
}

/* blocking stream calls from inside a call handler: b's handler opens a stream back to
 * a, writes the call's body, reads the echo to its end and answers with it */
typedef struct relay_ctx {
    peernet_node *b;
    peernet_key ka;
} relay_ctx;

static void stream_relay_handler(void *ud, const peernet_key *from, const uint8_t *body,
                                 size_t len, peernet_responder *r) {
    (void)from;
    relay_ctx *c = ud;
    peernet_stream *s = NULL;
    uint8_t buf[64];
    size_t total = 0;
    peernet_status st = peernet_stream_open(c->b, &c->ka, "echo", &s);
    if (st == PEERNET_OK) st = stream_write_all(s, body, len);
    if (st == PEERNET_OK) st = peernet_stream_finish(s);
    if (st == PEERNET_OK) st = stream_read_to_end(s, buf, sizeof buf, &total);
    peernet_stream_free(s);
    if (st == PEERNET_OK) peernet_respond(r, buf, total);
    else peernet_respond_error(r, peernet_status_str(st));
}

static void test_stream_from_call_handler(void) {
    pair p;
    REQUIRE(pair_start(&p, "stream-relay", true));
    echo_sctx c = {.errors = 0, .echoed = 0};
    waiter_init(&c.done);
    relay_ctx r = {p.b, p.ka};
    CHECK_OK(peernet_expose_stream(p.a, "echo", echo_stream_handler, NULL, &c, NULL));
    CHECK_OK(peernet_expose(p.b, "relay", stream_relay_handler, NULL, &r, NULL));
    peernet_buffer out = {0};
    CHECK_OK(peernet_call(p.a, &p.kb, "relay", (const uint8_t *)"round trip", 10, STREAM_T, &out));
    CHECK(out.len == 10 && memcmp(out.data, "round trip", 10) == 0);
    peernet_buffer_free(&out);
    CHECK(waiter_wait(&c.done, 1, STREAM_T) == 1 && atomic_load(&c.errors) == 0);
    pair_free(&p);
    waiter_destroy(&c.done);
}

/* The stream tests again with inline callbacks configured: stream handlers and read
 * completions still run on the blocking pool, and a call handler running inline on a
 * runtime thread may make blocking stream calls. */
static void test_stream_inline_callbacks(void) {
    void (*again[])(void) = {test_stream_echo, test_stream_reset, test_stream_read_async,
                             test_stream_free, test_stream_from_call_handler};
    g_inline = true;
    for (size_t i = 0; i < sizeof again / sizeof again[0]; i++) again[i]();
    g_inline = false;
}
