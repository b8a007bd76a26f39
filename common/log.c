#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

pl_log_level pl_log_min_level = PL_LOG_INFO;
static const char *log_service = "parley";

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void pl_log_init(const char *service, const char *level_name)
{
    log_service = service;
    if (level_name == NULL)
        return;
    for (int i = 0; i < 4; i++)
        if (strcasecmp(level_name, level_names[i]) == 0)
            pl_log_min_level = (pl_log_level)i;
}

size_t pl_json_escape(char *buf, size_t cap, size_t len, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[7];
        size_t n = 0;
        if (c == '"' || c == '\\') {
            esc[n++] = '\\';
            esc[n++] = (char)c;
        } else if (c == '\n') {
            esc[n++] = '\\';
            esc[n++] = 'n';
        } else if (c < 0x20) {
            memcpy(esc, "\\u00", 4);
            n = 4;
            esc[n++] = hex[c >> 4];
            esc[n++] = hex[c & 15];
        } else {
            esc[n++] = (char)c;
        }
        if (len + n + 1 > cap)
            break;
        memcpy(buf + len, esc, n);
        len += n;
    }
    if (len < cap)
        buf[len] = '\0';
    return len;
}

void pl_log_write(pl_log_level level, const char *kv, const char *fmt, ...)
{
    char msg[2048];
    char line[4608];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line),
                     "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\","
                     "\"service\":\"%s\",\"msg\":\"",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, level_names[level], log_service);
    size_t len = pl_json_escape(line, sizeof(line) - 64, (size_t)n, msg);
    if (kv != NULL && kv[0] != '\0')
        len += (size_t)snprintf(line + len, sizeof(line) - len, "\",%.*s}\n",
                                (int)(sizeof(line) - len - 8), kv);
    else
        len += (size_t)snprintf(line + len, sizeof(line) - len, "\"}\n");
    if (len >= sizeof(line))
        len = sizeof(line) - 1;
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
