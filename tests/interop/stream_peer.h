/* The stream half of rpc_peer.c (issue 16): its stream handlers and the stream commands
 * of its line protocol (listed in rpc_peer.c). One current stream, used from the
 * command loop's thread; the handlers run on library threads and own their streams. */
#ifndef PEERNET_STREAM_PEER_H
#define PEERNET_STREAM_PEER_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peernet.h"

/* Deadline of every stream operation: only reached when something is broken. */
#define SP_T 10000

static peernet_stream *g_stream;

/* The test pattern (the Python side computes the same bytes). */
static uint8_t pattern(size_t i) { return (uint8_t)(i * 7 + i / 251); }

static uint64_t fnv1a(uint64_t h, const uint8_t *d, size_t n) {
    for (size_t i = 0; i < n; i++) {
        h ^= d[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static peernet_status sp_write_all(peernet_stream *s, const uint8_t *d, size_t len) {
    size_t off = 0;
    while (off < len) {
        size_t w = 0;
        peernet_status st = peernet_stream_write(s, d + off, len - off, SP_T, &w);
        if (st != PEERNET_OK) return st;
        off += w;
    }
    return PEERNET_OK;
}

/* "cecho": reads to the end, writing everything back as it comes; then finishes. */
static void cecho(void *ud, const peernet_key *from, peernet_stream *s) {
    (void)ud;
    (void)from;
    uint8_t buf[16384];
    for (;;) {
        size_t got = 0;
        if (peernet_stream_read(s, buf, sizeof buf, SP_T, &got) != PEERNET_OK) break;
        if (got == 0) {
            peernet_stream_finish(s);
            break;
        }
        if (sp_write_all(s, buf, got) != PEERNET_OK) break;
    }
    peernet_stream_free(s);
}

/* "creset": refuses each stream with an application reset. */
static void creset(void *ud, const peernet_key *from, peernet_stream *s) {
    (void)ud;
    (void)from;
    peernet_stream_reset(s, 4242, "from C");
    peernet_stream_free(s);
}

static peernet_status stream_peer_expose(peernet_node *node) {
    peernet_status st = peernet_expose_stream(node, "cecho", cecho, NULL, NULL, NULL);
    if (st != PEERNET_OK) return st;
    return peernet_expose_stream(node, "creset", creset, NULL, NULL, NULL);
}

static void sp_status(peernet_status st) {
    if (st == PEERNET_OK) printf("ok\n");
    else printf("err %s %s\n", peernet_status_str(st), peernet_last_error());
}

static void sp_read_all(void) {
    uint8_t buf[16384], first[33];
    size_t total = 0, nfirst = 0;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (;;) {
        size_t got = 0;
        peernet_status st = peernet_stream_read(g_stream, buf, sizeof buf, SP_T, &got);
        if (st != PEERNET_OK) {
            sp_status(st);
            return;
        }
        if (got == 0) break;
        for (size_t i = 0; i < got && nfirst < 32; i++) {
            char c = (char)buf[i];
            first[nfirst++] = (c > ' ' && c < 127) ? c : '.';
        }
        h = fnv1a(h, buf, got);
        total += got;
    }
    first[nfirst] = 0;
    printf("ok %zu %016llx %s\n", total, (unsigned long long)h, first);
}

/* Runs one stream command of `line`; -1 if it is none. */
static int stream_peer_command(peernet_node *node, const char *line) {
    char cmd[16] = {0}, a[80] = {0}, b[300] = {0};
    int n = sscanf(line, "%15s %79s %299[^\n]", cmd, a, b);
    if (n < 1 || cmd[0] != 's') return -1;
    if (strcmp(cmd, "sopen") == 0 && n == 3) {
        peernet_key key;
        peernet_status st = peernet_key_from_hex(a, &key);
        if (st == PEERNET_OK) {
            peernet_stream_free(g_stream);
            g_stream = NULL;
            st = peernet_stream_open(node, &key, b, &g_stream);
        }
        sp_status(st);
    } else if (strcmp(cmd, "swrite") == 0 && n >= 2) {
        const char *text = line + strlen("swrite ");
        sp_status(sp_write_all(g_stream, (const uint8_t *)text, strlen(text)));
    } else if (strcmp(cmd, "swritegen") == 0 && n == 2) {
        size_t len = strtoul(a, NULL, 10);
        uint8_t *d = malloc(len ? len : 1);
        if (!d) {
            printf("err PEERNET_ERR_INTERNAL out of memory\n");
            return 0;
        }
        for (size_t i = 0; i < len; i++) d[i] = pattern(i);
        sp_status(sp_write_all(g_stream, d, len));
        free(d);
    } else if (strcmp(cmd, "sfinish") == 0) {
        sp_status(peernet_stream_finish(g_stream));
    } else if (strcmp(cmd, "sreadall") == 0) {
        sp_read_all();
    } else if (strcmp(cmd, "sresetinfo") == 0) {
        uint32_t code = 0;
        char reason[PEERNET_STREAM_REASON_SIZE];
        peernet_status st = peernet_stream_reset_info(g_stream, &code, reason, sizeof reason);
        if (st == PEERNET_OK) printf("ok %u %s\n", (unsigned)code, reason);
        else sp_status(st);
    } else if (strcmp(cmd, "sreset") == 0 && n >= 2) {
        sp_status(peernet_stream_reset(g_stream, (uint32_t)strtoul(a, NULL, 10), n == 3 ? b : ""));
    } else if (strcmp(cmd, "sfree") == 0) {
        peernet_stream_free(g_stream);
        g_stream = NULL;
        printf("ok\n");
    } else {
        return -1;
    }
    return 0;
}

static void stream_peer_close(void) {
    peernet_stream_free(g_stream);
    g_stream = NULL;
}

#endif
