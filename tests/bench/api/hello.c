/* The baseline of the api benchmark: civetweb configured exactly as common/http.c configures it
 * (tcp_nodelay, keep-alive, same thread count) answering a fixed JSON body with one mg_write.
 * The api's GET is compared with this, so the ratio shows what our handler costs on top.
 *
 *   hello PORT THREADS
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <civetweb.h>

static int hello(struct mg_connection *conn, void *cb)
{
    (void)cb;
    static const char reply[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                "Content-Length: 17\r\n\r\n{\"hello\":\"world\"}";
    mg_write(conn, reply, sizeof(reply) - 1);
    return 200;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: hello PORT THREADS\n");
        return 2;
    }
    const char *opts[] = {"listening_ports",
                          argv[1],
                          "num_threads",
                          argv[2],
                          "tcp_nodelay",
                          "1",
                          "enable_keep_alive",
                          "yes",
                          "keep_alive_timeout_ms",
                          "5000",
                          "listen_backlog",
                          "1024",
                          NULL};
    struct mg_callbacks cb;
    memset(&cb, 0, sizeof(cb));
    struct mg_context *ctx = mg_start(&cb, NULL, opts);
    if (ctx == NULL)
        return 1;
    mg_set_request_handler(ctx, "/", hello, NULL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    int sig;
    sigwait(&set, &sig);
    mg_stop(ctx);
    return 0;
}
