/*
 * The C side of `cargo bench --bench pingpong`: the same round trip as the Rust
 * measurement (b), between two C processes through libshmbus.
 *
 *     pingpong BUS_DIR CPU_A CPU_B WARMUP ROUNDS REPS OUT_FILE TIMEOUT_NS
 *     pingpong loop BUS_DIR N TIMEOUT_NS
 *
 * Round trips: the process pins itself to CPU_A and forks a "pong" process pinned to
 * CPU_B that echoes every event of topic "cping" to topic "cpong" (receive, claim,
 * copy in place, commit, release). After a ready message and WARMUP round trips, the
 * ping side times REPS x ROUNDS round trips with one CLOCK_MONOTONIC read per round
 * trip (as the Rust harness does) and writes the ROUNDS x REPS durations in ns, u64
 * little-endian, to OUT_FILE; the harness builds the histograms. Events are 32 bytes
 * (seq, a, b, c = ~seq, like the Rust `Ev`), subscribers spin (SHMBUS_WAIT_SPIN), and
 * receives pass TIMEOUT_NS (negative: wait forever).
 *
 * `loop`: one process publishes and receives N events on one topic (send, receive,
 * release), never waiting: the instruction count per event under
 * `valgrind --tool=callgrind` is the cost of the C path without any spinning.
 *
 * Exit status 0 on success; errors go to stderr.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shmbus.h"

#define MSG_LEN 32
#define READY UINT64_MAX

static int fail(const char *who, const char *what, shmbus_status s) {
    fprintf(stderr, "c pingpong %s: %s: %s (%s)\n", who, what, shmbus_strerror(s),
            shmbus_last_error());
    return 1;
}

/* Set once the ping side has stopped expecting the pong process to run. */
static volatile sig_atomic_t pong_may_exit = 0;

/* The pong process exited: unless that was expected, stop instead of spinning for ever
 * on a receive that no one will answer (the pong process printed why). */
static void on_sigchld(int sig) {
    (void)sig;
    if (!pong_may_exit) {
        static const char msg[] = "c pingpong: the pong process exited early\n";
        ssize_t n = write(2, msg, sizeof msg - 1);
        (void)n;
        _exit(1);
    }
}

static void pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0)
        fprintf(stderr, "c pingpong: warning: could not pin to CPU %d\n", cpu);
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void fill(uint8_t *msg, uint64_t seq) {
    uint64_t w[4] = {seq, 0, 0, ~seq};
    memcpy(msg, w, MSG_LEN);
}

static uint64_t seq_of(const uint8_t *payload) {
    uint64_t seq;
    memcpy(&seq, payload, sizeof seq);
    return seq;
}

struct ends {
    shmbus_bus *bus;
    shmbus_topic *tin, *tout;
    shmbus_subscriber *sub;
    shmbus_publisher *pub;
};

/* Open the bus, a spinning subscriber of `in` (from the earliest event) and a publisher
 * of `out`. */
static int open_ends(const char *dir, const char *in, const char *out, struct ends *e,
                     const char *who) {
    shmbus_status s;
    memset(e, 0, sizeof *e);
    if ((s = shmbus_bus_open_dir(dir, 0, &e->bus))) return fail(who, "open bus", s);
    if ((s = shmbus_topic_create(e->bus, in, 1 << 16, 0, &e->tin)))
        return fail(who, "open topic", s);
    if ((s = shmbus_topic_create(e->bus, out, 1 << 16, 0, &e->tout)))
        return fail(who, "open topic", s);
    shmbus_subscriber_options o = {0};
    o.start = SHMBUS_START_EARLIEST;
    o.wait = SHMBUS_WAIT_SPIN;
    if ((s = shmbus_subscriber_open(e->tin, &o, &e->sub))) return fail(who, "open subscriber", s);
    if ((s = shmbus_publisher_open(e->tout, &e->pub))) return fail(who, "open publisher", s);
    return 0;
}

static void close_ends(struct ends *e) {
    shmbus_subscriber_close(&e->sub);
    shmbus_publisher_close(&e->pub);
    shmbus_topic_close(&e->tin);
    shmbus_topic_close(&e->tout);
    shmbus_bus_close(&e->bus);
}

/* Echo `total` events from "cping" to "cpong", after a ready message. */
static int pong(const char *dir, int cpu, uint64_t total, int64_t timeout_ns) {
    /* Never outlive the ping side (which may be killed while this one spins). */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() == 1) return 1;
    pin(cpu);
    struct ends e;
    int rc = open_ends(dir, "cping", "cpong", &e, "pong");
    uint8_t msg[MSG_LEN];
    fill(msg, READY);
    shmbus_status s;
    if (rc == 0 && (s = shmbus_publisher_send(e.pub, 0, msg, sizeof msg, NULL)))
        rc = fail("pong", "send ready", s);
    for (uint64_t i = 0; rc == 0 && i < total; i++) {
        shmbus_event ev;
        if ((s = shmbus_subscriber_recv(e.sub, timeout_ns, &ev))) {
            rc = fail("pong", "recv", s);
            break;
        }
        void *slot;
        if ((s = shmbus_publisher_claim(e.pub, ev.len, ev.type_id, &slot))) {
            rc = fail("pong", "claim", s);
            break;
        }
        memcpy(slot, ev.payload, ev.len);
        if ((s = shmbus_publisher_commit(e.pub, NULL))) rc = fail("pong", "commit", s);
        shmbus_subscriber_release(e.sub);
    }
    close_ends(&e);
    return rc;
}

