#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "validate.h"

int pl_is_uuid(const char *s)
{
    static const int dash[] = {8, 13, 18, 23};
    if (strlen(s) != 36)
        return 0;
    for (int i = 0, d = 0; i < 36; i++) {
        if (d < 4 && i == dash[d]) {
            if (s[i] != '-')
                return 0;
            d++;
        } else if (!isxdigit((unsigned char)s[i])) {
            return 0;
        }
    }
    return 1;
}

int pl_is_e164(const char *s)
{
    if (s[0] != '+' || s[1] < '1' || s[1] > '9')
        return 0;
    size_t n = 0;
    for (const char *p = s + 1; *p; p++, n++)
        if (!isdigit((unsigned char)*p))
            return 0;
    return n >= 7 && n <= 15;
}

int pl_is_http_url(const char *s)
{
    const char *host;
    if (strncmp(s, "http://", 7) == 0)
        host = s + 7;
    else if (strncmp(s, "https://", 8) == 0)
        host = s + 8;
    else
        return 0;
    if (*host == '\0' || *host == '/' || *host == ':' || *host == '?' || *host == '#')
        return 0;
    for (const char *p = s; *p; p++)
        if (isspace((unsigned char)*p) || (unsigned char)*p < 0x20)
            return 0;
    return strlen(s) <= 2048;
}

static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

static int days_in_month(int y, int m)
{
    static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 ? 28 + leap : d[m - 1];
}

int pl_parse_iso8601(const char *s, int64_t *out)
{
    const char *p = s;
    int y, mo, d, h, mi, sec = 0, ms = 0;
    if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' || digits(&p, 2, &d))
        return PL_ERR_INVALID;
    if (*p != 'T' && *p != 't' && *p != ' ')
        return PL_ERR_INVALID;
    p++;
    if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi))
        return PL_ERR_INVALID;
    if (*p == ':') {
        p++;
        if (digits(&p, 2, &sec))
            return PL_ERR_INVALID;
        if (*p == '.' || *p == ',') {
            p++;
            int n = 0, frac = 0;
            while (isdigit((unsigned char)*p)) {
                if (n < 3)
                    frac = frac * 10 + (*p - '0');
                n++;
                p++;
            }
            if (n == 0)
                return PL_ERR_INVALID;
            for (; n < 3; n++)
                frac *= 10;
            ms = frac;
        }
    }
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60)
        return PL_ERR_INVALID;
    int offset_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1, oh, om = 0;
        p++;
        if (digits(&p, 2, &oh))
            return PL_ERR_INVALID;
        if (*p == ':')
            p++;
        if (isdigit((unsigned char)*p) && digits(&p, 2, &om))
            return PL_ERR_INVALID;
        if (oh > 14 || om > 59)
            return PL_ERR_INVALID;
        offset_min = sign * (oh * 60 + om);
    }
    if (*p != '\0')
        return PL_ERR_INVALID;
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    int64_t t = (int64_t)timegm(&tm);
    *out = (t - (int64_t)offset_min * 60) * 1000 + ms;
    return PL_OK;
}

int pl_is_utf8(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        if (c == 0)
            return 0;
        if (c < 0x80) {
            i++;
            continue;
        }
        int n;
        unsigned cp;
        if ((c & 0xe0) == 0xc0) {
            n = 1;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (i + (size_t)n >= len) /* truncated sequence */
            return 0;
        for (int k = 1; k <= n; k++) {
            if ((s[i + (size_t)k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + (size_t)k] & 0x3f);
        }
        static const unsigned min_cp[4] = {0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += (size_t)n + 1;
    }
    return 1;
}

int pl_json_depth(const char *s, size_t len)
{
    int depth = 0, max = 0, in_string = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = 0;
        } else if (c == '"') {
            in_string = 1;
        } else if (c == '{' || c == '[') {
            if (++depth > max)
                max = depth;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return max;
}

int pl_parse_int(const char *s, int min, int max, int fallback, int *out)
{
    *out = fallback;
    if (s == NULL || *s == '\0')
        return PL_ERR_INVALID;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return PL_ERR_INVALID;
    *out = (int)v;
    return PL_OK;
}

int pl_uuid_canon(const char *s, char out[37])
{
    size_t n = strlen(s), o = 0;
    if (n != 32 && !(n == 36 && pl_is_uuid(s)))
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (n == 36 && s[i] == '-') /* pl_is_uuid placed them */
            continue;
        if (!isxdigit((unsigned char)s[i]))
            return -1;
        if (o == 8 || o == 13 || o == 18 || o == 23)
            out[o++] = '-';
        out[o++] = (char)tolower((unsigned char)s[i]);
    }
    out[o] = '\0';
    return 0;
}
