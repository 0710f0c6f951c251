/* echo_client: calls "echo" on an echo_server.
 *
 *   echo_client DATA_DIR --print-key
 *       prints this client's key (creating its identity), for the server's trust list
 *   echo_client DATA_DIR SERVER_KEY_HEX SERVER_ADDR MESSAGE...
 *       calls echo once per MESSAGE (blocking), then all of them again with
 *       peernet_call_async; exits 0 if every reply equals its message. */
#define _POSIX_C_SOURCE 200809L
#include <peernet.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what, peernet_status st) {
    fprintf(stderr, "echo_client: %s: %s: %s\n", what, peernet_status_str(st),
            peernet_last_error());
    return 1;
}

/* State shared with the async completions (which run on library threads). */
typedef struct pending {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int outstanding;
    int mismatches;
} pending;

typedef struct one_call {
    pending *p;
    const char *expected;
} one_call;

static void on_reply(void *user_data, peernet_status st, const uint8_t *data, size_t len) {
    one_call *c = user_data; /* ours: the library never frees it */
    int ok = st == PEERNET_OK && len == strlen(c->expected) && memcmp(data, c->expected, len) == 0;
    printf("async reply: %.*s (%s)\n", (int)len, data ? (const char *)data : "",
           peernet_status_str(st));
    pthread_mutex_lock(&c->p->mu);
    if (!ok) c->p->mismatches++;
    c->p->outstanding--;
    pthread_cond_signal(&c->p->cv);
    pthread_mutex_unlock(&c->p->mu);
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[2], "--print-key") == 0) {
        peernet_config *cfg = peernet_config_new(argv[1]);
        if (!cfg || peernet_config_set_listen(cfg, "none") != PEERNET_OK)
            return fail("config", PEERNET_ERR_INVALID_ARGUMENT);
        peernet_node *node = NULL;
        peernet_status st = peernet_node_start(cfg, &node);
        peernet_config_free(cfg);
        if (st != PEERNET_OK) return fail("start", st);
        peernet_key k;
        char hex[PEERNET_KEY_HEX_SIZE];
        peernet_node_key(node, &k);
        peernet_key_to_hex(&k, hex);
        printf("%s\n", hex);
        peernet_node_free(node);
        return 0;
    }
    if (argc < 5) {
        fprintf(stderr,
                "usage: %s DATA_DIR --print-key\n"
                "       %s DATA_DIR SERVER_KEY_HEX SERVER_ADDR MESSAGE...\n",
                argv[0], argv[0]);
        return 2;
    }
    peernet_config *cfg = peernet_config_new(argv[1]);
    if (!cfg) return fail("config", PEERNET_ERR_INVALID_ARGUMENT);
    peernet_config_set_listen(cfg, "none"); /* outgoing connections only */
    peernet_node *node = NULL;
    peernet_status st = peernet_node_start(cfg, &node);
    peernet_config_free(cfg);
    if (st != PEERNET_OK) return fail("start", st);

    peernet_key server;
    if ((st = peernet_key_from_hex(argv[2], &server)) != PEERNET_OK) return fail("server key", st);
    if ((st = peernet_trust(node, &server, "server")) != PEERNET_OK) return fail("trust", st);
    if ((st = peernet_connect(node, &server, argv[3], 5000)) != PEERNET_OK) return fail("connect", st);

    int mismatches = 0;
    for (int i = 4; i < argc; i++) {
        peernet_buffer reply = {0};
        st = peernet_call(node, &server, "echo", (const uint8_t *)argv[i], strlen(argv[i]), 5000,
                          &reply);
        if (st != PEERNET_OK) return fail("call", st);
        printf("reply: %.*s\n", (int)reply.len, reply.data ? (const char *)reply.data : "");
        if (reply.len != strlen(argv[i]) || memcmp(reply.data, argv[i], reply.len) != 0) mismatches++;
        peernet_buffer_free(&reply); /* the caller owns the reply */
    }

    pending p = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    one_call *calls = calloc((size_t)argc, sizeof *calls);
    if (!calls) return 1;
    for (int i = 4; i < argc; i++) {
        calls[i].p = &p;
        calls[i].expected = argv[i];
        pthread_mutex_lock(&p.mu);
        p.outstanding++;
        pthread_mutex_unlock(&p.mu);
        st = peernet_call_async(node, &server, "echo", (const uint8_t *)argv[i], strlen(argv[i]),
                                5000, on_reply, &calls[i]);
        if (st != PEERNET_OK) return fail("call_async", st); /* then on_reply never runs */
    }
    pthread_mutex_lock(&p.mu);
    while (p.outstanding > 0) pthread_cond_wait(&p.cv, &p.mu); /* each runs exactly once */
    mismatches += p.mismatches;
    pthread_mutex_unlock(&p.mu);
    free(calls);

    peernet_node_free(node);
    if (mismatches) fprintf(stderr, "echo_client: %d replies did not match\n", mismatches);
    return mismatches ? 1 : 0;
}
