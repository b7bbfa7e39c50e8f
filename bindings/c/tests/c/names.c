/*
 * Name rules from C: a durable subscriber name is 1 to 96 bytes (the room a consumer
 * slot has); bus names follow the topic-name rules, so a hidden name is refused with
 * an error that calls it a bus name.
 *
 *     names BUS_DIR
 */
#include <stdio.h>
#include <string.h>

#include "check.h"

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s BUS_DIR\n", argv[0]);
        return 2;
    }
    shmbus_bus *bus = NULL, *hidden = NULL;
    shmbus_topic *topic = NULL;
    shmbus_subscriber *sub = NULL;
    EXPECT(shmbus_bus_open_dir(argv[1], 0, &bus), SHMBUS_OK);
    EXPECT(shmbus_topic_create(bus, "names", 65536, 0, &topic), SHMBUS_OK);
    if (failures) return 1;

    char name[128];
    shmbus_subscriber_options opts;
    memset(&opts, 0, sizeof opts);
    opts.name = name;

    memset(name, 'n', 96);
    name[96] = '\0';
    EXPECT(shmbus_subscriber_open(topic, &opts, &sub), SHMBUS_OK);
    shmbus_subscriber_close(&sub);

    memset(name, 'n', 97);
    name[97] = '\0';
    EXPECT(shmbus_subscriber_open(topic, &opts, &sub), SHMBUS_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(sub == NULL);

    name[0] = '\0';
    EXPECT(shmbus_subscriber_open(topic, &opts, &sub), SHMBUS_ERR_INVALID_ARGUMENT);

    EXPECT(shmbus_bus_open(".hidden", &hidden), SHMBUS_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(hidden == NULL);
    printf("bus error: %s\n", shmbus_last_error());
    EXPECT_TRUE(strstr(shmbus_last_error(), "bus name") != NULL);
    EXPECT_TRUE(strstr(shmbus_last_error(), "topic name") == NULL);

    shmbus_topic_close(&topic);
    shmbus_bus_close(&bus);
    if (failures) {
        fprintf(stderr, "names: %d expectation(s) failed\n", failures);
        return 1;
    }
    printf("names: all expectations held\n");
    return 0;
}
