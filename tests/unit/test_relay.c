/* relay: record round trip, truncation, uuid text, and the PUSH/PULL transport between two
 * endpoints (in order, batches of many calls, a peer that comes up late). */
#include <pthread.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/supplemental/util/platform.h>

#include "check.h"
#include "error.h"
#include "relay.h"

static const char *ID_A = "0190f3a2-7b1c-7def-8abc-0123456789ab";
static const char *ID_B = "0190f3a2-7b1c-7def-8abc-ba9876543210";

static void uuid_round_trip(void)
{
    uint8_t b[16];
    char t[37];
    CHECK(pl_relay_uuid_parse(ID_A, b) == PL_OK);
    CHECK(b[0] == 0x01 && b[15] == 0xab);
    pl_relay_uuid_format(b, t);
    CHECK_STR(t, ID_A);
    CHECK(pl_relay_uuid_parse("0190f3a2-7b1c-7def-8abc-0123456789a", b) == PL_ERR_INVALID);
    CHECK(pl_relay_uuid_parse("0190f3a2x7b1c-7def-8abc-0123456789ab", b) == PL_ERR_INVALID);
    CHECK(pl_relay_uuid_parse("0190f3a2-7b1c-7def-8abc-0123456789ag", b) == PL_ERR_INVALID);
    CHECK(pl_relay_uuid_parse(NULL, b) == PL_ERR_INVALID);
}

static void records_round_trip(void)
{
    uint8_t a[16], bb[16];
    pl_relay_uuid_parse(ID_A, a);
    pl_relay_uuid_parse(ID_B, bb);
    pl_relay_batch b = {0};
    int16_t pcm[160];
    for (int i = 0; i < 160; i++)
        pcm[i] = (int16_t)(i * 100 - 8000);
    CHECK(pl_relay_put(&b, a, 1, PL_RELAY_START, 0, "{\"rate\":8000}", 13) == PL_OK);
    CHECK(pl_relay_put(&b, a, 1, PL_RELAY_AUDIO, 1, pcm, sizeof(pcm)) == PL_OK);
    CHECK(pl_relay_put(&b, bb, 65535, PL_RELAY_CLEAR, 0xfffffffeu, NULL, 0) == PL_OK);
    CHECK(pl_relay_put(&b, bb, 2, PL_RELAY_MARK, 7, "t3.2", 4) == PL_OK);
    CHECK(pl_relay_put(&b, bb, 2, PL_RELAY_AUDIO, 8, pcm, PL_RELAY_MAX_LEN + 1) == PL_ERR_TOOBIG);
    CHECK(b.len == 4 * PL_RELAY_HEADER + 13 + sizeof(pcm) + 4);

    size_t off = 0;
    pl_relay_rec r;
    CHECK(pl_relay_next(b.buf, b.len, &off, &r) == 1);
    CHECK(memcmp(r.call, a, 16) == 0 && r.attempt == 1 && r.kind == PL_RELAY_START);
    CHECK(r.len == 13 && memcmp(r.payload, "{\"rate\":8000}", 13) == 0);
    CHECK(pl_relay_next(b.buf, b.len, &off, &r) == 1);
    CHECK(r.kind == PL_RELAY_AUDIO && r.seq == 1 && r.len == sizeof(pcm));
    CHECK(memcmp(r.payload, pcm, sizeof(pcm)) == 0);
    CHECK(pl_relay_next(b.buf, b.len, &off, &r) == 1);
    CHECK(memcmp(r.call, bb, 16) == 0 && r.attempt == 65535 && r.kind == PL_RELAY_CLEAR);
    CHECK(r.seq == 0xfffffffeu && r.len == 0);
    CHECK(pl_relay_next(b.buf, b.len, &off, &r) == 1);
    CHECK(r.kind == PL_RELAY_MARK && r.len == 4 && memcmp(r.payload, "t3.2", 4) == 0);
    CHECK(pl_relay_next(b.buf, b.len, &off, &r) == 0);

    /* Truncated: a header cut short, then a payload cut short. */
    off = 0;
    CHECK(pl_relay_next(b.buf, 10, &off, &r) == PL_ERR_INVALID);
    off = 0;
    CHECK(pl_relay_next(b.buf, PL_RELAY_HEADER + 5, &off, &r) == PL_ERR_INVALID);

    pl_relay_reset(&b);
    CHECK(b.len == 0 && b.cap > 0);
    pl_relay_batch_free(&b);
}

