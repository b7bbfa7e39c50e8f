/*
 * Publishes typed events from JSON text, encoded with the topic's stored schema:
 * events 0..COUNT-1 of the Rust test's `Trade` with shmbus_publisher_send_json, then
 * event COUNT through shmbus_event_from_json + shmbus_publisher_send. Checks the
 * errors for bad JSON, a raw topic and bad arguments.
 *
 *     from_json BUS_DIR TYPED_TOPIC RAW_TOPIC COUNT
 *
 * Prints "sent N" and "from_json: all expectations held".
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

/* The JSON of the Rust test's trade(i). */
static void trade_json(uint64_t i, char *buf, size_t len) {
    snprintf(buf, len,
             "{\"seq\":%" PRIu64 ",\"symbol\":\"SYM%" PRIu64 "\",\"price\":%" PRIu64
             ".5,\"qty\":%" PRIu64 ",\"flags\":[%u,7],\"venue\":%s}",
             i, i, i, i * 10, (unsigned)(uint8_t)i, i % 2 == 0 ? "\"XNAS\"" : "null");
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s BUS_DIR TYPED_TOPIC RAW_TOPIC COUNT\n", argv[0]);
        return 2;
    }
    uint64_t count = strtoull(argv[4], NULL, 10);
    shmbus_bus *bus = NULL;
    shmbus_topic *topic = NULL, *raw = NULL;
    shmbus_publisher *pub = NULL;
    EXPECT(shmbus_bus_open_dir(argv[1], 0, &bus), SHMBUS_OK);
    EXPECT(shmbus_topic_open(bus, argv[2], &topic), SHMBUS_OK);
    EXPECT(shmbus_topic_create(bus, argv[3], 0, 0, &raw), SHMBUS_OK);
    EXPECT(shmbus_publisher_open(topic, &pub), SHMBUS_OK);
    if (failures) return 1;

    char json[512];
    uint64_t sent = 0, pos = UINT64_MAX;
    for (uint64_t i = 0; i < count; i++) {
        trade_json(i, json, sizeof json);
        shmbus_status s = shmbus_publisher_send_json(pub, json, &pos);
        if (s != SHMBUS_OK) {
            EXPECT(s, SHMBUS_OK);
            break;
        }
        sent++;
    }
    EXPECT_TRUE(pos != UINT64_MAX);

    /* Encode into a buffer (asking for the size first), then send the bytes. */
    trade_json(count, json, sizeof json);
    size_t needed = 0;
    EXPECT(shmbus_event_from_json(topic, json, NULL, 0, &needed), SHMBUS_ERR_BUFFER_TOO_SMALL);
    EXPECT_TRUE(needed > 0 && needed <= 256);
    uint8_t payload[256];
    EXPECT(shmbus_event_from_json(topic, json, payload, sizeof payload, &needed), SHMBUS_OK);
    shmbus_topic_info info;
    EXPECT(shmbus_topic_get_info(topic, &info), SHMBUS_OK);
    if (shmbus_publisher_send(pub, info.type_id, payload, needed, NULL) == SHMBUS_OK) sent++;

    /* Bad JSON: a clear code and message, nothing published. */
    EXPECT(shmbus_publisher_send_json(pub, "{\"seq\":1", NULL), SHMBUS_ERR_JSON);
    EXPECT(shmbus_publisher_send_json(
               pub,
               "{\"seq\":1,\"symbol\":\"S\",\"price\":1,\"qty\":\"ten\",\"flags\":[],"
               "\"venue\":null}",
               NULL),
           SHMBUS_ERR_JSON);
    EXPECT_TRUE(strstr(shmbus_last_error(), "expected a number for \"qty\" at column") != NULL);
    EXPECT(shmbus_publisher_send_json(pub, "{\"seq\":-1}", NULL), SHMBUS_ERR_JSON);
    EXPECT(shmbus_publisher_send_json(pub, "\xff", NULL), SHMBUS_ERR_INVALID_ARGUMENT);
    EXPECT(shmbus_publisher_send_json(pub, NULL, NULL), SHMBUS_ERR_NULL);
    EXPECT(shmbus_publisher_send_json(NULL, "{}", NULL), SHMBUS_ERR_NULL);
    EXPECT(shmbus_event_from_json(raw, "{}", payload, sizeof payload, NULL), SHMBUS_ERR_NO_SCHEMA);
    EXPECT(shmbus_event_from_json((shmbus_topic *)pub, "{}", payload, sizeof payload, NULL),
           SHMBUS_ERR_BAD_HANDLE);

    printf("sent %" PRIu64 "\n", sent);
    shmbus_publisher_close(&pub);
    shmbus_topic_close(&topic);
    shmbus_topic_close(&raw);
    shmbus_bus_close(&bus);
    if (failures == 0) printf("from_json: all expectations held\n");
    return failures ? 1 : 0;
}
