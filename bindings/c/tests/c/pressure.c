/*
 * Back-pressure and timeouts from C: a subscriber that never reads fills a small
 * reliable topic; try_send and try_claim must report SHMBUS_ERR_BACK_PRESSURED,
 * send_timeout and recv with a timeout must return SHMBUS_ERR_TIMEOUT.
 *
 *     pressure BUS_DIR
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"

#define MS 1000000LL

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s BUS_DIR\n", argv[0]);
        return 2;
    }
    shmbus_bus *bus = NULL;
    shmbus_topic *topic = NULL;
    shmbus_publisher *pub = NULL;
    shmbus_subscriber *lagging = NULL, *idle = NULL;
    uint8_t data[100];
    memset(data, 0xab, sizeof data);

    EXPECT(shmbus_bus_open_dir(argv[1], 0, &bus), SHMBUS_OK);
    EXPECT(shmbus_topic_create(bus, "pressure", 4096, 0, &topic), SHMBUS_OK);
    EXPECT(shmbus_subscriber_open(topic, NULL, &lagging), SHMBUS_OK);
    EXPECT(shmbus_publisher_open(topic, &pub), SHMBUS_OK);
    if (failures) return 1;

    /* The lagging subscriber never reads: the ring fills up. */
    int sent = 0;
    shmbus_status try_send = SHMBUS_OK;
    while (sent < 1000 &&
           (try_send = shmbus_publisher_try_send(pub, 0, data, sizeof data, NULL)) == SHMBUS_OK)
        sent++;
    printf("full after %d sends\n", sent);
    EXPECT(try_send, SHMBUS_ERR_BACK_PRESSURED);
    EXPECT_TRUE(sent > 0 && sent <= 4096 / 100);
    EXPECT_TRUE(strlen(shmbus_last_error()) > 0);

    void *slot = NULL;
    EXPECT(shmbus_publisher_try_claim(pub, sizeof data, 0, &slot), SHMBUS_ERR_BACK_PRESSURED);
    EXPECT_TRUE(slot == NULL);
    EXPECT(shmbus_publisher_send_timeout(pub, 0, data, sizeof data, 0, NULL), SHMBUS_ERR_TIMEOUT);
    EXPECT(shmbus_publisher_send_timeout(pub, 0, data, sizeof data, 50 * MS, NULL), SHMBUS_ERR_TIMEOUT);

    /* A subscriber at the tail has nothing to receive: poll and timed receive time out. */
    EXPECT(shmbus_subscriber_open(topic, NULL, &idle), SHMBUS_OK);
    shmbus_event ev;
    EXPECT(shmbus_subscriber_recv(idle, 0, &ev), SHMBUS_ERR_TIMEOUT);
    EXPECT(shmbus_subscriber_recv(idle, 100 * MS, &ev), SHMBUS_ERR_TIMEOUT);
    EXPECT_TRUE(ev.payload == NULL);

    /* The lagging subscriber reads and releases one event: there is room again. */
    EXPECT(shmbus_subscriber_recv(lagging, 0, &ev), SHMBUS_OK);
    EXPECT_TRUE(ev.len == sizeof data && memcmp(ev.payload, data, sizeof data) == 0);
    EXPECT(shmbus_subscriber_release(lagging), SHMBUS_OK);
    EXPECT(shmbus_publisher_try_send(pub, 0, data, sizeof data, NULL), SHMBUS_OK);
    /* The new event reaches the idle subscriber. */
    EXPECT(shmbus_subscriber_recv(idle, 1000 * MS, &ev), SHMBUS_OK);
    EXPECT(shmbus_subscriber_release(idle), SHMBUS_OK);

    shmbus_subscriber_close(&idle);
    shmbus_subscriber_close(&lagging);
    shmbus_publisher_close(&pub);
    shmbus_topic_close(&topic);

    /* Lossy: producers never wait; a lapped subscriber is told, then resumes. */
    EXPECT(shmbus_topic_create(bus, "lossy", 4096, SHMBUS_TOPIC_LOSSY, &topic), SHMBUS_OK);
    shmbus_topic_info info;
    EXPECT(shmbus_topic_get_info(topic, &info), SHMBUS_OK);
    EXPECT_TRUE(info.mode == SHMBUS_MODE_LOSSY);
    EXPECT(shmbus_subscriber_open(topic, NULL, &lagging), SHMBUS_OK);
    EXPECT(shmbus_publisher_open(topic, &pub), SHMBUS_OK);
    int lossy_failures = 0;
    for (int i = 0; i < 200; i++)
        if (shmbus_publisher_try_send(pub, 0, data, sizeof data, NULL) != SHMBUS_OK) lossy_failures++;
    EXPECT_TRUE(lossy_failures == 0);
    EXPECT(shmbus_subscriber_recv(lagging, 0, &ev), SHMBUS_ERR_LAGGED);
    EXPECT(shmbus_subscriber_recv(lagging, 0, &ev), SHMBUS_OK);
    EXPECT_TRUE(ev.len == sizeof data && memcmp(ev.payload, data, sizeof data) == 0);
    shmbus_subscriber_close(&lagging);
    shmbus_publisher_close(&pub);
    shmbus_topic_close(&topic);
    shmbus_bus_close(&bus);
    if (failures) {
        fprintf(stderr, "pressure: %d expectation(s) failed\n", failures);
        return 1;
    }
    printf("pressure: all expectations held\n");
    return 0;
}