typedef struct {
    pthread_mutex_t mu;
    int msgs, recs;
    uint32_t last_seq;
    int in_order;
} sink;

static void on_msg(void *user, const uint8_t *msg, size_t len)
{
    sink *s = user;
    pthread_mutex_lock(&s->mu);
    s->msgs++;
    size_t off = 0;
    pl_relay_rec r;
    while (pl_relay_next(msg, len, &off, &r) == 1) {
        if (s->recs > 0 && r.seq != s->last_seq + 1)
            s->in_order = 0;
        s->last_seq = r.seq;
        s->recs++;
    }
    pthread_mutex_unlock(&s->mu);
}

static int wait_recs(sink *s, int n)
{
    for (int i = 0; i < 300; i++) {
        pthread_mutex_lock(&s->mu);
        int got = s->recs;
        pthread_mutex_unlock(&s->mu);
        if (got >= n)
            return got;
        nng_msleep(10);
    }
    return -1;
}

static void transport_in_order(void)
{
    sink s = {.in_order = 1};
    pthread_mutex_init(&s.mu, NULL);
    pl_relay *rx = pl_relay_open("tcp://127.0.0.1:0", NULL, on_msg, &s);
    pl_relay *tx = pl_relay_open("tcp://0.0.0.0:0", NULL, on_msg, &s);
    CHECK(rx != NULL && tx != NULL);
    if (rx == NULL || tx == NULL)
        return;
    CHECK(strncmp(pl_relay_url(rx), "tcp://127.0.0.1:", 16) == 0);
    CHECK(strncmp(pl_relay_url(tx), "tcp://127.0.0.1:", 16) == 0); /* 0.0.0.0 is not an address */
    uint8_t a[16];
    pl_relay_uuid_parse(ID_A, a);
    pl_relay_batch b = {0};
    int16_t pcm[160] = {0};
    uint32_t seq = 0;
    for (int m = 0; m < 50; m++) { /* 50 ticks of 20 records each */
        pl_relay_reset(&b);
        for (int k = 0; k < 20; k++)
            pl_relay_put(&b, a, 1, PL_RELAY_AUDIO, seq++, pcm, sizeof(pcm));
        CHECK(pl_relay_send(tx, pl_relay_url(rx), b.buf, b.len) == PL_OK);
    }
    CHECK(wait_recs(&s, 1000) == 1000);
    CHECK(s.in_order);
    CHECK(s.msgs == 50);
    CHECK(pl_relay_dropped(tx) == 0);
    pl_relay_batch_free(&b);
    pl_relay_close(tx);
    pl_relay_close(rx);
    pthread_mutex_destroy(&s.mu);
}

/* A peer that is down: what is sent meanwhile waits in the PUSH queue and arrives once the peer
 * listens, without any reconnect by the caller. */
static void late_peer(void)
{
    sink s = {.in_order = 1};
    pthread_mutex_init(&s.mu, NULL);
    /* Find a free port, then release it. */
    pl_relay *probe = pl_relay_open("tcp://127.0.0.1:0", NULL, on_msg, &s);
    CHECK(probe != NULL);
    if (probe == NULL)
        return;
    char url[256];
    snprintf(url, sizeof(url), "%s", pl_relay_url(probe));
    pl_relay_close(probe);
    pl_relay *tx = pl_relay_open("tcp://127.0.0.1:0", NULL, on_msg, &s);
    uint8_t a[16] = {0};
    pl_relay_batch b = {0};
    pl_relay_put(&b, a, 1, PL_RELAY_DTMF, 0, "5", 1);
    CHECK(pl_relay_send(tx, url, b.buf, b.len) == PL_OK);
    pl_relay *rx = pl_relay_open(url, NULL, on_msg, &s);
    CHECK(rx != NULL);
    CHECK(wait_recs(&s, 1) == 1); /* the background redial takes ≤ 1 s */
    CHECK(pl_relay_dropped(tx) == 0);
    pl_relay_batch_free(&b);
    pl_relay_close(tx);
    pl_relay_close(rx);
    pthread_mutex_destroy(&s.mu);
}

int main(void)
{
    RUN(uuid_round_trip);
    RUN(records_round_trip);
    RUN(transport_in_order);
    RUN(late_peer);
    return check_summary();
}
