#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "sse.h"

#define SSE_FIRST_CAP 1024

void sse_init(sse_parser *p, size_t max_event)
{
    memset(p, 0, sizeof(*p));
    p->max = max_event != 0 ? max_event : SSE_DEFAULT_MAX_EVENT;
}

void sse_reset(sse_parser *p)
{
    p->data_len = 0;
    p->line_len = 0;
    p->type[0] = '\0';
    p->id[0] = '\0';
    p->after_cr = 0;
    p->skip_line = 0;
    p->started = 0;
    p->failed = 0;
}

void sse_free(sse_parser *p)
{
    free(p->buf);
    memset(p, 0, sizeof(*p));
}

int sse_pending(const sse_parser *p)
{
    return p->data_len != 0 || p->line_len != 0;
}

/* Makes room for `more` bytes after what the buffer holds; PL_ERR_TOOBIG past the limit. */
static int reserve(sse_parser *p, size_t more)
{
    size_t need = p->data_len + p->line_len + more;
    if (need > p->max)
        return PL_ERR_TOOBIG;
    if (need <= p->cap)
        return PL_OK;
    size_t cap = p->cap != 0 ? p->cap : SSE_FIRST_CAP;
    while (cap < need)
        cap *= 2;
    if (cap > p->max)
        cap = p->max;
    char *b = realloc(p->buf, cap);
    if (b == NULL)
        return PL_ERR_NOMEM;
    p->buf = b;
    p->cap = cap;
    return PL_OK;
}

static void set_field(char *dst, size_t cap, const char *v, size_t len)
{
    if (len >= cap)
        len = cap - 1;
    memcpy(dst, v, len);
    dst[len] = '\0';
}

static int dispatch(sse_parser *p, sse_event_fn fn, void *user)
{
    if (p->data_len == 0) {
        p->type[0] = '\0';
        return 0;
    }
    /* The last line's '\n' becomes the NUL: the data never ends with the separator. */
    size_t len = p->data_len - 1;
    p->buf[len] = '\0';
    sse_event ev = {
        .type = p->type[0] != '\0' ? p->type : "message",
        .data = p->buf,
        .len = len,
        .id = p->id,
        .done = len == 6 && memcmp(p->buf, "[DONE]", 6) == 0,
    };
    int rc = fn(user, &ev);
    p->data_len = 0;
    p->type[0] = '\0';
    return rc;
}

/* The current line is complete (its terminator was read). */
static int end_line(sse_parser *p, sse_event_fn fn, void *user)
{
    char *line = p->buf + p->data_len;
    size_t len = p->line_len;
    p->line_len = 0;
    if (p->skip_line) {
        p->skip_line = 0;
        p->started = 1;
        return 0;
    }
    if (!p->started) {
        p->started = 1;
        if (len >= 3 && memcmp(line, "\xef\xbb\xbf", 3) == 0) {
            line += 3;
            len -= 3;
        }
    }
    if (len == 0)
        return dispatch(p, fn, user);
    if (line[0] == ':')
        return 0;
    const char *colon = memchr(line, ':', len);
    size_t nlen = colon != NULL ? (size_t)(colon - line) : len;
    const char *value = colon != NULL ? colon + 1 : line + len;
    size_t vlen = (size_t)(line + len - value);
    if (vlen > 0 && value[0] == ' ') {
        value++;
        vlen--;
    }
    if (nlen == 4 && memcmp(line, "data", 4) == 0) {
        /* The value moves down to the end of the data; its '\n' takes the place of at least
         * the "data" bytes, so it always fits in what the line used. */
        memmove(p->buf + p->data_len, value, vlen);
        p->data_len += vlen;
        p->buf[p->data_len++] = '\n';
    } else if (nlen == 5 && memcmp(line, "event", 5) == 0) {
        set_field(p->type, sizeof(p->type), value, vlen);
    } else if (nlen == 2 && memcmp(line, "id", 2) == 0) {
        if (memchr(value, '\0', vlen) == NULL)
            set_field(p->id, sizeof(p->id), value, vlen);
    }
    return 0;
}

int sse_feed(sse_parser *p, const char *in, size_t n, sse_event_fn fn, void *user)
{
    if (p->failed)
        return PL_ERR_TOOBIG;
    size_t i = 0;
    while (i < n) {
        if (p->after_cr) {
            p->after_cr = 0;
            if (in[i] == '\n') {
                i++;
                continue;
            }
        }
        size_t j = i;
        while (j < n && in[j] != '\n' && in[j] != '\r')
            j++;
        if (j > i) {
            if (p->line_len == 0 && !p->skip_line && in[i] == ':' && p->started)
                p->skip_line = 1;
            if (!p->skip_line) {
                int rc = reserve(p, j - i);
                if (rc != PL_OK) {
                    p->failed = rc == PL_ERR_TOOBIG;
                    return rc;
                }
                memcpy(p->buf + p->data_len + p->line_len, in + i, j - i);
                p->line_len += j - i;
            }
        }
        if (j == n)
            break;
        p->after_cr = in[j] == '\r';
        i = j + 1;
        int rc = end_line(p, fn, user);
        if (rc != 0)
            return rc;
    }
    return 0;
}
