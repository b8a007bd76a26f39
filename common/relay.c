/* The media relay's record format and nng PUSH/PULL transport (relay.h). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>

#include "codec.h"
#include "error.h"
#include "log.h"
#include "relay.h"

#define MAX_PEERS    256
#define RECV_MAX_MSG (16 * 1024 * 1024)
#define PEER_SENDBUF 128 /* messages queued per peer while it is slow or away */

/* ---- records ---- */

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)v);
    put16(p + 2, (uint16_t)(v >> 16));
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)get16(p) | ((uint32_t)get16(p + 2) << 16);
}

int pl_relay_put(pl_relay_batch *b, const uint8_t call[16], uint16_t attempt, pl_relay_kind kind,
                 uint32_t seq, const void *payload, size_t len)
{
    if (len > PL_RELAY_MAX_LEN)
        return PL_ERR_TOOBIG;
    size_t need = b->len + PL_RELAY_HEADER + len;
    if (need > b->cap) {
        size_t cap = b->cap > 0 ? b->cap : 4096;
        while (cap < need)
            cap *= 2;
        uint8_t *nb = realloc(b->buf, cap);
        if (nb == NULL)
            return PL_ERR_NOMEM;
        b->buf = nb;
        b->cap = cap;
    }
    uint8_t *p = b->buf + b->len;
    memcpy(p, call, 16);
    put16(p + 16, attempt);
    p[18] = (uint8_t)kind;
    p[19] = 0;
    put32(p + 20, seq);
    put16(p + 24, (uint16_t)len);
    if (len > 0)
        memcpy(p + PL_RELAY_HEADER, payload, len);
    b->len = need;
    return PL_OK;
}

void pl_relay_batch_free(pl_relay_batch *b)
{
    free(b->buf);
    b->buf = NULL;
    b->len = b->cap = 0;
}

int pl_relay_next(const uint8_t *msg, size_t len, size_t *off, pl_relay_rec *r)
{
    if (*off >= len)
        return 0;
    if (len - *off < PL_RELAY_HEADER)
        return PL_ERR_INVALID;
    const uint8_t *p = msg + *off;
    memcpy(r->call, p, 16);
    r->attempt = get16(p + 16);
    r->kind = p[18];
    r->flags = p[19];
    r->seq = get32(p + 20);
    r->len = get16(p + 24);
    if (len - *off - PL_RELAY_HEADER < r->len)
        return PL_ERR_INVALID;
    r->payload = p + PL_RELAY_HEADER;
    *off += PL_RELAY_HEADER + (size_t)r->len;
    return 1;
}

int pl_relay_uuid_parse(const char *text, uint8_t out[16])
{
    if (text == NULL || strlen(text) != 36)
        return PL_ERR_INVALID;
    int n = 0;
    for (int i = 0; i < 36;) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (text[i] != '-')
                return PL_ERR_INVALID;
            i++;
            continue;
        }
        int hi = pl_hex_digit(text[i]), lo = pl_hex_digit(text[i + 1]);
        if (hi < 0 || lo < 0)
            return PL_ERR_INVALID;
        out[n++] = (uint8_t)(hi << 4 | lo);
        i += 2;
    }
    return PL_OK;
}

void pl_relay_uuid_format(const uint8_t in[16], char out[37])
{
    static const char hex[] = "0123456789abcdef";
    int o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[in[i] >> 4];
        out[o++] = hex[in[i] & 15];
    }
    out[o] = '\0';
}

/* ---- transport ---- */

typedef struct {
    char url[256];
    nng_socket sock;
} peer;

struct pl_relay {
    nng_socket pull;
    nng_aio *aio;
    pl_relay_recv_fn fn;
    void *user;
    char url[256];
    pthread_mutex_t mu; /* guards peers */
    peer peers[MAX_PEERS];
    int npeers;
    atomic_uint_fast64_t dropped;
};

static void on_recv(void *arg)
{
    pl_relay *r = arg;
    if (nng_aio_result(r->aio) != 0)
        return; /* closed (NNG_ECLOSED / NNG_ECANCELED): stop re-arming */
    nng_msg *m = nng_aio_get_msg(r->aio);
    r->fn(r->user, nng_msg_body(m), nng_msg_len(m));
    nng_msg_free(m);
    nng_recv_aio(r->pull, r->aio);
}

/* "tcp://0.0.0.0:8093" bound at port p, with the host replaced by advertise_host when given. */
static void public_url(pl_relay *r, const char *listen_url, const char *advertise_host, int port)
{
    const char *hs = strstr(listen_url, "://");
    hs = hs != NULL ? hs + 3 : listen_url;
    const char *colon = strrchr(hs, ':');
    int hlen = colon != NULL ? (int)(colon - hs) : (int)strlen(hs);
    char host[200];
    if (advertise_host != NULL && advertise_host[0] != '\0')
        snprintf(host, sizeof(host), "%s", advertise_host);
    else if (hlen == 0 || (hlen == 7 && strncmp(hs, "0.0.0.0", 7) == 0) ||
             (hlen == 1 && hs[0] == '*'))
        snprintf(host, sizeof(host), "127.0.0.1");
    else
        snprintf(host, sizeof(host), "%.*s", hlen, hs);
    snprintf(r->url, sizeof(r->url), "tcp://%s:%d", host, port);
}

