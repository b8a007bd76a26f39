/* The SSE parser: a recorded stream gives the same events under every split of its bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "error.h"
#include "sse.h"

/* A stream with every feature: a BOM, comments, retry, CRLF / CR / LF line ends, multi-line
 * data, an event type, ids, a field without colon, UTF-8, an unknown field, [DONE]. */
static const char RECORDED[] =
    "\xef\xbb\xbf: welcome comment\n"
    "retry: 3000\n"
    "\n"
    "data: {\"choices\":[{\"delta\":{\"content\":\"Gr\xc3\xbc\xc3\x9f\"}}],\"usage\":null}\n\n"
    "data:{\"x\":1}\r\n\r\n"
    "event: ping\r\ndata: line1\r\ndata: line2\r\n\r\n"
    ": keep-alive\r\r"
    "id: 42\rdata:  two spaces\r\r"
    "data\n\n"
    "event: error\ndata: {\"error\":{\"message\":\"boom\"}}\n\n"
    "unknown: x\ndata: \xe2\x98\x95 coffee \xf0\x9f\x98\x80\n\n"
    "event: nodata\n\n"
    "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":24,\"completion_tokens\":58}}\r\n\r\n"
    "data: [DONE]\n\n";

static const char EXPECTED[] =
    "message||0|{\"choices\":[{\"delta\":{\"content\":\"Gr\xc3\xbc\xc3\x9f\"}}],\"usage\":null}\n"
    "message||0|{\"x\":1}\n"
    "ping||0|line1\\nline2\n"
    "message|42|0| two spaces\n"
    "message|42|0|\n"
    "error|42|0|{\"error\":{\"message\":\"boom\"}}\n"
    "message|42|0|\xe2\x98\x95 coffee \xf0\x9f\x98\x80\n"
    "message|42|0|{\"choices\":[],\"usage\":{\"prompt_tokens\":24,\"completion_tokens\":58}}\n"
    "message|42|1|[DONE]\n";

typedef struct {
    char log[8192];
    size_t len;
    int events;
    int stop_at; /* return 7 from this event (1-based); 0: never */
} sink;

static int on_event(void *user, const sse_event *ev)
{
    sink *k = user;
    k->events++;
    size_t room = sizeof(k->log) - k->len;
    int n = snprintf(k->log + k->len, room, "%s|%s|%d|", ev->type, ev->id, ev->done);
    if (n > 0 && (size_t)n < room)
        k->len += (size_t)n;
    for (size_t i = 0; i < ev->len && k->len + 3 < sizeof(k->log); i++) {
        if (ev->data[i] == '\n') {
            k->log[k->len++] = '\\';
            k->log[k->len++] = 'n';
        } else
            k->log[k->len++] = ev->data[i];
    }
    if (strlen(ev->data) != ev->len) /* NUL-terminated at len */
        k->log[k->len++] = '!';
    k->log[k->len++] = '\n';
    k->log[k->len] = '\0';
    return k->stop_at == k->events ? 7 : 0;
}

/* Feeds RECORDED cut at the given offsets (ascending); returns the log. */
static int feed_cuts(const char *in, size_t n, const size_t *cuts, int ncuts, sink *k)
{
    sse_parser p;
    sse_init(&p, 0);
    memset(k, 0, sizeof(*k));
    size_t at = 0;
    int rc = 0;
    for (int i = 0; i <= ncuts && rc == 0; i++) {
        size_t end = i < ncuts ? cuts[i] : n;
        rc = sse_feed(&p, in + at, end - at, on_event, k);
        at = end;
    }
    if (rc == 0 && sse_pending(&p))
        rc = -100;
    sse_free(&p);
    return rc;
}

static void test_whole_stream(void)
{
    sink k;
    CHECK(feed_cuts(RECORDED, sizeof(RECORDED) - 1, NULL, 0, &k) == 0);
    CHECK_STR(k.log, EXPECTED);
    CHECK(k.events == 9);
}

