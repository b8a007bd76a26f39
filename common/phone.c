#include <string.h>
#include <time.h>

#include "error.h"
#include "phone.h"

typedef enum { DST_NONE, DST_US, DST_EU, DST_AU } dst_rule;

static const struct {
    const char *code; /* without '+' */
    int offset_min;   /* standard time */
    dst_rule dst;
} countries[] = {
    {"971", 240, DST_NONE}, /* longest codes first: prefixes are matched in order */
    {"91", 330, DST_NONE},  {"65", 480, DST_NONE}, {"61", 600, DST_AU}, {"49", 60, DST_EU},
    {"44", 0, DST_EU},      {"33", 60, DST_EU},    {"1", -300, DST_US},
};

/* Unix seconds of 00:00 UTC on the n-th (1..) weekday wd (0 = Sunday) of month mon (1..12);
 * n = -1 means the last one. */
static int64_t nth_weekday(int year, int mon, int wd, int n)
{
    struct tm tm = {0};
    tm.tm_year = year - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = 1;
    time_t first = timegm(&tm);
    struct tm t;
    gmtime_r(&first, &t);
    int day = 1 + (wd - t.tm_wday + 7) % 7;
    if (n > 0) {
        day += 7 * (n - 1);
    } else {
        static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        int len = mdays[mon - 1] + (mon == 2 && year % 4 == 0 && (year % 100 || year % 400 == 0));
        while (day + 7 <= len)
            day += 7;
    }
    return (int64_t)first + (int64_t)(day - 1) * 86400;
}

static int in_dst(dst_rule rule, int64_t t, int std_offset_min)
{
    time_t tt = (time_t)t;
    struct tm u;
    gmtime_r(&tt, &u);
    int y = u.tm_year + 1900;
    int64_t start, end;
    switch (rule) {
    case DST_US: /* 2nd Sunday of March to 1st Sunday of November, 02:00 local */
        start = nth_weekday(y, 3, 0, 2) + 2 * 3600 - std_offset_min * 60;
        end = nth_weekday(y, 11, 0, 1) + 2 * 3600 - (std_offset_min + 60) * 60;
        return t >= start && t < end;
    case DST_EU: /* last Sunday of March to last Sunday of October, 01:00 UTC */
        start = nth_weekday(y, 3, 0, -1) + 3600;
        end = nth_weekday(y, 10, 0, -1) + 3600;
        return t >= start && t < end;
    case DST_AU: /* 1st Sunday of October to 1st Sunday of April, 02:00/03:00 local */
        start = nth_weekday(y, 10, 0, 1) + 2 * 3600 - std_offset_min * 60;
        end = nth_weekday(y, 4, 0, 1) + 3 * 3600 - (std_offset_min + 60) * 60;
        return t >= start || t < end;
    case DST_NONE:
        break;
    }
    return 0;
}

int pl_phone_utc_offset(const char *e164, int64_t unix_ms, int *offset_min)
{
    *offset_min = 0;
    if (e164 == NULL || e164[0] != '+')
        return PL_ERR_INVALID;
    for (size_t i = 0; i < sizeof(countries) / sizeof(countries[0]); i++) {
        size_t n = strlen(countries[i].code);
        if (strncmp(e164 + 1, countries[i].code, n) != 0)
            continue;
        int64_t t = unix_ms / 1000;
        *offset_min = countries[i].offset_min +
                      (in_dst(countries[i].dst, t, countries[i].offset_min) ? 60 : 0);
        return PL_OK;
    }
    return PL_ERR_NOTFOUND;
}

static int local_hour(const char *e164, int64_t unix_ms, int *minute_of_hour)
{
    int off;
    pl_phone_utc_offset(e164, unix_ms, &off);
    int64_t local = unix_ms / 1000 + (int64_t)off * 60;
    int64_t sod = ((local % 86400) + 86400) % 86400;
    *minute_of_hour = (int)(sod % 3600 / 60);
    return (int)(sod / 3600);
}

int pl_phone_within_hours(const char *e164, int64_t unix_ms, int start_hour, int end_hour)
{
    if (start_hour == end_hour)
        return 1;
    int m;
    int h = local_hour(e164, unix_ms, &m);
    if (start_hour < end_hour)
        return h >= start_hour && h < end_hour;
    return h >= start_hour || h < end_hour; /* wraps past midnight */
}

int64_t pl_phone_next_window(const char *e164, int64_t unix_ms, int start_hour, int end_hour)
{
    if (pl_phone_within_hours(e164, unix_ms, start_hour, end_hour))
        return unix_ms;
    /* Step to the top of each following hour (at most a day, plus a DST shift). */
    int64_t t = unix_ms - unix_ms % 3600000 + 3600000;
    for (int i = 0; i < 26; i++, t += 3600000) {
        int off;
        pl_phone_utc_offset(e164, t, &off);
        /* offsets with half hours (+05:30) put the local top of the hour at :30 UTC */
        int64_t shift = (int64_t)(((off % 60) + 60) % 60) * 60000;
        int64_t cand = t - shift;
        if (cand < unix_ms)
            cand += 3600000;
        if (pl_phone_within_hours(e164, cand, start_hour, end_hour))
            return cand;
    }
    return unix_ms + 3600000;
}
