/* The media-pipeline worker registry: the Redis hash <prefix>pipeline:workers, field = worker id,
 * value = {"addr": nng address, "load": n, "capacity": n, "expires": Unix ms}. Workers refresh
 * their entry; an entry past `expires` is a dead worker and is ignored (not deleted: its owner,
 * or a sweep of the pipeline service, does that). */
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "error.h"
#include "gateway.h"
#include "log.h"
#include "queue.h"

int gw_pipeline_pick(gw *g, char *addr, size_t cap)
{
    char key[160];
    pl_redis_key(g->redis, key, sizeof(key), GW_PIPELINE_WORKERS);
    pl_rconn *c = pl_redis_acquire(g->redis);
    redisReply *rep = pl_redis_cmd(c, "HGETALL %s", key);
    pl_redis_release(g->redis, c);
    if (!pl_redis_ok(rep, "HGETALL pipeline workers") || rep->type != REDIS_REPLY_ARRAY) {
        if (rep != NULL)
            freeReplyObject(rep);
        return PL_ERR_REDIS;
    }
    int64_t now = pl_now_ms();
    double best = -1;
    for (size_t i = 0; i + 1 < rep->elements; i += 2) {
        const redisReply *v = rep->element[i + 1];
        if (v->type != REDIS_REPLY_STRING)
            continue;
        cJSON *w = cJSON_ParseWithLength(v->str, v->len);
        const char *a = gw_json_str(w, "addr");
        double load = (double)gw_json_long(w, "load", 0);
        double capacity = (double)gw_json_long(w, "capacity", 0);
        int64_t expires = (int64_t)gw_json_long(w, "expires", 0);
        if (a != NULL && expires > now && capacity > load) {
            double spare = (capacity - load) / capacity;
            if (spare > best) {
                best = spare;
                snprintf(addr, cap, "%s", a);
            }
        }
        cJSON_Delete(w);
    }
    freeReplyObject(rep);
    return best >= 0 ? PL_OK : PL_ERR_NOTFOUND;
}
