#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "prompt.h"

/* ---- variables ---- */

void prompt_vars_init(prompt_vars *vs)
{
    memset(vs, 0, sizeof(*vs));
}

void prompt_vars_free(prompt_vars *vs)
{
    for (size_t i = 0; i < vs->n; i++) {
        free(vs->v[i].name);
        free(vs->v[i].value);
    }
    free(vs->v);
    memset(vs, 0, sizeof(*vs));
}

static const prompt_var *find_var(const prompt_vars *vs, const char *name, size_t len)
{
    for (size_t i = 0; i < vs->n; i++)
        if (strncmp(vs->v[i].name, name, len) == 0 && vs->v[i].name[len] == '\0')
            return &vs->v[i];
    return NULL;
}

const char *prompt_vars_get(const prompt_vars *vs, const char *name)
{
    const prompt_var *v = find_var(vs, name, strlen(name));
    return v != NULL ? v->value : NULL;
}

int prompt_vars_set(prompt_vars *vs, const char *name, const char *value)
{
    char *val = strdup(value != NULL ? value : "");
    if (val == NULL)
        return PL_ERR_NOMEM;
    prompt_var *v = (prompt_var *)find_var(vs, name, strlen(name));
    if (v != NULL) {
        free(v->value);
        v->value = val;
        return PL_OK;
    }
    if (vs->n == vs->cap) {
        size_t cap = vs->cap != 0 ? vs->cap * 2 : 16;
        prompt_var *nv = realloc(vs->v, cap * sizeof(*nv));
        if (nv == NULL) {
            free(val);
            return PL_ERR_NOMEM;
        }
        vs->v = nv;
        vs->cap = cap;
    }
    char *nm = strdup(name);
    if (nm == NULL) {
        free(val);
        return PL_ERR_NOMEM;
    }
    vs->v[vs->n++] = (prompt_var){.name = nm, .value = val};
    return PL_OK;
}

static void number_text(double d, char *out, size_t cap)
{
    if (isfinite(d) && d == floor(d) && fabs(d) < 1e15) {
        snprintf(out, cap, "%.0f", d);
        return;
    }
    snprintf(out, cap, "%.15g", d);
    if (strtod(out, NULL) != d)
        snprintf(out, cap, "%.17g", d);
}

int prompt_vars_add_json(prompt_vars *vs, const cJSON *obj)
{
    if (!cJSON_IsObject(obj))
        return PL_OK;
    const cJSON *m;
    cJSON_ArrayForEach(m, obj)
    {
        if (m->string == NULL)
            continue;
        char num[64];
        char *owned = NULL;
        const char *text;
        if (cJSON_IsString(m))
            text = m->valuestring;
        else if (cJSON_IsNumber(m)) {
            number_text(m->valuedouble, num, sizeof(num));
            text = num;
        } else if (cJSON_IsBool(m))
            text = cJSON_IsTrue(m) ? "true" : "false";
        else if (cJSON_IsNull(m))
            text = "";
        else {
            owned = cJSON_PrintUnformatted(m);
            if (owned == NULL)
                return PL_ERR_NOMEM;
            text = owned;
        }
        int rc = prompt_vars_set(vs, m->string, text);
        free(owned);
        if (rc != PL_OK)
            return rc;
    }
    return PL_OK;
}

/* ---- time zones: the TZif files of the system's tz database (RFC 8536) ----
 *
 * localtime_r would need TZ set in the environment, which is process-wide and unsafe with
 * other threads running; so the zone's file is read and searched here. Times past the last
 * transition in the file follow its footer (a POSIX TZ string, with or without DST rules). */

#define TZ_MAX_FILE (512 * 1024)

static int valid_zone_name(const char *tz)
{
    size_t len = strlen(tz);
    if (len == 0 || len > 64 || tz[0] == '/' || tz[0] == '.' || strstr(tz, "..") != NULL)
        return 0;
    for (const char *c = tz; *c != '\0'; c++)
        if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
              *c == '/' || *c == '_' || *c == '-' || *c == '+'))
            return 0;
    return 1;
}

