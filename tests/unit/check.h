/* A minimal test harness: CHECK records a failure with file:line and goes on; each test file's
 * main runs its cases with RUN and ends with check_summary(), which prints "N passed, N failed"
 * (one case passes when none of its CHECKs failed) and returns the exit status. */
#ifndef CHECK_H
#define CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_case_failed;
static int check_passed, check_failed;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            printf("    %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);                    \
            check_case_failed = 1;                                                                 \
        }                                                                                          \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *check_a = (a), *check_b = (b);                                                 \
        if (check_a == NULL || check_b == NULL || strcmp(check_a, check_b) != 0) {                 \
            printf("    %s:%d: \"%s\" != \"%s\"\n", __FILE__, __LINE__,                            \
                   check_a ? check_a : "(null)", check_b ? check_b : "(null)");                    \
            check_case_failed = 1;                                                                 \
        }                                                                                          \
    } while (0)

#define RUN(fn)                                                                                    \
    do {                                                                                           \
        check_case_failed = 0;                                                                     \
        fn();                                                                                      \
        if (check_case_failed) {                                                                   \
            check_failed++;                                                                        \
            printf("FAIL %s\n", #fn);                                                              \
        } else {                                                                                   \
            check_passed++;                                                                        \
            printf("ok   %s\n", #fn);                                                              \
        }                                                                                          \
        fflush(stdout);                                                                            \
    } while (0)

static inline int check_summary(void)
{
    printf("%d passed, %d failed\n", check_passed, check_failed);
    return check_failed ? 1 : 0;
}

/* The test's Postgres / Redis (a fresh server per test binary, set by tests/run.py). */
static inline const char *check_env(const char *name)
{
    const char *v = getenv(name);
    if (v == NULL) {
        printf("%s is not set: run through tests/run.py\n", name);
        exit(2);
    }
    return v;
}

#endif
