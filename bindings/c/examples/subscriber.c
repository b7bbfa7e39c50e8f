/*
 * subscriber: receive COUNT events from TOPIC of the bus in BUS_DIR and check them.
 *
 *     subscriber BUS_DIR TOPIC [COUNT]
 *
 * Creates the topic if needed, subscribes from the earliest event, prints "ready",
 * then receives the first half with recv/release and the rest with poll, checking
 * each payload and the order. Exits 1 on a wrong event or after 10 s without one.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "payload.h"
#include "shmbus.h"

#define CAPACITY (64 * 1024)
#define TIMEOUT_NS 10000000000LL /* 10 s */

static int fail(const char *what, shmbus_status s) {
    fprintf(stderr, "subscriber: %s: %s (%s)\n", what, shmbus_strerror(s), shmbus_last_error());
    return 1;
}

struct progress {
    uint64_t next;  /* expected sequence number */
    uint64_t sum;   /* FNV-1a over the payloads */
    int bad;        /* a wrong event was seen */
};

/* Checks one event; returns 0 if it is the expected one. */
static int take(struct progress *p, const shmbus_event *ev) {
    if (!payload_check(p->next, ev->payload, ev->len)) {
        fprintf(stderr, "subscriber: event at position %" PRIu64 " is not event %" PRIu64 "\n",
                ev->position, p->next);
        p->bad = 1;
        return 1;
    }
    p->sum = fnv1a(p->sum, ev->payload, ev->len);
    p->next++;
    return 0;
}

/* The poll callback: non-zero stops the poll. */
static int on_event(void *ctx, const shmbus_event *ev) {
    return take(ctx, ev);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s BUS_DIR TOPIC [COUNT]\n", argv[0]);
        return 2;
    }
    uint64_t count = argc > 3 ? strtoull(argv[3], NULL, 10) : 1000;

    shmbus_bus *bus = NULL;
    shmbus_topic *topic = NULL;
    shmbus_subscriber *sub = NULL;
    int rc = 1;
    shmbus_status s;

    if ((s = shmbus_bus_open_dir(argv[1], 0, &bus)) != SHMBUS_OK) {
        rc = fail("open bus", s);
        goto out;
    }
    if ((s = shmbus_topic_create(bus, argv[2], CAPACITY, 0, &topic)) != SHMBUS_OK) {
        rc = fail("open topic", s);
        goto out;
    }
    shmbus_subscriber_options opts = {0};
    opts.start = SHMBUS_START_EARLIEST;
    if ((s = shmbus_subscriber_open(topic, &opts, &sub)) != SHMBUS_OK) {
        rc = fail("open subscriber", s);
        goto out;
    }
    printf("ready\n");
    fflush(stdout);

    struct progress p = {0, FNV_OFFSET, 0};
    /* First half: one event at a time; the payload is ours until release. */
    while (p.next < count / 2) {
        shmbus_event ev;
        if ((s = shmbus_subscriber_recv(sub, TIMEOUT_NS, &ev)) != SHMBUS_OK) {
            rc = fail("recv", s);
            goto out;
        }
        if (take(&p, &ev)) goto out;
        if ((s = shmbus_subscriber_release(sub)) != SHMBUS_OK) {
            rc = fail("release", s);
            goto out;
        }
    }
    /* Second half: batches through a callback; wait for the next event in between. */
    while (p.next < count) {
        size_t got = 0;
        s = shmbus_subscriber_poll(sub, (size_t)(count - p.next), on_event, &p, &got);
        if (p.bad) goto out;
        if (s != SHMBUS_OK) {
            rc = fail("poll", s);
            goto out;
        }
        if (got == 0) {
            /* Nothing ready: block until an event arrives, take it, release it. */
            shmbus_event ev;
            if ((s = shmbus_subscriber_recv(sub, TIMEOUT_NS, &ev)) != SHMBUS_OK) {
                rc = fail("recv", s);
                goto out;
            }
            if (take(&p, &ev)) goto out;
            shmbus_subscriber_release(sub);
        }
    }
    printf("received %" PRIu64 " events, checksum %016" PRIx64 "\n", p.next, p.sum);
    rc = 0;

out:
    shmbus_subscriber_close(&sub);
    shmbus_topic_close(&topic);
    shmbus_bus_close(&bus);
    return rc;
}