static int64_t be(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    if (n == 4)
        return (int32_t)(uint32_t)v;
    return (int64_t)v;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* POSIX TZ string pieces. */
static const char *tz_name(const char *s)
{
    if (*s == '<') {
        const char *e = strchr(s, '>');
        return e != NULL ? e + 1 : NULL;
    }
    const char *b = s;
    while ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z'))
        s++;
    return s - b >= 3 ? s : NULL;
}

/* [+-]hh[:mm[:ss]] in seconds; NULL on a malformed value. */
static const char *tz_hms(const char *s, long *secs)
{
    int sign = 1;
    if (*s == '+' || *s == '-')
        sign = *s++ == '-' ? -1 : 1;
    if (*s < '0' || *s > '9')
        return NULL;
    long parts[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++) {
        char *e;
        parts[i] = strtol(s, &e, 10);
        if (e == s)
            return NULL;
        s = e;
        if (*s != ':' || i == 2)
            break;
        s++;
    }
    *secs = sign * (parts[0] * 3600 + parts[1] * 60 + parts[2]);
    return s;
}

typedef struct {
    char kind; /* 'J' Julian 1..365 without Feb 29, 'D' day 0..365, 'M' month.week.day */
    int a, b, c;
    long time; /* seconds after local midnight (default 02:00:00) */
} tz_rule;

static const char *tz_rule_parse(const char *s, tz_rule *r)
{
    char *e;
    memset(r, 0, sizeof(*r));
    if (*s == 'M') {
        r->kind = 'M';
        r->a = (int)strtol(s + 1, &e, 10);
        if (*e != '.')
            return NULL;
        r->b = (int)strtol(e + 1, &e, 10);
        if (*e != '.')
            return NULL;
        r->c = (int)strtol(e + 1, &e, 10);
        if (r->a < 1 || r->a > 12 || r->b < 1 || r->b > 5 || r->c < 0 || r->c > 6)
            return NULL;
    } else {
        r->kind = *s == 'J' ? 'J' : 'D';
        r->a = (int)strtol(*s == 'J' ? s + 1 : s, &e, 10);
    }
    s = e;
    r->time = 7200;
    if (*s == '/' && (s = tz_hms(s + 1, &r->time)) == NULL)
        return NULL;
    return s;
}

/* Seconds since the epoch of the rule's local time in year y, as if local time were UTC. */
static int64_t tz_rule_local(const tz_rule *r, int64_t y)
{
    int64_t day;
    if (r->kind == 'J')
        day = days_from_civil(y, 1, 1) + r->a - 1 + (is_leap(y) && r->a >= 60);
    else if (r->kind == 'D')
        day = days_from_civil(y, 1, 1) + r->a;
    else {
        static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        int64_t first = days_from_civil(y, r->a, 1);
        int wday = (int)(((first % 7) + 7 + 4) % 7); /* 1970-01-01 was a Thursday */
        int64_t d = first + (r->c - wday + 7) % 7 + (int64_t)(r->b - 1) * 7;
        int len = mdays[r->a - 1] + (r->a == 2 && is_leap(y));
        while (d >= first + len)
            d -= 7;
        day = d;
    }
    return day * 86400 + r->time;
}

/* The offset at t from a footer like "EST5EDT,M3.2.0,M11.1.0" or "<+0530>-5:30". */
static int tz_footer_offset(const char *s, time_t t, long *utcoff)
{
    long std, dst;
    if ((s = tz_name(s)) == NULL || (s = tz_hms(s, &std)) == NULL)
        return PL_ERR_NOTFOUND;
    std = -std; /* POSIX counts west of UTC */
    if (*s == '\0' || *s == '\n') {
        *utcoff = std;
        return PL_OK;
    }
    if ((s = tz_name(s)) == NULL)
        return PL_ERR_NOTFOUND;
    dst = std + 3600;
    if (*s != ',' && *s != '\0' && *s != '\n') {
        if ((s = tz_hms(s, &dst)) == NULL)
            return PL_ERR_NOTFOUND;
        dst = -dst;
    }
    tz_rule start, end;
    if (*s != ',' || (s = tz_rule_parse(s + 1, &start)) == NULL || *s != ',' ||
        (s = tz_rule_parse(s + 1, &end)) == NULL)
        return PL_ERR_NOTFOUND;
    /* The year of t in standard time; a transition's local time is in the time it ends. */
    int64_t days = ((int64_t)t + std) / 86400 - (((int64_t)t + std) % 86400 < 0);
    int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097, yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    int64_t y = yoe + era * 400 + (mp >= 10);
    int64_t on = tz_rule_local(&start, y) - std, off = tz_rule_local(&end, y) - dst;
    int in_dst = on < off ? (t >= on && t < off) : !(t >= off && t < on);
    *utcoff = in_dst ? dst : std;
    return PL_OK;
}

static int tzif_offset(const unsigned char *f, size_t n, time_t t, long *utcoff)
{
    if (n < 44 || memcmp(f, "TZif", 4) != 0)
        return PL_ERR_NOTFOUND;
    int version = f[4];
    const unsigned char *h = f;
    int tsize = 4;
    for (int pass = 0;; pass++) {
        int64_t isut = be(h + 20, 4), isstd = be(h + 24, 4), leap = be(h + 28, 4);
        int64_t timecnt = be(h + 32, 4), typecnt = be(h + 36, 4), charcnt = be(h + 40, 4);
        if (isut < 0 || isstd < 0 || leap < 0 || timecnt < 0 || typecnt < 1 || charcnt < 0)
            return PL_ERR_NOTFOUND;
        size_t body = (size_t)(timecnt * tsize + timecnt + typecnt * 6 + charcnt +
                               leap * (tsize + 4) + isstd + isut);
        const unsigned char *d = h + 44;
        if ((size_t)(d - f) + body > n)
            return PL_ERR_NOTFOUND;
        if (pass == 0 && version >= '2') {
            h = d + body; /* the 64-bit copy follows the 32-bit one */
            tsize = 8;
            if ((size_t)(h - f) + 44 > n || memcmp(h, "TZif", 4) != 0)
                return PL_ERR_NOTFOUND;
            continue;
        }
        const unsigned char *times = d, *idx = d + timecnt * tsize, *types = idx + timecnt;
        /* Before the first transition: type 0. Otherwise the type of the last one <= t. */
        int64_t lo = 0, hi = timecnt;
        while (lo < hi) {
            int64_t mid = (lo + hi) / 2;
            if (be(times + mid * tsize, tsize) <= (int64_t)t)
                lo = mid + 1;
            else
                hi = mid;
        }
        const unsigned char *footer = d + body;
        if (lo == timecnt && tsize == 8 && footer < f + n && *footer == '\n' &&
            footer + 1 < f + n && footer[1] != '\n') {
            char tzs[128];
            size_t len = 0;
            for (const unsigned char *c = footer + 1;
                 c < f + n && *c != '\n' && len + 1 < sizeof(tzs); c++)
                tzs[len++] = (char)*c;
            tzs[len] = '\0';
            if (tz_footer_offset(tzs, t, utcoff) == PL_OK)
                return PL_OK;
        }
        int type = lo == 0 ? 0 : idx[lo - 1];
        if (type >= typecnt)
            return PL_ERR_NOTFOUND;
        *utcoff = (long)be(types + type * 6, 4);
        return PL_OK;
    }
}

int prompt_tz_offset(const char *tz, time_t t, long *utcoff)
{
    *utcoff = 0;
    if (tz == NULL || !valid_zone_name(tz))
        return PL_ERR_INVALID;
    const char *dir = getenv("TZDIR");
    char path[512];
    snprintf(path, sizeof(path), "%s/%s",
             dir != NULL && dir[0] != '\0' ? dir : "/usr/share/zoneinfo", tz);
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return PL_ERR_NOTFOUND;
    unsigned char *buf = malloc(TZ_MAX_FILE);
    if (buf == NULL) {
        fclose(fp);
        return PL_ERR_NOMEM;
    }
    size_t n = fread(buf, 1, TZ_MAX_FILE, fp);
    fclose(fp);
    int rc = tzif_offset(buf, n, t, utcoff);
    free(buf);
    return rc;
}

int prompt_vars_add_system(prompt_vars *vs, const prompt_system *sys)
{
    static const char *const wdays[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                        "Thursday", "Friday", "Saturday"};
    static const char *const months[] = {"January",   "February", "March",    "April",
                                         "May",       "June",     "July",     "August",
                                         "September", "October",  "November", "December"};
    const struct {
        const char *name, *value;
    } ids[] = {{"agent_id", sys->agent_id},
               {"execution_id", sys->execution_id},
               {"call_sid", sys->call_sid},
               {"from_number", sys->from_number},
               {"to_number", sys->to_number}};
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
        if (ids[i].value != NULL && prompt_vars_set(vs, ids[i].name, ids[i].value) != PL_OK)
            return PL_ERR_NOMEM;

    const char *tz = sys->timezone != NULL ? sys->timezone : prompt_vars_get(vs, "timezone");
    if (tz == NULL || tz[0] == '\0')
        tz = "UTC";
    char tzname[80];
    snprintf(tzname, sizeof(tzname), "%s", tz);
    time_t now = sys->now != 0 ? sys->now : time(NULL);
    long off = 0;
    if (strcmp(tzname, "UTC") != 0 && prompt_tz_offset(tzname, now, &off) != PL_OK)
        snprintf(tzname, sizeof(tzname), "UTC");
    time_t local = now + off;
    struct tm tm;
    gmtime_r(&local, &tm);
    char date[64], clock[32];
    snprintf(date, sizeof(date), "%s, %s %02d, %04d", wdays[tm.tm_wday], months[tm.tm_mon],
             tm.tm_mday, tm.tm_year + 1900);
    int h12 = tm.tm_hour % 12 == 0 ? 12 : tm.tm_hour % 12;
    snprintf(clock, sizeof(clock), "%02d:%02d:%02d %s", h12, tm.tm_min, tm.tm_sec,
             tm.tm_hour < 12 ? "AM" : "PM");
    if (prompt_vars_set(vs, "current_date", date) != PL_OK ||
        prompt_vars_set(vs, "current_time", clock) != PL_OK ||
        prompt_vars_set(vs, "timezone", tzname) != PL_OK)
        return PL_ERR_NOMEM;
    return PL_OK;
}

/* ---- substitution ---- */

#define PROMPT_NAME_MAX 128

typedef struct {
    char *p;
    size_t len, cap;
} strbuf;

static int sb_put(strbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap != 0 ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL)
            return PL_ERR_NOMEM;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return PL_OK;
}

