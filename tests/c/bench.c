/* Benchmark: call RTT (p50/p99) and pipelined call rate through the C API, and the same
 * through the Rust API (peernet-ffi's rust_bench example, run from here so both run on
 * the same machine state), then the ratios. Not a test: it asserts nothing.
 *
 *   bench [RUST_BENCH_BINARY] [RTT_CALLS] [PIPELINED_CALLS] [WINDOW] [ROUNDS]
 *
 * Two nodes in this process on 127.0.0.1; the handler is a C echo. RTT: sequential
 * blocking peernet_call. Pipelined: WINDOW chains of peernet_call_async (each completion
 * issues the chain's next call), so WINDOW calls are in flight. Measured once with the
 * default callbacks (each handler and completion may block: the runtime thread's work is
 * handed off first), then ROUNDS times (default 3) with peernet_config_set_inline_callbacks,
 * alternating with the Rust benchmark; the printed ratios are the rounds' medians. */
#define _POSIX_C_SOURCE 200809L
#include <peernet.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void echo(void *ud, const peernet_key *from, const uint8_t *body, size_t len,
                 peernet_responder *r) {
    (void)ud;
    (void)from;
    if (r) peernet_respond(r, body, len);
}

/* Shared by the chains: only atomics on the hot path (like the Rust benchmark's tasks,
 * which share nothing); the mutex and condition variable only for the last call. */
typedef struct window {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_long done, failed;
    long total;
    bool finished;
} window;

/* One chain: its own quota of calls, issued one after the other. */
typedef struct chain_ctx {
    window *w;
    peernet_node *node;
    const peernet_key *key;
    const uint8_t *body;
    size_t len;
    long left; /* calls this chain has still to issue */
} chain_ctx;

static void count_done(window *w, bool failed) {
    if (failed) atomic_fetch_add(&w->failed, 1);
    if (atomic_fetch_add(&w->done, 1) + 1 == w->total) {
        pthread_mutex_lock(&w->mu);
        w->finished = true;
        pthread_cond_signal(&w->cv);
        pthread_mutex_unlock(&w->mu);
    }
}

/* Completion of one call of a chain: counts it and issues the chain's next call. */
static void on_chain(void *ud, peernet_status s, const uint8_t *d, size_t n) {
    (void)d;
    (void)n;
    chain_ctx *c = ud;
    bool more = c->left > 0;
    if (more) c->left--;
    count_done(c->w, s != PEERNET_OK);
    if (more &&
        peernet_call_async(c->node, c->key, "echo", c->body, c->len, 30000, on_chain, c) != PEERNET_OK)
        count_done(c->w, true);
}

static peernet_node *start(const char *dir, bool inline_callbacks) {
    peernet_config *c = peernet_config_new(dir);
    peernet_config_set_listen(c, "127.0.0.1:0");
    peernet_config_set_auto_connect(c, false);
    peernet_config_set_inline_callbacks(c, inline_callbacks);
    peernet_node *n = NULL;
    if (peernet_node_start(c, &n) != PEERNET_OK) {
        fprintf(stderr, "start: %s\n", peernet_last_error());
        exit(1);
    }
    peernet_config_free(c);
    return n;
}

typedef struct result {
    double p50, p99, rate;
    long failed;
} result;

/* Two fresh nodes (callbacks inline or not), the RTT loop, then WINDOW call_async
 * chains: each completion issues its chain's next call, like the Rust benchmark's tasks
 * that each call in a loop. Returns 0 on success. */
static int measure(const char *root, bool inline_callbacks, int rtt_calls, long total, long win,
                   result *out) {
    char da[128], db[128];
    snprintf(da, sizeof da, "%s/%s-a", root, inline_callbacks ? "inline" : "default");
    snprintf(db, sizeof db, "%s/%s-b", root, inline_callbacks ? "inline" : "default");
    peernet_node *a = start(da, inline_callbacks), *b = start(db, inline_callbacks);
    peernet_key ka, kb;
    peernet_node_key(a, &ka);
    peernet_node_key(b, &kb);
    peernet_trust(a, &kb, NULL);
    peernet_trust(b, &ka, NULL);
    peernet_expose(b, "echo", echo, NULL, NULL, NULL);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", (unsigned)peernet_node_port(b));
    if (peernet_connect(a, &kb, addr, 5000) != PEERNET_OK) return 1;
    uint8_t body[32];
    memset(body, 7, sizeof body);

    for (int i = 0; i < 200; i++) peernet_call(a, &kb, "echo", body, sizeof body, 5000, NULL);
    double *rtt = malloc(sizeof(double) * (size_t)rtt_calls);
    if (!rtt) return 1;
    for (int i = 0; i < rtt_calls; i++) {
        peernet_buffer buf = {0};
        double t = now_us();
        if (peernet_call(a, &kb, "echo", body, sizeof body, 5000, &buf) != PEERNET_OK) return 1;
        rtt[i] = now_us() - t;
        peernet_buffer_free(&buf);
    }
    qsort(rtt, (size_t)rtt_calls, sizeof(double), cmp);
    out->p50 = rtt[(rtt_calls - 1) / 2];
    out->p99 = rtt[(int)((rtt_calls - 1) * 0.99)];
    free(rtt);

    window w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, total, false};
    long chains = win < total ? win : total;
    chain_ctx *cc = calloc((size_t)chains, sizeof *cc);
    if (!cc) return 1;
    for (long i = 0; i < chains; i++) {
        /* the chain's first call is issued below; `left` counts the rest */
        long quota = total / chains + (i < total % chains);
        cc[i] = (chain_ctx){&w, a, &kb, body, sizeof body, quota - 1};
    }
    double t0 = now_us();
    for (long i = 0; i < chains; i++) {
        if (peernet_call_async(a, &kb, "echo", body, sizeof body, 30000, on_chain, &cc[i]) != PEERNET_OK)
            return 1;
    }
    pthread_mutex_lock(&w.mu);
    while (!w.finished) pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    out->rate = total / ((now_us() - t0) / 1e6);
    out->failed = atomic_load(&w.failed);
    peernet_node_free(a); /* waits for every completion still returning */
    peernet_node_free(b);
    free(cc);
    return 0;
}

