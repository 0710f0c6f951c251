/* A plain test harness: CHECK records failures; main() prints "N passed, N failed". */
#ifndef PEERNET_TEST_HARNESS_H
#define PEERNET_TEST_HARNESS_H

#define _GNU_SOURCE
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "peernet.h"

static int g_test_failed;

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "  FAIL %s:%d: %s (last error: %s)\n", __FILE__, __LINE__, \
                    #cond, peernet_last_error());                                      \
            g_test_failed = 1;                                                         \
        }                                                                              \
    } while (0)

#define CHECK_STATUS(expr, expected)                                                  \
    do {                                                                              \
        peernet_status s_ = (expr);                                                   \
        if (s_ != (expected)) {                                                       \
            fprintf(stderr, "  FAIL %s:%d: %s gave %s, expected %s (last error: %s)\n", \
                    __FILE__, __LINE__, #expr, peernet_status_str(s_),                \
                    peernet_status_str(expected), peernet_last_error());              \
            g_test_failed = 1;                                                        \
        }                                                                             \
    } while (0)

#define CHECK_OK(expr) CHECK_STATUS(expr, PEERNET_OK)

/* Fatal: stop this test (the rest would only cascade). */
#define REQUIRE(cond)                                                                  \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "  FAIL %s:%d: required %s (last error: %s)\n", __FILE__,  \
                    __LINE__, #cond, peernet_last_error());                            \
            g_test_failed = 1;                                                         \
            return;                                                                    \
        }                                                                              \
    } while (0)

static inline long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A counter that threads bump and tests wait on with a deadline. */
typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long count;
} waiter;

static inline void waiter_init(waiter *w) {
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->count = 0;
}

static inline void waiter_destroy(waiter *w) {
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
}

static inline void waiter_add(waiter *w, long n) {
    pthread_mutex_lock(&w->mu);
    w->count += n;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static inline long waiter_get(waiter *w) {
    pthread_mutex_lock(&w->mu);
    long c = w->count;
    pthread_mutex_unlock(&w->mu);
    return c;
}

/* Waits until count >= target or timeout_ms passed; returns the count. */
static inline long waiter_wait(waiter *w, long target, int timeout_ms) {
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec += 1;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&w->mu);
    while (w->count < target) {
        if (pthread_cond_timedwait(&w->cv, &w->mu, &deadline) == ETIMEDOUT) break;
    }
    long c = w->count;
    pthread_mutex_unlock(&w->mu);
    return c;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static inline void rm_tree(const char *dir) { nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

#endif
