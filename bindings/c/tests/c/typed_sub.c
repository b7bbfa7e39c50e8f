/*
 * Reads typed events published by Rust: raw bytes (checksummed) and JSON rendered with
 * the topic's stored schema.
 *
 *     typed_sub BUS_DIR TOPIC COUNT
 *
 * Prints "type NAME", "schema JSON", "ready", then one "json JSON" line per event and
 * finally "checksum HEX" (FNV-1a 64 over all payload bytes).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "payload.h"

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s BUS_DIR TOPIC COUNT\n", argv[0]);
        return 2;
    }
    uint64_t count = strtoull(argv[3], NULL, 10);
    shmbus_bus *bus = NULL;
    shmbus_topic *topic = NULL;
    shmbus_subscriber *sub = NULL;

    EXPECT(shmbus_bus_open_dir(argv[1], 0, &bus), SHMBUS_OK);
    EXPECT(shmbus_topic_open(bus, argv[2], &topic), SHMBUS_OK);
    if (failures) return 1;

    shmbus_topic_info info;
    EXPECT(shmbus_topic_get_info(topic, &info), SHMBUS_OK);
    EXPECT_TRUE(info.has_schema == 1 && info.type_id != 0);
    char name[128], schema[4096];
    size_t needed = 0;
    EXPECT(shmbus_topic_type_name(topic, name, 2, &needed), SHMBUS_ERR_BUFFER_TOO_SMALL);
    EXPECT_TRUE(needed > 2);
    EXPECT(shmbus_topic_type_name(topic, name, sizeof name, NULL), SHMBUS_OK);
    EXPECT(shmbus_topic_schema_json(topic, schema, sizeof schema, NULL), SHMBUS_OK);
    EXPECT(shmbus_topic_schema_bytes(topic, NULL, 0, &needed), SHMBUS_ERR_BUFFER_TOO_SMALL);
    EXPECT_TRUE(needed > 8);
    printf("type %s\nschema %s\n", name, schema);

    shmbus_subscriber_options opts = {0};
    opts.start = SHMBUS_START_EARLIEST;
    EXPECT(shmbus_subscriber_open(topic, &opts, &sub), SHMBUS_OK);
    if (failures) return 1;
    printf("ready\n");
    fflush(stdout);

    uint64_t sum = FNV_OFFSET;
    for (uint64_t i = 0; i < count; i++) {
        shmbus_event ev;
        shmbus_status s = shmbus_subscriber_recv(sub, 10000000000LL, &ev);
        EXPECT(s, SHMBUS_OK);
        if (s != SHMBUS_OK) break;
        EXPECT_TRUE(ev.type_id == info.type_id);
        sum = fnv1a(sum, ev.payload, ev.len);
        /* Ask for the size, then render through the subscriber and through the topic. */
        EXPECT(shmbus_subscriber_event_to_json(sub, &ev, NULL, 0, &needed),
               SHMBUS_ERR_BUFFER_TOO_SMALL);
        char *a = malloc(needed), *b = malloc(needed);
        if (!a || !b) return 1;
        EXPECT(shmbus_subscriber_event_to_json(sub, &ev, a, needed, NULL), SHMBUS_OK);
        EXPECT(shmbus_event_to_json(topic, &ev, b, needed, NULL), SHMBUS_OK);
        EXPECT_TRUE(strcmp(a, b) == 0 && strlen(a) + 1 == needed);
        printf("json %s\n", a);
        free(a);
        free(b);
        EXPECT(shmbus_subscriber_release(sub), SHMBUS_OK);
    }
    printf("checksum %016" PRIx64 "\n", sum);

    shmbus_subscriber_close(&sub);
    shmbus_topic_close(&topic);
    shmbus_bus_close(&bus);
    return failures ? 1 : 0;
}