/* Runs the Rust benchmark once; 0 on success. */
static int run_rust(const char *rust, int rtt_calls, long total, long win, result *out) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "%s %d %ld %ld", rust, rtt_calls, total, win);
    FILE *p = popen(cmd, "r");
    char line[256];
    out->rate = 0;
    while (p && fgets(line, sizeof line, p)) {
        if (sscanf(line, "rust rtt_p50_us=%lf rtt_p99_us=%lf rate=%lf", &out->p50, &out->p99,
                   &out->rate) == 3)
            fputs(line, stdout);
    }
    return !p || pclose(p) != 0 || out->rate == 0;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp);
    return v[(n - 1) / 2];
}

#define MAX_ROUNDS 15

int main(int argc, char **argv) {
    const char *rust = argc > 1 && argv[1][0] ? argv[1] : NULL;
    int rtt_calls = argc > 2 ? atoi(argv[2]) : 2000;
    long total = argc > 3 ? atol(argv[3]) : 200000;
    long win = argc > 4 ? atol(argv[4]) : 64;
    int rounds = argc > 5 ? atoi(argv[5]) : 3;
    if (rtt_calls < 1 || total < 1 || win < 1 || rounds < 1 || rounds > MAX_ROUNDS) return 2;
    char root[] = "/tmp/peernet-bench-XXXXXX";
    if (!mkdtemp(root)) return 1;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    /* The default mode once (it is far from the Rust figures either way); then the
     * inline mode and the Rust benchmark alternately, `rounds` times, so that both see
     * the same machine state; the ratios are the medians of the rounds' ratios. */
    result def, inl[MAX_ROUNDS], rs[MAX_ROUNDS];
    int bad = measure(root, false, rtt_calls, total, win, &def);
    if (!bad)
        printf("c (default callbacks) rtt_p50_us=%.1f rtt_p99_us=%.1f rate=%.0f (failed %ld)\n",
               def.p50, def.p99, def.rate, def.failed);
    double r50[MAX_ROUNDS], r99[MAX_ROUNDS], rrate[MAX_ROUNDS], rust_rate[MAX_ROUNDS];
    for (int i = 0; i < rounds && !bad; i++) {
        char sub[64];
        snprintf(sub, sizeof sub, "%s/round%d", root, i);
        if (mkdir(sub, 0700) != 0 || measure(sub, true, rtt_calls, total, win, &inl[i])) {
            bad = 1;
            break;
        }
        printf("c (inline callbacks)  rtt_p50_us=%.1f rtt_p99_us=%.1f rate=%.0f (failed %ld)\n",
               inl[i].p50, inl[i].p99, inl[i].rate, inl[i].failed);
        if (!rust) continue;
        if (run_rust(rust, rtt_calls, total, win, &rs[i])) {
            fprintf(stderr, "bench: the Rust benchmark did not run\n");
            bad = 1;
            break;
        }
        r50[i] = inl[i].p50 / rs[i].p50;
        r99[i] = inl[i].p99 / rs[i].p99;
        rrate[i] = inl[i].rate / rs[i].rate;
        rust_rate[i] = rs[i].rate;
    }
    if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
    if (bad) {
        fprintf(stderr, "bench: a measurement failed: %s\n", peernet_last_error());
        return 1;
    }
    if (!rust) return 0;
    double rust_med = median(rust_rate, rounds);
    printf("C API / Rust API, default callbacks: pipelined rate %.2fx (against the median Rust "
           "rate)\n",
           def.rate / rust_med);
    printf("C API / Rust API, inline callbacks, median of %d alternating rounds: rtt p50 %.2fx, "
           "p99 %.2fx, pipelined rate %.2fx\n",
           rounds, median(r50, rounds), median(r99, rounds), median(rrate, rounds));
    return 0;
}
