/* echo_server: exposes "echo" (replies with the request body) to the peers it trusts.
 *
 *   echo_server DATA_DIR LISTEN_ADDR [CLIENT_KEY_HEX...]
 *
 * Prints "key <hex>" and "port <n>" on stdout, then serves until SIGINT or SIGTERM. */
#define _POSIX_C_SOURCE 200809L
#include <peernet.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

/* Runs on a library thread, one per request: it may block. For a call, `responder` must
 * be answered exactly once (here at once; it could also be stored and answered later
 * from any thread). For a send, `responder` is NULL. */
static void echo(void *user_data, const peernet_key *from, const uint8_t *body, size_t len,
                 peernet_responder *responder) {
    (void)user_data;
    char fp[PEERNET_FINGERPRINT_SIZE];
    peernet_key_fingerprint(from, fp);
    fprintf(stderr, "echo: %zu bytes from %s\n", len, fp);
    if (responder) peernet_respond(responder, body, len); /* copies body */
}

static void on_event(void *user_data, peernet_event_kind kind, const peernet_key *key,
                     const char *detail) {
    (void)user_data;
    char fp[PEERNET_FINGERPRINT_SIZE] = "-";
    if (key) peernet_key_fingerprint(key, fp);
    fprintf(stderr, "event %d peer %s %s\n", (int)kind, fp, detail);
}

static int fail(const char *what) {
    fprintf(stderr, "echo_server: %s: %s\n", what, peernet_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s DATA_DIR LISTEN_ADDR [CLIENT_KEY_HEX...]\n", argv[0]);
        return 2;
    }
    /* Block the signals before the library starts its threads, then wait for them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    peernet_config *cfg = peernet_config_new(argv[1]);
    if (!cfg) return fail("config");
    if (peernet_config_set_listen(cfg, argv[2]) != PEERNET_OK) return fail("listen address");
    peernet_node *node = NULL;
    peernet_status st = peernet_node_start(cfg, &node);
    peernet_config_free(cfg); /* the node keeps its own copy */
    if (st != PEERNET_OK) return fail("start");

    for (int i = 3; i < argc; i++) {
        peernet_key k;
        if (peernet_key_from_hex(argv[i], &k) != PEERNET_OK) return fail(argv[i]);
        if (peernet_trust(node, &k, "client") != PEERNET_OK) return fail("trust");
    }
    if (peernet_expose(node, "echo", echo, NULL, NULL, NULL) != PEERNET_OK) return fail("expose");
    peernet_set_event_callback(node, on_event, NULL, NULL);

    peernet_key me;
    char hex[PEERNET_KEY_HEX_SIZE];
    peernet_node_key(node, &me);
    peernet_key_to_hex(&me, hex);
    printf("key %s\nport %u\n", hex, (unsigned)peernet_node_port(node));
    fflush(stdout);

    int sig = 0;
    sigwait(&stop, &sig);
    fprintf(stderr, "echo_server: signal %d, stopping\n", sig);
    peernet_node_free(node); /* waits for handlers in flight */
    return 0;
}