char *prompt_fill(const char *tmpl, const prompt_vars *vs)
{
    strbuf b = {0};
    if (sb_put(&b, "", 0) != PL_OK)
        return NULL;
    const char *s = tmpl != NULL ? tmpl : "";
    while (*s != '\0') {
        const char *open = strchr(s, '{');
        if (open == NULL) {
            if (sb_put(&b, s, strlen(s)) != PL_OK)
                goto oom;
            break;
        }
        if (sb_put(&b, s, (size_t)(open - s)) != PL_OK)
            goto oom;
        /* The name runs to the first '}' unless a brace or line break comes first. */
        size_t n = 0;
        while (open[1 + n] != '\0' && open[1 + n] != '}' && open[1 + n] != '{' &&
               open[1 + n] != '\n' && open[1 + n] != '\r' && n <= PROMPT_NAME_MAX)
            n++;
        const prompt_var *v = NULL;
        if (open[1 + n] == '}' && n >= 1 && n <= PROMPT_NAME_MAX && vs != NULL)
            v = find_var(vs, open + 1, n);
        if (v != NULL) {
            if (sb_put(&b, v->value, strlen(v->value)) != PL_OK)
                goto oom;
            s = open + n + 2;
        } else {
            if (sb_put(&b, "{", 1) != PL_OK)
                goto oom;
            s = open + 1;
        }
    }
    return b.p;
oom:
    free(b.p);
    return NULL;
}

