/* The execution state machine: Bolna's statuses, the allowed edges of DESIGN.md, and the one
 * function that moves an execution along an edge.
 *
 * A transition is a single SQL statement (one implicit transaction): a guarded UPDATE of
 * executions (WHERE status = ANY(allowed sources)) and an INSERT of the outbox row in
 * execution_events. A late, duplicate or forged request therefore never moves a call backwards:
 * it finds the row in a status the edge does not start from and changes nothing.
 */
#ifndef PL_STATE_H
#define PL_STATE_H

#include <stddef.h>

#include "bus.h"
#include "db.h"
#include "error.h"

typedef enum {
    PL_ST_SCHEDULED,         /* waiting for scheduled_at */
    PL_ST_QUEUED,            /* accepted, waiting to dial */
    PL_ST_RESCHEDULED,       /* an attempt failed; a retry is due later */
    PL_ST_INITIATED,         /* dial request sent to the carrier */
    PL_ST_RINGING,           /* the callee's phone rings */
    PL_ST_IN_PROGRESS,       /* answered; the conversation runs */
    PL_ST_CALL_DISCONNECTED, /* line dropped; post-processing follows */
    PL_ST_COMPLETED,         /* terminal: every field final */
    PL_ST_NO_ANSWER,         /* terminal */
    PL_ST_BUSY,              /* terminal */
    PL_ST_FAILED,            /* terminal: carrier error */
    PL_ST_CANCELED,          /* terminal: canceled before answer */
    PL_ST_STOPPED,           /* terminal: stopped before dialing */
    PL_ST_ERROR,             /* terminal: internal error */
    PL_ST_BALANCE_LOW,       /* terminal: wallet exhausted */
    PL_ST__COUNT
} pl_status;

const char *pl_status_name(pl_status s);
/* 0 and *out set when name is a status, else PL_ERR_INVALID. */
int pl_status_parse(const char *name, pl_status *out);
int pl_status_is_terminal(pl_status s);
/* 1 if the edge from -> to is allowed. */
int pl_status_edge(pl_status from, pl_status to);
/* Writes the Postgres array literal of the statuses `to` may be entered from, e.g.
 * "{queued,scheduled}" into buf. */
void pl_status_sources(pl_status to, char *buf, size_t cap);

typedef struct {
    char execution_id[40];
    char account_id[40];
    char agent_id[40];
    long long event_id;
    pl_status from;
    pl_status to;
} pl_transition;

/* Moves the execution to `to` if its current status allows the edge. It may run inside a
 * transaction the caller opened (BEGIN ... COMMIT), so that other writes commit or roll back
 * together with the transition (the postprocessor's completion and wallet debit); publish only
 * after the COMMIT.
 *   telephony_patch: NULL or a JSON object merged into telephony_data;
 *   error_message:   NULL or text stored in error_message.
 * Returns PL_OK (out filled), PL_ERR_CONFLICT (the row is in a status the edge does not leave
 * from; out->from holds it), PL_ERR_NOTFOUND, or PL_ERR_DB. */
int pl_state_apply(pl_dbconn *c, const char *execution_id, pl_status to,
                   const char *telephony_patch, const char *error_message, pl_transition *out);

/* Publishes "exec.status.<to>" with the event as JSON. Call after the commit; a failure to
 * publish is logged and harmless (subscribers catch up from the outbox). */
void pl_state_publish(pl_bus_pub *bus, const pl_transition *t);

#endif
