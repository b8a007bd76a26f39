/* Outbound HTTP (libcurl) for provider REST APIs and client-configured URLs: one blocking request
 * per call, optional Basic or Bearer auth, a total deadline, a hard cap on the response size, and
 * on request the SSRF guard (public_only). Redirects are never followed: a 3xx is returned as
 * the response, like any other status.
 *
 * Threading: any thread may call; each thread reuses its own curl handle (so keep-alive
 * connections to a carrier survive between requests of that thread). Calls block for at most
 * timeout_ms. pl_httpc_init must run once before threads start (curl_global_init is not
 * thread-safe).
 */
#ifndef PL_HTTPC_H
#define PL_HTTPC_H

#include <stddef.h>

#include "form.h"

typedef struct {
    const char *user;     /* Basic auth user, or NULL for no Authorization header */
    const char *password; /* Basic auth password */
    const char *bearer;   /* token sent as "Authorization: Bearer <token>", or NULL; ignored
                           * when `user` is set */
    long timeout_ms;      /* whole request; 0 means 10 s */
    long connect_ms;      /* connection set-up; 0 means the lesser of timeout and 5 s */
    size_t max_response;  /* body bytes kept at most; 0 means 1 MiB; more is PL_ERR_TOOBIG */
    int public_only;      /* for URLs a client chose: connect only to public addresses (ssrf.h).
                           * Every address the host resolves to is checked just before libcurl
                           * connects to it, so a public name resolving to a private address is
                           * refused too; a refusal is PL_ERR_IO with "refused: <ip> is a
                           * <class> address" in resp.error. Such a request always opens a new
                           * connection (a kept-alive one may have been made unguarded) and
                           * ignores http_proxy & co (the guard must see the real peer). */
} pl_httpc_opts;

typedef struct {
    long status;     /* HTTP status; 0 when no response arrived */
    char *body;      /* NUL-terminated response body (possibly empty); free with _resp_free */
    size_t len;      /* body bytes, without the NUL */
    char error[256]; /* transport error text when the call did not return PL_OK */
} pl_httpc_resp;

/* Initialises libcurl once; call from main before starting threads. */
void pl_httpc_init(void);

/* One request. body may be NULL (no body); ctype is its Content-Type (NULL: none). Returns PL_OK
 * when a response arrived (whatever its status), PL_ERR_TIMEOUT, PL_ERR_TOOBIG (response over
 * max_response), PL_ERR_INVALID (bad URL or method), or PL_ERR_IO (connection failed, or refused
 * by public_only). `out` is always initialised and must be released with pl_httpc_resp_free. */
int pl_httpc_request(const char *method, const char *url, const char *ctype, const char *body,
                     size_t len, const pl_httpc_opts *o, pl_httpc_resp *out);

/* POST application/x-www-form-urlencoded of the form's pairs. */
int pl_httpc_post_form(const char *url, const pl_form *form, const pl_httpc_opts *o,
                       pl_httpc_resp *out);
/* POST application/json of a NUL-terminated JSON text. */
int pl_httpc_post_json(const char *url, const char *json, const pl_httpc_opts *o,
                       pl_httpc_resp *out);
int pl_httpc_get(const char *url, const pl_httpc_opts *o, pl_httpc_resp *out);
int pl_httpc_delete(const char *url, const pl_httpc_opts *o, pl_httpc_resp *out);

void pl_httpc_resp_free(pl_httpc_resp *r);

#endif
