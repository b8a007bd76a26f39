/* GET /recordings/{execution_id}.wav?exp=<unix>&sig=<hex>: a call's recording, for whoever holds
 * the signed URL the postprocessor put in recording_url (common/recording.h), or for the account
 * that owns the call with its API key (so a link past its exp still plays for its owner).
 *   Authorization: Bearer <key>  the key's account must own the execution (else 404); a bad key
 *                                401. The signature is then not needed.
 *   without it: the signature is the authority, checked in constant time before any lookup:
 *   403  signature missing, malformed or wrong (an altered exp or id included)
 *   410  signature right, exp in the past
 *   404  no recording for that execution (none written, or the file is gone)
 *   200  the WAV, streamed from recording_path in 64 KiB writes; `Accept-Ranges: bytes`
 *   206  one byte range of it (Range: bytes=a-b, a-, -n), as players ask to seek
 *   416  a range past its end
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "error.h"
#include "log.h"
#include "recording.h"
#include "validate.h"

PL_DB_STMT(path_stmt) = {
    "recording_path",
    "SELECT recording_path, account_id FROM executions WHERE id = $1::uuid",
    1,
};

/* Streams bytes first..last of an open regular file of `size` bytes as the answer (200 for the
 * whole file, 206 for a part). The head is written first, so a read error halfway can only cut
 * the body short (the client sees fewer bytes than Content-Length). */
static int send_wav(pl_req *r, const char *id, int fd, long long size, long long first,
                    long long last)
{
    int partial = first > 0 || last < size - 1;
    char range[96] = "";
    if (partial)
        snprintf(range, sizeof(range), "Content-Range: bytes %lld-%lld/%lld\r\n", first, last,
                 size);
    char head[640];
    long long len = size > 0 ? last - first + 1 : 0;
    int hl = snprintf(head, sizeof(head),
                      "HTTP/1.1 %s\r\nContent-Type: audio/wav\r\nContent-Length: %lld\r\n"
                      "%sAccept-Ranges: bytes\r\n"
                      "Content-Disposition: inline; filename=\"%s.wav\"\r\n"
                      "Cache-Control: private\r\n\r\n",
                      partial ? "206 Partial Content" : "200 OK", len, range, id);
    if (first > 0 && lseek(fd, (off_t)first, SEEK_SET) != (off_t)first)
        return pl_http_error(r, 500, "cannot read the recording");
    /* Heap, not stack or TLS: civetweb workers run on small stacks, and static TLS is carved
     * out of every thread's stack. */
    enum { CHUNK = 64 * 1024 };
    char *buf = malloc(CHUNK);
    if (buf == NULL)
        return pl_http_error(r, 500, "out of memory");
    if (mg_write(r->conn, head, (size_t)hl) <= 0) {
        free(buf);
        return partial ? 206 : 200;
    }
    long long left = len;
    while (left > 0) {
        size_t want = left < CHUNK ? (size_t)left : CHUNK;
        ssize_t n = read(fd, buf, want);
        if (n <= 0) {
            PL_WARN("recording %s: read error after %lld of %lld bytes", id, len - left, len);
            break;
        }
        if (mg_write(r->conn, buf, (size_t)n) <= 0)
            break; /* the client went away */
        left -= n;
    }
    free(buf);
    return partial ? 206 : 200;
}

int api_recording_get(pl_req *r)
{
    api_ctx *app = r->app;
    const char *id = r->params[0];
    char account[40] = "";
    if (pl_http_header(r, "Authorization") != NULL) {
        int denied = api_auth(r, account);
        if (denied != 0)
            return denied;
        if (!pl_is_uuid(id))
            return pl_http_error(r, 404, "execution %s has no recording", id);
    } else {
        char exp[32], sig[80];
        int have_exp = pl_http_query(r, "exp", exp, sizeof(exp)) >= 0;
        int have_sig = pl_http_query(r, "sig", sig, sizeof(sig)) >= 0;
        int v = pl_recording_verify(app->cfg.recording_key, id, have_exp ? exp : NULL,
                                    have_sig ? sig : NULL, (int64_t)time(NULL));
        if (v == PL_ERR_TIMEOUT)
            return pl_http_error(r, 410,
                                 "this recording link expired (exp=%s); the account's API key "
                                 "still opens it",
                                 exp);
        if (v != PL_OK || !pl_is_uuid(id))
            return pl_http_error(r, 403,
                                 "recording link is not valid: the signature does not match");
    }

    const char *p[1] = {id};
    PGresult *res = api_exec(r, &path_stmt, p);
    if (!pl_db_ok(res)) {
        int st = api_db_error(r, res, "recording");
        PQclear(res);
        return st;
    }
    int fd = -1;
    struct stat sb;
    /* Another account's call is answered as if it did not exist. */
    if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0) &&
        (account[0] == '\0' || strcmp(PQgetvalue(res, 0, 1), account) == 0)) {
        fd = open(PQgetvalue(res, 0, 0), O_RDONLY | O_CLOEXEC);
        if (fd >= 0 && (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode))) {
            close(fd);
            fd = -1;
        }
        if (fd < 0)
            PL_WARN("recording %s: %s is missing or unreadable", id, PQgetvalue(res, 0, 0));
    }
    PQclear(res);
    if (fd < 0)
        return pl_http_error(r, 404, "execution %s has no recording", id);
    long long size = (long long)sb.st_size, first = 0, last = size - 1;
    int range = pl_http_range(pl_http_header(r, "Range"), size, &first, &last);
    int st;
    if (range < 0) {
        char extra[96];
        snprintf(extra, sizeof(extra), "Content-Range: bytes */%lld\r\n", size);
        st = pl_http_error_with(r, 416, extra,
                                "range not satisfiable: the recording has %lld bytes", size);
    } else {
        st = send_wav(r, id, fd, size, first, last);
    }
    close(fd);
    return st;
}
