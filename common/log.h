/* JSON log lines on stderr: {"ts":"...","level":"info","service":"api","msg":"..."} plus fields.
 *
 * The level is checked before the arguments are evaluated, so a disabled debug line costs one
 * comparison. Lines are written with one write(2) so lines of concurrent threads never interleave.
 */
#ifndef PL_LOG_H
#define PL_LOG_H

#include <stddef.h>

typedef enum { PL_LOG_DEBUG = 0, PL_LOG_INFO, PL_LOG_WARN, PL_LOG_ERROR } pl_log_level;

extern pl_log_level pl_log_min_level;

/* Sets the service name written in every line; the string must outlive the process. */
void pl_log_init(const char *service, const char *level_name);

/* Writes one line. `kv` is NULL or a preformatted JSON fragment `"k":v,...` appended as fields. */
void pl_log_write(pl_log_level level, const char *kv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define pl_log(level, ...)                                                                         \
    do {                                                                                           \
        if ((level) >= pl_log_min_level)                                                           \
            pl_log_write((level), NULL, __VA_ARGS__);                                              \
    } while (0)

#define PL_DEBUG(...) pl_log(PL_LOG_DEBUG, __VA_ARGS__)
#define PL_INFO(...)  pl_log(PL_LOG_INFO, __VA_ARGS__)
#define PL_WARN(...)  pl_log(PL_LOG_WARN, __VA_ARGS__)
#define PL_ERROR(...) pl_log(PL_LOG_ERROR, __VA_ARGS__)

/* Appends `s` JSON-escaped (without quotes) to buf of size cap starting at *len; truncates
 * safely. Returns the new length. Shared by everything that hand-writes JSON. */
size_t pl_json_escape(char *buf, size_t cap, size_t len, const char *s);

#endif