static int round_trips(int argc, char **argv) {
    if (argc != 9) {
        fprintf(stderr,
                "usage: %s BUS_DIR CPU_A CPU_B WARMUP ROUNDS REPS OUT_FILE TIMEOUT_NS\n",
                argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    int cpu_a = atoi(argv[2]), cpu_b = atoi(argv[3]);
    uint64_t warmup = strtoull(argv[4], NULL, 10);
    uint64_t rounds = strtoull(argv[5], NULL, 10);
    uint64_t reps = strtoull(argv[6], NULL, 10);
    const char *out = argv[7];
    int64_t timeout_ns = strtoll(argv[8], NULL, 10);
    if (rounds == 0 || reps == 0) return 2;
    uint64_t total = warmup + rounds * reps;

    pin(cpu_a);
    struct ends e;
    /* The ping side's subscriber exists before the pong process can answer. */
    if (open_ends(dir, "cpong", "cping", &e, "ping")) return 1;
    fflush(NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigchld;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGCHLD, &sa, NULL);
    pid_t child = fork();
    if (child < 0) return 1;
    /* The child leaves the parent's handles alone: _exit runs no destructors. */
    if (child == 0) _exit(pong(dir, cpu_b, total, timeout_ns));

    uint64_t *rtt = malloc(rounds * reps * sizeof *rtt);
    uint8_t msg[MSG_LEN];
    shmbus_event ev;
    shmbus_status s = rtt ? shmbus_subscriber_recv(e.sub, 60000000000LL, &ev) : SHMBUS_ERR_OTHER;
    int rc = s ? fail("ping", "wait for ready", s) : 0;
    if (rc == 0 && seq_of(ev.payload) != READY) rc = fail("ping", "ready", SHMBUS_ERR_OTHER);
    uint64_t seq = 0, n = 0;
    for (uint64_t rep = 0; rc == 0 && rep <= reps; rep++) {
        /* rep 0 is the warm-up */
        uint64_t count = rep == 0 ? warmup : rounds;
        uint64_t t0 = now_ns();
        for (uint64_t i = 0; i < count; i++) {
            seq++;
            fill(msg, seq);
            s = shmbus_publisher_send(e.pub, 0, msg, sizeof msg, NULL);
            if (s == SHMBUS_OK) s = shmbus_subscriber_recv(e.sub, timeout_ns, &ev);
            if (s) {
                rc = fail("ping", "round trip", s);
                break;
            }
            if (ev.len != MSG_LEN || seq_of(ev.payload) != seq) {
                fprintf(stderr, "c pingpong: round %" PRIu64 " echoed the wrong event\n", seq);
                rc = 1;
                break;
            }
            shmbus_subscriber_release(e.sub);
            if (rep > 0) {
                uint64_t t = now_ns();
                rtt[n++] = t - t0;
                t0 = t;
            }
        }
    }
    int status = 0;
    pong_may_exit = 1;
    if (rc != 0) kill(child, SIGKILL);
    waitpid(child, &status, 0);
    if (rc == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
        fprintf(stderr, "c pingpong: the pong process failed\n");
        rc = 1;
    }
    if (rc == 0) {
        FILE *f = fopen(out, "wb");
        if (!f || fwrite(rtt, sizeof *rtt, n, f) != n || fclose(f) != 0) {
            perror(out);
            rc = 1;
        }
    }
    free(rtt);
    close_ends(&e);
    return rc;
}

/* Publish and receive N events on one topic in one process. */
static int loopback(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: pingpong loop BUS_DIR N TIMEOUT_NS\n");
        return 2;
    }
    uint64_t n = strtoull(argv[2], NULL, 10);
    int64_t timeout_ns = strtoll(argv[3], NULL, 10);
    struct ends e;
    int rc = open_ends(argv[1], "cloop", "cloop", &e, "loop");
    uint8_t msg[MSG_LEN];
    for (uint64_t seq = 0; rc == 0 && seq < n; seq++) {
        fill(msg, seq);
        shmbus_event ev;
        shmbus_status s = shmbus_publisher_send(e.pub, 0, msg, sizeof msg, NULL);
        if (s == SHMBUS_OK) s = shmbus_subscriber_recv(e.sub, timeout_ns, &ev);
        if (s) {
            rc = fail("loop", "send/recv", s);
        } else if (seq_of(ev.payload) != seq) {
            fprintf(stderr, "c pingpong loop: wrong event\n");
            rc = 1;
        }
        shmbus_subscriber_release(e.sub);
    }
    close_ends(&e);
    return rc;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "loop") == 0) return loopback(argc - 1, argv + 1);
    return round_trips(argc, argv);
}
