/*
 * fork() without exec, the scenario of the issue: the parent opens a subscriber, then
 * forks; the child opens its own publisher, claims, sleeps well past the topic's
 * unblock timeout (1 s by default) and commits. The child is alive, so its claim must
 * not become a gap: the commit returns SHMBUS_OK and the parent receives the event.
 * (Were the claim ever turned into a gap, the commit would have to return
 * SHMBUS_ERR_CLAIM_LOST, never SHMBUS_OK with the event lost.)
 *
 *     fork BUS_DIR
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

#define MS 1000000LL

static const char MESSAGE[8] = "forked!!";

/* The child: its own handles, never the parent's. Returns its exit code. */
static int child(const char *dir) {
    shmbus_bus *bus = NULL;
    shmbus_topic *topic = NULL;
    shmbus_publisher *pub = NULL;
    void *slot = NULL;
    uint64_t pos = UINT64_MAX;
    EXPECT(shmbus_bus_open_dir(dir, 0, &bus), SHMBUS_OK);
    EXPECT(shmbus_topic_open(bus, "fork", &topic), SHMBUS_OK);
    EXPECT(shmbus_publisher_open(topic, &pub), SHMBUS_OK);
    EXPECT(shmbus_publisher_claim(pub, sizeof MESSAGE, 0, &slot), SHMBUS_OK);
    if (failures) return 1;
    memcpy(slot, MESSAGE, sizeof MESSAGE);
    struct timespec stall = {2, 500 * MS}; /* 2.5 s: past the 1 s unblock timeout */
    nanosleep(&stall, NULL);
    shmbus_status st = shmbus_publisher_commit(pub, &pos);
    printf("child commit -> %s at %llu\n", shmbus_strerror((int)st), (unsigned long long)pos);
    fflush(stdout);
    shmbus_publisher_close(&pub);
    shmbus_topic_close(&topic);
    shmbus_bus_close(&bus);
    return st == SHMBUS_OK ? 0 : st == SHMBUS_ERR_CLAIM_LOST ? 3 : 4;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s BUS_DIR\n", argv[0]);
        return 2;
    }
    shmbus_bus *bus = NULL;
    shmbus_topic *topic = NULL;
    shmbus_subscriber *sub = NULL;
    EXPECT(shmbus_bus_open_dir(argv[1], 0, &bus), SHMBUS_OK);
    EXPECT(shmbus_topic_create(bus, "fork", 65536, 0, &topic), SHMBUS_OK);
    EXPECT(shmbus_subscriber_open(topic, NULL, &sub), SHMBUS_OK);
    if (failures) return 1;
    fflush(stdout);

    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) _exit(child(argv[1]));

    shmbus_event ev;
    memset(&ev, 0, sizeof ev);
    EXPECT(shmbus_subscriber_recv(sub, 20000 * MS, &ev), SHMBUS_OK);
    EXPECT_TRUE(ev.len == sizeof MESSAGE && ev.payload != NULL &&
                memcmp(ev.payload, MESSAGE, sizeof MESSAGE) == 0);
    int status = 0;
    EXPECT_TRUE(waitpid(pid, &status, 0) == pid);
    EXPECT_TRUE(WIFEXITED(status));
    printf("child exit %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    shmbus_subscriber_close(&sub);
    shmbus_topic_close(&topic);
    shmbus_bus_close(&bus);
    if (failures) {
        fprintf(stderr, "fork: %d expectation(s) failed\n", failures);
        return 1;
    }
    printf("fork: all expectations held\n");
    return 0;
}
