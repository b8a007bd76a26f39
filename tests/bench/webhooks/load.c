/* Webhook benchmark driver (tests/bench/webhooks/bench.py starts the stack and runs this).
 *
 * In one process, so that both ends read the same clock:
 *   - 10 (--ports) HTTP receivers (civetweb, keep-alive, one write per answer) that note when
 *     each X-Parley-Event-Id first arrives;
 *   - one agent per receiver, with its webhook_url;
 *   - phase 1, latency: executions created as POST /call does and moved along queued ->
 *     initiated -> ringing -> in-progress -> call-disconnected -> completed with common/state.c
 *     (the services' own statement, then the bus event), at --rate changes per second, the
 *     executions interleaved so that one call's statuses are --executions/--rate seconds apart;
 *     reports status change committed -> webhook received, p50/p90/p99/max;
 *   - phase 2, throughput: --backlog executions created by one statement (one event each, all
 *     committed together); reports deliveries per second until the last arrives.
 *
 * usage: load --db URL --redis URL --account ID --ports p1,p2,... --executions E --rate R
 *             --backlog N [--threads T]
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <civetweb.h>

#include "bus.h"
#include "db.h"
#include "error.h"
#include "log.h"
#include "redis.h"
#include "state.h"

#define MAX_EVENTS (4 << 20)
#define MAX_PORTS  64

static _Atomic int64_t *recv_us; /* by event id: first arrival (CLOCK_REALTIME us) */
static int64_t *commit_us;       /* by event id: commit seen by the generator */
static atomic_long received, duplicates;

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_until(int64_t t_us)
{
    int64_t d = t_us - now_us();
    if (d > 0) {
        struct timespec ts = {d / 1000000, (d % 1000000) * 1000};
        nanosleep(&ts, NULL);
    }
}

/* ---- receivers ---- */

static int on_hook(struct mg_connection *conn, void *cb)
{
    (void)cb;
    int64_t t = now_us();
    char buf[8192];
    while (mg_read(conn, buf, sizeof(buf)) > 0)
        ;
    const char *h = mg_get_header(conn, "X-Parley-Event-Id");
    long long id = h != NULL ? strtoll(h, NULL, 10) : 0;
    if (id > 0 && id < MAX_EVENTS) {
        int64_t zero = 0;
        if (atomic_compare_exchange_strong(&recv_us[id], &zero, t))
            atomic_fetch_add(&received, 1);
        else
            atomic_fetch_add(&duplicates, 1);
    }
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    mg_write(conn, ok, sizeof(ok) - 1);
    return 200;
}

static struct mg_context *receiver(const char *port)
{
    char listen[64];
    snprintf(listen, sizeof(listen), "127.0.0.1:%s", port);
    const char *opts[] = {"listening_ports",       listen,  "num_threads", "48",
                          "enable_keep_alive",     "yes",   "tcp_nodelay", "1",
                          "keep_alive_timeout_ms", "30000", NULL};
    struct mg_callbacks cb;
    memset(&cb, 0, sizeof(cb));
    struct mg_context *ctx = mg_start(&cb, NULL, opts);
    if (ctx != NULL)
        mg_set_request_handler(ctx, "/hook", on_hook, NULL);
    return ctx;
}

/* ---- generator ---- */

static pl_db *db;
static pl_bus_pub *bus;
static const char *account;
static char agents[MAX_PORTS][40];
static int nagents;
static char (*exec_ids)[40];
static int nexec, nthreads;
static double rate;
static int64_t t0;
static atomic_long refused;

static const pl_db_stmt create_stmt = {
    "bench_create",
    "WITH ins AS (INSERT INTO executions (account_id, agent_id, status, to_number, provider)"
    "  VALUES ($1, $2, 'queued', '+14155550100', 'twilio') RETURNING id, account_id, status),"
    " ev AS (INSERT INTO execution_events (execution_id, account_id, status)"
    "  SELECT id, account_id, status FROM ins RETURNING id)"
    " SELECT ins.id, ev.id FROM ins, ev",
    2,
};

static const pl_status chain[] = {PL_ST_QUEUED,      PL_ST_INITIATED,         PL_ST_RINGING,
                                  PL_ST_IN_PROGRESS, PL_ST_CALL_DISCONNECTED, PL_ST_COMPLETED};
#define STEPS 6

/* Thread `tid` owns executions j with j % nthreads == tid; step (k, j) is due at
 * t0 + (k * nexec + j) / rate. */
