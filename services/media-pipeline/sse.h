/* Server-Sent Events (text/event-stream) parsed incrementally, as the bytes arrive.
 *
 * - Any split of the byte stream gives the same events: inside a field name, inside "data:",
 *   inside a UTF-8 sequence, between the CR and LF of a CRLF, between events.
 * - Lines end with LF, CRLF or a lone CR. A blank line dispatches the event being built.
 * - `data` lines are joined with "\n"; one space after the colon is dropped; `event` sets the
 *   type (default "message"); `id` sets the last event id (kept across events); `retry` and
 *   unknown fields are ignored; a line without a colon is a field with an empty value.
 * - Lines starting with ':' are comments (keep-alives): skipped without being buffered.
 * - A UTF-8 byte order mark at the very start is skipped.
 * - An event whose data is exactly "[DONE]" (OpenAI's end marker) is flagged `done`.
 * - An event with no data line is not dispatched; an event cut off by the end of the stream is
 *   not dispatched either (sse_pending tells whether one was in progress).
 *
 * Memory: one buffer holds the data of the event being built plus the current line. It grows
 * by doubling (never per byte) up to `max_event` bytes; beyond that sse_feed fails with
 * PL_ERR_TOOBIG and the parser stays failed until sse_reset.
 */
#ifndef SSE_H
#define SSE_H

#include <stddef.h>

#define SSE_DEFAULT_MAX_EVENT (256 * 1024)
#define SSE_TYPE_MAX          64  /* longer event types are truncated */
#define SSE_ID_MAX            128 /* longer ids are truncated */

typedef struct {
    const char *type; /* the `event` field, or "message" */
    const char *data; /* data lines joined by "\n", NUL-terminated */
    size_t len;       /* bytes of data, without the NUL */
    const char *id;   /* the last event id seen so far, "" if none */
    int done;         /* data is exactly "[DONE]" */
} sse_event;

/* Called once per event; the event's strings are valid only during the call. Return 0 to go
 * on; any other (positive) value stops sse_feed, which returns it. */
typedef int (*sse_event_fn)(void *user, const sse_event *ev);

typedef struct {
    /* Private. */
    char *buf;
    size_t cap, max;
    size_t data_len; /* buf[0..data_len): the event's data lines, each followed by '\n' */
    size_t line_len; /* buf[data_len..data_len+line_len): the current, unfinished line */
    char type[SSE_TYPE_MAX];
    char id[SSE_ID_MAX];
    int after_cr;  /* the previous byte was CR: a LF right after it ends nothing */
    int skip_line; /* the current line is a comment: drop its bytes */
    int started;   /* the first line was seen (BOM check done) */
    int failed;    /* an event went over max: every later feed fails */
} sse_parser;

/* max_event: the largest event (its data plus one line) accepted; 0 means the default. */
void sse_init(sse_parser *p, size_t max_event);

/* Forgets everything (including a failure) but keeps the buffer and the limit. */
void sse_reset(sse_parser *p);

void sse_free(sse_parser *p);

/* Feeds the next n bytes; calls fn for each event they complete. Returns 0, PL_ERR_TOOBIG (an
 * event over the limit), PL_ERR_NOMEM, or the non-zero value fn returned (the rest of this
 * input was then not read: reset before feeding again). */
int sse_feed(sse_parser *p, const char *in, size_t n, sse_event_fn fn, void *user);

/* Non-zero when an event (or a line) was started and not yet dispatched: at the end of a
 * stream, it means the stream was cut off. */
int sse_pending(const sse_parser *p);

#endif