pl_relay *pl_relay_open(const char *listen_url, const char *advertise_host, pl_relay_recv_fn fn,
                        void *user)
{
    pl_relay *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->fn = fn;
    r->user = user;
    pthread_mutex_init(&r->mu, NULL);
    int rv = nng_pull0_open(&r->pull);
    if (rv != 0) {
        PL_ERROR("relay: pull socket: %s", nng_strerror(rv));
        goto fail;
    }
    nng_socket_set_size(r->pull, NNG_OPT_RECVMAXSZ, RECV_MAX_MSG);
    nng_listener l;
    rv = nng_listen(r->pull, listen_url, &l, 0);
    if (rv != 0) {
        PL_ERROR("relay: cannot listen on %s: %s", listen_url, nng_strerror(rv));
        nng_close(r->pull);
        goto fail;
    }
    int port = 0;
    nng_sockaddr sa;
    if (nng_listener_get_addr(l, NNG_OPT_LOCADDR, &sa) == 0 && sa.s_family == NNG_AF_INET)
        port = (int)(((sa.s_in.sa_port & 0xff) << 8) | (sa.s_in.sa_port >> 8));
    public_url(r, listen_url, advertise_host, port);
    rv = nng_aio_alloc(&r->aio, on_recv, r);
    if (rv != 0) {
        nng_close(r->pull);
        goto fail;
    }
    nng_recv_aio(r->pull, r->aio);
    return r;
fail:
    pthread_mutex_destroy(&r->mu);
    free(r);
    return NULL;
}

const char *pl_relay_url(const pl_relay *r)
{
    return r->url;
}

/* The PUSH socket for url, dialled on first use. The dial never waits: nng connects (and
 * reconnects) in the background while messages wait in the socket's send queue, so a worker
 * address that is slow to answer or black-holed never stalls the caller, nor, through the peer
 * table's lock, any other sender. */
static int peer_socket(pl_relay *r, const char *url, nng_socket *out)
{
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < r->npeers; i++)
        if (strcmp(r->peers[i].url, url) == 0) {
            *out = r->peers[i].sock;
            pthread_mutex_unlock(&r->mu);
            return PL_OK;
        }
    if (r->npeers == MAX_PEERS || strlen(url) >= sizeof(r->peers[0].url)) {
        pthread_mutex_unlock(&r->mu);
        PL_WARN("relay: cannot add peer %s (table full or address too long)", url);
        return PL_ERR_TOOBIG;
    }
    peer *p = &r->peers[r->npeers];
    int rv = nng_push0_open(&p->sock);
    if (rv != 0) {
        pthread_mutex_unlock(&r->mu);
        PL_ERROR("relay: push socket: %s", nng_strerror(rv));
        return PL_ERR_IO;
    }
    nng_socket_set_int(p->sock, NNG_OPT_SENDBUF, PEER_SENDBUF);
    nng_socket_set_ms(p->sock, NNG_OPT_RECONNMINT, 50);
    nng_socket_set_ms(p->sock, NNG_OPT_RECONNMAXT, 1000);
    rv = nng_dial(p->sock, url, NULL, NNG_FLAG_NONBLOCK);
    if (rv != 0) { /* a malformed address: the socket stays, every send to it is dropped */
        PL_WARN("relay: cannot dial peer %s: %s", url, nng_strerror(rv));
    }
    snprintf(p->url, sizeof(p->url), "%s", url);
    r->npeers++;
    *out = p->sock;
    pthread_mutex_unlock(&r->mu);
    return PL_OK;
}

int pl_relay_send(pl_relay *r, const char *peer_url, const void *msg, size_t len)
{
    nng_socket s;
    int rc = peer_socket(r, peer_url, &s);
    if (rc != PL_OK) {
        atomic_fetch_add(&r->dropped, 1);
        return rc;
    }
    int rv = nng_send(s, (void *)msg, len, NNG_FLAG_NONBLOCK);
    if (rv != 0) {
        atomic_fetch_add(&r->dropped, 1);
        PL_DEBUG("relay: message to %s dropped: %s", peer_url, nng_strerror(rv));
        return rv == NNG_ENOMEM ? PL_ERR_NOMEM : PL_ERR_IO;
    }
    return PL_OK;
}

uint64_t pl_relay_dropped(const pl_relay *r)
{
    return atomic_load(&((pl_relay *)r)->dropped);
}

void pl_relay_close(pl_relay *r)
{
    if (r == NULL)
        return;
    nng_aio_stop(r->aio);
    nng_close(r->pull);
    nng_aio_free(r->aio);
    for (int i = 0; i < r->npeers; i++)
        nng_close(r->peers[i].sock);
    pthread_mutex_destroy(&r->mu);
    free(r);
}
