/* Which network addresses webhook callbacks may reach: loopback, private, link-local (cloud
 * metadata), multicast and other special ranges are refused, IPv4 and IPv6 alike (mapped,
 * NAT64 and 6to4 forms are checked by the IPv4 address they carry), unless an allow-list
 * CIDR covers the address. Pure functions, but for gw_url_allowed, which resolves a name and may
 * block for seconds: it runs on a worker thread, never on the loop. */
#ifndef GW_NETPOLICY_H
#define GW_NETPOLICY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct gw_cidr {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    int prefix;
};

/* Parses "10.0.0.0/8", "::1/128" or a bare address (full prefix). 0 or -1. */
int gw_cidr_parse(const char *text, struct gw_cidr *out);

/* 1 when the address may be connected to: public, or inside one of allow[0..nallow). */
int gw_addr_allowed(const struct sockaddr *sa, const struct gw_cidr *allow, size_t nallow);

/* Resolves the host of an http(s) URL already validated by the API and checks every address it
 * has. Returns 1 when all may be reached; 0 with a reason in err otherwise (without the field's
 * name: the caller knows what the client called the URL). Blocks while the name is resolved. */
int gw_url_allowed(const char *url, const struct gw_cidr *allow, size_t nallow, char *err,
                   size_t errlen);

/* 1 when the address is loopback (127.0.0.0/8 or ::1). */
int gw_addr_is_loopback_text(const char *numeric_host);

#endif