/* ---- conversation history ---- */

const char *prompt_role_name(prompt_role r)
{
    switch (r) {
    case PROMPT_USER:
        return "user";
    case PROMPT_ASSISTANT:
        return "assistant";
    case PROMPT_TOOL:
        return "tool";
    }
    return "user";
}

void prompt_history_init(prompt_history *h, size_t max_bytes)
{
    memset(h, 0, sizeof(*h));
    h->max_bytes = max_bytes != 0 ? max_bytes : PROMPT_HISTORY_DEFAULT_MAX;
}

static size_t msg_bytes(const prompt_msg *m)
{
    size_t n = m->len;
    if (m->tool_call_id != NULL)
        n += strlen(m->tool_call_id);
    const cJSON *tc;
    cJSON_ArrayForEach(tc, m->tool_calls)
    {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
        const cJSON *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
        n += 64; /* the id and the JSON around it */
        if (cJSON_IsString(args))
            n += strlen(args->valuestring);
        if (cJSON_IsString(name))
            n += strlen(name->valuestring);
    }
    return n;
}

static void msg_free(prompt_msg *m)
{
    free(m->content);
    free(m->tool_call_id);
    cJSON_Delete(m->tool_calls);
}

void prompt_history_free(prompt_history *h)
{
    for (size_t i = 0; i < h->n; i++)
        msg_free(&h->msgs[i]);
    free(h->msgs);
    memset(h, 0, sizeof(*h));
}