static void *generate(void *arg)
{
    int tid = (int)(intptr_t)arg;
    pl_dbconn *c = pl_db_acquire(db);
    for (int k = 0; k < STEPS; k++) {
        for (int j = tid; j < nexec; j += nthreads) {
            sleep_until(t0 + (int64_t)(((double)k * nexec + j) * 1e6 / rate));
            pl_transition t;
            memset(&t, 0, sizeof(t));
            if (k == 0) {
                const char *p[2] = {account, agents[j % nagents]};
                PGresult *r = pl_db_exec(c, &create_stmt, p);
                int64_t at = now_us();
                if (pl_db_ok(r) && PQntuples(r) == 1) {
                    snprintf(exec_ids[j], sizeof(exec_ids[j]), "%s", PQgetvalue(r, 0, 0));
                    t.event_id = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
                    snprintf(t.execution_id, sizeof(t.execution_id), "%s", exec_ids[j]);
                    snprintf(t.account_id, sizeof(t.account_id), "%s", account);
                    snprintf(t.agent_id, sizeof(t.agent_id), "%s", agents[j % nagents]);
                    t.from = PL_ST__COUNT;
                    t.to = PL_ST_QUEUED;
                    if (t.event_id > 0 && t.event_id < MAX_EVENTS)
                        commit_us[t.event_id] = at;
                    pl_state_publish(bus, &t);
                } else {
                    atomic_fetch_add(&refused, 1);
                }
                PQclear(r);
                continue;
            }
            if (pl_state_apply(c, exec_ids[j], chain[k], NULL, NULL, &t) == PL_OK) {
                int64_t at = now_us();
                if (t.event_id > 0 && t.event_id < MAX_EVENTS)
                    commit_us[t.event_id] = at;
                pl_state_publish(bus, &t);
            } else {
                atomic_fetch_add(&refused, 1);
            }
        }
    }
    pl_db_release(db, c);
    return NULL;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(const int64_t *v, long n, double p)
{
    if (n == 0)
        return 0;
    long i = (long)(p * (double)n);
    if (i >= n)
        i = n - 1;
    return (double)v[i] / 1000.0;
}

/* Waits until `target` events have arrived or the deadline passes; returns the count. */
static long wait_received(long target, int seconds)
{
    int64_t deadline = now_us() + (int64_t)seconds * 1000000;
    while (atomic_load(&received) < target && now_us() < deadline)
        usleep(2000);
    return atomic_load(&received);
}

static int64_t scalar(pl_dbconn *c, const char *sql, int n, const char *const *p)
{
    PGresult *r = pl_db_query(c, sql, n, p);
    int64_t v = pl_db_ok(r) && PQntuples(r) == 1 ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : -1;
    if (!pl_db_ok(r))
        fprintf(stderr, "load: %s: %s\n", sql, PQresultErrorMessage(r));
    PQclear(r);
    return v;
}

int main(int argc, char **argv)
{
    const char *db_url = NULL, *redis_url = NULL, *ports = NULL;
    long backlog = 0;
    nexec = 500;
    rate = 500;
    nthreads = 16;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--db") == 0)
            db_url = argv[i + 1];
        else if (strcmp(argv[i], "--redis") == 0)
            redis_url = argv[i + 1];
        else if (strcmp(argv[i], "--account") == 0)
            account = argv[i + 1];
        else if (strcmp(argv[i], "--ports") == 0)
            ports = argv[i + 1];
        else if (strcmp(argv[i], "--executions") == 0)
            nexec = (int)strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--rate") == 0)
            rate = strtod(argv[i + 1], NULL);
        else if (strcmp(argv[i], "--backlog") == 0)
            backlog = strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--threads") == 0)
            nthreads = (int)strtol(argv[i + 1], NULL, 10);
    }
    if (db_url == NULL || redis_url == NULL || account == NULL || ports == NULL || nexec < 1 ||
        rate <= 0 || nthreads < 1 || nthreads > 256) {
        fprintf(stderr, "usage: load --db URL --redis URL --account ID --ports p1,p2 "
                        "--executions E --rate R --backlog N [--threads T]\n");
        return 2;
    }
    pl_log_init("bench", "warn");
    recv_us = calloc(MAX_EVENTS, sizeof(*recv_us));
    commit_us = calloc(MAX_EVENTS, sizeof(*commit_us));
    exec_ids = calloc((size_t)nexec, sizeof(*exec_ids));
    db = pl_db_open(db_url, nthreads + 1);
    pl_redis *redis = pl_redis_open(redis_url, "parley:", 4);
    if (recv_us == NULL || commit_us == NULL || exec_ids == NULL || db == NULL || redis == NULL)
        return 1;
    bus = pl_bus_pub_open(redis, "tcp://127.0.0.1:0", NULL);

    /* receivers and their agents */
    struct mg_context *rx[MAX_PORTS];
    char plist[1024];
    snprintf(plist, sizeof(plist), "%s", ports);
    pl_dbconn *c = pl_db_acquire(db);
    for (char *save = NULL, *p = strtok_r(plist, ",", &save); p && nagents < MAX_PORTS;
         p = strtok_r(NULL, ",", &save)) {
        if ((rx[nagents] = receiver(p)) == NULL) {
            fprintf(stderr, "load: cannot listen on %s\n", p);
            return 1;
        }
        char url[128];
        snprintf(url, sizeof(url), "http://127.0.0.1:%s/hook", p);
        const char *params[3] = {account, url, p};
        PGresult *r =
            pl_db_query(c,
                        "INSERT INTO agents (account_id, agent_name, config, prompts, webhook_url)"
                        " VALUES ($1, 'bench ' || $3, '{}', '{}', $2) RETURNING id",
                        3, params);
        if (!pl_db_ok(r)) {
            fprintf(stderr, "load: agent: %s\n", PQresultErrorMessage(r));
            return 1;
        }
        snprintf(agents[nagents++], sizeof(agents[0]), "%s", PQgetvalue(r, 0, 0));
        PQclear(r);
    }
    pl_db_release(db, c);
    sleep(2); /* the dispatcher's bus discovery finds this publisher within a second */

    /* phase 1: latency at a steady rate */
    long events = (long)nexec * STEPS;
    printf("phase 1: %ld status changes (%d calls x %d) at %.0f/s over %d receivers, "
           "%d generator threads\n",
           events, nexec, STEPS, rate, nagents, nthreads);
    fflush(stdout);
    pthread_t th[256];
    t0 = now_us() + 100000;
    for (int i = 0; i < nthreads; i++)
        pthread_create(&th[i], NULL, generate, (void *)(intptr_t)i);
    for (int i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    double gen_s = (double)(now_us() - t0) / 1e6;
    long got = wait_received(events - atomic_load(&refused), 60);
    int64_t *lat = malloc(sizeof(int64_t) * (size_t)events);
    long n = 0, late = 0;
    for (long id = 1; id < MAX_EVENTS && lat != NULL; id++) {
        int64_t r = atomic_load(&recv_us[id]);
        if (commit_us[id] == 0)
            continue;
        if (r == 0) {
            late++;
            continue;
        }
        lat[n++] = r - commit_us[id];
    }
    qsort(lat, (size_t)n, sizeof(int64_t), cmp64);
    printf("  generated in %.2f s (%.0f/s achieved), %ld refused transitions\n", gen_s,
           (double)events / gen_s, atomic_load(&refused));
    printf("  received %ld, missing %ld, duplicates %ld\n", got, late, atomic_load(&duplicates));
    printf("  status change committed -> webhook received: p50 %.2f ms, p90 %.2f ms, "
           "p99 %.2f ms, max %.2f ms\n",
           pct(lat, n, 0.50), pct(lat, n, 0.90), pct(lat, n, 0.99), pct(lat, n, 1.0));
    fflush(stdout);
    free(lat);

    /* phase 2: throughput on a backlog committed at once */
    if (backlog > 0) {
        long before = atomic_load(&received);
        char nbuf[24];
        snprintf(nbuf, sizeof(nbuf), "%ld", backlog);
        const char *p[3] = {account, nbuf, agents[0]};
        c = pl_db_acquire(db);
        /* agents round-robin over the receivers: agent i of the nagents created above */
        char arr[64 * 40];
        size_t len = (size_t)snprintf(arr, sizeof(arr), "{");
        for (int i = 0; i < nagents; i++)
            len += (size_t)snprintf(arr + len, sizeof(arr) - len, "%s%s", i ? "," : "", agents[i]);
        snprintf(arr + len, sizeof(arr) - len, "}");
        p[2] = arr;
        int64_t start = now_us();
        int64_t rows = scalar(
            c,
            "WITH ins AS (INSERT INTO executions (account_id, agent_id, status, to_number,"
            "  provider) SELECT $1, ($3::uuid[])[1 + g % array_length($3::uuid[], 1)], 'queued',"
            "  '+14155550100', 'twilio' FROM generate_series(1, $2::int) g"
            "  RETURNING id, account_id, status),"
            " ev AS (INSERT INTO execution_events (execution_id, account_id, status)"
            "  SELECT id, account_id, status FROM ins RETURNING id)"
            " SELECT count(*) FROM ev",
            3, p);
        int64_t committed = now_us();
        pl_db_release(db, c);
        printf("phase 2: backlog of %lld deliveries committed in one statement (%.2f s)\n",
               (long long)rows, (double)(committed - start) / 1e6);
        fflush(stdout);
        long target = before + rows;
        long done = wait_received(target, 120);
        int64_t last = 0;
        for (long id = 1; id < MAX_EVENTS; id++) {
            int64_t r = atomic_load(&recv_us[id]);
            if (commit_us[id] == 0 && r > last)
                last = r;
        }
        double secs = (double)(last - committed) / 1e6;
        printf("  received %ld of %lld in %.2f s after the commit: %.0f deliveries/s "
               "(duplicates so far %ld)\n",
               done - before, (long long)rows, secs, (double)(done - before) / secs,
               atomic_load(&duplicates));
    }
    for (int i = 0; i < nagents; i++)
        mg_stop(rx[i]);
    pl_bus_pub_close(bus);
    pl_redis_close(redis);
    pl_db_close(db);
    return 0;
}
