/* bus: publishers found through the Redis registry, prefix subscriptions, late joiners. */
#include <unistd.h>

#include "bus.h"
#include "check.h"
#include "queue.h"

static pl_redis *r;

/* Receives until a message with this topic arrives or 3 s pass; returns its payload copy. */
static char *recv_topic(pl_bus_sub *s, const char *topic)
{
    int64_t end = pl_now_ms() + 3000;
    while (pl_now_ms() < end) {
        char *msg;
        size_t tl;
        const char *payload;
        if (pl_bus_recv(s, 100, &msg, &tl, &payload) != 0)
            continue;
        if (tl == strlen(topic) && strncmp(msg, topic, tl) == 0) {
            char *out = strdup(payload);
            free(msg);
            return out;
        }
        free(msg);
    }
    return NULL;
}

static void discovery_and_prefix_filter(void)
{
    pl_bus_pub *p = pl_bus_pub_open(r, "tcp://127.0.0.1:0", NULL);
    CHECK(p != NULL);
    if (p == NULL)
        return;
    CHECK(strncmp(pl_bus_pub_url(p), "tcp://127.0.0.1:", 16) == 0);
    const char *prefixes[1] = {"exec.status."};
    pl_bus_sub *s = pl_bus_sub_open(r, prefixes, 1, NULL);
    CHECK(pl_bus_sub_peers(s) >= 1);
    /* pub/sub connects asynchronously: publish until the subscriber hears one. */
    char *got = NULL;
    for (int i = 0; i < 30 && got == NULL; i++) {
        pl_bus_publish(p, "call.control.x", "{\"no\":1}", 8);
        pl_bus_publish(p, "exec.status.queued", "{\"id\":1}", 8);
        got = recv_topic(s, "exec.status.queued");
    }
    CHECK_STR(got, "{\"id\":1}");
    free(got);
    /* call.control.* was never delivered: the next messages are only exec.status ones */
    pl_bus_publish(p, "call.control.y", "{}", 2);
    pl_bus_publish(p, "exec.status.ringing", "{}", 2);
    char *msg;
    size_t tl;
    const char *payload;
    int seen_control = 0;
    while (pl_bus_recv(s, 300, &msg, &tl, &payload) == 0) {
        seen_control |= strncmp(msg, "call.control", 12) == 0;
        free(msg);
    }
    CHECK(!seen_control);
    pl_bus_sub_close(s);
    pl_bus_pub_close(p);
}

static void late_publisher_is_found(void)
{
    const char *prefixes[1] = {"exec."};
    pl_bus_sub *s = pl_bus_sub_open(r, prefixes, 1, NULL);
    int before = pl_bus_sub_peers(s);
    pl_bus_pub *p = pl_bus_pub_open(r, "tcp://127.0.0.1:0", NULL);
    char *got = NULL;
    for (int i = 0; i < 40 && got == NULL; i++) { /* discovery polls every second */
        pl_bus_publish(p, "exec.transcript.x", "late", 4);
        got = recv_topic(s, "exec.transcript.x");
    }
    CHECK(pl_bus_sub_peers(s) > before);
    CHECK_STR(got, "late");
    free(got);
    pl_bus_sub_close(s);
    pl_bus_pub_close(p);
}

static void closed_publisher_unregisters(void)
{
    pl_bus_pub *p = pl_bus_pub_open(r, "tcp://127.0.0.1:0", "10.1.2.3");
    char url[256];
    snprintf(url, sizeof(url), "%s", pl_bus_pub_url(p));
    CHECK(strncmp(url, "tcp://10.1.2.3:", 15) == 0); /* advertised host */
    pl_rconn *c = pl_redis_acquire(r);
    redisReply *rep = pl_redis_cmd(c, "HEXISTS t:bus:publishers %s", url);
    CHECK(rep != NULL && rep->integer == 1);
    freeReplyObject(rep);
    pl_bus_pub_close(p);
    rep = pl_redis_cmd(c, "HEXISTS t:bus:publishers %s", url);
    CHECK(rep != NULL && rep->integer == 0);
    freeReplyObject(rep);
    pl_redis_release(r, c);
}

int main(void)
{
    r = pl_redis_open(check_env("PL_TEST_REDIS_URL"), "t:", 4);
    if (r == NULL)
        return 1;
    RUN(discovery_and_prefix_filter);
    RUN(late_publisher_is_found);
    RUN(closed_publisher_unregisters);
    pl_redis_close(r);
    return check_summary();
}