static void test_every_single_split(void)
{
    size_t n = sizeof(RECORDED) - 1;
    int bad = 0;
    for (size_t i = 0; i <= n; i++) {
        sink k;
        size_t cut = i;
        if (feed_cuts(RECORDED, n, &cut, 1, &k) != 0 || strcmp(k.log, EXPECTED) != 0) {
            if (bad++ == 0)
                printf("    split at %zu gives:\n%s", i, k.log);
        }
    }
    CHECK(bad == 0);
}

static void test_every_double_split(void)
{
    size_t n = sizeof(RECORDED) - 1;
    int bad = 0;
    for (size_t i = 0; i <= n; i++)
        for (size_t j = i; j <= n; j++) {
            sink k;
            size_t cuts[2] = {i, j};
            if (feed_cuts(RECORDED, n, cuts, 2, &k) != 0 || strcmp(k.log, EXPECTED) != 0)
                if (bad++ == 0)
                    printf("    splits at %zu,%zu differ\n", i, j);
        }
    CHECK(bad == 0);
}

static void test_random_multi_splits(void)
{
    size_t n = sizeof(RECORDED) - 1;
    srand(12345);
    int bad = 0;
    for (int run = 0; run < 3000; run++) {
        size_t cuts[600];
        int nc = 0;
        int maxstep = 1 + run % 24;
        for (size_t at = (size_t)(rand() % maxstep); at < n && nc < 600;
             at += 1 + (size_t)(rand() % maxstep))
            cuts[nc++] = at;
        sink k;
        if (feed_cuts(RECORDED, n, cuts, nc, &k) != 0 || strcmp(k.log, EXPECTED) != 0)
            bad++;
    }
    CHECK(bad == 0);
}

static void test_byte_by_byte(void)
{
    size_t n = sizeof(RECORDED) - 1;
    size_t cuts[sizeof(RECORDED)];
    for (size_t i = 0; i < n; i++)
        cuts[i] = i + 1;
    sink k;
    CHECK(feed_cuts(RECORDED, n, cuts, (int)n - 1, &k) == 0);
    CHECK_STR(k.log, EXPECTED);
}

static void test_line_ends_each_kind(void)
{
    const char *streams[] = {"data: a\ndata: b\n\n", "data: a\r\ndata: b\r\n\r\n",
                             "data: a\rdata: b\r\r", "data: a\r\ndata: b\n\r"};
    for (size_t i = 0; i < sizeof(streams) / sizeof(streams[0]); i++) {
        sink k;
        CHECK(feed_cuts(streams[i], strlen(streams[i]), NULL, 0, &k) == 0);
        CHECK_STR(k.log, "message||0|a\\nb\n");
    }
    /* CR then LF in the next feed is one line end, not two (no empty event in between). */
    sink k;
    size_t cut = 8;
    CHECK(feed_cuts("data: a\r\n\r\n", 11, &cut, 1, &k) == 0);
    CHECK(k.events == 1);
}

static void test_incomplete_and_pending(void)
{
    sse_parser p;
    sink k = {0};
    sse_init(&p, 0);
    CHECK(sse_feed(&p, "data: abc", 9, on_event, &k) == 0);
    CHECK(sse_pending(&p));
    CHECK(sse_feed(&p, "\n", 1, on_event, &k) == 0);
    CHECK(k.events == 0); /* no blank line yet */
    CHECK(sse_pending(&p));
    CHECK(sse_feed(&p, "\n", 1, on_event, &k) == 0);
    CHECK(k.events == 1);
    CHECK(!sse_pending(&p));
    CHECK_STR(k.log, "message||0|abc\n");
    sse_free(&p);
}

static void test_callback_stops(void)
{
    sse_parser p;
    sink k = {0};
    k.stop_at = 2;
    sse_init(&p, 0);
    const char *s = "data: 1\n\ndata: 2\n\ndata: 3\n\n";
    CHECK(sse_feed(&p, s, strlen(s), on_event, &k) == 7);
    CHECK(k.events == 2);
    sse_free(&p);
}