static void drop_front(prompt_history *h, size_t k)
{
    for (size_t i = 0; i < k; i++) {
        h->bytes -= msg_bytes(&h->msgs[i]);
        msg_free(&h->msgs[i]);
    }
    memmove(h->msgs, h->msgs + k, (h->n - k) * sizeof(*h->msgs));
    h->n -= k;
}

static void trim(prompt_history *h)
{
    if (h->bytes <= h->max_bytes)
        return;
    size_t k = 0, bytes = h->bytes;
    while (k + 1 < h->n && bytes > h->max_bytes)
        bytes -= msg_bytes(&h->msgs[k++]);
    while (k + 1 < h->n && h->msgs[k].role != PROMPT_USER)
        k++;
    drop_front(h, k);
}

/* Resizes content to hold at least `need` bytes plus the NUL. */
static int msg_reserve(prompt_msg *m, size_t need)
{
    if (need + 1 <= m->cap)
        return PL_OK;
    size_t cap = m->cap != 0 ? m->cap : 64;
    while (cap < need + 1)
        cap *= 2;
    char *p = realloc(m->content, cap);
    if (p == NULL)
        return PL_ERR_NOMEM;
    m->content = p;
    m->cap = cap;
    return PL_OK;
}

static prompt_msg *push(prompt_history *h, prompt_role role)
{
    if (h->n == h->cap) {
        size_t cap = h->cap != 0 ? h->cap * 2 : 16;
        prompt_msg *m = realloc(h->msgs, cap * sizeof(*m));
        if (m == NULL)
            return NULL;
        h->msgs = m;
        h->cap = cap;
    }
    prompt_msg *m = &h->msgs[h->n];
    memset(m, 0, sizeof(*m));
    m->role = role;
    if (msg_reserve(m, 0) != PL_OK)
        return NULL;
    m->content[0] = '\0';
    h->n++;
    return m;
}

