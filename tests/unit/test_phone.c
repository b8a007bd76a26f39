/* phone: local time and calling windows by country code, with DST rules. */
#include "check.h"
#include "error.h"
#include "phone.h"
#include "validate.h"

static int64_t at(const char *iso)
{
    int64_t ms = 0;
    pl_parse_iso8601(iso, &ms);
    return ms;
}

static void offsets_by_country(void)
{
    int off;
    CHECK(pl_phone_utc_offset("+919876543210", at("2026-01-15T12:00:00Z"), &off) == 0);
    CHECK(off == 330);
    CHECK(pl_phone_utc_offset("+6591234567", at("2026-07-01T00:00:00Z"), &off) == 0 && off == 480);
    CHECK(pl_phone_utc_offset("+971501234567", at("2026-07-01T00:00:00Z"), &off) == 0 &&
          off == 240);
    CHECK(pl_phone_utc_offset("+33612345678", at("2026-01-15T00:00:00Z"), &off) == 0 && off == 60);
    CHECK(pl_phone_utc_offset("+49301234567", at("2026-07-15T00:00:00Z"), &off) == 0 && off == 120);
    CHECK(pl_phone_utc_offset("+9999999999", at("2026-07-15T00:00:00Z"), &off) == PL_ERR_NOTFOUND);
}

static void daylight_saving_edges(void)
{
    int off;
    /* EU 2026: summer time from Sun 29 March 01:00 UTC to Sun 25 October 01:00 UTC */
    pl_phone_utc_offset("+447700900123", at("2026-03-29T00:59:00Z"), &off);
    CHECK(off == 0);
    pl_phone_utc_offset("+447700900123", at("2026-03-29T01:00:00Z"), &off);
    CHECK(off == 60);
    pl_phone_utc_offset("+447700900123", at("2026-10-25T00:59:00Z"), &off);
    CHECK(off == 60);
    pl_phone_utc_offset("+447700900123", at("2026-10-25T01:00:00Z"), &off);
    CHECK(off == 0);
    /* US Eastern 2026: 8 March 02:00 EST (07:00 UTC) to 1 November 02:00 EDT (06:00 UTC) */
    pl_phone_utc_offset("+14155550100", at("2026-03-08T06:59:00Z"), &off);
    CHECK(off == -300);
    pl_phone_utc_offset("+14155550100", at("2026-03-08T07:00:00Z"), &off);
    CHECK(off == -240);
    pl_phone_utc_offset("+14155550100", at("2026-11-01T05:59:00Z"), &off);
    CHECK(off == -240);
    pl_phone_utc_offset("+14155550100", at("2026-11-01T06:00:00Z"), &off);
    CHECK(off == -300);
    /* Sydney: summer (AEDT, +11) in January, standard (+10) in July */
    pl_phone_utc_offset("+61291234567", at("2026-01-15T00:00:00Z"), &off);
    CHECK(off == 660);
    pl_phone_utc_offset("+61291234567", at("2026-07-15T00:00:00Z"), &off);
    CHECK(off == 600);
}

static void windows(void)
{
    /* 03:30 UTC = 09:00 in India */
    CHECK(pl_phone_within_hours("+919876543210", at("2026-01-15T03:30:00Z"), 9, 17));
    CHECK(!pl_phone_within_hours("+919876543210", at("2026-01-15T03:29:00Z"), 9, 17));
    CHECK(!pl_phone_within_hours("+919876543210", at("2026-01-15T11:30:00Z"), 9, 17)); /* 17:00 */
    /* wrapping window 20..8 */
    CHECK(pl_phone_within_hours("+447700900123", at("2026-01-15T23:00:00Z"), 20, 8));
    CHECK(!pl_phone_within_hours("+447700900123", at("2026-01-15T12:00:00Z"), 20, 8));
    CHECK(pl_phone_within_hours("+447700900123", at("2026-01-15T12:00:00Z"), 9, 9));
}

static void next_window_opens_at_local_start(void)
{
    /* 18:00 IST (12:30 UTC): the 9..17 window opens next day 09:00 IST = 03:30 UTC */
    int64_t next = pl_phone_next_window("+919876543210", at("2026-01-15T12:30:00Z"), 9, 17);
    CHECK(next == at("2026-01-16T03:30:00Z"));
    int64_t now = at("2026-01-15T05:00:00Z");
    CHECK(pl_phone_next_window("+919876543210", now, 9, 17) == now);
    /* New York in summer: 09:00 EDT = 13:00 UTC */
    CHECK(pl_phone_next_window("+12125550100", at("2026-07-15T02:00:00Z"), 9, 17) ==
          at("2026-07-15T13:00:00Z"));
}

int main(void)
{
    RUN(offsets_by_country);
    RUN(daylight_saving_edges);
    RUN(windows);
    RUN(next_window_opens_at_local_start);
    return check_summary();
}
