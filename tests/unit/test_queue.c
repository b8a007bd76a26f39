/* queue: streams with consumer groups, claims of a dead consumer's work, delayed work. Real Redis.
 */
#include <unistd.h>

#include "check.h"
#include "queue.h"

static pl_redis *r;

static void push_read_ack(void)
{
    pl_rconn *c = pl_redis_acquire(r);
    CHECK(pl_queue_group(r, c, "t1", "g", "0") == 0);
    CHECK(pl_queue_group(r, c, "t1", "g", "0") == 0); /* existing group is fine */
    const char *kv[4] = {"execution_id", "e1", "attempt", "0"};
    char id[48];
    CHECK(pl_queue_push(r, c, "t1", kv, 2, id) == 0);
    CHECK(strchr(id, '-') != NULL);
    pl_job jobs[4];
    int n;
    CHECK(pl_queue_read(r, c, "t1", "g", "w1", 100, jobs, 4, &n) == 0);
    CHECK(n == 1);
    CHECK_STR(pl_job_get(&jobs[0], "execution_id"), "e1");
    CHECK_STR(pl_job_get(&jobs[0], "attempt"), "0");
    CHECK(pl_job_get(&jobs[0], "missing") == NULL);
    CHECK_STR(jobs[0].id, id);
    CHECK(pl_queue_ack(r, c, "t1", "g", jobs[0].id) == 0);
    pl_jobs_clear(jobs, n);
    /* nothing new, and nothing pending for anybody */
    CHECK(pl_queue_read(r, c, "t1", "g", "w1", 0, jobs, 4, &n) == 0);
    CHECK(n == 0);
    CHECK(pl_queue_claim(r, c, "t1", "g", "w2", 0, jobs, 4, &n) == 0);
    CHECK(n == 0);
    long long len;
    CHECK(pl_queue_len(r, c, "t1", &len) == 0 && len == 1);
    pl_redis_release(r, c);
}

static void dead_consumer_work_is_claimed(void)
{
    pl_rconn *c = pl_redis_acquire(r);
    pl_queue_group(r, c, "t2", "g", "0");
    const char *kv[2] = {"execution_id", "e2"};
    pl_queue_push(r, c, "t2", kv, 1, NULL);
    pl_job jobs[4];
    int n;
    CHECK(pl_queue_read(r, c, "t2", "g", "dead", 0, jobs, 4, &n) == 0 && n == 1);
    pl_jobs_clear(jobs, n);
    /* "dead" never acks. Too fresh to claim with a 10 s idle threshold: */
    CHECK(pl_queue_claim(r, c, "t2", "g", "alive", 10000, jobs, 4, &n) == 0);
    CHECK(n == 0);
    usleep(60 * 1000);
    CHECK(pl_queue_claim(r, c, "t2", "g", "alive", 50, jobs, 4, &n) == 0);
    CHECK(n == 1);
    CHECK(n == 1 && strcmp(pl_job_get(&jobs[0], "execution_id"), "e2") == 0);
    if (n == 1)
        CHECK(pl_queue_ack(r, c, "t2", "g", jobs[0].id) == 0);
    pl_jobs_clear(jobs, n);
    CHECK(pl_queue_claim(r, c, "t2", "g", "alive", 0, jobs, 4, &n) == 0 && n == 0);
    pl_redis_release(r, c);
}

static void delayed_work_moves_when_due(void)
{
    pl_rconn *c = pl_redis_acquire(r);
    pl_queue_group(r, c, "t3", "g", "0");
    int64_t now = pl_now_ms();
    const char *soon[4] = {"execution_id", "soon", "attempt", "1"};
    const char *later[4] = {"execution_id", "later", "attempt", "1"};
    const char *gone[4] = {"execution_id", "gone", "attempt", "1"};
    CHECK(pl_delay_add(r, c, "t3", soon, 2, now - 1) == 0);
    CHECK(pl_delay_add(r, c, "t3", soon, 2, now - 1) == 0); /* same job twice: one entry */
    CHECK(pl_delay_add(r, c, "t3", later, 2, now + 60000) == 0);
    CHECK(pl_delay_add(r, c, "t3", gone, 2, now - 1) == 0);
    int removed = 0;
    CHECK(pl_delay_remove(r, c, "t3", gone, 2, &removed) == 0 && removed == 1);
    int moved = -1;
    CHECK(pl_delay_promote(r, c, now, 100, &moved) == 0);
    CHECK(moved == 1);
    pl_job jobs[4];
    int n;
    CHECK(pl_queue_read(r, c, "t3", "g", "w", 0, jobs, 4, &n) == 0);
    CHECK(n == 1);
    if (n == 1) {
        CHECK_STR(pl_job_get(&jobs[0], "execution_id"), "soon");
        CHECK_STR(pl_job_get(&jobs[0], "attempt"), "1");
    }
    pl_jobs_clear(jobs, n);
    CHECK(pl_delay_promote(r, c, now, 100, &moved) == 0 && moved == 0);
    CHECK(pl_delay_promote(r, c, now + 60000, 100, &moved) == 0 && moved == 1);
    pl_redis_release(r, c);
}

static void keys_carry_the_prefix(void)
{
    pl_rconn *c = pl_redis_acquire(r);
    redisReply *rep = pl_redis_cmd(c, "EXISTS test:t1");
    CHECK(rep != NULL && rep->integer == 1);
    freeReplyObject(rep);
    rep = pl_redis_cmd(c, "EXISTS t1");
    CHECK(rep != NULL && rep->integer == 0);
    freeReplyObject(rep);
    pl_redis_release(r, c);
}

int main(void)
{
    r = pl_redis_open(check_env("PL_TEST_REDIS_URL"), "test:", 2);
    if (r == NULL)
        return 1;
    RUN(push_read_ack);
    RUN(dead_consumer_work_is_claimed);
    RUN(delayed_work_moves_when_due);
    RUN(keys_carry_the_prefix);
    pl_redis_close(r);
    return check_summary();
}
