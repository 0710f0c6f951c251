/* chat: a small LAN chat. Peers find each other with UDP discovery and connect
 * automatically once they trust each other; lines typed on stdin go to every connected
 * peer ("send", fire-and-forget).
 *
 *   chat DATA_DIR NAME [--port UDP_PORT] [--broadcast ADDRS] [--trust KEY_HEX]...
 *
 * Try it on one machine with two terminals (loopback broadcast only):
 *   chat /tmp/alice alice --broadcast 127.255.255.255 --trust <bob's key>
 *   chat /tmp/bob   bob   --broadcast 127.255.255.255 --trust <alice's key>
 * Each prints its key first. Commands: /key, /peers, /trust HEX, /quit. */
#define _POSIX_C_SOURCE 200809L
#include <peernet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static peernet_node *g_node;

/* Incoming message (a send: responder is NULL). Runs on a library thread. */
static void on_chat(void *user_data, const peernet_key *from, const uint8_t *body, size_t len,
                    peernet_responder *responder) {
    (void)user_data;
    (void)from;
    printf("%.*s\n", (int)len, (const char *)body);
    fflush(stdout);
    if (responder) peernet_respond(responder, NULL, 0);
}

static void on_event(void *user_data, peernet_event_kind kind, const peernet_key *key,
                     const char *detail) {
    (void)user_data;
    char fp[PEERNET_FINGERPRINT_SIZE] = "-";
    if (key) peernet_key_fingerprint(key, fp);
    switch (kind) {
    case PEERNET_EVENT_CONNECTED: printf("* %s joined (%s)\n", fp, detail); break;
    case PEERNET_EVENT_DISCONNECTED: printf("* %s left (%s)\n", fp, detail); break;
    case PEERNET_EVENT_DISCOVERED:
        /* calling into the library from a callback is allowed */
        if (!peernet_is_trusted(g_node, key)) printf("* %s is nearby (not trusted)\n", fp);
        break;
    default: break;
    }
    fflush(stdout);
}

static void list_peers(void) {
    peernet_peer_info *peers = NULL;
    size_t n = 0;
    if (peernet_peers(g_node, &peers, &n) != PEERNET_OK) return;
    for (size_t i = 0; i < n; i++) {
        char fp[PEERNET_FINGERPRINT_SIZE];
        peernet_key_fingerprint(&peers[i].key, fp);
        printf("  %s %-10s %s %s\n", fp,
               peers[i].state == PEERNET_PEER_CONNECTED ? "connected" : "-",
               peers[i].trusted ? "trusted" : "untrusted", peers[i].address);
    }
    peernet_peers_free(peers, n);
}

static void broadcast_line(const char *name, const char *line) {
    char msg[1100];
    int len = snprintf(msg, sizeof msg, "<%s> %s", name, line);
    if (len < 0) return;
    if ((size_t)len >= sizeof msg) len = (int)sizeof msg - 1;
    peernet_peer_info *peers = NULL;
    size_t n = 0;
    if (peernet_peers(g_node, &peers, &n) != PEERNET_OK) return;
    int sent = 0;
    for (size_t i = 0; i < n; i++) {
        if (peers[i].state != PEERNET_PEER_CONNECTED) continue;
        if (peernet_send(g_node, &peers[i].key, "chat", (const uint8_t *)msg, (size_t)len) == PEERNET_OK)
            sent++;
    }
    peernet_peers_free(peers, n);
    if (!sent) printf("* nobody is connected\n");
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s DATA_DIR NAME [--port N] [--broadcast ADDRS] [--trust HEX]...\n",
                argv[0]);
        return 2;
    }
    const char *name = argv[2];
    unsigned port = 0;
    const char *broadcast = NULL;
    peernet_config *cfg = peernet_config_new(argv[1]);
    if (!cfg) {
        fprintf(stderr, "chat: %s\n", peernet_last_error());
        return 1;
    }
    for (int i = 3; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--port") == 0) port = (unsigned)atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--broadcast") == 0) broadcast = argv[i + 1];
    }
    if (peernet_config_set_udp_discovery(cfg, (uint16_t)port, 1000, broadcast) != PEERNET_OK) {
        fprintf(stderr, "chat: discovery: %s\n", peernet_last_error());
        return 1;
    }
    peernet_node *node = NULL;
    peernet_status st = peernet_node_start(cfg, &node);
    peernet_config_free(cfg);
    if (st != PEERNET_OK) {
        fprintf(stderr, "chat: start: %s\n", peernet_last_error());
        return 1;
    }
    g_node = node;
    for (int i = 3; i + 1 < argc; i += 2) {
        peernet_key k;
        if (strcmp(argv[i], "--trust") != 0) continue;
        if (peernet_key_from_hex(argv[i + 1], &k) != PEERNET_OK || peernet_trust(node, &k, NULL) != PEERNET_OK)
            fprintf(stderr, "chat: cannot trust %s: %s\n", argv[i + 1], peernet_last_error());
    }
    peernet_expose(node, "chat", on_chat, NULL, NULL, NULL);
    peernet_set_event_callback(node, on_event, NULL, NULL);

    peernet_key me;
    char hex[PEERNET_KEY_HEX_SIZE];
    peernet_node_key(node, &me);
    peernet_key_to_hex(&me, hex);
    printf("* %s, your key is %s\n", name, hex);
    fflush(stdout);

    char line[1024];
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\n")] = 0;
        if (strcmp(line, "/quit") == 0) break;
        if (strcmp(line, "/key") == 0) printf("* %s\n", hex);
        else if (strcmp(line, "/peers") == 0) list_peers();
        else if (strncmp(line, "/trust ", 7) == 0) {
            peernet_key k;
            if (peernet_key_from_hex(line + 7, &k) != PEERNET_OK || peernet_trust(node, &k, NULL) != PEERNET_OK)
                printf("* %s\n", peernet_last_error());
            else
                printf("* trusted\n");
        } else if (line[0]) broadcast_line(name, line);
        fflush(stdout);
    }
    peernet_node_free(node);
    return 0;
}
