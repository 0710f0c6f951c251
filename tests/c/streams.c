/* C suite, streams (issue 16): open/write/read echo with flow control, half-close both
 * ways, reset with code and reason seen by the other side, a refused name, the read
 * timeout, bad arguments; the helpers streams_async.c shares. Included by
 * test_peernet.c (one translation unit). Every wait has a deadline; everything runs on
 * 127.0.0.1. */

/* Generous per-operation deadline: only reached when something is broken. */
#define STREAM_T 10000

static peernet_status stream_write_all(peernet_stream *s, const uint8_t *d, size_t len) {
    size_t off = 0;
    while (off < len) {
        size_t w = 0;
        peernet_status st = peernet_stream_write(s, d + off, len - off, STREAM_T, &w);
        if (st != PEERNET_OK) return st;
        if (w == 0) return PEERNET_ERR_INTERNAL; /* OK with nothing taken: a bug */
        off += w;
    }
    return PEERNET_OK;
}

/* Reads until the end into buf; *total is what came. More than cap is an error. */
static peernet_status stream_read_to_end(peernet_stream *s, uint8_t *buf, size_t cap,
                                         size_t *total) {
    *total = 0;
    for (;;) {
        uint8_t spill;
        uint8_t *dst = *total < cap ? buf + *total : &spill;
        size_t room = *total < cap ? cap - *total : 1;
        size_t got = 0;
        peernet_status st = peernet_stream_read(s, dst, room, STREAM_T, &got);
        if (st != PEERNET_OK) return st;
        if (got == 0) return PEERNET_OK;
        if (dst == &spill) return PEERNET_ERR_INTERNAL;
        *total += got;
    }
}

/* ---- a stream handler that keeps the streams it gets (past the callback) ---- */

typedef struct keep_ctx {
    pthread_mutex_t mu;
    peernet_stream *s[4];
    int n;
    peernet_key from, stream_peer;
    char name[64];
    pthread_t test_thread;
    int on_test_thread;
    waiter accepted;
} keep_ctx;

static void keep_init(keep_ctx *c) {
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    waiter_init(&c->accepted);
    c->test_thread = pthread_self();
}

static void keep_stream_handler(void *ud, const peernet_key *from, peernet_stream *s) {
    keep_ctx *c = ud;
    pthread_mutex_lock(&c->mu);
    c->from = *from;
    peernet_stream_peer(s, &c->stream_peer);
    snprintf(c->name, sizeof c->name, "%s", peernet_stream_name(s));
    c->on_test_thread |= pthread_equal(pthread_self(), c->test_thread);
    if (c->n < 4) c->s[c->n++] = s;
    else peernet_stream_free(s);
    pthread_mutex_unlock(&c->mu);
    waiter_add(&c->accepted, 1);
}

/* The i-th stream the handler kept (after waiting for it). */
static peernet_stream *keep_get(keep_ctx *c, int i) {
    if (waiter_wait(&c->accepted, i + 1, STREAM_T) < i + 1) return NULL;
    pthread_mutex_lock(&c->mu);
    peernet_stream *s = c->s[i];
    pthread_mutex_unlock(&c->mu);
    return s;
}

static void keep_destroy(keep_ctx *c) {
    for (int i = 0; i < c->n; i++) peernet_stream_free(c->s[i]);
    c->n = 0;
    pthread_mutex_destroy(&c->mu);
    waiter_destroy(&c->accepted);
}

/* A stream handler that only frees what it gets. */
static void drop_stream_handler(void *ud, const peernet_key *from, peernet_stream *s) {
    (void)ud;
    (void)from;
    peernet_stream_free(s);
}

/* ---- an echo stream handler: reads until the end, writes everything back, finishes ---- */

typedef struct echo_sctx {
    waiter done;
    atomic_int errors;
    atomic_size_t echoed;
} echo_sctx;

static void echo_stream_handler(void *ud, const peernet_key *from, peernet_stream *s) {
    (void)from;
    echo_sctx *c = ud;
    uint8_t buf[16384];
    for (;;) {
        size_t got = 0;
        if (peernet_stream_read(s, buf, sizeof buf, STREAM_T, &got) != PEERNET_OK) {
            atomic_fetch_add(&c->errors, 1);
            break;
        }
        if (got == 0) {
            /* the opener finished: this direction is still open until we finish too */
            if (peernet_stream_finish(s) != PEERNET_OK) atomic_fetch_add(&c->errors, 1);
            break;
        }
        if (stream_write_all(s, buf, got) != PEERNET_OK) {
            atomic_fetch_add(&c->errors, 1);
            break;
        }
        atomic_fetch_add(&c->echoed, got);
    }
    peernet_stream_free(s);
    waiter_add(&c->done, 1);
}

