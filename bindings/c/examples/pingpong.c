/*
 * pingpong: round-trip latency between two processes through the C API.
 *
 *     pingpong BUS_DIR [ROUNDS] [spin|block]
 *
 * Forks a "pong" process that echoes every event from topic "ping" to topic "pong";
 * the parent sends a 32-byte event, waits for its echo, and prints the round-trip
 * percentiles: "c pingpong: rounds N p50 X ns p99 Y ns max Z ns".
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shmbus.h"

#define TIMEOUT_NS 10000000000LL /* 10 s */

static int fail(const char *who, const char *what, shmbus_status s) {
    fprintf(stderr, "pingpong %s: %s: %s (%s)\n", who, what, shmbus_strerror(s),
            shmbus_last_error());
    return 1;
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Open the bus, topic `in` for reading (from the earliest event) and `out` for writing. */
static int open_pair(const char *dir, const char *in, const char *out, uint32_t wait,
                     shmbus_bus **bus, shmbus_topic **tin, shmbus_topic **tout,
                     shmbus_subscriber **sub, shmbus_publisher **pub, const char *who) {
    shmbus_status s;
    if ((s = shmbus_bus_open_dir(dir, 0, bus))) return fail(who, "open bus", s);
    if ((s = shmbus_topic_create(*bus, in, 1 << 16, 0, tin))) return fail(who, "open topic", s);
    if ((s = shmbus_topic_create(*bus, out, 1 << 16, 0, tout))) return fail(who, "open topic", s);
    shmbus_subscriber_options o = {0};
    o.start = SHMBUS_START_EARLIEST;
    o.wait = wait;
    if ((s = shmbus_subscriber_open(*tin, &o, sub))) return fail(who, "open subscriber", s);
    if ((s = shmbus_publisher_open(*tout, pub))) return fail(who, "open publisher", s);
    return 0;
}

static void close_pair(shmbus_bus **bus, shmbus_topic **tin, shmbus_topic **tout,
                       shmbus_subscriber **sub, shmbus_publisher **pub) {
    shmbus_subscriber_close(sub);
    shmbus_publisher_close(pub);
    shmbus_topic_close(tin);
    shmbus_topic_close(tout);
    shmbus_bus_close(bus);
}

/* Echo `rounds` events from "ping" to "pong". */
static int pong(const char *dir, uint64_t rounds, uint32_t wait) {
    shmbus_bus *bus = NULL;
    shmbus_topic *tin = NULL, *tout = NULL;
    shmbus_subscriber *sub = NULL;
    shmbus_publisher *pub = NULL;
    int rc = open_pair(dir, "ping", "pong", wait, &bus, &tin, &tout, &sub, &pub, "pong");
    for (uint64_t i = 0; rc == 0 && i < rounds; i++) {
        shmbus_event ev;
        shmbus_status s = shmbus_subscriber_recv(sub, TIMEOUT_NS, &ev);
        if (s) {
            rc = fail("pong", "recv", s);
            break;
        }
        /* Echo straight from the ring into the other ring. */
        void *slot;
        if ((s = shmbus_publisher_claim(pub, ev.len, ev.type_id, &slot))) {
            rc = fail("pong", "claim", s);
            break;
        }
        memcpy(slot, ev.payload, ev.len);
        shmbus_publisher_commit(pub, NULL);
        shmbus_subscriber_release(sub);
    }
    close_pair(&bus, &tin, &tout, &sub, &pub);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s BUS_DIR [ROUNDS] [spin|block]\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    uint64_t rounds = argc > 2 ? strtoull(argv[2], NULL, 10) : 100000;
    uint32_t wait = argc > 3 && strcmp(argv[3], "block") == 0 ? SHMBUS_WAIT_BLOCK : SHMBUS_WAIT_SPIN;
    if (rounds == 0) return 2;

    shmbus_bus *bus = NULL;
    shmbus_topic *tin = NULL, *tout = NULL;
    shmbus_subscriber *sub = NULL;
    shmbus_publisher *pub = NULL;
    /* Both topics and the parent's subscriber exist before the child starts. */
    if (open_pair(dir, "pong", "ping", wait, &bus, &tin, &tout, &sub, &pub, "ping")) return 1;
    fflush(stdout);
    pid_t child = fork();
    if (child < 0) return 1;
    if (child == 0) _exit(pong(dir, rounds, wait));

    uint64_t *rtt = malloc(rounds * sizeof *rtt);
    uint8_t msg[32] = {0};
    int rc = 0;
    for (uint64_t i = 0; rtt && i < rounds; i++) {
        memcpy(msg, &i, sizeof i);
        uint64_t t0 = now_ns();
        shmbus_status s = shmbus_publisher_send(pub, 0, msg, sizeof msg, NULL);
        shmbus_event ev;
        if (s == SHMBUS_OK) s = shmbus_subscriber_recv(sub, TIMEOUT_NS, &ev);
        if (s) {
            rc = fail("ping", "round trip", s);
            break;
        }
        rtt[i] = now_ns() - t0;
        if (ev.len != sizeof msg || memcmp(ev.payload, msg, sizeof msg) != 0) {
            fprintf(stderr, "pingpong: round %" PRIu64 " echoed the wrong bytes\n", i);
            rc = 1;
            break;
        }
        shmbus_subscriber_release(sub);
    }
    int status = 0;
    waitpid(child, &status, 0);
    if (rc == 0 && rtt && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        qsort(rtt, rounds, sizeof *rtt, cmp_u64);
        printf("c pingpong: rounds %" PRIu64 " p50 %" PRIu64 " ns p99 %" PRIu64
               " ns max %" PRIu64 " ns\n",
               rounds, rtt[rounds / 2], rtt[rounds * 99 / 100], rtt[rounds - 1]);
    } else {
        rc = 1;
    }
    free(rtt);
    close_pair(&bus, &tin, &tout, &sub, &pub);
    return rc;
}
