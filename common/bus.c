#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>

#include "bus.h"
#include "error.h"
#include "log.h"
#include "queue.h"

#define REGISTRY     "bus:publishers"
#define LEASE_MS     5000
#define HEARTBEAT_MS 1000
#define MAX_PEERS    256

struct pl_bus_pub {
    nng_socket sock;
    pl_redis *redis;
    char url[256];
    pthread_t thread;
    atomic_int stop;
};

struct pl_bus_sub {
    nng_socket sock;
    pl_redis *redis;
    pthread_t thread;
    atomic_int stop;
    pthread_mutex_t mu;
    char *peers[MAX_PEERS];
    int npeers;
    char self[256];
};

/* Sleeps up to ms in small steps so close() returns quickly. */
static void nap(atomic_int *stop, int ms)
{
    for (int t = 0; t < ms && !atomic_load(stop); t += 50)
        usleep(50 * 1000);
}

static void registry_set(pl_redis *r, const char *url, int64_t expiry_ms)
{
    char key[256];
    pl_rconn *c = pl_redis_acquire(r);
    redisReply *rep;
    if (expiry_ms > 0)
        rep = pl_redis_cmd(c, "HSET %s %s %lld", pl_redis_key(r, key, sizeof(key), REGISTRY), url,
                           (long long)expiry_ms);
    else
        rep = pl_redis_cmd(c, "HDEL %s %s", pl_redis_key(r, key, sizeof(key), REGISTRY), url);
    pl_redis_ok(rep, "bus registry");
    if (rep != NULL)
        freeReplyObject(rep);
    pl_redis_release(r, c);
}

static void *heartbeat_main(void *arg)
{
    pl_bus_pub *p = arg;
    while (!atomic_load(&p->stop)) {
        registry_set(p->redis, p->url, pl_now_ms() + LEASE_MS);
        nap(&p->stop, HEARTBEAT_MS);
    }
    return NULL;
}

pl_bus_pub *pl_bus_pub_open(pl_redis *r, const char *bind_url, const char *advertise_host)
{
    pl_bus_pub *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->redis = r;
    nng_listener l;
    int rv = nng_pub0_open(&p->sock);
    /* Status changes come in bursts (a batch schedules thousands at once): queue generously
     * rather than drop at the default depth. Dropping stays possible and harmless. */
    if (rv == 0)
        nng_socket_set_int(p->sock, NNG_OPT_SENDBUF, 8192);
    if (rv == 0)
        rv = nng_listen(p->sock, bind_url, &l, 0);
    if (rv != 0) {
        PL_ERROR("bus: cannot bind %s: %s", bind_url, nng_strerror(rv));
        free(p);
        return NULL;
    }
    nng_sockaddr sa;
    rv = nng_listener_get_addr(l, NNG_OPT_LOCADDR, &sa);
    if (rv == 0 && sa.s_family == NNG_AF_INET) {
        const unsigned char *ip = (const unsigned char *)&sa.s_in.sa_addr;
        int port = ntohs(sa.s_in.sa_port);
        if (advertise_host != NULL && advertise_host[0] != '\0')
            snprintf(p->url, sizeof(p->url), "tcp://%s:%d", advertise_host, port);
        else
            snprintf(p->url, sizeof(p->url), "tcp://%u.%u.%u.%u:%d", ip[0], ip[1], ip[2], ip[3],
                     port);
    } else {
        snprintf(p->url, sizeof(p->url), "%s", bind_url); /* ipc:// or fixed address */
    }
    registry_set(r, p->url, pl_now_ms() + LEASE_MS);
    pthread_create(&p->thread, NULL, heartbeat_main, p);
    PL_INFO("bus: publishing on %s", p->url);
    return p;
}

void pl_bus_pub_close(pl_bus_pub *p)
{
    if (p == NULL)
        return;
    atomic_store(&p->stop, 1);
    pthread_join(p->thread, NULL);
    registry_set(p->redis, p->url, 0);
    nng_close(p->sock);
    free(p);
}

const char *pl_bus_pub_url(const pl_bus_pub *p)
{
    return p->url;
}

int pl_bus_publish(pl_bus_pub *p, const char *topic, const char *payload, size_t len)
{
    size_t tlen = strlen(topic);
    nng_msg *m;
    if (nng_msg_alloc(&m, tlen + 1 + len) != 0)
        return PL_ERR_NOMEM;
    char *body = nng_msg_body(m);
    memcpy(body, topic, tlen);
    body[tlen] = ' ';
    memcpy(body + tlen + 1, payload, len);
    int rv = nng_sendmsg(p->sock, m, NNG_FLAG_NONBLOCK);
    if (rv != 0) {
        nng_msg_free(m); /* on error the message is still ours */
        return PL_ERR_BUS;
    }
    return PL_OK;
}

