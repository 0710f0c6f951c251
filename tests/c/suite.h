/* Shared helpers of the C suite (test_peernet.c and the topic files it includes: calls.c,
 * callbacks.c, events.c, first_hour.c, pairing.c, streams.c, streams_async.c): the
 * temporary root, node and pair set-up, the echo handler. One translation unit, so
 * everything here stays static. */
#ifndef PEERNET_TEST_SUITE_H
#define PEERNET_TEST_SUITE_H

#include "harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

static char g_root[256];
/* When set, test_config() asks for inline callbacks (see test_inline_callbacks). */
static bool g_inline;

/* ---------- helpers ---------- */

static void make_dir(char *out, size_t n, const char *name) {
    snprintf(out, n, "%s/%s%s", g_root, g_inline ? "inline-" : "", name);
}

static peernet_config *test_config(const char *name) {
    char dir[512];
    make_dir(dir, sizeof dir, name);
    peernet_config *c = peernet_config_new(dir);
    if (!c) return NULL;
    if (peernet_config_set_listen(c, "127.0.0.1:0") != PEERNET_OK ||
        peernet_config_set_heartbeat(c, 200, 15000) != PEERNET_OK ||
        peernet_config_set_auto_connect(c, false) != PEERNET_OK ||
        peernet_config_set_inline_callbacks(c, g_inline) != PEERNET_OK) {
        peernet_config_free(c);
        return NULL;
    }
    return c;
}

static peernet_node *start_node(const char *name) {
    peernet_config *c = test_config(name);
    if (!c) return NULL;
    peernet_node *n = NULL;
    if (peernet_node_start(c, &n) != PEERNET_OK) n = NULL;
    peernet_config_free(c);
    return n;
}

static void node_addr(peernet_node *n, char *out, size_t len) {
    snprintf(out, len, "127.0.0.1:%u", (unsigned)peernet_node_port(n));
}

/* Two nodes that trust each other; a is connected to b. */
typedef struct pair {
    peernet_node *a, *b;
    peernet_key ka, kb;
} pair;

static int pair_start(pair *p, const char *prefix, bool connect) {
    char na[64], nb[64];
    snprintf(na, sizeof na, "%s-a", prefix);
    snprintf(nb, sizeof nb, "%s-b", prefix);
    p->a = start_node(na);
    p->b = start_node(nb);
    if (!p->a || !p->b) return 0;
    peernet_node_key(p->a, &p->ka);
    peernet_node_key(p->b, &p->kb);
    if (peernet_trust(p->a, &p->kb, "b") != PEERNET_OK) return 0;
    if (peernet_trust(p->b, &p->ka, "a") != PEERNET_OK) return 0;
    if (connect) {
        char addr[64];
        node_addr(p->b, addr, sizeof addr);
        if (peernet_connect(p->a, &p->kb, addr, 5000) != PEERNET_OK) return 0;
        if (peernet_wait_connected(p->b, &p->ka, 5000) != PEERNET_OK) return 0;
    }
    return 1;
}

static void pair_free(pair *p) {
    peernet_node_free(p->a);
    peernet_node_free(p->b);
    p->a = p->b = NULL;
}

/* echo handler: replies with the body */
static void echo_handler(void *ud, const peernet_key *from, const uint8_t *body, size_t len,
                         peernet_responder *r) {
    (void)ud;
    (void)from;
    if (r) peernet_respond(r, body, len);
}

static void count_free(void *ud) { atomic_fetch_add((atomic_int *)ud, 1); }

#endif
