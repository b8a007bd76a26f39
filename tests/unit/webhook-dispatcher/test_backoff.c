/* The retry schedule: x3 per failure from the base, capped, +-20% jitter; with the defaults the
 * 10th attempt comes about a day after the first. */
#include "check.h"
#include "dispatcher.h"

static void test_exponential_then_capped(void)
{
    const int64_t base = 30000, cap = 8 * 3600 * 1000LL;
    /* unit 0.5 is the middle of the jitter range: factor 1.0 */
    int64_t want[] = {30000, 90000, 270000, 810000, 2430000, 7290000, 21870000, cap, cap, cap};
    for (int i = 0; i < 10; i++)
        CHECK(wd_backoff_ms(i + 1, base, cap, 0.5) == want[i]);
    CHECK(wd_backoff_ms(1000, base, cap, 0.5) == cap); /* no overflow however many */
    CHECK(wd_backoff_ms(0, base, cap, 0.5) == base);   /* clamped to the first wait */
}

static void test_jitter_bounds(void)
{
    CHECK(wd_backoff_ms(1, 1000, 100000, 0.0) == 800);
    CHECK(wd_backoff_ms(1, 1000, 100000, 0.999999) == 1199);
    CHECK(wd_backoff_ms(1, 1000, 100000, 7.0) == 1199); /* out-of-range units are clamped */
    CHECK(wd_backoff_ms(1, 1000, 100000, -1.0) == 800);
    CHECK(wd_backoff_ms(1, 1, 1, 0.0) == 1); /* never 0 */
    for (int i = 0; i < 1000; i++) {
        double u = wd_random_unit();
        CHECK(u >= 0.0 && u < 1.0);
        int64_t d = wd_backoff_ms(3, 1000, 100000, u);
        CHECK(d >= 7200 && d < 10800);
    }
}

static void test_defaults_span_about_a_day(void)
{
    /* 10 attempts = 9 waits; the sum at the jitter extremes brackets "about a day". */
    int64_t lo = 0, mid = 0, hi = 0;
    for (int failed = 1; failed <= 9; failed++) {
        lo += wd_backoff_ms(failed, 30000, 28800000, 0.0);
        mid += wd_backoff_ms(failed, 30000, 28800000, 0.5);
        hi += wd_backoff_ms(failed, 30000, 28800000, 0.999999);
    }
    CHECK(mid == 90390000); /* 25.1 h */
    CHECK(lo > 18 * 3600 * 1000LL && hi < 31 * 3600 * 1000LL);
}

int main(void)
{
    RUN(test_exponential_then_capped);
    RUN(test_jitter_bounds);
    RUN(test_defaults_span_about_a_day);
    return check_summary();
}