/* Dials every live publisher not dialled yet; removes expired registrations. */
static void discover(pl_bus_sub *s)
{
    char key[256];
    pl_redis *r = s->redis;
    pl_rconn *c = pl_redis_acquire(r);
    pl_redis_key(r, key, sizeof(key), REGISTRY);
    redisReply *rep = pl_redis_cmd(c, "HGETALL %s", key);
    int64_t now = pl_now_ms();
    if (pl_redis_ok(rep, "bus discovery") && rep->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i + 1 < rep->elements; i += 2) {
            const char *url = rep->element[i]->str;
            long long expiry = strtoll(rep->element[i + 1]->str, NULL, 10);
            if (expiry < now) {
                redisReply *d = pl_redis_cmd(c, "HDEL %s %s", key, url);
                if (d != NULL)
                    freeReplyObject(d);
                continue;
            }
            pthread_mutex_lock(&s->mu);
            int known = strcmp(url, s->self) == 0;
            for (int k = 0; k < s->npeers; k++)
                known |= strcmp(s->peers[k], url) == 0;
            if (!known && s->npeers < MAX_PEERS) {
                /* Non-blocking dial: nng keeps reconnecting in the background if the peer
                 * restarts on the same address. */
                int rv = nng_dial(s->sock, url, NULL, NNG_FLAG_NONBLOCK);
                if (rv == 0)
                    s->peers[s->npeers++] = strdup(url);
                else
                    PL_WARN("bus: dial %s: %s", url, nng_strerror(rv));
            }
            pthread_mutex_unlock(&s->mu);
        }
    }
    if (rep != NULL)
        freeReplyObject(rep);
    pl_redis_release(r, c);
}

static void *discovery_main(void *arg)
{
    pl_bus_sub *s = arg;
    while (!atomic_load(&s->stop)) {
        nap(&s->stop, HEARTBEAT_MS);
        if (!atomic_load(&s->stop))
            discover(s);
    }
    return NULL;
}

pl_bus_sub *pl_bus_sub_open(pl_redis *r, const char *const *prefixes, int n, const char *self)
{
    pl_bus_sub *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->redis = r;
    snprintf(s->self, sizeof(s->self), "%s", self != NULL ? self : "");
    pthread_mutex_init(&s->mu, NULL);
    if (nng_sub0_open(&s->sock) != 0) {
        free(s);
        return NULL;
    }
    nng_socket_set_int(s->sock, NNG_OPT_RECVBUF, 8192);
    for (int i = 0; i < n; i++)
        nng_socket_set(s->sock, NNG_OPT_SUB_SUBSCRIBE, prefixes[i], strlen(prefixes[i]));
    discover(s);
    pthread_create(&s->thread, NULL, discovery_main, s);
    return s;
}

void pl_bus_sub_close(pl_bus_sub *s)
{
    if (s == NULL)
        return;
    atomic_store(&s->stop, 1);
    pthread_join(s->thread, NULL);
    nng_close(s->sock);
    for (int i = 0; i < s->npeers; i++)
        free(s->peers[i]);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

int pl_bus_recv(pl_bus_sub *s, int timeout_ms, char **msg, size_t *topic_len, const char **payload)
{
    nng_socket_set_ms(s->sock, NNG_OPT_RECVTIMEO, timeout_ms);
    nng_msg *m;
    int rv = nng_recvmsg(s->sock, &m, 0);
    if (rv == NNG_ETIMEDOUT)
        return PL_ERR_TIMEOUT;
    if (rv != 0)
        return PL_ERR_BUS;
    size_t len = nng_msg_len(m);
    char *copy = malloc(len + 1);
    if (copy == NULL) {
        nng_msg_free(m);
        return PL_ERR_NOMEM;
    }
    memcpy(copy, nng_msg_body(m), len);
    copy[len] = '\0';
    nng_msg_free(m);
    char *sp = memchr(copy, ' ', len);
    *topic_len = sp != NULL ? (size_t)(sp - copy) : len;
    *payload = sp != NULL ? sp + 1 : copy + len;
    *msg = copy;
    return PL_OK;
}

int pl_bus_sub_peers(pl_bus_sub *s)
{
    pthread_mutex_lock(&s->mu);
    int n = s->npeers;
    pthread_mutex_unlock(&s->mu);
    return n;
}
