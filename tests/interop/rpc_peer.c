/* A C PeerNet node driven by a line protocol on stdin, for the cross-language tests
 * (tests/interop/test_rpc_interop.py; the stream tests, tests/interop/ and
 * tests/ctypes/test_stream_interop.py).
 * It prints "KEY <hex> PORT <port>" once, then answers each command with one line:
 *   trust <hex>                 -> ok | err ...
 *   grant <hex> <0|1>           -> ok | err ...
 *   connect <hex> <ip:port>     -> ok | err ...
 *   rpc <hex> <module> <function> <json-args>
 *                               -> ok <json-result> | err <STATUS> <message>
 *   connected <hex>             -> yes | no
 * Streams (one current stream at a time; see stream_peer.h):
 *   sopen <hex> <name>          -> ok | err ...      opens the current stream
 *   swrite <text>               -> ok | err ...      writes the text (no newline)
 *   swritegen <len>             -> ok | err ...      writes <len> bytes of pattern()
 *   sfinish                     -> ok | err ...
 *   sreadall                    -> ok <len> <fnv1a64 hex> <first 32 bytes as text>
 *                                  | err <STATUS> <message>   reads to the end
 *   sresetinfo                  -> ok <code> <reason> | err ...
 *   sreset <code> <reason>      -> ok | err ...
 *   sfree                       -> ok                frees the current stream
 *   quit                        -> (exits 0)
 * Its RPC dispatcher serves module "calc": add (sums a JSON array of integers) and
 * fail (answers an error). Its stream handlers: "cecho" reads to the end, writes it all
 * back and finishes; "creset" resets each stream with code 4242, reason "from C".
 * Everything runs on 127.0.0.1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peernet.h"
#include "stream_peer.h"

static void reply_err(peernet_status st) {
    printf("err %s %s\n", peernet_status_str(st), peernet_last_error());
}

/* Sums the integers of a JSON array such as "[3, 4]"; -1 on anything else. */
static int sum_json_ints(const uint8_t *args, size_t len, long *out) {
    char buf[256];
    if (len == 0 || len >= sizeof buf) return -1;
    memcpy(buf, args, len);
    buf[len] = '\0';
    char *p = buf;
    while (*p == ' ') p++;
    if (*p++ != '[') return -1;
    long sum = 0;
    for (;;) {
        while (*p == ' ' || *p == ',') p++;
        if (*p == ']') break;
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p) return -1;
        sum += v;
        p = end;
    }
    *out = sum;
    return 0;
}

static void dispatcher(void *user_data, const peernet_key *from, const char *module,
                       const char *function, const uint8_t *args, size_t args_len,
                       peernet_responder *responder) {
    (void)user_data;
    (void)from;
    long sum;
    if (strcmp(module, "calc") == 0 && strcmp(function, "add") == 0 &&
        sum_json_ints(args, args_len, &sum) == 0) {
        char out[32];
        int n = snprintf(out, sizeof out, "%ld", sum);
        peernet_respond(responder, (const uint8_t *)out, (size_t)n);
    } else if (strcmp(module, "calc") == 0 && strcmp(function, "fail") == 0) {
        peernet_respond_error(responder, "calc.fail: as requested");
    } else {
        peernet_respond_error(responder, "no such function");
    }
}

static int parse_key(const char *hex, peernet_key *key) {
    peernet_status st = peernet_key_from_hex(hex, key);
    if (st != PEERNET_OK) {
        reply_err(st);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s DATA_DIR\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    peernet_config *cfg = peernet_config_new(argv[1]);
    if (!cfg || peernet_config_set_listen(cfg, "127.0.0.1:0") != PEERNET_OK) {
        fprintf(stderr, "config: %s\n", peernet_last_error());
        return 1;
    }
    peernet_config_set_heartbeat(cfg, 500, 5000);
    peernet_node *node = NULL;
    peernet_status st = peernet_node_start(cfg, &node);
    peernet_config_free(cfg);
    if (st != PEERNET_OK) {
        fprintf(stderr, "start: %s\n", peernet_last_error());
        return 1;
    }
    if (peernet_set_rpc_dispatcher(node, dispatcher, NULL, NULL) != PEERNET_OK) {
        fprintf(stderr, "dispatcher: %s\n", peernet_last_error());
        return 1;
    }
    if (stream_peer_expose(node) != PEERNET_OK) {
        fprintf(stderr, "stream handlers: %s\n", peernet_last_error());
        return 1;
    }
    peernet_key me;
    char hex[65];
    peernet_node_key(node, &me);
    peernet_key_to_hex(&me, hex);
    printf("KEY %s PORT %u\n", hex, (unsigned)peernet_node_port(node));

    char line[1024];
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\n")] = '\0';
        char cmd[16] = {0}, a[80] = {0}, b[128] = {0}, c[128] = {0}, d[512] = {0};
        int n = sscanf(line, "%15s %79s %127s %127s %511[^\n]", cmd, a, b, c, d);
        peernet_key key;
        if (n >= 1 && strcmp(cmd, "quit") == 0) {
            break;
        } else if (n == 2 && strcmp(cmd, "trust") == 0) {
            if (parse_key(a, &key) == 0) {
                st = peernet_trust(node, &key, "interop");
                st == PEERNET_OK ? (void)printf("ok\n") : reply_err(st);
            }
        } else if (n == 3 && strcmp(cmd, "grant") == 0) {
            if (parse_key(a, &key) == 0) {
                st = peernet_grant_rpc(node, &key, strcmp(b, "1") == 0);
                st == PEERNET_OK ? (void)printf("ok\n") : reply_err(st);
            }
        } else if (n == 3 && strcmp(cmd, "connect") == 0) {
            if (parse_key(a, &key) == 0) {
                st = peernet_connect(node, &key, b, 5000);
                st == PEERNET_OK ? (void)printf("ok\n") : reply_err(st);
            }
        } else if (n == 2 && strcmp(cmd, "connected") == 0) {
            if (parse_key(a, &key) == 0) printf("%s\n", peernet_is_connected(node, &key) ? "yes" : "no");
        } else if (n == 5 && strcmp(cmd, "rpc") == 0) {
            if (parse_key(a, &key) == 0) {
                peernet_buffer out = {NULL, 0};
                st = peernet_rpc_call(node, &key, b, c, (const uint8_t *)d, strlen(d), 5000, &out);
                if (st == PEERNET_OK) {
                    printf("ok %.*s\n", (int)out.len, (const char *)out.data);
                } else {
                    reply_err(st);
                }
                peernet_buffer_free(&out);
            }
        } else if (stream_peer_command(node, line) == 0) {
            /* a stream command; it printed its answer */
        } else {
            printf("err PEERNET_ERR_INVALID_ARGUMENT unknown command\n");
        }
    }
    stream_peer_close();
    peernet_node_free(node);
    return 0;
}
