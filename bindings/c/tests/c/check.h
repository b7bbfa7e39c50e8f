/* A tiny check macro for the C test programs: report and count failures, go on. */
#ifndef SHMBUS_TEST_CHECK_H
#define SHMBUS_TEST_CHECK_H

#include <stdio.h>

#include "shmbus.h"

static int failures = 0;

/* Expect `call` to return `want` (a shmbus_status). */
#define EXPECT(call, want)                                                              \
    do {                                                                                \
        shmbus_status got_ = (call);                                                    \
        if (got_ != (want)) {                                                           \
            fprintf(stderr, "%s:%d: %s returned %d (%s: %s), expected %d (%s)\n",        \
                    __FILE__, __LINE__, #call, (int)got_, shmbus_strerror((int)got_),   \
                    shmbus_last_error(), (int)(want), shmbus_strerror((int)(want)));    \
            failures++;                                                                 \
        } else {                                                                        \
            printf("ok %s -> %s\n", #call, shmbus_strerror((int)got_));                 \
        }                                                                               \
    } while (0)

#define EXPECT_TRUE(cond)                                                               \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #cond);         \
            failures++;                                                                 \
        }                                                                               \
    } while (0)

#endif