typedef struct writer_arg {
    peernet_stream *s;
    const uint8_t *data;
    size_t len;
    peernet_status write, finish;
} writer_arg;

static void *writer_thread(void *p) {
    writer_arg *w = p;
    w->write = stream_write_all(w->s, w->data, w->len);
    w->finish = peernet_stream_finish(w->s);
    return NULL;
}

/* open, write and read at once on two threads (more than the receive window and the
 * send buffer together, so flow control has to work both ways), the opener finishes
 * first and still reads the echo to its end; accessors on both sides */
static void test_stream_echo(void) {
    pair p;
    REQUIRE(pair_start(&p, "stream-echo", true));
    echo_sctx c = {.errors = 0, .echoed = 0};
    waiter_init(&c.done);
    CHECK_OK(peernet_expose_stream(p.b, "echo", echo_stream_handler, NULL, &c, NULL));
    peernet_stream *s = NULL;
    CHECK_OK(peernet_stream_open(p.a, &p.kb, "echo", &s));
    REQUIRE(s != NULL);
    peernet_key k;
    peernet_stream_peer(s, &k);
    CHECK(memcmp(&k, &p.kb, sizeof k) == 0);
    CHECK(strcmp(peernet_stream_name(s), "echo") == 0);
    CHECK(peernet_stream_id(s) == peernet_stream_id(s));
    size_t len = 1024 * 1024;
    uint8_t *data = malloc(len), *back = malloc(len);
    REQUIRE(data && back);
    for (size_t i = 0; i < len; i++) data[i] = (uint8_t)(i * 7 + i / 251);
    writer_arg w = {s, data, len, PEERNET_ERR_INTERNAL, PEERNET_ERR_INTERNAL};
    pthread_t t;
    pthread_create(&t, NULL, writer_thread, &w);
    size_t total = 0;
    CHECK_OK(stream_read_to_end(s, back, len, &total));
    pthread_join(t, NULL);
    CHECK_OK(w.write);
    CHECK_OK(w.finish);
    CHECK(total == len && memcmp(data, back, len) == 0);
    /* the end stays the end */
    size_t got = 1;
    uint8_t one;
    CHECK_OK(peernet_stream_read(s, &one, 1, 0, &got));
    CHECK(got == 0);
    CHECK(waiter_wait(&c.done, 1, STREAM_T) == 1);
    CHECK(atomic_load(&c.errors) == 0 && atomic_load(&c.echoed) == len);
    /* writing after finish is refused */
    CHECK_STATUS(peernet_stream_write(s, data, 1, 0, &got), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK(got == 0);
    peernet_stream_free(s);
    free(data);
    free(back);
    pair_free(&p);
    waiter_destroy(&c.done);
}

/* the accepting side finishes first: the opener reads its greeting and the end, and
 * still writes, which the accepting side reads to the end */
typedef struct greet_ctx {
    waiter done;
    char got[64];
    size_t len;
    peernet_status read, write_after_finish;
} greet_ctx;

static void greet_handler(void *ud, const peernet_key *from, peernet_stream *s) {
    (void)from;
    greet_ctx *c = ud;
    size_t w = 0;
    c->read = stream_write_all(s, (const uint8_t *)"greeting", 8);
    if (c->read == PEERNET_OK) c->read = peernet_stream_finish(s);
    c->write_after_finish = peernet_stream_write(s, (const uint8_t *)"x", 1, 0, &w);
    if (c->read == PEERNET_OK)
        c->read = stream_read_to_end(s, (uint8_t *)c->got, sizeof c->got - 1, &c->len);
    peernet_stream_free(s);
    waiter_add(&c->done, 1);
}

static void test_stream_half_close(void) {
    pair p;
    REQUIRE(pair_start(&p, "stream-half", true));
    greet_ctx c;
    memset(&c, 0, sizeof c);
    waiter_init(&c.done);
    CHECK_OK(peernet_expose_stream(p.b, "greet", greet_handler, NULL, &c, NULL));
    peernet_stream *s = NULL;
    CHECK_OK(peernet_stream_open(p.a, &p.kb, "greet", &s));
    REQUIRE(s != NULL);
    uint8_t buf[64];
    size_t total = 0;
    CHECK_OK(stream_read_to_end(s, buf, sizeof buf, &total));
    CHECK(total == 8 && memcmp(buf, "greeting", 8) == 0);
    /* the peer's direction ended; ours is open */
    CHECK_OK(stream_write_all(s, (const uint8_t *)"after your end", 14));
    CHECK_OK(peernet_stream_finish(s));
    CHECK_OK(peernet_stream_finish(s)); /* twice: nothing more */
    CHECK(waiter_wait(&c.done, 1, STREAM_T) == 1);
    CHECK_OK(c.read);
    CHECK_STATUS(c.write_after_finish, PEERNET_ERR_INVALID_ARGUMENT);
    CHECK(c.len == 14 && memcmp(c.got, "after your end", 14) == 0);
    /* both directions finished: freeing resets nothing */
    peernet_stream_free(s);
    pair_free(&p);
    waiter_destroy(&c.done);
}

/* a reset carries its code and reason to the other side, both ways; the handler's
 * stream is used after its callback returned */
static void test_stream_reset(void) {
    pair p;
    REQUIRE(pair_start(&p, "stream-reset", true));
    keep_ctx h;
    keep_init(&h);
    CHECK_OK(peernet_expose_stream(p.b, "hold", keep_stream_handler, NULL, &h, NULL));
    peernet_stream *a1 = NULL, *a2 = NULL;
    /* opener resets */
    CHECK_OK(peernet_stream_open(p.a, &p.kb, "hold", &a1));
    peernet_stream *b1 = keep_get(&h, 0);
    REQUIRE(a1 != NULL && b1 != NULL);
    CHECK(memcmp(&h.from, &p.ka, sizeof h.from) == 0);
    CHECK(memcmp(&h.stream_peer, &p.ka, sizeof h.stream_peer) == 0);
    CHECK(strcmp(h.name, "hold") == 0);
    CHECK(!h.on_test_thread);
    uint32_t code = 0;
    char reason[PEERNET_STREAM_REASON_SIZE];
    CHECK_STATUS(peernet_stream_reset_info(b1, &code, reason, sizeof reason),
                 PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_OK(peernet_stream_reset(a1, 42, "bye now"));
    uint8_t buf[16];
    size_t got = 1;
    CHECK_STATUS(peernet_stream_read(b1, buf, sizeof buf, STREAM_T, &got),
                 PEERNET_ERR_STREAM_RESET);
    CHECK(got == 0);
    CHECK(strstr(peernet_last_error(), "42") && strstr(peernet_last_error(), "bye now"));
    CHECK_OK(peernet_stream_reset_info(b1, &code, reason, sizeof reason));
    CHECK(code == 42 && strcmp(reason, "bye now") == 0);
    /* too small a buffer: cut, NUL-terminated */
    char small[4];
    CHECK_OK(peernet_stream_reset_info(b1, &code, small, sizeof small));
    CHECK(strcmp(small, "bye") == 0);
    CHECK_OK(peernet_stream_reset_info(b1, &code, NULL, 0));
    /* writing to a stream the peer reset fails the same way */
    CHECK_STATUS(peernet_stream_write(b1, (const uint8_t *)"x", 1, STREAM_T, &got),
                 PEERNET_ERR_STREAM_RESET);
    /* this side reset it: its own reads, writes and finish fail, and it saw no peer reset */
    CHECK_STATUS(peernet_stream_read(a1, buf, sizeof buf, 0, &got), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(peernet_stream_write(a1, buf, 1, 0, &got), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(peernet_stream_finish(a1), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(peernet_stream_reset_info(a1, &code, reason, sizeof reason),
                 PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_OK(peernet_stream_reset(a1, 43, NULL)); /* twice: harmless */
    /* accepter resets, from a thread other than its callback's, after it returned */
    CHECK_OK(peernet_stream_open(p.a, &p.kb, "hold", &a2));
    peernet_stream *b2 = keep_get(&h, 1);
    REQUIRE(a2 != NULL && b2 != NULL);
    CHECK_OK(peernet_stream_reset(b2, 77, "from b"));
    CHECK_STATUS(peernet_stream_read(a2, buf, sizeof buf, STREAM_T, &got),
                 PEERNET_ERR_STREAM_RESET);
    CHECK_OK(peernet_stream_reset_info(a2, &code, reason, sizeof reason));
    CHECK(code == 77 && strcmp(reason, "from b") == 0);
    /* a reason over the limit is cut to it (on a character boundary: "é" is 2 bytes) */
    peernet_stream *a3 = NULL;
    CHECK_OK(peernet_stream_open(p.a, &p.kb, "hold", &a3));
    peernet_stream *b3 = keep_get(&h, 2);
    REQUIRE(a3 != NULL && b3 != NULL);
    char long_reason[2 * PEERNET_STREAM_REASON_MAX];
    for (size_t i = 0; i + 2 < sizeof long_reason; i += 2) memcpy(long_reason + i, "\xc3\xa9", 2);
    long_reason[sizeof long_reason - 2] = 0;
    CHECK_OK(peernet_stream_reset(a3, 16, long_reason));
    CHECK_STATUS(peernet_stream_read(b3, buf, sizeof buf, STREAM_T, &got),
                 PEERNET_ERR_STREAM_RESET);
    CHECK_OK(peernet_stream_reset_info(b3, &code, reason, sizeof reason));
    CHECK(code == 16 && strlen(reason) == PEERNET_STREAM_REASON_MAX - 1);
    CHECK(strncmp(reason, long_reason, strlen(reason)) == 0);
    peernet_stream_free(a1);
    peernet_stream_free(a2);
    peernet_stream_free(a3);
    keep_destroy(&h);
    pair_free(&p);
}

/* opens nobody accepts come back as a reset with REFUSED: no such name, a revoked
 * name, authorize saying no; an open without a connection fails at once */
static void test_stream_refused(void) {
    pair p;
    REQUIRE(pair_start(&p, "stream-refused", true));
    atomic_int freed = 0;
    keep_ctx h;
    keep_init(&h);
    atomic_int not_taken = 0;
    CHECK_OK(peernet_expose_stream(p.b, "gone", drop_stream_handler, NULL, &freed, count_free));
    CHECK_STATUS(peernet_expose_stream(p.b, "gone", drop_stream_handler, NULL, &not_taken,
                                       count_free),
                 PEERNET_ERR_ALREADY_EXISTS);
    CHECK_OK(peernet_revoke_stream(p.b, "gone"));
    CHECK(atomic_load(&freed) == 1);   /* no stream of it running: released at once */
    CHECK(atomic_load(&not_taken) == 0); /* a failed expose does not take user_data */
    CHECK_STATUS(peernet_revoke_stream(p.b, "gone"), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_OK(peernet_expose_stream(p.b, "denied", keep_stream_handler, deny_all, &h, NULL));
    const char *names[] = {"nobody", "gone", "denied"};
    for (int i = 0; i < 3; i++) {
        peernet_stream *s = NULL;
        CHECK_OK(peernet_stream_open(p.a, &p.kb, names[i], &s));
        REQUIRE(s != NULL);
        uint8_t buf[8];
        size_t got = 1;
        CHECK_STATUS(peernet_stream_read(s, buf, sizeof buf, STREAM_T, &got),
                     PEERNET_ERR_STREAM_RESET);
        uint32_t code = 99;
        CHECK_OK(peernet_stream_reset_info(s, &code, NULL, 0));
        CHECK(code == PEERNET_STREAM_RESET_REFUSED);
        peernet_stream_free(s);
    }
    CHECK(waiter_get(&h.accepted) == 0);
    /* no connection, or not trusted: nothing is opened */
    peernet_stream *s = (peernet_stream *)&h; /* overwritten with NULL on failure */
    CHECK_OK(peernet_disconnect(p.a, &p.kb));
    CHECK_STATUS(peernet_stream_open(p.a, &p.kb, "nobody", &s), PEERNET_ERR_NOT_CONNECTED);
    CHECK(s == NULL);
    peernet_key stranger;
    memset(&stranger, 0x11, sizeof stranger);
    CHECK_STATUS(peernet_stream_open(p.a, &stranger, "nobody", &s), PEERNET_ERR_UNTRUSTED_PEER);
    pair_free(&p);
    keep_destroy(&h);
}

/* a read that gets nothing times out, and the stream stays usable */
static void test_stream_read_timeout(void) {
    pair p;
    REQUIRE(pair_start(&p, "stream-timeout", true));
    keep_ctx h;
    keep_init(&h);
    CHECK_OK(peernet_expose_stream(p.b, "hold", keep_stream_handler, NULL, &h, NULL));
    peernet_stream *s = NULL;
    CHECK_OK(peernet_stream_open(p.a, &p.kb, "hold", &s));
    peernet_stream *b = keep_get(&h, 0);
    REQUIRE(s != NULL && b != NULL);
    uint8_t buf[16];
    size_t got = 1;
    CHECK_STATUS(peernet_stream_read(s, buf, sizeof buf, 100, &got), PEERNET_ERR_TIMEOUT);
    CHECK(got == 0);
    CHECK_STATUS(peernet_stream_read(s, buf, sizeof buf, 0, &got), PEERNET_ERR_TIMEOUT);
    CHECK_OK(stream_write_all(b, (const uint8_t *)"late", 4));
    CHECK_OK(peernet_stream_read(s, buf, sizeof buf, STREAM_T, &got));
    CHECK(got == 4 && memcmp(buf, "late", 4) == 0);
    peernet_stream_free(s);
    keep_destroy(&h);
    pair_free(&p);
}

static void test_stream_bad_arguments(void) {
    pair p;
    REQUIRE(pair_start(&p, "stream-args", true));
    keep_ctx h;
    keep_init(&h);
    peernet_stream *s = NULL;
    uint8_t buf[4];
    size_t n = 0;
    uint32_t code;
    CHECK_STATUS(peernet_stream_open(NULL, &p.kb, "x", &s), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(peernet_stream_open(p.a, NULL, "x", &s), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(peernet_stream_open(p.a, &p.kb, NULL, &s), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(peernet_stream_open(p.a, &p.kb, "", &s), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(peernet_stream_open(p.a, &p.kb, "x", NULL), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(peernet_stream_read(NULL, buf, 4, 0, &n), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(peernet_stream_write(NULL, buf, 4, 0, &n), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(peernet_stream_finish(NULL), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(peernet_stream_reset(NULL, 16, NULL), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(peernet_stream_reset_info(NULL, &code, NULL, 0), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK(peernet_stream_name(NULL) == NULL && peernet_stream_id(NULL) == 0);
    CHECK_STATUS(peernet_expose_stream(p.b, "x", NULL, NULL, NULL, NULL),
                 PEERNET_ERR_INVALID_ARGUMENT);
    char long_name[300];
    memset(long_name, 'n', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = 0;
    CHECK_STATUS(peernet_expose_stream(p.b, long_name, keep_stream_handler, NULL, NULL, NULL),
                 PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(peernet_stream_open(p.a, &p.kb, long_name, &s), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(peernet_revoke_stream(p.b, NULL), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_OK(peernet_expose_stream(p.b, "x", keep_stream_handler, NULL, &h, NULL));
    CHECK_OK(peernet_stream_open(p.a, &p.kb, "x", &s));
    REQUIRE(s != NULL && keep_get(&h, 0) != NULL);
    CHECK_STATUS(peernet_stream_read(s, NULL, 4, 0, &n), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(peernet_stream_read(s, buf, 0, 0, &n), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(peernet_stream_read(s, buf, 4, 0, NULL), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(peernet_stream_write(s, NULL, 4, 0, &n), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(peernet_stream_write(s, buf, 4, 0, NULL), PEERNET_ERR_INVALID_ARGUMENT);
    CHECK_OK(peernet_stream_write(s, NULL, 0, 0, &n));
    CHECK(n == 0);
    CHECK_STATUS(peernet_stream_reset_info(s, NULL, NULL, 0), PEERNET_ERR_INVALID_ARGUMENT);
    char bad[] = {(char)0xc3, (char)0x28, 0};
    CHECK_STATUS(peernet_stream_reset(s, 16, bad), PEERNET_ERR_INVALID_ARGUMENT);
    peernet_key k;
    memset(&k, 0, sizeof k);
    peernet_stream_peer(s, NULL); /* no crash */
    CHECK(strlen(peernet_last_error()) > 0);
    peernet_stream_peer(NULL, &k);
    CHECK(strcmp(peernet_status_str(PEERNET_ERR_STREAM_RESET), "PEERNET_ERR_STREAM_RESET") == 0);
    peernet_stream_free(s);
    keep_destroy(&h);
    pair_free(&p);
}
