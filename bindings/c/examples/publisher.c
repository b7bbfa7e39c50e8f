/*
 * publisher: publish COUNT events on TOPIC of the bus in BUS_DIR.
 *
 *     publisher BUS_DIR TOPIC [COUNT]
 *
 * Even events are written in place (claim, fill, commit), odd ones copied in with
 * send. Start `subscriber` first: a reliable topic keeps events for the subscribers
 * that exist when they are published.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "payload.h"
#include "shmbus.h"

#define CAPACITY (64 * 1024)

static int fail(const char *what, shmbus_status s) {
    fprintf(stderr, "publisher: %s: %s (%s)\n", what, shmbus_strerror(s), shmbus_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s BUS_DIR TOPIC [COUNT]\n", argv[0]);
        return 2;
    }
    uint64_t count = argc > 3 ? strtoull(argv[3], NULL, 10) : 1000;

    shmbus_bus *bus = NULL;
    shmbus_topic *topic = NULL;
    shmbus_publisher *pub = NULL;
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
    if ((s = shmbus_publisher_open(topic, &pub)) != SHMBUS_OK) {
        rc = fail("open publisher", s);
        goto out;
    }

    uint64_t sum = FNV_OFFSET;
    uint8_t buf[256];
    for (uint64_t seq = 0; seq < count; seq++) {
        size_t len = payload_len(seq);
        if (seq % 2 == 0) {
            /* In place: the payload is written straight into the ring. */
            void *slot = NULL;
            if ((s = shmbus_publisher_claim(pub, len, 0, &slot)) != SHMBUS_OK) {
                rc = fail("claim", s);
                goto out;
            }
            payload_fill(seq, slot, len);
            sum = fnv1a(sum, slot, len);
            if ((s = shmbus_publisher_commit(pub, NULL)) != SHMBUS_OK) {
                rc = fail("commit", s);
                goto out;
            }
        } else {
            payload_fill(seq, buf, len);
            sum = fnv1a(sum, buf, len);
            if ((s = shmbus_publisher_send(pub, 0, buf, len, NULL)) != SHMBUS_OK) {
                rc = fail("send", s);
                goto out;
            }
        }
    }
    printf("published %" PRIu64 " events, checksum %016" PRIx64 "\n", count, sum);
    rc = 0;

out:
    shmbus_publisher_close(&pub);
    shmbus_topic_close(&topic);
    shmbus_bus_close(&bus);
    return rc;
}