static void test_event_size_limit(void)
{
    sse_parser p;
    sink k = {0};
    char line[200];
    sse_init(&p, 64);
    /* Exactly at the limit: a 64-byte line. */
    memset(line, 'x', sizeof(line));
    memcpy(line, "data: ", 6);
    CHECK(sse_feed(&p, line, 64, on_event, &k) == 0);
    CHECK(sse_feed(&p, "\n\n", 2, on_event, &k) == 0);
    CHECK(k.events == 1);
    /* Two lines that together pass it. */
    CHECK(sse_feed(&p, line, 40, on_event, &k) == 0);
    CHECK(sse_feed(&p, "\n", 1, on_event, &k) == 0);
    CHECK(sse_feed(&p, line, 40, on_event, &k) == PL_ERR_TOOBIG);
    /* Failed for good, even for small input, until reset. */
    CHECK(sse_feed(&p, "data: a\n\n", 9, on_event, &k) == PL_ERR_TOOBIG);
    CHECK(k.events == 1);
    sse_reset(&p);
    CHECK(sse_feed(&p, "data: a\n\n", 9, on_event, &k) == 0);
    CHECK(k.events == 2);
    /* One line over the limit, fed byte by byte. */
    int rc = 0;
    for (int i = 0; i < 100 && rc == 0; i++)
        rc = sse_feed(&p, "y", 1, on_event, &k);
    CHECK(rc == PL_ERR_TOOBIG);
    /* The buffer never grew past the limit. */
    CHECK(p.cap <= 64);
    sse_free(&p);
}

static void test_comments_are_not_buffered(void)
{
    sse_parser p;
    sink k = {0};
    sse_init(&p, 64);
    CHECK(sse_feed(&p, "data: a\n\n", 9, on_event, &k) == 0);
    CHECK(sse_feed(&p, ":", 1, on_event, &k) == 0);
    char big[5000];
    memset(big, 'c', sizeof(big));
    for (int i = 0; i < 10; i++)
        CHECK(sse_feed(&p, big, sizeof(big), on_event, &k) == 0);
    CHECK(sse_feed(&p, "\ndata: b\n\n", 10, on_event, &k) == 0);
    CHECK_STR(k.log, "message||0|a\nmessage||0|b\n");
    sse_free(&p);
}

static void test_growth_is_not_per_byte(void)
{
    sse_parser p;
    sink k = {0};
    sse_init(&p, 1 << 20);
    CHECK(sse_feed(&p, "data: ", 6, on_event, &k) == 0);
    size_t grows = 0, last = p.cap;
    for (int i = 0; i < 100000; i++) {
        CHECK(sse_feed(&p, "z", 1, on_event, &k) == 0);
        if (p.cap != last) {
            grows++;
            last = p.cap;
        }
    }
    CHECK(grows <= 8); /* doubling: 1 KiB .. 128 KiB */
    CHECK(sse_feed(&p, "\n\n", 2, on_event, &k) == 0);
    CHECK(k.events == 1);
    sse_free(&p);
}

static void test_done_only_when_exact(void)
{
    sink k;
    const char *s = "data: [DONE] \n\ndata:[DONE]\n\n";
    CHECK(feed_cuts(s, strlen(s), NULL, 0, &k) == 0);
    CHECK_STR(k.log, "message||0|[DONE] \nmessage||1|[DONE]\n");
}

int main(void)
{
    RUN(test_whole_stream);
    RUN(test_every_single_split);
    RUN(test_every_double_split);
    RUN(test_random_multi_splits);
    RUN(test_byte_by_byte);
    RUN(test_line_ends_each_kind);
    RUN(test_incomplete_and_pending);
    RUN(test_callback_stops);
    RUN(test_event_size_limit);
    RUN(test_comments_are_not_buffered);
    RUN(test_growth_is_not_per_byte);
    RUN(test_done_only_when_exact);
    return check_summary();
}
