/* The event bus: nng pub/sub with publisher discovery through Redis.
 *
 * Each process binds one PUB socket and registers its address in the Redis hash
 * <prefix>bus:publishers (field: address, value: expiry in Unix ms), refreshed by a heartbeat
 * every second with a 5 s lease. A subscriber dials every live registered publisher and keeps
 * watching the hash for new ones, so replicas anywhere are found without a broker.
 *
 * Messages are "<topic> <payload>": the topic (no spaces, e.g. "exec.status.queued") then one
 * space, then the payload (JSON). Subscriptions are topic prefixes ("exec.status.").
 *
 * pub/sub drops messages for slow or absent subscribers: nothing may depend on an event
 * arriving. Publish only after the state it announces is committed.
 */
#ifndef PL_BUS_H
#define PL_BUS_H

#include <stddef.h>

#include "redis.h"

typedef struct pl_bus_pub pl_bus_pub;
typedef struct pl_bus_sub pl_bus_sub;

/* Binds `bind_url` (tcp://host:0 picks a port) and starts the registration heartbeat.
 * advertise_host, if set, replaces the bound host in the registered address. */
pl_bus_pub *pl_bus_pub_open(pl_redis *r, const char *bind_url, const char *advertise_host);
/* Unregisters and closes. */
void pl_bus_pub_close(pl_bus_pub *p);
/* The registered address, e.g. "tcp://127.0.0.1:40123". */
const char *pl_bus_pub_url(const pl_bus_pub *p);

/* Sends one message without blocking; thread-safe. */
int pl_bus_publish(pl_bus_pub *p, const char *topic, const char *payload, size_t len);

/* Subscribes to the given topic prefixes and starts discovery. `self`, if not NULL, is a
 * publisher address never dialled: a process that acts on its own events directly need not
 * pay for hearing them again over the network. */
pl_bus_sub *pl_bus_sub_open(pl_redis *r, const char *const *prefixes, int n, const char *self);
void pl_bus_sub_close(pl_bus_sub *s);

/* Receives one message, waiting up to timeout_ms. On success *msg is a NUL-terminated copy that
 * the caller frees, *topic_len the topic's length and *payload points inside *msg.
 * Returns PL_ERR_TIMEOUT when nothing arrived. */
int pl_bus_recv(pl_bus_sub *s, int timeout_ms, char **msg, size_t *topic_len, const char **payload);

/* Number of publishers this subscriber has dialled (for tests and /metrics). */
int pl_bus_sub_peers(pl_bus_sub *s);

#endif
