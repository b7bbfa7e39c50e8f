/*
 * Invalid use of the C API: every call must return its error code, never crash.
 *
 *     misuse BUS_DIR
 *
 * Exits 0 when every expectation held; prints each failure otherwise.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"

static int count_events(void *ctx, const shmbus_event *ev) {
    (void)ev;
    (*(int *)ctx)++;
    return 0;
}

static shmbus_subscriber *reentrant_sub;
static shmbus_status reentrant_status;

static int call_back_in(void *ctx, const shmbus_event *ev) {
    (void)ctx;
    (void)ev;
    shmbus_event inner;
    reentrant_status = shmbus_subscriber_recv(reentrant_sub, 0, &inner);
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s BUS_DIR\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    shmbus_bus *bus = NULL;
    shmbus_topic *topic = NULL, *typed = NULL;
    shmbus_publisher *pub = NULL;
    shmbus_subscriber *sub = NULL;
    shmbus_event ev;
    void *slot = NULL;
    uint8_t data[64] = {1, 2, 3};
    char buf[256];
    size_t needed = 0;
    uint64_t pos = 0;

    /* Strings, versions. */
    EXPECT_TRUE(strcmp(shmbus_strerror(SHMBUS_OK), "success") == 0);
    EXPECT_TRUE(strcmp(shmbus_strerror(-7), "unknown shmbus status code") == 0);
    EXPECT_TRUE(strcmp(shmbus_strerror(1000), "unknown shmbus status code") == 0);
    EXPECT_TRUE(shmbus_version() != NULL && shmbus_version()[0] != '\0');

    /* NULL everywhere. */
    EXPECT(shmbus_bus_open_dir(NULL, 0, &bus), SHMBUS_ERR_NULL);
    EXPECT_TRUE(strstr(shmbus_last_error(), "dir") != NULL);
    EXPECT(shmbus_bus_open_dir(dir, 0, NULL), SHMBUS_ERR_NULL);
    EXPECT(shmbus_bus_open(NULL, &bus), SHMBUS_ERR_NULL);
    EXPECT(shmbus_topic_open(NULL, "t", &topic), SHMBUS_ERR_NULL);
    EXPECT(shmbus_topic_create(NULL, "t", 0, 0, &topic), SHMBUS_ERR_NULL);
    EXPECT(shmbus_topic_get_info(NULL, NULL), SHMBUS_ERR_NULL);
    EXPECT(shmbus_publisher_open(NULL, &pub), SHMBUS_ERR_NULL);
    EXPECT(shmbus_publisher_send(NULL, 0, data, 8, NULL), SHMBUS_ERR_NULL);
    EXPECT(shmbus_publisher_try_send(NULL, 0, data, 8, NULL), SHMBUS_ERR_NULL);
    EXPECT(shmbus_publisher_send_timeout(NULL, 0, data, 8, 0, NULL), SHMBUS_ERR_NULL);
    EXPECT(shmbus_publisher_claim(NULL, 8, 0, &slot), SHMBUS_ERR_NULL);
    EXPECT(shmbus_publisher_commit(NULL, NULL), SHMBUS_ERR_NULL);
    EXPECT(shmbus_publisher_abort(NULL), SHMBUS_ERR_NULL);
    EXPECT(shmbus_subscriber_open(NULL, NULL, &sub), SHMBUS_ERR_NULL);
    EXPECT(shmbus_subscriber_recv(NULL, 0, &ev), SHMBUS_ERR_NULL);
    EXPECT(shmbus_subscriber_release(NULL), SHMBUS_ERR_NULL);
    EXPECT(shmbus_subscriber_poll(NULL, 1, count_events, NULL, NULL), SHMBUS_ERR_NULL);
    EXPECT(shmbus_subscriber_position(NULL, &pos), SHMBUS_ERR_NULL);
    EXPECT(shmbus_event_to_json(NULL, &ev, buf, sizeof buf, &needed), SHMBUS_ERR_NULL);
    EXPECT(shmbus_bus_close(NULL), SHMBUS_ERR_NULL);
    EXPECT(shmbus_topic_close(NULL), SHMBUS_ERR_NULL);
    EXPECT(shmbus_publisher_close(NULL), SHMBUS_ERR_NULL);
    EXPECT(shmbus_subscriber_close(NULL), SHMBUS_ERR_NULL);
    /* Closing a NULL handle is a no-op. */
    EXPECT(shmbus_bus_close(&bus), SHMBUS_OK);

    /* Bad arguments when opening. */
    EXPECT(shmbus_bus_open_dir("", 0, &bus), SHMBUS_ERR_INVALID_ARGUMENT);
    EXPECT(shmbus_bus_open_dir(dir, 0x80, &bus), SHMBUS_ERR_INVALID_ARGUMENT);
    EXPECT(shmbus_bus_open_dir(dir, 0, &bus), SHMBUS_OK);
    EXPECT(shmbus_topic_create(bus, "bad/name", 0, 0, &topic), SHMBUS_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(topic == NULL);
    EXPECT(shmbus_topic_create(bus, "t", 5000, 0, &topic), SHMBUS_ERR_INVALID_ARGUMENT);
    EXPECT(shmbus_topic_create(bus, "t", 0, 0x100, &topic), SHMBUS_ERR_INVALID_ARGUMENT);
    EXPECT(shmbus_topic_open(bus, "missing", &topic), SHMBUS_ERR_NOT_FOUND);
    EXPECT(shmbus_topic_create(bus, "t", 4096, 0, &topic), SHMBUS_OK);
    EXPECT(shmbus_topic_create(bus, "t", 8192, 0, &typed), SHMBUS_ERR_MISMATCH);
    EXPECT(shmbus_topic_create(bus, "t", 4096, SHMBUS_TOPIC_LOSSY, &typed), SHMBUS_ERR_MISMATCH);

    /* A handle of the wrong type. */
    EXPECT(shmbus_topic_open((const shmbus_bus *)topic, "t", &typed), SHMBUS_ERR_BAD_HANDLE);
    EXPECT(shmbus_publisher_open((const shmbus_topic *)bus, &pub), SHMBUS_ERR_BAD_HANDLE);

    /* Topic info and schema of a raw topic. */
    shmbus_topic_info info;
    EXPECT(shmbus_topic_get_info(topic, &info), SHMBUS_OK);
    EXPECT_TRUE(info.capacity == 4096 && info.max_payload == 1024 && info.has_schema == 0);
    EXPECT(shmbus_topic_type_name(topic, buf, sizeof buf, &needed), SHMBUS_ERR_NO_SCHEMA);
    EXPECT(shmbus_topic_schema_json(topic, buf, sizeof buf, &needed), SHMBUS_ERR_NO_SCHEMA);
    EXPECT(shmbus_topic_schema_bytes(topic, NULL, 0, &needed), SHMBUS_ERR_NO_SCHEMA);

    /* Subscriber options. */
    shmbus_subscriber_options opts = {0};
    opts.start = 9;
    EXPECT(shmbus_subscriber_open(topic, &opts, &sub), SHMBUS_ERR_INVALID_ARGUMENT);
    opts.start = SHMBUS_START_EARLIEST;
    opts.wait = 9;
    EXPECT(shmbus_subscriber_open(topic, &opts, &sub), SHMBUS_ERR_INVALID_ARGUMENT);
    opts.wait = SHMBUS_WAIT_BLOCK;
    opts.reserved = 1;
    EXPECT(shmbus_subscriber_open(topic, &opts, &sub), SHMBUS_ERR_INVALID_ARGUMENT);
    opts.reserved = 0;
    opts.start = SHMBUS_START_POSITION;
    opts.position = 3; /* not a record boundary */
    EXPECT(shmbus_subscriber_open(topic, &opts, &sub), SHMBUS_ERR_POSITION);
    opts.start = SHMBUS_START_EARLIEST;
    opts.name = "";
    EXPECT(shmbus_subscriber_open(topic, &opts, &sub), SHMBUS_ERR_INVALID_ARGUMENT);
    opts.name = "durable";
    EXPECT(shmbus_subscriber_open(topic, &opts, &sub), SHMBUS_OK);
    shmbus_subscriber *twin = NULL;
    EXPECT(shmbus_subscriber_open(topic, &opts, &twin), SHMBUS_ERR_NAME_IN_USE);
    EXPECT_TRUE(twin == NULL);

    /* Exclusive publishers keep others out until closed. */
    shmbus_publisher *only = NULL;
    EXPECT(shmbus_publisher_open_exclusive(NULL, &only), SHMBUS_ERR_NULL);
    EXPECT(shmbus_publisher_open_exclusive(topic, &only), SHMBUS_OK);
    EXPECT(shmbus_publisher_open(topic, &pub), SHMBUS_ERR_NO_SLOT);
    EXPECT_TRUE(pub == NULL);
    EXPECT(shmbus_publisher_close(&only), SHMBUS_OK);
    EXPECT_TRUE(only == NULL);

    /* Publisher lengths. */
    EXPECT(shmbus_publisher_open(topic, &pub), SHMBUS_OK);
    EXPECT(shmbus_publisher_open_exclusive(topic, &only), SHMBUS_ERR_NO_SLOT);
    EXPECT_TRUE(only == NULL);
    EXPECT(shmbus_publisher_send(pub, 0, data, 0, NULL), SHMBUS_ERR_INVALID_ARGUMENT);
    EXPECT(shmbus_publisher_send(pub, 0, NULL, 8, NULL), SHMBUS_ERR_NULL);
    EXPECT(shmbus_publisher_send(pub, 0, data, 1025, NULL), SHMBUS_ERR_TOO_LARGE);
    EXPECT(shmbus_publisher_send(pub, 0, data, SIZE_MAX, NULL), SHMBUS_ERR_TOO_LARGE);
    EXPECT(shmbus_publisher_claim(pub, 0, 0, &slot), SHMBUS_ERR_INVALID_ARGUMENT);
    EXPECT(shmbus_publisher_claim(pub, SIZE_MAX, 0, &slot), SHMBUS_ERR_TOO_LARGE);
    EXPECT_TRUE(slot == NULL);
    EXPECT(shmbus_publisher_claim(pub, 8, 0, NULL), SHMBUS_ERR_NULL);

    /* Claim state machine. */
    EXPECT(shmbus_publisher_commit(pub, &pos), SHMBUS_ERR_NO_CLAIM);
    EXPECT(shmbus_publisher_abort(pub), SHMBUS_ERR_NO_CLAIM);
    EXPECT(shmbus_publisher_claim(pub, 8, 0, &slot), SHMBUS_OK);
    EXPECT_TRUE(slot != NULL);
    EXPECT(shmbus_publisher_claim(pub, 8, 0, &slot), SHMBUS_ERR_CLAIM_PENDING);
    EXPECT(shmbus_publisher_send(pub, 0, data, 8, NULL), SHMBUS_ERR_CLAIM_PENDING);
    EXPECT(shmbus_publisher_abort(pub), SHMBUS_OK);
    EXPECT(shmbus_publisher_abort(pub), SHMBUS_ERR_NO_CLAIM);
    EXPECT(shmbus_publisher_claim(pub, 3, 7, &slot), SHMBUS_OK);
    memcpy(slot, "abc", 3);
    EXPECT(shmbus_publisher_commit(pub, &pos), SHMBUS_OK);
    EXPECT(shmbus_publisher_commit(pub, &pos), SHMBUS_ERR_NO_CLAIM);
    EXPECT(shmbus_publisher_send(pub, 0, "defg", 4, NULL), SHMBUS_OK);

    /* Receive, release, double release. */
    EXPECT(shmbus_subscriber_release(sub), SHMBUS_ERR_NOT_HELD);
    EXPECT(shmbus_subscriber_recv(sub, 0, NULL), SHMBUS_ERR_NULL);
    EXPECT(shmbus_subscriber_recv(sub, 0, &ev), SHMBUS_OK);
    EXPECT_TRUE(ev.len == 3 && memcmp(ev.payload, "abc", 3) == 0 && ev.type_id == 7);
    EXPECT_TRUE(ev.position == pos);
    shmbus_event copy = ev;
    EXPECT(shmbus_event_to_json(topic, &ev, buf, sizeof buf, &needed), SHMBUS_ERR_NO_SCHEMA);
    EXPECT(shmbus_subscriber_release(sub), SHMBUS_OK);
    EXPECT(shmbus_subscriber_release(sub), SHMBUS_ERR_NOT_HELD);
    /* A released event cannot be rendered through its subscriber. */
    EXPECT(shmbus_subscriber_event_to_json(sub, &copy, buf, sizeof buf, &needed),
           SHMBUS_ERR_NOT_HELD);
    /* Poll: argument checks, then one event; nothing is held afterwards. */
    int n = 0;
    size_t delivered = 99;
    EXPECT(shmbus_subscriber_poll(sub, 0, count_events, &n, &delivered), SHMBUS_ERR_INVALID_ARGUMENT);
    EXPECT(shmbus_subscriber_poll(sub, 4, NULL, &n, &delivered), SHMBUS_ERR_NULL);
    EXPECT(shmbus_subscriber_poll(sub, 4, count_events, &n, &delivered), SHMBUS_OK);
    EXPECT_TRUE(n == 1 && delivered == 1);
    EXPECT(shmbus_subscriber_release(sub), SHMBUS_ERR_NOT_HELD);
    EXPECT(shmbus_subscriber_recv(sub, 0, &ev), SHMBUS_ERR_TIMEOUT);
    EXPECT_TRUE(ev.payload == NULL && ev.len == 0);
    EXPECT(shmbus_subscriber_position(sub, &pos), SHMBUS_OK);

    /* A poll callback that calls back into its subscriber gets BUSY. */
    EXPECT(shmbus_publisher_send(pub, 0, data, 8, NULL), SHMBUS_OK);
    reentrant_sub = sub;
    EXPECT(shmbus_subscriber_poll(sub, 4, call_back_in, NULL, &delivered), SHMBUS_OK);
    EXPECT(reentrant_status, SHMBUS_ERR_BUSY);

    /* Buffers: size query, too small. */
    EXPECT(shmbus_publisher_send(pub, 0, data, 8, NULL), SHMBUS_OK);
    EXPECT(shmbus_subscriber_recv(sub, 0, &ev), SHMBUS_OK);
    EXPECT(shmbus_subscriber_event_to_json(sub, &ev, NULL, 0, &needed), SHMBUS_ERR_NO_SCHEMA);
    EXPECT(shmbus_subscriber_event_to_json(sub, NULL, buf, sizeof buf, &needed), SHMBUS_ERR_NULL);

    /* Closed handles: close sets the variable to NULL; using or closing it again. */
    EXPECT(shmbus_subscriber_close(&sub), SHMBUS_OK);
    EXPECT_TRUE(sub == NULL);
    EXPECT(shmbus_subscriber_close(&sub), SHMBUS_OK);
    EXPECT(shmbus_subscriber_recv(sub, 0, &ev), SHMBUS_ERR_NULL);
    EXPECT(shmbus_subscriber_release(sub), SHMBUS_ERR_NULL);
    EXPECT(shmbus_publisher_close(&pub), SHMBUS_OK);
    EXPECT(shmbus_publisher_send(pub, 0, data, 8, NULL), SHMBUS_ERR_NULL);
    EXPECT(shmbus_publisher_close(&pub), SHMBUS_OK);
    /* The durable name is free again once its holder closed. */
    EXPECT(shmbus_subscriber_open(topic, &opts, &sub), SHMBUS_OK);
    EXPECT(shmbus_subscriber_close(&sub), SHMBUS_OK);
    EXPECT(shmbus_topic_close(&topic), SHMBUS_OK);
    EXPECT(shmbus_topic_get_info(topic, &info), SHMBUS_ERR_NULL);
    EXPECT(shmbus_topic_close(&topic), SHMBUS_OK);
    EXPECT(shmbus_bus_close(&bus), SHMBUS_OK);
    EXPECT(shmbus_topic_create(bus, "t", 0, 0, &topic), SHMBUS_ERR_NULL);
    EXPECT(shmbus_bus_close(&bus), SHMBUS_OK);

    if (failures) {
        fprintf(stderr, "misuse: %d expectation(s) failed\n", failures);
        return 1;
    }
    printf("misuse: all expectations held\n");
    return 0;
}
