/* workq: this process's queue of executions to post-process, fed by the bus listener and the
 * sweep, drained by the worker threads.
 *
 * It holds ids only: Postgres is the truth, and every entry is a hint to look at one execution.
 * An id is known at most once (queued or in flight), so a bus event and a sweep naming the same
 * execution make one job. Entries carry a due time (a worker waiting for the media-pipeline's
 * figures re-queues its id for a little later). The queue is bounded: when full, an add is
 * dropped, which loses nothing since the next sweep finds the execution again.
 * Thread-safe.
 */
#ifndef PP_WORKQ_H
#define PP_WORKQ_H

#include <stdint.h>

#define PP_ID_CAP 40

typedef struct pp_workq pp_workq;

pp_workq *pp_workq_new(int capacity);
void pp_workq_free(pp_workq *q);

/* Queues id, due at due_ms (Unix ms), unless it is already queued or in flight. Returns 1 when
 * added, 0 when already known, -1 when full or the id is too long. */
int pp_workq_add(pp_workq *q, const char *id, int64_t due_ms);

/* Waits for the earliest due entry, marks it in flight and copies its id. 0, or -1 once the
 * queue is closed (entries still queued are abandoned: the sweep of a later run finds them). */
int pp_workq_take(pp_workq *q, char id[PP_ID_CAP]);

/* Ends the work on an id taken before; retry_at_ms > 0 queues it again, due then. */
void pp_workq_done(pp_workq *q, const char *id, int64_t retry_at_ms);

/* Wakes every taker; take returns -1 from now on. */
void pp_workq_close(pp_workq *q);

/* Entries queued or in flight. */
int pp_workq_size(pp_workq *q);

#endif
