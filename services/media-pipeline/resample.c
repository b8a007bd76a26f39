/* speexdsp wrapper; see resample.h for the contract. */
#include "resample.h"

#include <string.h>

#include <speex/speex_resampler.h>

#include "error.h"

int mp_resampler_init(mp_resampler *r, int in_rate, int out_rate)
{
    memset(r, 0, sizeof(*r));
    if (in_rate < MP_RATE_MIN || in_rate > MP_RATE_MAX || out_rate < MP_RATE_MIN ||
        out_rate > MP_RATE_MAX)
        return PL_ERR_INVALID;
    r->in_rate = in_rate;
    r->out_rate = out_rate;
    if (in_rate == out_rate)
        return PL_OK;
    int err = 0;
    SpeexResamplerState *st = speex_resampler_init(1, (spx_uint32_t)in_rate, (spx_uint32_t)out_rate,
                                                   MP_RESAMPLE_QUALITY, &err);
    if (st == NULL)
        return err == RESAMPLER_ERR_ALLOC_FAILED ? PL_ERR_NOMEM : PL_ERR_INVALID;
    /* Drop the filter's start-up delay so output sample k lines up with input time k/out_rate. */
    speex_resampler_skip_zeros(st);
    r->st = st;
    return PL_OK;
}

void mp_resampler_free(mp_resampler *r)
{
    if (r->st != NULL)
        speex_resampler_destroy(r->st);
    memset(r, 0, sizeof(*r));
}

void mp_resampler_reset(mp_resampler *r)
{
    if (r->st != NULL) {
        speex_resampler_reset_mem(r->st);
        speex_resampler_skip_zeros(r->st);
    }
    r->in_total = r->out_total = 0;
}

static size_t latency(const mp_resampler *r)
{
    return r->st == NULL ? 0 : (size_t)speex_resampler_get_input_latency(r->st);
}

size_t mp_resampler_out_max(const mp_resampler *r, size_t n)
{
    if (r->st == NULL)
        return n;
    uint64_t in = (uint64_t)n + latency(r) + 2;
    return (size_t)(in * (uint64_t)r->out_rate / (uint64_t)r->in_rate + 2);
}

int mp_resampler_process(mp_resampler *r, const int16_t *in, size_t n, int16_t *out, size_t out_cap,
                         size_t *out_n)
{
    *out_n = 0;
    if (r->st == NULL) {
        if (n > out_cap)
            return PL_ERR_TOOBIG;
        if (n > 0)
            memcpy(out, in, n * sizeof(*in));
        *out_n = n;
        r->in_total += n;
        r->out_total += n;
        return PL_OK;
    }
    size_t done_in = 0, done_out = 0;
    while (done_in < n) {
        size_t want_in = n - done_in, room = out_cap - done_out;
        if (want_in > UINT32_MAX / 2)
            want_in = UINT32_MAX / 2;
        if (room > UINT32_MAX / 2)
            room = UINT32_MAX / 2;
        spx_uint32_t in_len = (spx_uint32_t)want_in, out_len = (spx_uint32_t)room;
        speex_resampler_process_int(r->st, 0, in + done_in, &in_len, out + done_out, &out_len);
        done_in += in_len;
        done_out += out_len;
        if (in_len == 0 && done_in < n) {
            /* The output buffer is full: the caller sized it too small. */
            r->in_total += done_in;
            r->out_total += done_out;
            *out_n = done_out;
            return PL_ERR_TOOBIG;
        }
    }
    r->in_total += done_in;
    r->out_total += done_out;
    *out_n = done_out;
    return PL_OK;
}

int mp_resampler_drain(mp_resampler *r, int16_t *out, size_t out_cap, size_t *out_n)
{
    static const int16_t zeros[256];
    *out_n = 0;
    if (r->st == NULL)
        return PL_OK;
    uint64_t target =
        (r->in_total * (uint64_t)r->out_rate + (uint64_t)r->in_rate / 2) / (uint64_t)r->in_rate;
    if (target <= r->out_total)
        return PL_OK;
    size_t need = (size_t)(target - r->out_total);
    if (need > out_cap)
        return PL_ERR_TOOBIG;
    size_t got = 0;
    /* Enough zeros to flush the whole filter, twice over; bounds the loop. */
    size_t budget = 2 * latency(r) + 2 * sizeof(zeros) / sizeof(zeros[0]);
    while (got < need && budget > 0) {
        spx_uint32_t in_len = (spx_uint32_t)(sizeof(zeros) / sizeof(zeros[0]));
        if (in_len > budget)
            in_len = (spx_uint32_t)budget;
        spx_uint32_t out_len = (spx_uint32_t)(need - got);
        speex_resampler_process_int(r->st, 0, zeros, &in_len, out + got, &out_len);
        got += out_len;
        budget -= in_len > 0 ? in_len : budget;
    }
    r->out_total += got;
    *out_n = got;
    return PL_OK;
}