int prompt_history_add(prompt_history *h, prompt_role role, const char *text, size_t len)
{
    prompt_msg *m = push(h, role);
    if (m == NULL)
        return PL_ERR_NOMEM;
    return prompt_history_append(h, text, len);
}

int prompt_history_append(prompt_history *h, const char *text, size_t len)
{
    if (h->n == 0)
        return PL_ERR_INVALID;
    prompt_msg *m = &h->msgs[h->n - 1];
    if (msg_reserve(m, m->len + len) != PL_OK)
        return PL_ERR_NOMEM;
    memcpy(m->content + m->len, text, len);
    m->len += len;
    m->content[m->len] = '\0';
    h->bytes += len;
    trim(h);
    return PL_OK;
}

int prompt_history_add_tool_call(prompt_history *h, const char *id, const char *name,
                                 const char *args_json)
{
    prompt_msg *m = h->n > 0 && h->msgs[h->n - 1].role == PROMPT_ASSISTANT
                        ? &h->msgs[h->n - 1]
                        : push(h, PROMPT_ASSISTANT);
    if (m == NULL)
        return PL_ERR_NOMEM;
    size_t before = msg_bytes(m);
    if (m->tool_calls == NULL && (m->tool_calls = cJSON_CreateArray()) == NULL)
        return PL_ERR_NOMEM;
    cJSON *tc = cJSON_CreateObject(), *fn = cJSON_CreateObject();
    if (tc == NULL || fn == NULL) {
        cJSON_Delete(tc);
        cJSON_Delete(fn);
        return PL_ERR_NOMEM;
    }
    if (cJSON_AddStringToObject(tc, "id", id != NULL ? id : "") == NULL ||
        cJSON_AddStringToObject(tc, "type", "function") == NULL ||
        cJSON_AddStringToObject(fn, "name", name != NULL ? name : "") == NULL ||
        cJSON_AddStringToObject(fn, "arguments", args_json != NULL ? args_json : "{}") == NULL) {
        cJSON_Delete(tc);
        cJSON_Delete(fn);
        return PL_ERR_NOMEM;
    }
    cJSON_AddItemToObject(tc, "function", fn);
    cJSON_AddItemToArray(m->tool_calls, tc);
    h->bytes += msg_bytes(m) - before;
    trim(h);
    return PL_OK;
}

int prompt_history_add_tool_result(prompt_history *h, const char *id, const char *content)
{
    const char *text = content != NULL ? content : "";
    char *cid = strdup(id != NULL ? id : "");
    if (cid == NULL)
        return PL_ERR_NOMEM;
    prompt_msg *m = push(h, PROMPT_TOOL);
    if (m == NULL) {
        free(cid);
        return PL_ERR_NOMEM;
    }
    m->tool_call_id = cid;
    h->bytes += strlen(cid);
    return prompt_history_append(h, text, strlen(text));
}

int prompt_history_cut(prompt_history *h, size_t idx, size_t heard)
{
    if (idx >= h->n || h->msgs[idx].role != PROMPT_ASSISTANT)
        return PL_ERR_INVALID;
    prompt_msg *m = &h->msgs[idx];
    if (heard >= m->len)
        return PL_OK;
    size_t cut = heard;
    while (cut > 0 && ((unsigned char)m->content[cut] & 0xC0) == 0x80)
        cut--; /* never inside a UTF-8 sequence: back to its lead byte */
    while (cut > 0 && (m->content[cut - 1] == ' ' || m->content[cut - 1] == '\t' ||
                       m->content[cut - 1] == '\n'))
        cut--;
    h->bytes -= m->len - cut;
    m->len = cut;
    m->content[cut] = '\0';
    m->interrupted = 1;
    return PL_OK;
}
