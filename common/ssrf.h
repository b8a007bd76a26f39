/* The SSRF guard's address classification (DESIGN.md, Security). Some URLs Parley fetches are
 * chosen by clients: an agent's webhook_url (webhook-dispatcher), its ingest source_url
 * (telephony-gateway, through pl_httpc's public_only). Without a guard they could make a service
 * connect into the private network it runs in (databases, admin ports, the cloud metadata
 * endpoint). Callers ask about every address libcurl is about to connect to
 * (CURLOPT_OPENSOCKETFUNCTION), after name resolution, so DNS names that resolve to private
 * addresses (or change between a check and the connection) are caught as well.
 *
 * Pure functions: no state, any thread.
 */
#ifndef PL_SSRF_H
#define PL_SSRF_H

#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>

typedef enum {
    PL_ADDR_PUBLIC = 0,  /* a global unicast address: always allowed */
    PL_ADDR_LOOPBACK,    /* 127/8, ::1 */
    PL_ADDR_PRIVATE,     /* RFC 1918, 100.64/10 (CGNAT), fc00::/7 (ULA), fec0::/10 */
    PL_ADDR_LINK_LOCAL,  /* 169.254/16, fe80::/10 */
    PL_ADDR_METADATA,    /* cloud instance metadata (169.254.169.254, fd00:ec2::254) */
    PL_ADDR_UNSPECIFIED, /* 0/8, :: */
    PL_ADDR_MULTICAST,   /* 224/4, ff00::/8, 255.255.255.255 */
    PL_ADDR_RESERVED,    /* documentation, benchmarking, 240/4 and other special ranges */
} pl_addr_class;

/* The class of an IPv4 (AF_INET) or IPv6 (AF_INET6) socket address; IPv4-mapped, NAT64 and
 * 6to4 IPv6 addresses are judged by the IPv4 address they carry. Other families and NULL:
 * RESERVED. */
pl_addr_class pl_ssrf_classify(const struct sockaddr *sa);

/* "public", "loopback", "private", ... (static text, never NULL). */
const char *pl_ssrf_class_name(pl_addr_class c);

/* 1 when a connection to an address of this class may be made. allow_private admits loopback,
 * private and link-local addresses; metadata, unspecified, multicast and reserved addresses are
 * never allowed. */
int pl_ssrf_allowed(pl_addr_class c, int allow_private);

/* Room for the text of any address pl_ssrf_ntop writes, with its NUL. */
#define PL_SSRF_ADDRSTRLEN INET6_ADDRSTRLEN

/* The numeric text of an AF_INET or AF_INET6 address ("127.0.0.1", "::ffff:10.0.0.1") in buf,
 * "?" for anything else; returns buf. */
const char *pl_ssrf_ntop(const struct sockaddr *sa, char buf[PL_SSRF_ADDRSTRLEN]);

#endif
