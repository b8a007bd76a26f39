/* Playout: pipeline audio, marks and clears → carrier media messages (playout.h). */
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "error.h"
#include "log.h"
#include "playout.h"

int gw_playout_init(gw_playout *p, const gw_carrier *car, const char *stream_id, int rate,
                    gw_playout_write_fn write, void *ctx)
{
    memset(p, 0, sizeof(*p));
    p->car = car;
    gw_copy(p->stream_id, sizeof(p->stream_id), stream_id);
    p->rate = rate;
    p->min = car->media_out_min / 2;
    p->cap = (size_t)rate / 5;
    if (p->cap < p->min)
        p->cap = p->min;
    p->msg_cap = gw_media_out_cap(p->cap, strlen(p->stream_id));
    p->pcm = malloc(p->cap * sizeof(int16_t));
    p->msg = malloc(p->msg_cap);
    p->write = write;
    p->ctx = ctx;
    if (p->pcm == NULL || p->msg == NULL) {
        gw_playout_free(p);
        return PL_ERR_NOMEM;
    }
    return PL_OK;
}

void gw_playout_free(gw_playout *p)
{
    free(p->pcm);
    free(p->msg);
    p->pcm = NULL;
    p->msg = NULL;
}

static void send_out(gw_playout *p, gw_out_kind kind, const int16_t *pcm, size_t n,
                     const char *name)
{
    long len = p->car->media_out(kind, p->stream_id, p->rate, pcm, n, name, p->msg, p->msg_cap);
    if (len < 0) { /* cannot happen: msg_cap is sized by gw_media_out_cap */
        PL_ERROR("%s media message does not fit %zu bytes", p->car->name, p->msg_cap);
        return;
    }
    if (p->write(p->ctx, p->msg, (size_t)len) == 0)
        p->sent++;
    else
        p->lost++;
}

static void send_staged(gw_playout *p)
{
    if (p->have > 0)
        send_out(p, GW_OUT_MEDIA, p->pcm, p->have, NULL);
    p->have = 0;
}

void gw_playout_audio(gw_playout *p, const uint8_t *pcm16le, size_t bytes, int64_t now)
{
    size_t n = bytes / 2;
    p->last_audio = now;
    while (n > 0) {
        size_t take = p->cap - p->have;
        if (take > n)
            take = n;
        pl_pcm16le_decode(pcm16le, take * 2, p->pcm + p->have);
        p->have += take;
        pcm16le += take * 2;
        n -= take;
        if (p->have == p->cap)
            send_staged(p);
    }
}

void gw_playout_flush(gw_playout *p, int pad)
{
    if (p->have == 0 || (p->have < p->min && !pad))
        return;
    if (p->have < p->min) { /* silence up to the carrier's smallest chunk */
        memset(p->pcm + p->have, 0, (p->min - p->have) * sizeof(int16_t));
        p->have = p->min;
    }
    send_staged(p);
}

int gw_playout_mark(gw_playout *p, const char *name, size_t len)
{
    if (len > GW_MARK_MAX)
        return -1;
    char z[GW_MARK_MAX + 1];
    memcpy(z, name, len);
    z[len] = '\0';
    gw_playout_flush(p, 1);
    send_out(p, GW_OUT_MARK, NULL, 0, z);
    return 0;
}

void gw_playout_clear(gw_playout *p)
{
    p->have = 0;
    send_out(p, GW_OUT_CLEAR, NULL, 0, NULL);
}

void gw_playout_idle(gw_playout *p, int64_t now)
{
    if (p->have > 0 && now - p->last_audio >= GW_PLAYOUT_IDLE_MS)
        gw_playout_flush(p, 1);
}
