/*
 * The C ABI contender of the peers harness: one side of a two-process ping-pong through
 * libshmbus, speaking the harness's line protocol (same loop as the Rust contenders).
 *
 *     pingpong_peers ping|pong BUS_DIR SIZE WARM ROUNDS REPS CPU
 *
 * Both sides open topics "a" (ping -> pong) and "b" (pong -> ping) with 1 MiB rings and
 * spinning subscribers from the earliest record, print "ready", and wait for "go" on
 * stdin. pong echoes every event straight from its ring into the other ring (claim,
 * memcpy, commit). ping sends SIZE bytes with shmbus_publisher_send, waits for the echo,
 * checks it, and after WARM round trips prints REPS lines
 * "lat p50 p99 p99.9 p99.99 max count" (ns), one clock read per round trip.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shmbus.h"

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, shmbus_status s) {
    fprintf(stderr, "pingpong_peers: %s: %s (%s)\n", what, shmbus_strerror(s), shmbus_last_error());
    exit(1);
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t at(const uint64_t *v, uint64_t n, double q) {
    uint64_t i = (uint64_t)(q * (double)n);
    return v[i >= n ? n - 1 : i];
}

int main(int argc, char **argv) {
    if (argc != 8) {
        fprintf(stderr, "usage: %s ping|pong BUS_DIR SIZE WARM ROUNDS REPS CPU\n", argv[0]);
        return 2;
    }
    int ping = strcmp(argv[1], "ping") == 0;
    const char *dir = argv[2];
    size_t size = strtoull(argv[3], NULL, 10);
    uint64_t warm = strtoull(argv[4], NULL, 10);
    uint64_t rounds = strtoull(argv[5], NULL, 10);
    uint64_t reps = strtoull(argv[6], NULL, 10);
    int cpu = atoi(argv[7]);
    if (size < 8 || rounds == 0) return 2;

    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) perror("sched_setaffinity");

    shmbus_bus *bus = NULL;
    shmbus_topic *ta = NULL, *tb = NULL;
    shmbus_subscriber *sub = NULL;
    shmbus_publisher *pub = NULL;
    shmbus_status s;
    if ((s = shmbus_bus_open_dir(dir, 0, &bus))) die("open bus", s);
    if ((s = shmbus_topic_create(bus, "a", 1 << 20, 0, &ta))) die("open topic a", s);
    if ((s = shmbus_topic_create(bus, "b", 1 << 20, 0, &tb))) die("open topic b", s);
    shmbus_subscriber_options o;
    memset(&o, 0, sizeof o);
    o.start = SHMBUS_START_EARLIEST;
    o.wait = SHMBUS_WAIT_SPIN;
    if ((s = shmbus_subscriber_open(ping ? tb : ta, &o, &sub))) die("open subscriber", s);
    if ((s = shmbus_publisher_open(ping ? ta : tb, &pub))) die("open publisher", s);

    printf("ready\n");
    fflush(stdout);
    char line[64];
    if (!fgets(line, sizeof line, stdin) || strncmp(line, "go", 2) != 0) return 3;

    uint64_t total = warm + rounds * reps;
    if (!ping) {
        for (uint64_t i = 0; i < total; i++) {
            shmbus_event ev;
            if ((s = shmbus_subscriber_recv(sub, -1, &ev))) die("recv", s);
            void *slot;
            if ((s = shmbus_publisher_claim(pub, ev.len, ev.type_id, &slot))) die("claim", s);
            memcpy(slot, ev.payload, ev.len);
            if ((s = shmbus_publisher_commit(pub, NULL))) die("commit", s);
            shmbus_subscriber_release(sub);
        }
    } else {
        uint8_t *msg = malloc(size);
        uint64_t *rtt = malloc(rounds * sizeof *rtt);
        if (!msg || !rtt) return 1;
        memset(msg, 0x5a, size);
        uint64_t seq = 0;
        for (uint64_t rep = 0; rep <= reps; rep++) {
            uint64_t n = rep == 0 ? warm : rounds;
            uint64_t t0 = now_ns();
            for (uint64_t i = 0; i < n; i++) {
                seq++;
                memcpy(msg, &seq, 8);
                if ((s = shmbus_publisher_send(pub, 0, msg, size, NULL))) die("send", s);
                shmbus_event ev;
                if ((s = shmbus_subscriber_recv(sub, -1, &ev))) die("recv", s);
                uint64_t got;
                memcpy(&got, ev.payload, 8);
                if (ev.len != size || got != seq) {
                    fprintf(stderr, "pingpong_peers: echo mismatch at %" PRIu64 "\n", seq);
                    return 1;
                }
                shmbus_subscriber_release(sub);
                uint64_t t = now_ns();
                if (rep > 0) rtt[i] = t - t0;
                t0 = t;
            }
            if (rep == 0) continue;
            qsort(rtt, n, sizeof *rtt, cmp_u64);
            printf("lat %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n",
                   at(rtt, n, 0.5), at(rtt, n, 0.99), at(rtt, n, 0.999), at(rtt, n, 0.9999),
                   rtt[n - 1], n);
            fflush(stdout);
        }
        free(msg);
        free(rtt);
    }
    shmbus_subscriber_close(&sub);
    shmbus_publisher_close(&pub);
    shmbus_topic_close(&ta);
    shmbus_topic_close(&tb);
    shmbus_bus_close(&bus);
    return 0;
}
